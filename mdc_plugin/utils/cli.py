"""Shared helpers for ``tools/train.py`` and ``tools/test.py``.

``--cfg-options`` checking
--------------------------
MMEngine's ``Config.merge_from_dict`` silently *adds* keys that do not
exist, so a typo (``optim_wrapper.optimizer.lrr=0.1``) trains with the
default value. :func:`merge_cfg_options` refuses unknown keys and suggests
close matches. A key that is meant to be new is written with a leading
``+``: ``--cfg-options +model.init_cfg.strict=True``.

A config variable that other entries copied when the file was read
(``vq_checkpoint``, ``data_root``) is set in those entries too, or, for
a number that may equal unrelated keys, refused with the keys to set
(:mod:`mdc_plugin.utils.cfg_variables`). ``train_cfg.max_iters=N`` on a
config that wrote ``max_iters=max_iters`` carries the new budget to every
entry derived from the same ``max_iters`` (validation and checkpoint
intervals, the parameter schedule's boundaries as the same fraction), and
logs each key it changed.
"""
import datetime
import difflib
import logging
import os
import os.path as osp
from typing import Any, Dict, Iterator, List, Optional, Tuple

import torch
from mmengine.config import Config, ConfigDict
from mmengine.logging import print_log

from .cfg_variables import (CopiedVariableError, copied_variables,
                            derived_entries, resolve_budget_overrides,
                            resolve_variable_overrides)

__all__ = [
    'run_cli',
    'UnknownConfigKeyError', 'check_cfg_options', 'merge_cfg_options',
    'default_work_dir', 'set_local_rank', 'build_runner',
    'prepare_cpu_distributed', 'accelerator_available',
    'strict_checkpoint_loading', 'NO_STRICT_FLAG'
]

NEW_KEY_MARK = '+'


class UnknownConfigKeyError(ValueError):
    """A ``--cfg-options`` key does not exist in the config."""


def _children(node: Any) -> Iterator[Tuple[str, Any]]:
    if isinstance(node, dict):
        yield from ((str(k), v) for k, v in node.items())
    elif isinstance(node, (list, tuple)):
        yield from ((str(i), v) for i, v in enumerate(node))


def _all_paths(node: Any, prefix: str = '') -> List[str]:
    paths = []
    for key, child in _children(node):
        path = f'{prefix}{key}'
        paths.append(path)
        paths.extend(_all_paths(child, path + '.'))
    return paths


def _find_missing(root: Any, parts: List[str]) -> Optional[int]:
    """Index of the first part of ``parts`` that does not exist, or None."""
    node = root
    for i, part in enumerate(parts):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif (isinstance(node, (list, tuple)) and part.isdigit()
              and int(part) < len(node)):
            node = node[int(part)]
        else:
            return i
    return None


def _unknown_key_message(root: Any, key: str, bad: int,
                         config_name: str) -> str:
    parts = key.split('.')
    parent_path = '.'.join(parts[:bad])
    parent = root
    for part in parts[:bad]:
        parent = parent[int(part)] if isinstance(parent, (list, tuple)) \
            else parent[part]
    where = f'under "{parent_path}"' if parent_path else 'at the top level'
    if isinstance(parent, (dict, list, tuple)):
        what = f'has no "{parts[bad]}" {where}'
    else:
        what = (f'has "{parent_path}" = {parent!r}, which has no '
                f'"{parts[bad]}"')
    siblings = [
        f'{parent_path}.{k}' if parent_path else k
        for k in difflib.get_close_matches(
            parts[bad], [k for k, _ in _children(parent)], n=3, cutoff=0.6)
    ]
    rest = '.'.join(parts[bad + 1:])
    siblings = [f'{s}.{rest}' if rest else s for s in siblings]
    guesses = siblings or difflib.get_close_matches(
        key, _all_paths(root), n=3, cutoff=0.7)
    msg = f'--cfg-options key "{key}" is not in the config: {config_name} ' \
          f'{what}.'
    if guesses:
        msg += ' Did you mean: ' + ', '.join(guesses) + '?'
    msg += (f' To add a new key on purpose, prefix it with '
            f'"{NEW_KEY_MARK}": {NEW_KEY_MARK}{key}=...')
    return msg


def _lookup(root: Any, parts: List[str]) -> Any:
    node = root
    for part in parts:
        node = node[int(part)] if isinstance(node, (list, tuple)) \
            else node[part]
    return node


