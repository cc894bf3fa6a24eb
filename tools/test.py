"""Evaluate a checkpoint with the config's test loop (mdc_plugin / MMPretrain).

Examples::

    python tools/test.py CONFIG CHECKPOINT
    python tools/test.py CONFIG CHECKPOINT --out results.json

With ``--out results.json`` the metrics are written (atomically) as JSON::

    {"config": ..., "checkpoint": ..., "metrics": {...},
     "predictions": "results.predictions.pkl"}

and the per-sample predictions are dumped next to it by
``AtomicDumpResults`` (MMEngine's ``DumpResults`` with an atomic write);
``--no-predictions`` skips that. The checkpoint must match the model
(keys and shapes) unless ``--no-strict-load`` is given. ``--cfg-options``
works as in ``tools/train.py`` (existing keys only; ``+key=value`` adds a key).
"""
import argparse
import os.path as osp
import sys
from numbers import Number
from typing import Any

from mmengine.config import Config, DictAction
from mmengine.dist import is_main_process

import mdc_plugin  # noqa: F401  (registers the components)
from mdc_plugin.evaluation.metrics import AtomicDumpResults
from mdc_plugin.utils import atomic_dump_json
from mdc_plugin.utils.checkpoint_rotation import (
    BadResumePointerError)
from mdc_plugin.utils.cli import (
    NO_STRICT_FLAG, build_runner, default_work_dir, finish_distributed,
    merge_cfg_options, prepare_cpu_distributed, run_cli, set_local_rank,
    UnknownConfigKeyError)
from mdc_plugin.utils.quiet_warnings import silence_known_warnings
from mdc_plugin.utils.safe_checkpoint import CHECKPOINT_ERRORS
from mdc_plugin.utils.weights import WeightsNotLoadedError

silence_known_warnings()

#: Reported as one line ``tools/...: error: ...`` with exit status 1: a
#: refused, missing or unreadable checkpoint, one that does not match the
#: model, a bad ``last_checkpoint`` pointer.
USER_ERRORS = CHECKPOINT_ERRORS + (WeightsNotLoadedError,
                                   BadResumePointerError)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Test (evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='where to save the logs')
    parser.add_argument(
        '--out', help='write the metrics to this JSON file (atomically)')
    parser.add_argument(
        '--no-predictions',
        action='store_true',
        help='with --out, do not dump per-sample predictions')
    parser.add_argument(
        NO_STRICT_FLAG,
        dest='strict_load',
        action='store_false',
        help='evaluate even if the checkpoint keys or shapes do not match '
        'the model (default: refuse; unmatched weights stay random)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys: key=value (existing keys only; write '
        '+key=value to add a new key)')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    args = parser.parse_args(argv)
    set_local_rank(args.local_rank)
    return args


def predictions_path(out: str) -> str:
    """``results.json`` -> ``results.predictions.pkl``."""
    return osp.splitext(out)[0] + '.predictions.pkl'


def to_jsonable(value: Any) -> Any:
    """Turn numpy/torch scalars and arrays in metrics into JSON types."""
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, 'tolist'):  # numpy / torch
        return value.tolist()
    if value is None or isinstance(value, (str, bool, Number)):
        return value
    return str(value)


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(args.config)
    cfg.load_from = args.checkpoint
    try:
        merge_cfg_options(cfg, args.cfg_options, args.config)
    except UnknownConfigKeyError as err:
        print(f'tools/test.py: error: {err}', file=sys.stderr)
        raise SystemExit(2) from None
    if cfg.get('test_dataloader') is None:
        print(
            f'tools/test.py: error: {args.config} has no test_dataloader',
            file=sys.stderr)
        raise SystemExit(2)

    prepare_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg, strict_load=args.strict_load)
    preds = None
    if args.out and not args.no_predictions:
        preds = predictions_path(args.out)
        runner.test_evaluator.metrics.append(
            AtomicDumpResults(out_file_path=preds))
    metrics = runner.test()

    if args.out and is_main_process():
        atomic_dump_json(
            dict(
                config=args.config,
                checkpoint=args.checkpoint,
                metrics=to_jsonable(metrics),
                predictions=preds), args.out)
        print(f'Metrics written to {args.out}')
    del runner  # DDP must go before its process group
    finish_distributed()


def cli(argv=None) -> int:
    """The command line: ``main``, with a refused, missing or unreadable
    checkpoint (:data:`USER_ERRORS`) reported as one line on stderr and
    exit status 1, as ``tools/caption.py`` and the other tools do."""
    return run_cli(main, 'tools/test.py', USER_ERRORS, argv)

if __name__ == '__main__':
    sys.exit(cli())
