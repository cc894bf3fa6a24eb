"""Loud pretrained-weight loading.

MMEngine's ``Pretrained`` initializer loads with ``strict=False`` and only
logs missing keys, so a wrong ``prefix`` silently leaves a randomly
initialised backbone. This module provides:

* :func:`assert_state_dict_loaded`: a static check (no loading) that a
  checkpoint state dict covers a module's weights after applying ``prefix``.
* :class:`SafePretrainedInit`, which stands in for ``'Pretrained'`` in
  MMEngine's ``WEIGHT_INITIALIZERS`` inside
  :func:`~mdc_plugin.utils.safe_checkpoint.hardened_checkpoints` (so in every
  run of a config built on our ``default_runtime.py``, through its
  ``SafeCheckpointLoadingHook``; importing the plugin registers nothing
  over MMEngine's own). It reads the checkpoint through
  the safe loader, applies ``prefix`` and loads like MMEngine (load hooks
  such as ViT's ``pos_embed`` resizing still run), but **always** raises
  :class:`WeightsNotLoadedError` when no weight of the module was loaded,
  and with ``strict=True`` also when any weight is missing, mismatched or
  unexpected::

      init_cfg=dict(type='Pretrained', checkpoint='ckpt.pth',
                    prefix='backbone.', strict=True)

  The type name must stay ``'Pretrained'``: ``BaseModule.init_weights``
  applies only that type *after* the children's own ``init_weights`` and
  MMPretrain backbones (e.g. ``VisionTransformer``) skip their random
  ``pos_embed`` init only for it. A differently named initializer would be
  overwritten by the children's initialisation.
"""
import logging
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.model.weight_init import PretrainedInit, update_init_info
from mmengine.runner.checkpoint import _IncompatibleKeys

__all__ = [
    'WeightsNotLoadedError', 'LoadReport', 'extract_state_dict',
    'suggest_prefix', 'assert_state_dict_loaded',
    'load_state_dict_with_report', 'load_backbone_weights',
    'SafePretrainedInit'
]

# BN's counter is recreated by BatchNorm when absent; never required.
_ALWAYS_OPTIONAL = (r'(^|\.)num_batches_tracked$', )


class WeightsNotLoadedError(RuntimeError):
    """Pretrained weights did not (fully) load into a module."""


@dataclass
class LoadReport:
    """Which of a module's state-dict keys a checkpoint covered."""

    loaded: List[str] = field(default_factory=list)
    missing: List[str] = field(default_factory=list)
    unexpected: List[str] = field(default_factory=list)
    mismatched: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched
                    or self.errors)