def _type_message(old: Any, key: str, value: Any,
                  config_name: str) -> Optional[str]:
    """Name a number-valued key given something that is not a number."""
    if isinstance(old, bool) or not isinstance(old, (int, float)):
        return None
    kind = 'an integer' if isinstance(old, int) else 'a number'
    ok = (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, float) and isinstance(old, float))
    if ok:
        return None
    return (f'--cfg-options {key}={value!r}: {config_name} has {key} = '
            f'{old!r}, so the value must be {kind} (e.g. {key}={old!r}).')


def check_cfg_options(cfg: Config,
                      options: Optional[Dict[str, Any]],
                      config_name: str = 'the config') -> Dict[str, Any]:
    """Validate ``--cfg-options`` and strip the ``+`` new-key marks.

    Args:
        cfg (Config): The loaded config.
        options (dict, optional): Parsed ``--cfg-options`` (``DictAction``).
        config_name (str): Config file name for error messages.

    Returns:
        dict: Options ready for ``cfg.merge_from_dict``.

    Raises:
        UnknownConfigKeyError: A key without ``+`` does not exist in ``cfg``,
            overrides a number the config copied into other keys, or gives
            a number-valued key something else (``lr=abc``).
    """
    if not options:
        return {}
    root = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    cleaned: Dict[str, Any] = {}
    errors = []
    for key, value in options.items():
        if key.startswith(NEW_KEY_MARK):
            cleaned[key[len(NEW_KEY_MARK):]] = value
            continue
        bad = _find_missing(root, key.split('.'))
        if bad is not None:
            errors.append(_unknown_key_message(root, key, bad, config_name))
        else:
            wrong = _type_message(_lookup(root, key.split('.')), key, value,
                                  config_name)
            if wrong:
                errors.append(wrong)
        cleaned[key] = value
    if errors:
        raise UnknownConfigKeyError('\n'.join(errors))
    filename = getattr(cfg, 'filename', None)
    if filename and osp.isfile(filename):
        plain = {k: v for k, v in cleaned.items()
                 if k in options}  # '+' keys set only what they name
        copied = copied_variables(filename)
        derived = derived_entries(filename)
        try:
            merged, notes = resolve_variable_overrides(root, plain, copied,
                                                       derived)
            budget, budget_notes = resolve_budget_overrides(
                root, plain, derived, copied)
        except CopiedVariableError as err:
            raise UnknownConfigKeyError(str(err)) from err
        for note in notes + budget_notes:
            print_log(note, logger='current')
        cleaned.update(merged)
        cleaned.update({k: v for k, v in budget.items() if k not in merged})
    return cleaned


def merge_cfg_options(cfg: Config,
                      options: Optional[Dict[str, Any]],
                      config_name: str = 'the config') -> Config:
    """:func:`check_cfg_options`, then ``cfg.merge_from_dict``."""
    cleaned = check_cfg_options(cfg, options, config_name)
    if cleaned:
        cfg.merge_from_dict(cleaned)
    return cfg


def default_work_dir(config_path: str) -> str:
    """``./work_dirs/<config file name without extension>``."""
    return osp.join('./work_dirs', osp.splitext(osp.basename(config_path))[0])


def set_local_rank(local_rank: int) -> None:
    """Export ``LOCAL_RANK`` for launchers that pass ``--local-rank``."""
    os.environ.setdefault('LOCAL_RANK', str(local_rank))


def accelerator_available() -> bool:
    """Whether MMEngine sees a CUDA/NPU/MLU/MUSA device."""
    from mmengine.device import get_device
    return get_device() != 'cpu'


