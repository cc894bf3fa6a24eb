"""Generate (or reuse) the embedded shapes caption set and preview it.

Prints split sizes, class count, vocabulary size and a few samples with
their captions and labels; optionally saves a grid of samples::

    python tools/preview_data.py [--data-root data/shapes] [--num 8] \
        [--out work_dirs/shapes_preview.png]

(``docs/images/shapes_preview.png`` in the docs was written this way; write
yours under ``work_dirs/``, which git ignores, so the checkout stays clean.)
"""
import argparse
import os
import os.path as osp
import textwrap
import time


from mmpretrain.registry import DATASETS

import mdc_plugin  # noqa: F401  (registers datasets and tokenizers)
from mdc_plugin.utils.quiet_warnings import silence_known_warnings
from mdc_plugin.datasets.shapes import (
    DEFAULT_NUM_IMAGES, SPLITS)
from mdc_plugin.models.tokenizers import ShapesTokenizer

silence_known_warnings()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Preview the embedded synthetic shapes caption set.')
    parser.add_argument('--data-root', default='data/shapes')
    parser.add_argument('--split', default='train', choices=SPLITS)
    parser.add_argument(
        '--num', type=int, default=8, help='samples to print and draw')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--img-size', type=int, default=64)
    parser.add_argument(
        '--out', default=None, help='save a grid of samples to this PNG')
    return parser.parse_args()


def save_grid(infos: list, out: str, split: str) -> None:
    """Draw ``infos`` (data infos) with their first captions and labels."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from PIL import Image

    cols = min(4, len(infos))
    rows = (len(infos) + cols - 1) // cols
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(3.2 * cols, 4.0 * rows),
        squeeze=False,
        layout='constrained')
    for ax in axes.flat:
        ax.axis('off')
    for ax, info in zip(axes.flat, infos):
        ax.imshow(
            Image.open(info['img_path']).convert('RGB'),
            interpolation='nearest')
        title = f"{info['image_id']}  label {info['gt_label']}\n"
        title += textwrap.fill(info['gt_caption'][0], 34) + '\n'
        title += textwrap.fill(info['gt_caption'][3], 34)
        ax.set_title(title, fontsize=7.5, loc='left')
    fig.suptitle(
        f'synthetic shapes ({split}): captions 1 and 4 of 5', fontsize=10)
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    start = time.perf_counter()
    datasets = {
        split:
        DATASETS.build(
            dict(
                type='SyntheticShapesCaption',
                data_root=args.data_root,
                split=split,
                num_images=DEFAULT_NUM_IMAGES,
                img_size=args.img_size,
                seed=args.seed))
        for split in SPLITS
    }
    ds = datasets[args.split]
    state = 'generated' if datasets['train'].freshly_generated else 'reused'
    print(f'{state} {ds.set_dir} in {time.perf_counter() - start:.1f}s')
    print('split sizes: ' + ', '.join(f'{s}={len(d)}'
                                      for s, d in datasets.items()))
    classes = ds.metainfo['classes']
    tok = ShapesTokenizer()
    print(f'classes: {len(classes)} ({", ".join(classes[:4])}, ...)')
    print(f'vocabulary: {len(ds.metainfo.get("vocabulary", []))} words, '
          f'ShapesTokenizer vocab_size={tok.vocab_size} (with specials)')
    infos = [ds.get_data_info(i) for i in range(min(args.num, len(ds)))]
    for info in infos:
        print(f"\n{info['image_id']}  label={info['gt_label']} "
              f"({classes[info['gt_label']]})  {info['img_path']}")
        for cap in info['gt_caption']:
            print(f'  - {cap}')
    if args.out:
        save_grid(infos, args.out, args.split)
        print(f'\nsaved {args.out}')


if __name__ == '__main__':
    main()
