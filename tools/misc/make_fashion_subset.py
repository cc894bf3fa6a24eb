"""Cut the embedded Fashion-MNIST subset from the official IDX files.

Writes the first ``--num-train`` train items and the first ``--num-test``
test items (official order, no shuffling, no re-encoding of pixels) into
new gzipped IDX files with the official names and correct headers (magic
2051 for images, 2049 for labels, counts updated), plus ``SHA256SUMS``,
``LICENSE`` (Fashion-MNIST's MIT licence and Zalando's copyright notice)
and ``README.md`` (how the files were cut: source names and sha256, N, M).
The output is byte-for-byte deterministic: gzip level 9, mtime 0, no file
name in the gzip header.

    python tools/misc/make_fashion_subset.py \
        --src /usr/share/datasets/fashion-mnist \
        --out mdc_plugin/assets/fashion_mnist_subset

The data sets use this subset only when the full official files are not
found (see docs/data_preparation.md).
"""
import argparse
import gzip
import os
import os.path as osp
import struct
from typing import Dict, Tuple

import numpy as np

from mdc_plugin.utils.file_digest import sha256_file

LABEL_MAGIC = 2049
IMAGE_MAGIC = 2051
FILES = dict(train=('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
             test=('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'))
OFFICIAL_COUNTS = dict(train=60000, test=10000)
CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
           'Shirt', 'Sneaker', 'Bag', 'Ankle boot')

#: Verbatim from the "License" section of Fashion-MNIST's README.md
#: (https://github.com/zalandoresearch/fashion-mnist; shipped by Debian's
#: dataset-fashion-mnist in /usr/share/doc/dataset-fashion-mnist/, whose
#: copyright file says: Files: *, Copyright: 2017, Zalando SE,
#: License: Expat, i.e. MIT).
LICENSE_TEXT = '''\
The MIT License (MIT) Copyright © [2017] Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy \
of this software and associated documentation files (the “Software”), to \
deal in the Software without restriction, including without limitation the \
rights to use, copy, modify, merge, publish, distribute, sublicense, and/or \
sell copies of the Software, and to permit persons to whom the Software is \
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in \
all copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED “AS IS”, WITHOUT WARRANTY OF ANY KIND, EXPRESS OR \
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, \
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE \
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER \
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING \
FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER \
DEALINGS IN THE SOFTWARE.
'''


def find_source(src: str, name: str) -> str:
    for candidate in (osp.join(src, name + '.gz'), osp.join(src, name)):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(f'{name}[.gz] not found in {src}')


def read_idx(path: str, magic: int) -> np.ndarray:
    """Decode an official IDX file (gzip or raw), checking its header."""
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'rb') as f:
        data = f.read()
    ndim = 1 if magic == LABEL_MAGIC else 3
    header = 4 + 4 * ndim
    found, *dims = struct.unpack(f'>I{ndim}I', data[:header])
    if found != magic:
        raise ValueError(f'{path}: magic {found}, expected {magic}')
    if len(data) - header != int(np.prod(dims)):
        raise ValueError(f'{path}: truncated')
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)