def prepare_cpu_distributed(cfg: Config, launcher: str) -> None:
    """Make ``--launcher pytorch`` work on machines without accelerators.

    MMEngine's ``init_dist`` always calls ``torch.cuda.set_device`` and its
    DDP wrapper gets ``device_ids=[LOCAL_RANK]``; both fail on CPU. Here the
    process group is initialised directly (gloo unless the config names
    another CPU backend), ``model_wrapper_cfg.device_ids`` is set to None and
    an FSDP strategy's ``model_wrapper.device_id`` defaults to 'cpu'.
    Does nothing when an accelerator is present or ``launcher`` is 'none'.
    """
    if launcher == 'none' or accelerator_available():
        return
    if launcher != 'pytorch':
        raise RuntimeError(
            f'--launcher {launcher} needs a GPU here; on CPU-only machines '
            'use --launcher pytorch (tools/dist_train.sh).')
    env_cfg = cfg.setdefault('env_cfg', ConfigDict())
    dist_cfg = dict(env_cfg.get('dist_cfg') or {})
    backend = dist_cfg.pop('backend', 'gloo')
    if backend == 'nccl':
        print_log(
            'No GPU: using the gloo backend instead of nccl',
            logger='current',
            level=logging.WARNING)
        backend = 'gloo'
    env_cfg['dist_cfg'] = dict(dist_cfg, backend=backend)
    if not torch.distributed.is_initialized():
        timeout = dist_cfg.pop('timeout', None)
        if timeout is not None:
            dist_cfg['timeout'] = datetime.timedelta(seconds=timeout)
        torch.distributed.init_process_group(
            backend=backend,
            rank=int(os.environ['RANK']),
            world_size=int(os.environ['WORLD_SIZE']),
            **dist_cfg)
    strategy = cfg.get('strategy')
    if strategy is not None and 'FSDP' in str(strategy.get('type', '')):
        # FSDPStrategy otherwise passes LOCAL_RANK as a CUDA device id.
        fsdp_wrapper = strategy.setdefault('model_wrapper', ConfigDict())
        fsdp_wrapper.setdefault('device_id', 'cpu')
    # Runner adds device_ids=[LOCAL_RANK] unless the config sets it.
    wrapper = cfg.get('model_wrapper_cfg') or dict(
        type='MMDistributedDataParallel', broadcast_buffers=False)
    wrapper.setdefault('device_ids', None)
    cfg.model_wrapper_cfg = wrapper


def finish_distributed() -> None:
    """Wait for every rank, then tear the process group down.

    Without this a rank that finishes first can exit while gloo's
    background threads still talk to the others; the interpreter then
    aborts with ``terminate called without an active exception``.
    Does nothing outside a distributed run.
    """
    import gc
    gc.collect()  # free DDP reducers before their process group
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


NO_STRICT_FLAG = '--no-strict-load'


def _is_key_mismatch(err: RuntimeError) -> bool:
    text = str(err)
    return any(s in text for s in ('missing keys in source state_dict',
                                   'unexpected key in source state_dict',
                                   'size mismatch', 'Error(s) in loading'))


def strict_checkpoint_loading(runner) -> None:
    """Make ``runner.load_checkpoint`` (``load_from`` and ``--resume``)
    strict: a checkpoint whose keys or shapes do not match the model raises
    :class:`~mdc_plugin.utils.WeightsNotLoadedError` naming the keys and
    the opt-out flag, instead of logging and going on with random weights.
    """
    from .safe_checkpoint import UnsafeCheckpointError
    from .weights import WeightsNotLoadedError
    original = runner.load_checkpoint

    def load_checkpoint(filename, map_location='cpu', strict=True,
                        revise_keys=((r'^module.', ''), )):
        try:
            return original(filename, map_location=map_location,
                            strict=strict, revise_keys=list(revise_keys))
        except UnsafeCheckpointError:
            raise
        except RuntimeError as err:
            if not _is_key_mismatch(err):
                raise
            raise WeightsNotLoadedError(
                f'Checkpoint "{filename}" does not match the model built '
                f'from the config:\n{err}\nEvaluating or training on from '
                'it would use randomly initialised weights. Use the config '
                'the checkpoint was trained with, or pass '
                f'{NO_STRICT_FLAG} to load the matching keys anyway.'
            ) from None

    runner.load_checkpoint = load_checkpoint


def build_runner(cfg: Config, strict_load: bool = True):
    """``Runner.from_cfg``, or ``RUNNERS.build`` if ``runner_type`` is set.

    Missing local weight files of the model config fail first
    (:func:`~mdc_plugin.utils.preflight.check_weight_files`). With
    ``strict_load`` (the default) checkpoints load strictly, see
    :func:`strict_checkpoint_loading`.
    """
    from .preflight import check_weight_files
    check_weight_files(cfg)
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        runner = RUNNERS.build(cfg)
    else:
        from mmengine.runner import Runner
        runner = Runner.from_cfg(cfg)
    if strict_load:
        strict_checkpoint_loading(runner)
    return runner


def run_cli(main, prog: str, user_errors: tuple, argv=None) -> int:
    """Run a tool's ``main(argv)``; a user error (a refused, missing or
    unreadable checkpoint...) is one line ``PROG: error: ...`` on stderr
    and exit status 1 instead of a traceback. The tool runs inside
    :func:`~mdc_plugin.utils.safe_checkpoint.hardened_checkpoints`, so every
    checkpoint it loads is loaded safely whatever the config's hooks."""
    import sys

    from .safe_checkpoint import hardened_checkpoints
    try:
        with hardened_checkpoints():
            main(argv)
    except user_errors as err:
        print(f'{prog}: error: {err}', file=sys.stderr)
        return 1
    return 0