def extract_state_dict(checkpoint: Mapping,
                       prefix: Optional[str] = None,
                       source: str = 'checkpoint') -> Dict[str, object]:
    """Take ``checkpoint['state_dict']`` (if present) and apply ``prefix``.

    A ``'module.'`` wrapper prefix is stripped first. With ``prefix``, only
    keys starting with it are kept, with the prefix removed.

    Raises:
        WeightsNotLoadedError: ``prefix`` matches no key; the message lists
            the top-level key groups that do exist.
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    state_dict = OrderedDict(
        (re.sub(r'^module\.', '', str(k)), v) for k, v in state_dict.items())
    if not prefix:
        return state_dict
    if not prefix.endswith('.'):
        prefix += '.'
    selected = OrderedDict((k[len(prefix):], v) for k, v in state_dict.items()
                           if k.startswith(prefix))
    if not selected:
        groups = sorted({k.split('.')[0] + '.' for k in state_dict})
        raise WeightsNotLoadedError(
            f'prefix "{prefix}" matches no key of {source}; its top-level '
            f'key groups are {groups[:20]}')
    return selected


def _optional(key: str, ignore: Sequence[str]) -> bool:
    return any(re.search(p, key) for p in (*_ALWAYS_OPTIONAL, *ignore))


def suggest_prefix(module_keys: Sequence[str],
                   checkpoint_keys: Sequence[str]) -> Optional[str]:
    """The checkpoint key prefix under which most module keys appear."""
    module_keys = set(module_keys)
    votes: Dict[str, int] = {}
    for key in checkpoint_keys:
        parts = key.split('.')
        for i in range(1, len(parts)):
            if '.'.join(parts[i:]) in module_keys:
                candidate = '.'.join(parts[:i]) + '.'
                votes[candidate] = votes.get(candidate, 0) + 1
                break
    return max(votes, key=votes.get) if votes else None


def _hint(module: nn.Module, checkpoint: Mapping) -> str:
    keys = list(checkpoint.get('state_dict', checkpoint).keys())
    guess = suggest_prefix(module.state_dict().keys(), keys)
    return f' Did you mean prefix={guess!r}?' if guess else ''


def _format(report: LoadReport, owner: str, source: str, prefix) -> str:

    def show(keys):
        return f'{keys[:8]}{" ..." if len(keys) > 8 else ""} ({len(keys)})'

    lines = [
        f'{owner}: weights from {source} (prefix={prefix!r}) did not '
        f'load: {len(report.loaded)} key(s) loaded'
    ]
    for name in ('missing', 'mismatched', 'unexpected', 'errors'):
        keys = getattr(report, name)
        if keys:
            lines.append(f'  {name}: {show(keys)}')
    return '\n'.join(lines)


def assert_state_dict_loaded(module: nn.Module,
                             checkpoint_state_dict: Mapping,
                             prefix: Optional[str] = None,
                             owner: Optional[str] = None,
                             strict: bool = True,
                             check_shapes: bool = True,
                             ignore_keys: Sequence[str] = (),
                             source: str = 'checkpoint') -> LoadReport:
    """Check, without loading, that a checkpoint covers ``module``'s weights.

    Args:
        module (nn.Module): The module that should receive the weights.
        checkpoint_state_dict (Mapping): A state dict or a full checkpoint
            (its ``'state_dict'`` is used).
        prefix (str, optional): Key prefix selecting the module's weights,
            e.g. ``'backbone.'``.
        owner (str, optional): Who is loading (used in the error message).
        strict (bool): Also fail on missing / mismatched keys, not only when
            nothing matches. Defaults to True.
        check_shapes (bool): Count shape mismatches as not loaded. Turn off
            for modules that resize weights in a load hook (ViT
            ``pos_embed``) or list those keys in ``ignore_keys``.
        ignore_keys (Sequence[str]): Regexes of module keys that may be
            missing or mismatched.
        source (str): Name of the checkpoint for messages.

    Returns:
        LoadReport: ``unexpected`` lists checkpoint keys (after ``prefix``)
        the module does not have; they never cause an error here.

    Raises:
        WeightsNotLoadedError: see ``strict``.
    """
    owner = owner or type(module).__name__
    try:
        state_dict = extract_state_dict(checkpoint_state_dict, prefix, source)
    except WeightsNotLoadedError as err:
        raise WeightsNotLoadedError(
            f'{owner}: {err}.{_hint(module, checkpoint_state_dict)}') from None
    expected = module.state_dict()
    report = LoadReport()
    for key, value in expected.items():
        if key not in state_dict:
            if not _optional(key, ignore_keys):
                report.missing.append(key)
            continue
        shape = getattr(state_dict[key], 'shape', None)
        if (check_shapes and shape is not None
                and tuple(shape) != tuple(value.shape)
                and not _optional(key, ignore_keys)):
            report.mismatched.append(key)
        else:
            report.loaded.append(key)
    report.unexpected = [k for k in state_dict if k not in expected]
    if not report.loaded:
        raise WeightsNotLoadedError(
            _format(report, owner, source, prefix) + '\n ' +
            _hint(module, checkpoint_state_dict))
    if strict and (report.missing or report.mismatched):
        raise WeightsNotLoadedError(_format(report, owner, source, prefix))
    return report


_SIZE_MISMATCH = re.compile(r'size mismatch for ([^:\s]+)')


def load_state_dict_with_report(module: nn.Module,
                                state_dict: Mapping) -> LoadReport:
    """Load like MMEngine's non-strict ``load_state_dict`` and report.

    Module load hooks run as usual; size mismatches are skipped (as in
    MMEngine) and reported instead of raised.
    """
    missing: List[str] = []
    unexpected: List[str] = []
    errors: List[str] = []
    metadata = getattr(state_dict, '_metadata', None)
    state_dict = OrderedDict(state_dict)
    if metadata is not None:
        state_dict._metadata = metadata
    expected = list(module.state_dict().keys())

    def load(mod: nn.Module, local: dict, prefix: str = '') -> None:
        if is_model_wrapper(mod):
            mod = mod.module
        local_meta = {} if metadata is None else metadata.get(prefix[:-1], {})
        mod._load_from_state_dict(local, prefix, local_meta, True, missing,
                                  unexpected, errors)
        for name, child in mod._modules.items():
            if child is not None:
                child_prefix = f'{prefix}{name}.'
                load(child, {
                    k: v
                    for k, v in local.items() if k.startswith(child_prefix)
                }, child_prefix)

    load(module, state_dict)
    not_loaded = set(missing)
    incompatible = _IncompatibleKeys(missing, unexpected)
    for mod in module.modules():
        for hook in getattr(mod, '_load_state_dict_post_hooks', {}).values():
            hook(mod, incompatible)
    mismatched = [m for e in errors for m in _SIZE_MISMATCH.findall(e)]
    other = [e for e in errors if not _SIZE_MISMATCH.search(e)]
    not_loaded |= set(mismatched)
    missing = [k for k in missing if not _optional(k, ())]
    return LoadReport(
        loaded=[k for k in expected if k not in not_loaded],
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched,
        errors=other)


class SafePretrainedInit(PretrainedInit):
    """``Pretrained`` initializer that fails loudly (see module docstring).

    Args:
        checkpoint (str): Checkpoint path or URL (read by the safe loader).
        prefix (str, optional): Key prefix of this module's weights in the
            checkpoint, e.g. ``'backbone.'``.
        map_location (str): Defaults to ``'cpu'``.
        strict (bool): Raise on any missing, mismatched or unexpected key.
            Defaults to False (raise only when nothing loaded).
        ignore_keys (Sequence[str]): Regexes of module keys that may be
            missing even when ``strict`` (e.g. ``'^ln2\\.'``, the norm a
            linear probe adds on top of a pretrained ViT).
    """

    def __init__(self,
                 checkpoint: str,
                 prefix: Optional[str] = None,
                 map_location: str = 'cpu',
                 strict: bool = False,
                 ignore_keys: Sequence[str] = ()):
        super().__init__(checkpoint, prefix=prefix, map_location=map_location)
        self.strict = strict
        self.ignore_keys = tuple(ignore_keys)

    def __call__(self, module: nn.Module) -> None:
        owner = f'{type(module).__name__} init_cfg "Pretrained"'
        source = f'"{self.checkpoint}"'
        if not self.checkpoint:
            raise WeightsNotLoadedError(
                f'{owner}: no checkpoint given (init_cfg.checkpoint is '
                f'{self.checkpoint!r}); pass one, e.g. --cfg-options '
                'model.backbone.init_cfg.checkpoint=PATH')
        print_log(
            f'load {self.prefix or "model"} from {self.checkpoint}',
            logger='current')
        from .safe_checkpoint import load_checkpoint_safely
        try:
            checkpoint = load_checkpoint_safely(self.checkpoint,
                                                self.map_location)
        except TypeError:
            raise WeightsNotLoadedError(
                f'{owner}: {source} holds no state dict') from None
        try:
            state_dict = extract_state_dict(checkpoint, self.prefix, source)
        except WeightsNotLoadedError as err:
            raise WeightsNotLoadedError(
                f'{owner}: {err}.{_hint(module, checkpoint)}') from None
        report = load_state_dict_with_report(module, state_dict)
        report.missing = [k for k in report.missing
                          if not _optional(k, self.ignore_keys)]
        if not report.loaded:
            raise WeightsNotLoadedError(
                _format(report, owner, source, self.prefix) + '\n ' +
                _hint(module, checkpoint))
        if self.strict and not report.complete:
            raise WeightsNotLoadedError(
                _format(report, owner, source, self.prefix))
        if not report.complete:
            print_log(
                _format(report, owner, source,
                        self.prefix).replace('did not load',
                                             'loaded partially'),
                logger='current',
                level=logging.WARNING)
        if hasattr(module, '_params_init_info'):
            update_init_info(module, init_info=self._get_init_info())


def load_backbone_weights(model: nn.Module, checkpoint_path: str,
                          prefix: str = 'backbone.') -> LoadReport:
    """Load ``model.backbone`` from a (pretraining) checkpoint, strictly.

    Takes a whole model's checkpoint (keys under ``prefix``) or a bare
    backbone state dict as ``extract_backbone.py`` writes it.

    Every backbone weight must be present with its shape (a checkpoint of
    another architecture raises :class:`WeightsNotLoadedError`); checkpoint
    keys the backbone lacks (e.g. the pooled norm of a classifier's ViT) are
    returned in ``report.unexpected`` and skipped. The file goes through the
    safe (allow-listed) loader.
    """
    from .safe_checkpoint import load_checkpoint_safely
    checkpoint = load_checkpoint_safely(checkpoint_path)
    try:
        state = extract_state_dict(checkpoint, prefix, source=checkpoint_path)
    except WeightsNotLoadedError:
        # A bare backbone state dict (tools/model_converters/
        # extract_backbone.py) has no prefix: accept it when its keys are
        # the backbone's own.
        state = extract_state_dict(checkpoint, None, source=checkpoint_path)
        own = set(model.backbone.state_dict())
        if not own or not own & set(state):
            raise
    report = assert_state_dict_loaded(
        model.backbone, state, owner='backbone', source=checkpoint_path)
    model.backbone.load_state_dict(
        {k: v
         for k, v in state.items() if k not in report.unexpected},
        strict=True)
    return report