def write_idx_gz(path: str, array: np.ndarray, magic: int) -> None:
    """Gzipped IDX, deterministic (level 9, mtime 0, no name in header)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = struct.pack(f'>I{array.ndim}I', magic, *array.shape) + \
        array.tobytes()
    with open(path, 'wb') as raw, gzip.GzipFile(
            filename='', mode='wb', fileobj=raw, mtime=0,
            compresslevel=9) as f:
        f.write(payload)


def cut(src: str, out: str, counts: Dict[str, int]
        ) -> Tuple[Dict[str, str], Dict[str, str], Dict[str, list]]:
    """Write the subset; return the source and output sha256 per file name
    and the class counts per split."""
    os.makedirs(out, exist_ok=True)
    sources, outputs, classes = {}, {}, {}
    for split, (images_name, labels_name) in FILES.items():
        n = counts[split]
        image_src = find_source(src, images_name)
        label_src = find_source(src, labels_name)
        images = read_idx(image_src, IMAGE_MAGIC)
        labels = read_idx(label_src, LABEL_MAGIC)
        if len(images) != OFFICIAL_COUNTS[split] or \
                len(labels) != OFFICIAL_COUNTS[split]:
            raise ValueError(f'{image_src}: not the official {split} split '
                             f'({len(images)} items, expected '
                             f'{OFFICIAL_COUNTS[split]})')
        if not 1 <= n <= len(images):
            raise ValueError(f'--num-{split} must be in 1..{len(images)}')
        for name, path, array, magic in (
                (images_name, image_src, images[:n], IMAGE_MAGIC),
                (labels_name, label_src, labels[:n], LABEL_MAGIC)):
            sources[osp.basename(path)] = sha256_file(path)
            target = osp.join(out, name + '.gz')
            write_idx_gz(target, array, magic)
            outputs[name + '.gz'] = sha256_file(target)
        classes[split] = np.bincount(labels[:n], minlength=10).tolist()
    return sources, outputs, classes


def readme(sources, outputs, classes, counts) -> str:
    src_lines = '\n'.join(f'    {digest}  {name}'
                          for name, digest in sorted(sources.items()))
    out_lines = '\n'.join(f'    {digest}  {name}'
                          for name, digest in sorted(outputs.items()))
    class_rows = '\n'.join(
        f'| {CLASSES[k]} | {classes["train"][k]:,} | {classes["test"][k]:,} |'
        for k in range(10))
    n, m = counts['train'], counts['test']
    return f'''\
# Embedded Fashion-MNIST subset

A small, unmodified subset of Zalando's Fashion-MNIST
(https://github.com/zalandoresearch/fashion-mnist), MIT licence: see
`LICENSE` in this folder (copyright 2017 Zalando SE). The data sets of
`mdc_plugin` (`FashionSceneCaption`, `FashionMNISTItems`) read it only
when the full official files are not found (`data/fashion-mnist/`, then
`/usr/share/datasets/fashion-mnist/`), and say so in the log.

| file | items | magic |
| --- | --- | --- |
| `train-images-idx3-ubyte.gz` | the first {n:,} of the 60,000 train \
images, 28 x 28 | 2051 |
| `train-labels-idx1-ubyte.gz` | their {n:,} labels | 2049 |
| `t10k-images-idx3-ubyte.gz` | the first {m:,} of the 10,000 test \
images, 28 x 28 | 2051 |
| `t10k-labels-idx1-ubyte.gz` | their {m:,} labels | 2049 |

## How it was cut

`python tools/misc/make_fashion_subset.py --num-train {n} --num-test {m}`
read the four official gzipped IDX files (here from Debian's
`dataset-fashion-mnist` package, `/usr/share/datasets/fashion-mnist/`),
took the first {n:,} train and the first {m:,} test items in the official
order (no shuffling; pixels and labels copied byte for byte) and wrote
them in the official IDX format with updated counts, gzip level 9 with
mtime 0 and no file name in the gzip header, so the output is
reproducible. Source files (sha256):

{src_lines}

Output files (sha256, also in `SHA256SUMS`; the data sets check them
before use):

{out_lines}

Items per class (the official files are shuffled, so the first items are
close to balanced):

| class | train | test |
| --- | --- | --- |
{class_rows}
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--src', default='/usr/share/datasets/fashion-mnist',
                        help='folder with the four official IDX files')
    parser.add_argument('--out', default=osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'mdc_plugin', 'assets', 'fashion_mnist_subset'))
    parser.add_argument('--num-train', type=int, default=10000)
    parser.add_argument('--num-test', type=int, default=2000)
    args = parser.parse_args()
    counts = dict(train=args.num_train, test=args.num_test)
    sources, outputs, classes = cut(args.src, args.out, counts)
    with open(osp.join(args.out, 'SHA256SUMS'), 'w') as f:
        f.writelines(f'{digest}  {name}\n'
                     for name, digest in sorted(outputs.items()))
    with open(osp.join(args.out, 'LICENSE'), 'w', encoding='utf-8') as f:
        f.write(LICENSE_TEXT)
    with open(osp.join(args.out, 'README.md'), 'w', encoding='utf-8') as f:
        f.write(readme(sources, outputs, classes, counts))
    total = sum(osp.getsize(osp.join(args.out, name)) for name in outputs)
    print(f'wrote {len(outputs)} IDX files ({total / 1e6:.2f} MB), '
          f'SHA256SUMS, LICENSE and README.md to {args.out}')


if __name__ == '__main__':
    main()
