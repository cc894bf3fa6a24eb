"""Safe checkpoint loading and atomic checkpoint saving for MMEngine.

Why
---
MMEngine 0.10.x calls ``torch.load(filename, map_location=...)`` without
``weights_only``. Since torch 2.6 that means ``weights_only=True``, so
MMEngine can no longer resume its own checkpoints: their ``message_hub``
holds :class:`mmengine.logging.HistoryBuffer` objects (numpy arrays inside)
and their runtime info holds numpy scalars. Switching back to
``weights_only=False`` would let any downloaded checkpoint run arbitrary code,
so instead the few globals MMEngine really writes are allow-listed and
everything else is refused with :class:`UnsafeCheckpointError`.

Separately, ``save_checkpoint`` writes straight into the target file, so a
job killed mid-write leaves a truncated ``epoch_N.pth`` (which auto-resume
may then pick up). Local saves are therefore made atomic.

What is patched (on ``import mdc_plugin``; idempotent)
------------------------------------------------------
1. ``torch.serialization.add_safe_globals`` gets :data:`SAFE_GLOBALS`, found
   by saving real MMEngine checkpoints and listing
   ``torch.serialization.get_unsafe_globals_in_checkpoint``:
   ``HistoryBuffer``; ``numpy.ndarray``, ``numpy.dtype`` and the numeric
   dtype classes (``numpy.dtypes.Float64DType``, ``Int64DType``, ... for
   bool/int/float/complex only; these are not GLOBALs but the unpickler must
   be allowed to set their state); ``numpy._core.multiarray._reconstruct`` /
   ``.scalar`` (also under their numpy 1.x names
   ``numpy.core.multiarray.*``); and ``builtins.getattr``,
   which HistoryBuffer's pickled state uses to refer to its statistics
   methods (``getattr(HistoryBuffer, 'mean')``). ``builtins.getattr`` is
   mapped to :func:`_restricted_getattr`, which only returns those
   HistoryBuffer methods and refuses any other attribute lookup.
2. ``CheckpointLoader._schemes['']`` (the local-file scheme, which is what
   ``_load_checkpoint``, ``load_checkpoint``, ``Runner.load_checkpoint``,
   ``Runner.resume`` / ``load_from`` and the ``Pretrained`` initializer all
   end up calling) and ``mmengine.runner.checkpoint.load_from_local`` are
   replaced by :func:`load_from_local`: a static scan of the pickle for
   globals that are not allow-listed (nothing is executed), then
   ``torch.load(..., weights_only=True)`` passed explicitly (so
   ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn it off).
3. Every other registered scheme (http(s), pavi, s3/petrel, torchvision,
   open-mmlab, mmcls) is wrapped so that torch's weights-only refusal
   becomes an :class:`UnsafeCheckpointError`. Those loaders still use torch's
   default ``weights_only=True``.
4. All loads run under :func:`_history_buffer_guard`:
   ``HistoryBuffer.__setstate__`` copies the pickled ``statistics_methods``
   into a class-wide dict that is later *called*; the guard refuses (and
   rolls back) any entry that is not one of HistoryBuffer's own methods.
5. ``save_checkpoint`` in ``mmengine.runner.checkpoint``, ``mmengine.runner``
   and ``mmengine.runner.runner`` (the name ``Runner.save_checkpoint`` calls;
   also ``mmengine._strategy.deepspeed`` if already imported;
   ``CheckpointHook`` and the strategies look it up in the first two) is
   replaced by :func:`atomic_save_checkpoint`: local files are written to a
   temp file in the same directory, flushed, fsync-ed and ``os.replace``-d
   over the target. Remote backends and ``pavi://`` use MMEngine's own code.
   A temp file of the same target left by a job killed mid-write is deleted
   before the next save of that target.
   ``CheckpointHook`` writes ``last_checkpoint`` only after the save
   returns, so it never points at a partial file.
6. ``CheckpointHook`` writes that ``last_checkpoint`` pointer with a plain
   ``open(path, 'w')``, which a kill can leave empty or truncated (then
   ``--resume`` finds no checkpoint). The name ``open`` in
   ``mmengine.hooks.checkpoint_hook`` is given :func:`_checkpoint_hook_open`,
   which writes files named ``last_checkpoint`` through
   :func:`~mdc_plugin.utils.atomic_io.atomic_write` and passes every other
   call to the builtin ``open``.

Related: :mod:`mdc_plugin.utils.weights` re-registers the ``'Pretrained'``
weight initializer so that it loads through this module and fails loudly.

Plugin code (converters, inference) should call :func:`load_checkpoint_safely`.
"""
import contextlib
import functools
import glob
import os
import os.path as osp
import pickle
import re
import sys
import zipfile
from typing import Any, Callable, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
import mmengine.hooks.checkpoint_hook as mme_ckpt_hook
import mmengine.runner.checkpoint as mme_ckpt
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.logging import HistoryBuffer

