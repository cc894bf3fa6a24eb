"""Read the official Fashion-MNIST IDX files (gzip-compressed or raw).

IDX layout (big-endian): a 4-byte magic (0x00000801 = 2049 for label files,
0x00000803 = 2051 for image files), the item count, for images the row and
column counts, then one unsigned byte per label or pixel.
"""
import functools
import gzip
import os.path as osp
import struct
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

LABEL_MAGIC = 2049
IMAGE_MAGIC = 2051
#: Official file stems per split and the item counts they must hold.
SPLIT_FILES = dict(train='train', test='t10k')
SPLIT_COUNTS = dict(train=60000, test=10000)
#: Where ``apt-get install dataset-fashion-mnist`` puts the files.
SYSTEM_ROOT = '/usr/share/datasets/fashion-mnist'
DEFAULT_ROOTS = ('data/fashion-mnist', SYSTEM_ROOT)
INSTALL_HINT = (
    'Get the four official files (train-images-idx3-ubyte.gz, '
    'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, '
    't10k-labels-idx1-ubyte.gz) into data/fashion-mnist/ (see '
    'docs/data_preparation.md), or on Debian/Ubuntu: '
    '`apt-get install dataset-fashion-mnist`, which puts them under '
    f'{SYSTEM_ROOT}')


class IDXFormatError(ValueError):
    """An IDX file is truncated, has the wrong magic or the wrong count."""


def _read_bytes(path: str) -> bytes:
    """File contents, gunzipped when the name ends in ``.gz``."""
    try:
        if path.endswith('.gz'):
            with gzip.open(path, 'rb') as f:
                return f.read()
        with open(path, 'rb') as f:
            return f.read()
    except (OSError, EOFError) as err:  # gzip: bad header / truncated
        raise IDXFormatError(f'{path}: cannot be read ({err}); the file is '
                             f'damaged. {INSTALL_HINT}') from err


def read_idx(path: str, magic: int) -> np.ndarray:
    """Decode one IDX file into uint8 ``(N,)`` labels or ``(N, H, W)``
    images, checking the magic number and that the payload is complete."""
    data = _read_bytes(path)
    ndim = 1 if magic == LABEL_MAGIC else 3
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f'{path}: {len(data)} bytes is shorter than an '
                             f'IDX header ({header} bytes). {INSTALL_HINT}')
    found = struct.unpack('>I', data[:4])[0]
    if found != magic:
        kind = 'label' if magic == LABEL_MAGIC else 'image'
        raise IDXFormatError(
            f'{path}: magic number {found} is not the IDX {kind} magic '
            f'{magic}; is this the right file? {INSTALL_HINT}')
    dims = struct.unpack(f'>{ndim}I', data[4:header])
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise IDXFormatError(
            f'{path}: header says {dims} ({expected} bytes of data) but the '
            f'file holds {len(data) - header}; the file is truncated or '
            f'damaged. {INSTALL_HINT}')
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def find_file(roots: Sequence[str], name: str) -> str:
    """The first ``<root>/<name>.gz`` or ``<root>/<name>`` that exists."""
    for root in roots:
        for candidate in (osp.join(root, name + '.gz'), osp.join(root, name)):
            if osp.isfile(candidate):
                return candidate
    raise FileNotFoundError(
        f'Fashion-MNIST file {name}[.gz] not found in '
        f'{", ".join(map(str, roots))}. {INSTALL_HINT}')


def resolve_roots(data_root: Optional[str]) -> Tuple[str, ...]:
    """``data_root`` if given, else the default search path."""
    return (data_root, ) if data_root else DEFAULT_ROOTS


def split_files(data_root: Optional[str], split: str) -> Tuple[str, str]:
    """Absolute paths of the (images, labels) IDX files of ``split`` that
    :func:`load_fashion_split` reads for ``data_root`` (same search)."""
    if split not in SPLIT_FILES:
        raise ValueError(f'Fashion-MNIST split must be one of '
                         f'{tuple(SPLIT_FILES)}, got {split!r}')
    roots = resolve_roots(data_root)
    stem = SPLIT_FILES[split]
    return tuple(osp.abspath(find_file(roots, f'{stem}-{kind}'))
                 for kind in ('images-idx3-ubyte', 'labels-idx1-ubyte'))


@functools.lru_cache(maxsize=4)
def load_fashion_split(data_root: Optional[str], split: str,
                       check_count: bool = True
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 of the official
    ``'train'`` (60,000) or ``'test'`` (10,000) split.

    Args:
        data_root: folder holding the IDX files; ``None`` searches
            ``data/fashion-mnist`` then the Debian package's folder.
        split: ``'train'`` or ``'test'``.
        check_count: require the official item count (tests pass False
            for the tiny files they write).
    """
    image_path, label_path = split_files(data_root, split)
    images = read_idx(image_path, IMAGE_MAGIC)
    labels = read_idx(label_path, LABEL_MAGIC)
    if len(images) != len(labels):
        raise IDXFormatError(
            f'{image_path} holds {len(images)} images but {label_path} holds '
            f'{len(labels)} labels: the files belong to different sets')
    if check_count and len(images) != SPLIT_COUNTS[split]:
        raise IDXFormatError(
            f'{image_path} holds {len(images)} images; the official {split} '
            f'split has {SPLIT_COUNTS[split]}. {INSTALL_HINT}')
    if images.shape[1:] != (28, 28):
        raise IDXFormatError(f'{image_path}: images are {images.shape[1:]}, '
                             'Fashion-MNIST items are 28 x 28')
    if labels.size and int(labels.max()) >= 10:
        raise IDXFormatError(f'{label_path}: label {int(labels.max())} is '
                             'outside the 10 Fashion-MNIST classes')
    return images, labels


def write_idx(path: str, array: np.ndarray) -> str:
    """Write a uint8 ``(N,)`` label or ``(N, H, W)`` image array as an IDX
    file (gzip when ``path`` ends in ``.gz``); used by tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = LABEL_MAGIC if array.ndim == 1 else IMAGE_MAGIC
    payload = struct.pack(f'>I{array.ndim}I', magic, *array.shape) + \
        array.tobytes()
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'wb') as f:
        f.write(payload)
    return path


def split_summary(data_root: Optional[str] = None) -> Dict[str, int]:
    """Item counts per split (reads every file: a quick integrity check)."""
    return {split: len(load_fashion_split(data_root, split)[1])
            for split in SPLIT_FILES}
