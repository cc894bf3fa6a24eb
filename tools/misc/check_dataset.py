"""List every missing or unreadable image and every entry without captions
of a config's caption data sets, before a run finds them one by one.

Usage::

    python tools/misc/check_dataset.py CONFIG [--splits train val test probe]
        [--workers 8] [--num-items 500] [--cfg-options k=v ...]

File-based data sets (any built on ``BaseCaptionDataset`` whose entries
name an ``img_path``: COCO-Karpathy, COCO list files, CUB): every image is
opened and decoded, every entry checked for captions; one line per problem
and a count per split.

Data sets whose items hold their image in memory or are composed on the fly
(``FashionSceneCaption``, ``FashionMNISTItems``: no image files) are checked
for what can go wrong there: the source files are found and read (the
official Fashion-MNIST IDX files and their item counts, printed with their
full paths), ``--num-items`` items spread over the split load through the
config's pipeline, and each of their captions tokenizes. ``probe`` checks the
``LinearProbeHook`` data sets of ``custom_hooks`` the same way.

Exits with 1 when anything is wrong, 0 when everything checked is usable.
"""
import argparse
import copy
import logging
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.logging import MMLogger

SPLITS = ('train', 'val', 'test', 'probe')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config')
    parser.add_argument('--splits', nargs='+', default=list(SPLITS),
                        choices=SPLITS,
                        help='dataloaders to check (train/val/test), and '
                        'probe: the LinearProbeHook data sets')
    parser.add_argument('--workers', type=int, default=8,
                        help='image decoding threads')
    parser.add_argument('--num-items', type=int, default=500,
                        help='items per split run through the pipeline '
                        'for data sets without image files (0: all)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys (as tools/train.py)')
    return parser.parse_args(argv)


def build_dataset(dataset_cfg: dict):
    """The data set without its pipeline, corrupt entries counted (caption
    data sets) instead of raised."""
    from mmpretrain.registry import DATASETS

    from mdc_plugin.datasets.base_caption import BaseCaptionDataset
    cfg = dict(dataset_cfg, pipeline=[], lazy_init=False)
    cls = DATASETS.get(cfg['type']) if isinstance(cfg['type'], str) \
        else cfg['type']
    if isinstance(cls, type) and issubclass(cls, BaseCaptionDataset):
        cfg.update(on_corrupt='skip', check_images=False)
    # the INFO line a data set logs about its source is printed below
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        return DATASETS.build(cfg)
    finally:
        logger.setLevel(level)


def check_split(dataset_cfg: dict, workers: int, num_items: int = 500,
                kinds: Optional[List[str]] = None) -> List[str]:
    """Problems (one str each) of one data set config; appends 'files' or
    'memory' (items without image files) to ``kinds``."""
    dataset = build_dataset(dataset_cfg)
    problems = [f'no caption / bad entry: {m}'
                for m in getattr(dataset, 'skipped_entries', [])]
    in_memory = len(dataset) and not dataset.get_data_info(0).get('img_path')
    if kinds is not None:
        kinds.append('memory' if in_memory else 'files')
    if in_memory:
        return problems + check_in_memory(dataset, dataset_cfg, num_items)
    from mdc_plugin.datasets.image_check import find_bad_images
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


def _spread(total: int, count: int) -> List[int]:
    """``count`` indices spread evenly over ``range(total)``, first and last
    included (all of them when ``count`` is 0 or >= ``total``)."""
    if count <= 0 or count >= total:
        return list(range(total))
    if count == 1:
        return [0]
    return sorted({round(i * (total - 1) / (count - 1))
                   for i in range(count)})


def _name(info: dict, idx: int) -> str:
    image_id = info.get('image_id')
    return f'item {idx}' + (f' ({image_id})' if image_id is not None else '')