from .atomic_io import atomic_write

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray

__all__ = [
    'UnsafeCheckpointError', 'SAFE_GLOBALS', 'load_checkpoint_safely',
    'load_from_local', 'atomic_save_checkpoint', 'apply_patches'
]


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint references globals that are not on the allow-list.

    Attributes:
        filename (str): The refused checkpoint.
        refused (list[str]): The refused globals (``module.name``).
    """

    def __init__(self, filename: str, refused: Sequence[str], detail=''):
        self.filename = str(filename)
        self.refused = list(refused)
        names = ', '.join(self.refused) or '<unknown>'
        msg = (f'Refusing to load checkpoint "{self.filename}": it references '
               f'global(s) that are not allow-listed for weights-only '
               f'loading: {names}. Nothing from it was executed. Only load '
               f'checkpoints you trust; see mdc_plugin/utils/'
               f'safe_checkpoint.py for the allow-list.')
        if detail:
            msg += f'\nDetail: {detail}'
        super().__init__(msg)


# HistoryBuffer methods that MMEngine pickles as getattr(HistoryBuffer, name).
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')


def _restricted_getattr(obj: Any, name: str) -> Any:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint."""
    if obj is HistoryBuffer and name in _HISTORY_BUFFER_METHODS:
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'GLOBAL builtins.getattr was refused for getattr({obj!r}, {name!r}): '
        'only HistoryBuffer statistics methods may be looked up')


def _numeric_dtype_classes() -> List[type]:
    """``numpy.dtypes.Float64DType`` & co. for bool/int/float/complex."""
    codes = '?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat']
    classes = {type(np.dtype(c)) for c in codes}
    classes.discard(np.dtype)  # old numpy: plain dtype instances
    return sorted(classes, key=lambda c: c.__name__)


def _safe_globals() -> List[Union[Callable, tuple]]:
    reconstruct, scalar = _np_multiarray._reconstruct, _np_multiarray.scalar
    return [
        HistoryBuffer,
        np.ndarray,
        np.dtype,
        *_numeric_dtype_classes(),
        (reconstruct, 'numpy._core.multiarray._reconstruct'),
        (reconstruct, 'numpy.core.multiarray._reconstruct'),
        (scalar, 'numpy._core.multiarray.scalar'),
        (scalar, 'numpy.core.multiarray.scalar'),
        (_restricted_getattr, 'builtins.getattr'),
    ]


#: Globals allow-listed for ``weights_only`` loading (see module docstring).
SAFE_GLOBALS = _safe_globals()


def _register_safe_globals() -> None:
    present = torch.serialization.get_safe_globals()
    missing = [g for g in SAFE_GLOBALS if g not in present]
    if missing:
        torch.serialization.add_safe_globals(missing)


# --------------------------------------------------------------- loading --
_REFUSED_IN_ERROR = (re.compile(r'GLOBAL ([\w.]+)'),
                     re.compile(r"got <class '([\w.]+)'>"),
                     re.compile(r'unrecognized function ([^\n]+)'))


def _unpickler_detail(err: BaseException) -> str:
    """The WeightsUnpickler's own message, without torch's boilerplate."""
    text = str(err)
    text = text.split('WeightsUnpickler error:')[-1]
    boilerplate = ('Weights only load failed', 'Please file an issue',
                   'Check the documentation')
    lines = [
        ln.strip() for ln in text.splitlines()
        if ln.strip() and not ln.strip().startswith(boilerplate)
    ]
    return lines[0][:500] if lines else str(err)[:500]


