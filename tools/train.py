"""Train a model from an MMEngine config (mdc_plugin / MMPretrain).

Examples::

    python tools/train.py configs/mdc/xxx.py
    python tools/train.py CONFIG --resume                 # auto-resume
    python tools/train.py CONFIG --resume work_dirs/x/epoch_3.pth
    python tools/train.py CONFIG --amp --amp-dtype bfloat16
    python tools/train.py CONFIG --cfg-options optim_wrapper.optimizer.lr=0.1
    python tools/train.py CONFIG --cfg-options +model.init_cfg.strict=True
    python tools/train.py CONFIG --no-strict-load --cfg-options +load_from=X

``load_from`` and ``--resume`` checkpoints must match the model (keys and
shapes); ``--no-strict-load`` loads the matching keys of one that does not.

``--cfg-options`` keys must already exist in the config (a typo is an error
that names the key and suggests close matches); prefix a key with ``+`` to
add a new one on purpose.
"""
import argparse
import copy
import logging
import sys

from mmengine.config import Config, ConfigDict, DictAction
from mmengine.logging import print_log

import mdc_plugin  # noqa: F401  (registers the components)
from mdc_plugin.utils.checkpoint_rotation import (
    BadResumePointerError)
from mdc_plugin.utils.cli import (
    NO_STRICT_FLAG, accelerator_available, build_runner, default_work_dir,
    finish_distributed, merge_cfg_options, prepare_cpu_distributed, run_cli,
    set_local_rank, UnknownConfigKeyError)
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
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='where to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        const='auto',
        help='resume from this checkpoint, or (no value) from the latest '
        'checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='automatic mixed precision')
    parser.add_argument(
        '--amp-dtype',
        choices=['float16', 'bfloat16'],
        default='float16',
        help='autocast dtype for --amp (default: float16)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the lr by actual / auto_scale_lr.base_batch_size')
    parser.add_argument(
        '--no-pin-memory',
        action='store_true',
        help='disable pin_memory in the dataloaders')
    parser.add_argument(
        '--no-persistent-workers',
        action='store_true',
        help='disable persistent_workers in the dataloaders')
    parser.add_argument(
        NO_STRICT_FLAG,
        dest='strict_load',
        action='store_false',
        help='load load_from / --resume checkpoints even if their keys or '
        'shapes do not match the model (default: refuse)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config keys: key=value (existing keys only; write '
        '+key=value to add a new key). Lists: key="[a,b]" or key=a,b')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local-rank', '--local_rank', type=int, default=0)
    args = parser.parse_args(argv)
    set_local_rank(args.local_rank)
    return args


def _set_dataloader_defaults(cfg: Config, args: argparse.Namespace) -> None:
    """MMPretrain's dataloader defaults, where they are valid.

    MMDetection / MMSegmentation configs (another ``default_scope``) keep
    MMEngine's own collate (``pseudo_collate``), which their data samples
    need."""
    for field in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(field)
        if loader is None:
            continue
        merged = ConfigDict()
        if cfg.get('default_scope', 'mmpretrain') == 'mmpretrain':
            merged.collate_fn = dict(type='default_collate')
        merged.update(copy.deepcopy(loader))
        workers = merged.get('num_workers', 0)
        merged.setdefault('persistent_workers', workers > 0)
        merged.setdefault('pin_memory', accelerator_available())
        if args.no_pin_memory:
            merged.pin_memory = False
        if args.no_persistent_workers or workers == 0:
            merged.persistent_workers = False
        cfg[field] = merged


def _enable_amp(cfg: Config, dtype: str, parser_error) -> None:
    wrapper = cfg.get('optim_wrapper')
    if wrapper is None:
        parser_error('--amp: the config has no optim_wrapper')
    kind = wrapper.get('type', 'OptimWrapper')
    if kind not in ('OptimWrapper', 'AmpOptimWrapper'):
        parser_error(f'--amp supports OptimWrapper/AmpOptimWrapper, the '
                     f'config uses {kind}')
    if not accelerator_available():
        print_log(
            '--amp: no GPU available, training in float32 with '
            'OptimWrapper (AmpOptimWrapper needs CUDA/NPU/MLU/MUSA)',
            logger='current',
            level=logging.WARNING)
        wrapper.type = 'OptimWrapper'
        for key in ('dtype', 'loss_scale'):
            wrapper.pop(key, None)
        return
    wrapper.type = 'AmpOptimWrapper'
    wrapper.dtype = dtype
    if dtype == 'float16':
        wrapper.setdefault('loss_scale', 'dynamic')


def merge_args(cfg: Config, args: argparse.Namespace, parser_error) -> Config:
    """Apply the CLI flags to ``cfg`` (``--cfg-options`` last)."""
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = default_work_dir(args.config)
    if args.amp:
        _enable_amp(cfg, args.amp_dtype, parser_error)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.auto_scale_lr:
        scale = cfg.get('auto_scale_lr')
        if not scale or 'base_batch_size' not in scale:
            parser_error(f'--auto-scale-lr: {args.config} has no '
                         'auto_scale_lr.base_batch_size')
        scale.enable = True
    _set_dataloader_defaults(cfg, args)
    try:
        merge_cfg_options(cfg, args.cfg_options, args.config)
    except UnknownConfigKeyError as err:
        parser_error(str(err))
    # again, on the overridden values (num_workers=0 -> no persistent ones)
    _set_dataloader_defaults(cfg, args)
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)

    def parser_error(msg: str) -> None:
        print(f'tools/train.py: error: {msg}', file=sys.stderr)
        raise SystemExit(2)

    cfg = Config.fromfile(args.config)
    cfg = merge_args(cfg, args, parser_error)
    prepare_cpu_distributed(cfg, args.launcher)
    runner = build_runner(cfg, strict_load=args.strict_load)
    runner.train()
    del runner  # DDP must go before its process group
    finish_distributed()


def cli(argv=None) -> int:
    """The command line: ``main``, with a refused, missing or unreadable
    checkpoint (:data:`USER_ERRORS`) reported as one line on stderr and
    exit status 1, as ``tools/caption.py`` and the other tools do."""
    return run_cli(main, 'tools/train.py', USER_ERRORS, argv)

if __name__ == '__main__':
    sys.exit(cli())
