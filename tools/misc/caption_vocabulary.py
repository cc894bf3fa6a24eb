"""Write the caption vocabulary of a config's training captions.

    python tools/misc/caption_vocabulary.py CONFIG --out work_dirs/vocab.json
        [--max-images N] [--cfg-options k=v ...]

Tokenizes every reference caption of the train split with the head's own
tokenizer and writes the sorted ids it uses (plus end-of-caption) as
``{"ids": [...], "vocab_size": V, "captions": n, "images": n, "config":
...}``. Give the file to a sampler as its caption vocabulary, e.g.
``--cfg-options model.head.sampler.vocabulary=work_dirs/vocab.json``: the
output layer is then restricted to those ids (exact for every caption they
spell; ``mdc_plugin/models/heads/caption_vocabulary.py``).
"""
import argparse
import copy

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS
from rich.progress import track

import mdc_plugin  # noqa: F401
from mdc_plugin.models.tokenizers import build_caption_tokenizer
from mdc_plugin.utils.atomic_io import atomic_dump_json
from mdc_plugin.utils.cli import merge_cfg_options
from mdc_plugin.utils.quiet_warnings import silence_known_warnings

silence_known_warnings()


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--out', required=True, help='JSON file to write')
    p.add_argument('--max-images', type=int, default=None,
                   help='only the first N train images (all by default)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def caption_vocabulary(cfg: Config, max_images=None) -> dict:
    """The report written by this tool (see the module docstring)."""
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    tokenizer = build_caption_tokenizer(cfg.model.head.tokenizer)
    dataset_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    dataset_cfg.pipeline = []
    dataset = DATASETS.build(dataset_cfg)
    num = len(dataset) if max_images is None else min(max_images,
                                                      len(dataset))
    ids, captions = {tokenizer.eos_id}, 0
    for i in track(range(num), description='tokenizing train captions'):
        info = dataset.get_data_info(i)
        refs = info.get('gt_caption') or []
        for caption in ([refs] if isinstance(refs, str) else refs):
            ids.update(tokenizer.encode(caption))
            captions += 1
    if not captions:
        raise ValueError(f'{cfg.filename}: the train split has no captions '
                         '(gt_caption) to build a vocabulary from')
    return dict(ids=sorted(ids), vocab_size=tokenizer.vocab_size,
                captions=captions, images=num, config=cfg.filename)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options, args.config)
    report = caption_vocabulary(cfg, args.max_images)
    atomic_dump_json(report, args.out, indent=1)
    print(f'{len(report["ids"])} of {report["vocab_size"]} ids used by '
          f'{report["captions"]} captions of {report["images"]} train '
          f'images -> {args.out}')


if __name__ == '__main__':
    main()