def _refused_from_error(err: BaseException) -> List[str]:
    detail = _unpickler_detail(err)
    for pattern in _REFUSED_IN_ERROR:
        found = pattern.findall(detail)
        if found:
            return sorted(set(found))
    return [detail[:200]]


def _static_unsafe_globals(filename: str) -> Optional[List[str]]:
    """List non-allow-listed globals without unpickling anything.

    Returns None when the file is not a zip checkpoint (legacy format); the
    weights-only unpickler is then the only (and sufficient) guard.
    """
    try:
        return sorted(
            torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # noqa: BLE001 - fall back to the unpickler's check
        return None


@contextlib.contextmanager
def _history_buffer_guard(filename: str) -> Iterator[None]:
    """Refuse checkpoints that plant callables in HistoryBuffer's registry."""
    registry = HistoryBuffer._statistics_methods
    before = dict(registry)
    allowed = {id(getattr(HistoryBuffer, n)) for n in _HISTORY_BUFFER_METHODS}
    allowed.update(id(v) for v in before.values())
    ok = False
    try:
        yield
        ok = True
    finally:
        planted = sorted(k for k, v in registry.items()
                         if id(v) not in allowed)
        if planted or not ok:
            registry.clear()
            registry.update(before)
        if planted and ok:
            raise UnsafeCheckpointError(
                filename, ['mmengine.logging.history_buffer.HistoryBuffer'],
                f'statistics_methods {planted} are not HistoryBuffer methods')


def _check_torch_file(filename: str) -> None:
    """Fail clearly on files that are not torch checkpoints at all.

    ``torch.save`` writes a zip archive (or, in the legacy format, a pickle,
    whose first byte is the PROTO opcode 0x80); anything else is named here
    instead of surfacing as a bare ``KeyError`` from the unpickler.
    """
    if zipfile.is_zipfile(filename):
        return
    with open(filename, 'rb') as f:
        head = f.read(4)
    if head[:1] != b'\x80':
        raise RuntimeError(
            f'Could not read checkpoint "{filename}" (truncated, or not a '
            f'torch checkpoint?): neither a complete zip archive nor a '
            f'pickle (starts with {head!r})')


def _safe_torch_load(filename: str, map_location: Any = None) -> Any:
    """Weights-only ``torch.load`` of a local file, with clear refusals."""
    _register_safe_globals()
    _check_torch_file(filename)
    unsafe = _static_unsafe_globals(filename)
    if unsafe:
        raise UnsafeCheckpointError(filename, unsafe)
    with _history_buffer_guard(filename):
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise UnsafeCheckpointError(filename, _refused_from_error(err),
                                        _unpickler_detail(err)) from err
        except (RuntimeError, EOFError, OSError, KeyError, ValueError,
                UnicodeDecodeError) as err:
            raise RuntimeError(
                f'Could not read checkpoint "{filename}" (truncated, or not '
                f'a torch checkpoint?): {err}') from err


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """Safe replacement for MMEngine's local-file checkpoint scheme."""
    filename = osp.expanduser(os.fspath(filename))
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    return _safe_torch_load(filename, map_location)


def load_checkpoint_safely(path: str, map_location: Any = 'cpu') -> dict:
    """Load a local checkpoint with ``weights_only=True`` and the allow-list.

    Args:
        path (str): Checkpoint file.
        map_location: Same as :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        dict: The checkpoint (a full MMEngine checkpoint or a state dict).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeCheckpointError: ``path`` references non-allow-listed globals.
        TypeError: the file does not hold a dict.
    """
    checkpoint = load_from_local(path, map_location)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'Checkpoint "{path}" holds a '
                        f'{type(checkpoint).__name__}, expected a dict')
    return checkpoint


