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
(:mod:`mdc_plugin.utils.cfg_variables`).
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
                            resolve_variable_overrides)

__all__ = [
    'UnknownConfigKeyError', 'check_cfg_options', 'merge_cfg_options',
    'default_work_dir', 'set_local_rank', 'build_runner',
    'prepare_cpu_distributed', 'accelerator_available'
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
            or overrides a number the config copied into other keys.
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
        cleaned[key] = value
    if errors:
        raise UnknownConfigKeyError('\n'.join(errors))
    filename = getattr(cfg, 'filename', None)
    if filename and osp.isfile(filename):
        plain = {k: v for k, v in cleaned.items()
                 if k in options}  # '+' keys set only what they name
        try:
            merged, notes = resolve_variable_overrides(
                root, plain, copied_variables(filename))
        except CopiedVariableError as err:
            raise UnknownConfigKeyError(str(err)) from err
        for note in notes:
            print_log(note, logger='current')
        cleaned.update(merged)
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


def build_runner(cfg: Config):
    """``Runner.from_cfg``, or ``RUNNERS.build`` if ``runner_type`` is set.

    Missing local weight files of the model config fail first
    (:func:`~mdc_plugin.utils.preflight.check_weight_files`).
    """
    from .preflight import check_weight_files
    check_weight_files(cfg)
    if 'runner_type' in cfg:
        from mmengine.registry import RUNNERS
        return RUNNERS.build(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)