def check_in_memory(dataset, dataset_cfg: dict,
                    num_items: int) -> List[str]:
    """Items that carry their image (``img``) instead of a file: load a
    spread of them through the config's pipeline and tokenize each of their
    captions with the pipeline's ``TokenizeCaption`` steps."""
    from mmengine.dataset import Compose

    from mdc_plugin.datasets.transforms import TokenizeCaption
    describe = getattr(dataset, 'describe_source', None)
    if describe is not None:
        print(f'  source: {describe()}')
    pipeline = Compose(copy.deepcopy(dataset_cfg.get('pipeline') or []))
    tokenizers = [t for t in pipeline.transforms
                  if isinstance(t, TokenizeCaption)]
    indices = _spread(len(dataset), num_items)
    problems: List[str] = []
    captions = cut = 0
    for idx in indices:
        try:
            info = dataset.get_data_info(idx)
        except Exception as e:
            problems.append(f'item {idx} cannot be made: '
                            f'{type(e).__name__}: {e}')
            continue
        if info.get('img') is None or not getattr(info['img'], 'size', 0):
            problems.append(f'{_name(info, idx)}: no image (neither '
                            'img_path nor an img array)')
            continue
        try:
            if pipeline(copy.deepcopy(info)) is None:
                problems.append(f'{_name(info, idx)}: the pipeline dropped '
                                'it')
        except Exception as e:
            problems.append(f'{_name(info, idx)}: pipeline failed: '
                            f'{type(e).__name__}: {e}')
            continue
        refs = info.get('gt_caption')
        if refs is None:
            continue
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs:
            problems.append(f'{_name(info, idx)}: has no caption')
        for tok in tokenizers:
            for ref in refs:
                before = tok.num_truncated
                try:
                    tok.transform(dict(info, **{tok.caption_key: [ref]}))
                except Exception as e:
                    problems.append(f'{_name(info, idx)}: caption {ref!r} '
                                    f'does not tokenize: {e}')
                captions += 1
                cut += tok.num_truncated - before
    failed = len(problems)
    checked = ('all' if len(indices) == len(dataset)
               else f'{len(indices)} spread over the split')
    line = (f'  {len(dataset)} entries, composed in memory (no image files); '
            f'{checked} loaded through the pipeline: {failed} failed')
    if captions:
        line += f'; {captions} captions tokenized'
        if cut:
            line += (f', {cut} longer than max_length='
                     f'{", ".join(str(t.max_length) for t in tokenizers)} '
                     '(cut in training)')
    bad = len(getattr(dataset, 'skipped_entries', ()))
    if hasattr(dataset, 'skipped_entries'):
        line += f'; {bad} entries without captions or unusable'
    print(line)
    return problems


def probe_datasets(cfg: Config) -> List[tuple]:
    """(name, dataset config) of every LinearProbeHook data set given in
    ``custom_hooks`` (with the hook's pipeline)."""
    out = []
    for i, hook in enumerate(cfg.get('custom_hooks') or []):
        if hook.get('type') != 'LinearProbeHook':
            continue
        for split in ('train', 'val'):
            ds = hook.get(f'{split}_dataset')
            if not ds:
                continue
            ds = ds.to_dict() if hasattr(ds, 'to_dict') else dict(ds)
            if hook.get('pipeline') is not None:
                ds['pipeline'] = copy.deepcopy(list(hook['pipeline']))
            out.append((f'probe {split} (custom_hooks.{i}.{split}_dataset)',
                        ds))
    return out


def main(argv=None) -> int:
    args = parse_args(argv)
    import mdc_plugin  # noqa: F401  (registers the data sets)
    from mmengine.registry import init_default_scope

    from mdc_plugin.utils.cli import merge_cfg_options
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options, args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    todo = []
    for split in args.splits:
        if split == 'probe':
            todo.extend(probe_datasets(cfg))
            continue
        loader = cfg.get(f'{split}_dataloader')
        if loader and 'dataset' in loader:
            todo.append((split, loader.dataset.to_dict()))
    total, kinds = 0, []
    for name, dataset_cfg in todo:
        print(f'{name}: {dataset_cfg.get("type")}')
        try:
            problems = check_split(dataset_cfg, args.workers, args.num_items,
                                   kinds)
        except Exception as e:  # the data set cannot even be loaded
            print(f'  cannot load: {type(e).__name__}: {e}')
            total += 1
            continue
        for line in problems:
            print(f'  {line}')
        total += len(problems)
    if total:
        print(f'{total} problem(s)')
    elif 'memory' in kinds:
        print('no problems: every image decodes or loads through the '
              'pipeline and every caption tokenizes')
    else:
        print('all images decode and every entry has a caption')
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