def _guard_loader(loader: Callable) -> Callable:
    """Wrap a remote CheckpointLoader scheme with the refusal translation."""
    if getattr(loader, '_mdc_guarded', False):
        return loader

    @functools.wraps(loader)
    def guarded(filename, map_location=None, *args, **kwargs):
        with _history_buffer_guard(filename):
            try:
                return loader(filename, map_location, *args, **kwargs)
            except pickle.UnpicklingError as err:
                raise UnsafeCheckpointError(filename, _refused_from_error(err),
                                            _unpickler_detail(err)) from err

    guarded._mdc_guarded = True
    return guarded


# ---------------------------------------------------------------- saving --
_ORIG_SAVE_CHECKPOINT = getattr(mme_ckpt.save_checkpoint, '_mdc_original',
                                mme_ckpt.save_checkpoint)


def _is_local_target(filename: str, file_client_args: Optional[dict],
                     backend_args: Optional[dict]) -> bool:
    if file_client_args is not None or filename.startswith('pavi://'):
        return False
    try:
        backend = get_file_backend(filename, backend_args=backend_args)
    except Exception:  # noqa: BLE001 - let MMEngine report it
        return False
    return isinstance(backend, LocalBackend)


def _remove_stale_temps(path: str) -> None:
    """Delete temp files an earlier, killed atomic write of ``path`` left.

    :func:`~mdc_plugin.utils.atomic_io.atomic_write` names its temp file
    ``.<name>.<random>.tmp`` next to ``path``; a SIGKILL mid-write leaves
    it behind. Only this target's temp files are touched.
    """
    dirname, name = osp.split(osp.abspath(path))
    pattern = osp.join(glob.escape(dirname), f'.{glob.escape(name)}.*.tmp')
    for stale in glob.glob(pattern):
        with contextlib.suppress(OSError):
            os.remove(stale)


def atomic_save_checkpoint(checkpoint: dict,
                           filename: str,
                           file_client_args: Optional[dict] = None,
                           backend_args: Optional[dict] = None) -> None:
    """Drop-in for MMEngine's ``save_checkpoint``; atomic for local files.

    Non-local targets (``s3://``, ``pavi://``, deprecated
    ``file_client_args``) are handed to MMEngine's original function.
    """
    filename = os.fspath(filename)
    if not _is_local_target(filename, file_client_args, backend_args):
        return _ORIG_SAVE_CHECKPOINT(
            checkpoint,
            filename,
            file_client_args=file_client_args,
            backend_args=backend_args)
    _remove_stale_temps(filename)
    with atomic_write(filename, 'wb') as f:
        torch.save(checkpoint, f)


atomic_save_checkpoint._mdc_original = _ORIG_SAVE_CHECKPOINT

# Modules whose ``save_checkpoint`` name is MMEngine's writer.
_SAVE_CHECKPOINT_OWNERS = ('mmengine.runner.checkpoint', 'mmengine.runner',
                           'mmengine.runner.runner',
                           'mmengine._strategy.deepspeed')


def _checkpoint_hook_open(file, mode: str = 'r', *args, **kwargs):
    """``open`` as seen by ``CheckpointHook``: atomic ``last_checkpoint``."""
    if mode == 'w' and osp.basename(os.fspath(file)) == 'last_checkpoint':
        _remove_stale_temps(os.fspath(file))
        return atomic_write(file, 'w', encoding='utf-8')
    return open(file, mode, *args, **kwargs)


def apply_patches() -> None:
    """Apply every patch listed in the module docstring (idempotent)."""
    _register_safe_globals()

    schemes = mme_ckpt.CheckpointLoader._schemes
    for prefix, loader in list(schemes.items()):
        if prefix == '':
            continue
        schemes[prefix] = _guard_loader(loader)
    if schemes.get('') is not load_from_local:
        mme_ckpt.CheckpointLoader.register_scheme(
            '', load_from_local, force=True)
    mme_ckpt.load_from_local = load_from_local

    for name in _SAVE_CHECKPOINT_OWNERS:
        module = sys.modules.get(name)
        if (module is not None and getattr(module, 'save_checkpoint', None)
                is _ORIG_SAVE_CHECKPOINT):
            module.save_checkpoint = atomic_save_checkpoint
    mme_ckpt_hook.open = _checkpoint_hook_open


apply_patches()
