"""Caption quality of an MDC checkpoint against the number of denoising steps.

    python tools/analysis/sampling_steps.py CONFIG CHECKPOINT \
        [--steps 15 8 4 2 1] [--split test] [--out steps.json]
        [--cfg-options k=v ...]

Runs the config's test loop once per step count (the real runner and
evaluator; ``--split val`` runs it on the config's val dataloader and
evaluator instead) and records the metrics and captions per second. ``15``
on the shapes config (max_length 16 = bos + 15 positions) is one token per
step.
"""
import argparse
import json
import time

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mdc_plugin  # noqa: F401
from mdc_plugin.utils.atomic_io import atomic_dump_json
from mdc_plugin.utils.cli import merge_cfg_options


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--steps', type=int, nargs='+',
                        default=[15, 8, 4, 2, 1])
    parser.add_argument('--split', choices=['test', 'val'], default='test',
                        help="the config's dataloader and evaluator to use")
    parser.add_argument('--work-dir', default='work_dirs/sampling_steps')
    parser.add_argument('--out', help='JSON file for the table')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    rows = []
    for steps in args.steps:
        cfg = Config.fromfile(args.config)
        merge_cfg_options(cfg, args.cfg_options, args.config)
        cfg.model.head.sampler.steps = steps
        if args.split == 'val':
            cfg.test_dataloader = cfg.val_dataloader
            cfg.test_evaluator = cfg.val_evaluator
        cfg.load_from = args.checkpoint
        cfg.work_dir = args.work_dir
        cfg.default_hooks.checkpoint = dict(type='AtomicCheckpointHook',
                                            interval=-1)
        runner = Runner.from_cfg(cfg)
        start = time.time()
        metrics = runner.test()
        seconds = time.time() - start
        num = len(runner.test_dataloader.dataset)
        rows.append(dict(steps=steps, images=num,
                         captions_per_s=round(num / seconds, 1),
                         **{k: float(v) for k, v in metrics.items()}))
        print(json.dumps(rows[-1]))
    if args.out:
        atomic_dump_json(dict(config=args.config, checkpoint=args.checkpoint,
                              split=args.split,
                              cfg_options=args.cfg_options or {},
                              rows=rows), args.out, indent=2)


if __name__ == '__main__':
    main()
