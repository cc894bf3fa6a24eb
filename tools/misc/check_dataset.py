"""List every missing or unreadable image and every entry without captions
of a config's caption data sets, before a run finds them one by one.

Usage::

    python tools/misc/check_dataset.py CONFIG [--splits train val test]
        [--workers 8] [--cfg-options k=v ...]

Works for any data set built on ``BaseCaptionDataset`` (COCO-Karpathy,
COCO list files, CUB). Prints one line per problem and a count per split;
exits with 1 when anything is wrong, 0 when every image decodes and every
entry has a caption.
"""
import argparse
import sys
from typing import List

from mmengine.config import Config, DictAction


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--splits', nargs='+',
                        default=['train', 'val', 'test'],
                        help='dataloaders to check (train/val/test)')
    parser.add_argument('--workers', type=int, default=8,
                        help='image decoding threads')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys (as tools/train.py)')
    return parser.parse_args(argv)


def check_split(dataset_cfg: dict, workers: int) -> List[str]:
    """Problems (one str each) of one data set config."""
    from mmpretrain.registry import DATASETS

    from mdc_plugin.datasets.image_check import find_bad_images
    cfg = dict(dataset_cfg, on_corrupt='skip', check_images=False,
               pipeline=[], lazy_init=False)
    dataset = DATASETS.build(cfg)
    problems = [f'no caption / bad entry: {m}'
                for m in getattr(dataset, 'skipped_entries', [])]
    paths = [dataset.get_data_info(i)['img_path']
             for i in range(len(dataset))]
    missing, unreadable = find_bad_images(paths, workers)
    problems += [f'missing image: {p}' for p in missing]
    problems += [f'{why}: {p}' for p, why in unreadable]
    print(f'  {len(paths)} entries with captions, {len(missing)} images '
          f'missing, {len(unreadable)} unreadable, '
          f'{len(problems) - len(missing) - len(unreadable)} entries '
          'without captions or unusable')
    return problems


def main(argv=None) -> int:
    args = parse_args(argv)
    import mdc_plugin  # noqa: F401  (registers the data sets)
    from mdc_plugin.utils.cli import merge_cfg_options
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options, args.config)
    total = 0
    for split in args.splits:
        loader = cfg.get(f'{split}_dataloader')
        if not loader or 'dataset' not in loader:
            continue
        print(f'{split}: {loader.dataset.get("type")}')
        try:
            problems = check_split(loader.dataset.to_dict(), args.workers)
        except Exception as e:  # the data set cannot even be loaded
            print(f'  cannot load: {type(e).__name__}: {e}')
            total += 1
            continue
        for line in problems:
            print(f'  {line}')
        total += len(problems)
    print(f'{total} problem(s)' if total else 'all images decode and every '
          'entry has a caption')
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
