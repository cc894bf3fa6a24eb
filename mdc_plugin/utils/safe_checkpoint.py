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

What it does (``import mdc_plugin`` changes nothing in MMEngine)
-----------------------------------------------------------------
:func:`load_checkpoint_safely` is the package's one weight loader (items 1-4
below). :func:`hardened_checkpoints` routes MMEngine's own loading through it
for the length of a ``with`` block (items 3-4); the registered
``SafeCheckpointLoadingHook`` of ``configs/_base_/default_runtime.py`` opens
that block for a whole run. Saving (items 5-7) is the registered
``AtomicCheckpointHook`` (:mod:`mdc_plugin.engine.hooks.checkpoint_hooks`),
which writes with :func:`atomic_save_checkpoint`.

1. The allow-list, :data:`SAFE_GLOBALS`, is active only inside this
   module's loader (``torch.serialization.safe_globals``), never
   process-wide, so a plain ``torch.load`` elsewhere gains nothing from it.
   It was found by saving real MMEngine checkpoints and listing
   ``torch.serialization.get_unsafe_globals_in_checkpoint``, plus benign
   data types: ``numpy.ndarray``, ``numpy.dtype`` and every dtype class but
   ``object`` (bool/int/float/complex, str, bytes, datetime64/timedelta64,
   structured records); ``numpy._core.multiarray._reconstruct`` /
   ``.scalar`` (also under their numpy 1.x names); ``builtins.slice`` and
   restricted stand-ins for ``builtins.bytes`` (empty or a copy of bytes:
   how protocol 2 pickles ``b''``), ``frozenset`` (of a list) and ``range``
   (of ints).
2. ``HistoryBuffer`` is never unpickled as itself. Its GLOBAL resolves to a
   record that only stores the pickled state, and ``builtins.getattr``
   only to ``_restricted_getattr``, which returns a *name* for the four
   statistics methods (``getattr(HistoryBuffer, 'mean')``, how
   ``__getstate__`` pickles them) and refuses every other lookup. After
   loading, each record is checked (only the keys ``__getstate__`` writes,
   1-D numeric arrays of equal length, an int ``max_length``, each method
   under its own name) and replaced by a fresh ``HistoryBuffer`` built from
   those arrays; anything else is refused. Nothing from the file can reach
   HistoryBuffer's class-wide method registry or an instance attribute.
3. Local files load through :func:`load_from_local` (inside
   :func:`hardened_checkpoints` also MMEngine's
   ``CheckpointLoader._schemes['']``, which ``_load_checkpoint``,
   ``load_checkpoint``, ``Runner.load_checkpoint``, ``Runner.resume`` /
   ``load_from`` and the ``Pretrained`` initializer all end up calling): a
   static scan of the pickle for globals that are not allow-listed (nothing is
   executed), then ``torch.load(..., weights_only=True)`` passed explicitly (so
   ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` cannot turn it off). What it loaded
   must be laid out as a checkpoint (a dict; ``state_dict``, ``meta``, ...
   dicts; no bare numpy dtype object where a weight belongs), else
   :class:`CheckpointLayoutError`. Every refusal names what was refused in
   words: the global, the call (``builtins.getattr(...)``), the part of a
   HistoryBuffer state, the pickle opcode (``FRAME``, from protocol 4) or the
   legacy pickle protocol (0 or 1).
4. Every remote scheme (``http(s)://``, ``torchvision://``/``modelzoo://``,
   ``open-mmlab://``/``openmmlab://``, ``mmcls://``, ``pavi://``,
   ``s3://``/``petrel://``) loads through a loader that downloads the file
   (URLs into the torch hub cache) and then calls :func:`load_from_local`
   (:mod:`mdc_plugin.utils.checkpoint_schemes`). A scheme registered by
   anyone else is refused, not unpickled (inside :func:`hardened_checkpoints`:
   every scheme registered when the block opens).
5. :func:`atomic_save_checkpoint`: local files are written to a temp file in
   the same directory, flushed, fsync-ed and ``os.replace``-d over the
   target. Remote backends and ``pavi://`` use MMEngine's own code. A temp
   file of the same target left by a job killed mid-write is deleted before
   the next save of that target.
6. ``AtomicCheckpointHook`` writes the ``last_checkpoint`` pointer atomically
   and only after the checkpoint is complete (MMEngine's plain
   ``open(path, 'w')`` can be left empty by a kill, and then ``--resume``
   finds nothing).
7. With ``max_keep_ckpts`` it deletes the oldest kept checkpoint only after
   the new one and ``last_checkpoint`` are written
   (:mod:`mdc_plugin.utils.checkpoint_rotation`).

Related: inside :func:`hardened_checkpoints`, ``'Pretrained'`` is
:class:`~mdc_plugin.utils.weights.SafePretrainedInit`, which loads through
this module and fails loudly.

Plugin code (converters, inference) should call :func:`load_checkpoint_safely`.
"""
import contextlib
import errno
import glob
import io
import os
import os.path as osp
import pickle
import pickletools
import re
import shutil
import zipfile
from typing import (Any, Callable, Iterator, List, Optional, Sequence, Tuple,
                    Union)

import numpy as np
import torch
import mmengine.runner.checkpoint as mme_ckpt
from mmengine.fileio import LocalBackend, get_file_backend
from mmengine.logging import HistoryBuffer

from .atomic_io import atomic_write
from .checkpoint_schemes import CheckpointDownloadError, safe_scheme_loaders

try:  # numpy >= 2
    from numpy._core import multiarray as _np_multiarray
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _np_multiarray

__all__ = [
    'UnsafeCheckpointError', 'CheckpointLayoutError', 'CheckpointReadError',
    'CHECKPOINT_ERRORS', 'UnknownCheckpointSchemeError', 'SAFE_GLOBALS',
    'load_checkpoint_safely', 'load_from_local', 'atomic_save_checkpoint',
    'hardened_checkpoints', 'hardening_active', 'safe_loader_for'
]


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint is refused: it references globals that are not on the
    allow-list, or a call, pickle opcode or piece of data that the safe
    loader does not accept.

    Attributes:
        filename (str): The refused checkpoint.
        refused (list[str]): What was refused: globals (``module.name``),
            or e.g. ``"opcode FRAME"``, ``"pickle protocol 0"``, a call.
        reason (str): Why, in words (the message after the file name).
    """

    _ADVICE = ('Only load checkpoints you trust; see mdc_plugin/utils/'
               'safe_checkpoint.py for the allow-list.')

    def __init__(self,
                 filename: str,
                 refused: Sequence[str],
                 detail: str = '',
                 reason: Optional[str] = None,
                 advice: Optional[str] = None):
        self.filename = str(filename)
        self.refused = list(refused)
        if reason is None:
            names = ', '.join(self.refused) or '<unknown>'
            reason = ('it references global(s) that are not allow-listed '
                      f'for weights-only loading: {names}')
        self.reason = reason
        msg = (f'Refusing to load checkpoint "{self.filename}": {reason}. '
               f'Nothing from it was executed. {advice or self._ADVICE}')
        if detail:
            msg += f'\nDetail: {detail}'
        super().__init__(msg)


class CheckpointLayoutError(UnsafeCheckpointError, TypeError):
    """The file unpickled, but is not laid out as a checkpoint: not a dict,
    a ``state_dict`` / ``meta`` / ... entry that is not a dict, or a numpy
    dtype object where weights are expected. Also a ``TypeError``."""


class CheckpointReadError(RuntimeError):
    """A checkpoint file could not be read: truncated, or not a torch
    checkpoint at all (a ``RuntimeError``, as before)."""


class UnknownCheckpointSchemeError(RuntimeError):
    """A CheckpointLoader scheme this module has no safe loader for."""


#: The errors of a refused, missing or unreadable checkpoint. The tools
#: report them as one line (``tool: error: ...``) and exit with status 1.
CHECKPOINT_ERRORS = (UnsafeCheckpointError, UnknownCheckpointSchemeError,
                     CheckpointReadError, CheckpointDownloadError,
                     FileNotFoundError)


class _RefusedCall(pickle.UnpicklingError):
    """An allow-listed stand-in (``getattr``, ``bytes``, ...) refused the
    arguments a pickle called it with."""

    def __init__(self, call: str, why: str) -> None:
        super().__init__(f'{call} refused: {why}')
        self.call, self.why = call, why


def _qualname(obj: Any) -> str:
    """``module.Name`` of a class (``HistoryBuffer`` for its stand-in)."""
    if obj is _HistoryBufferRecord:
        return 'HistoryBuffer'
    if isinstance(obj, type):
        module = obj.__module__
        return (obj.__qualname__ if module == 'builtins' else
                f'{module}.{obj.__qualname__}')
    return f'<{_qualname(type(obj))} object>'


def _short_repr(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


# HistoryBuffer methods that MMEngine pickles as getattr(HistoryBuffer, name).
_HISTORY_BUFFER_METHODS = ('min', 'max', 'current', 'mean')
_HISTORY_BUFFER_NAME = 'mmengine.logging.history_buffer.HistoryBuffer'
# Every key HistoryBuffer.__getstate__ writes, nothing else.
_HISTORY_BUFFER_STATE = frozenset(
    ('max_length', '_log_history', '_count_history', 'statistics_methods'))


class _MethodRef:
    """What ``getattr(HistoryBuffer, name)`` unpickles to: a name only."""

    __slots__ = ('name', )

    def __init__(self, name: str) -> None:
        self.name = name


class _HistoryBufferRecord:
    """Stand-in for ``HistoryBuffer`` while unpickling: stores plain state.

    Nothing of it is ever used as a HistoryBuffer: :func:`_rebuild` checks
    the state and builds a fresh ``HistoryBuffer`` from its arrays.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if args or kwargs:  # a REDUCE call HistoryBuffer(...)
            kinds = ', '.join([f'<{_qualname(type(a))}>' for a in args] +
                              [f'{k}=...' for k in kwargs])
            raise _RefusedCall(
                f'{_HISTORY_BUFFER_NAME}({kinds})',
                'a HistoryBuffer is only rebuilt from the plain state '
                'HistoryBuffer.__getstate__ writes, never called with '
                'arguments')
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _restricted_getattr(obj: Any, name: str) -> _MethodRef:
    """Stand-in for ``builtins.getattr`` while unpickling a checkpoint."""
    if obj is _HistoryBufferRecord and name in _HISTORY_BUFFER_METHODS:
        return _MethodRef(name)
    raise _RefusedCall(
        f'builtins.getattr({_qualname(obj)}, {_short_repr(name)})',
        'only the HistoryBuffer statistics methods '
        f'({", ".join(_HISTORY_BUFFER_METHODS)}) may be looked up')


def _safe_bytes(*args: Any) -> bytes:
    """``builtins.bytes`` for pickle protocol 2: ``bytes()`` (empty) only
    or a copy of bytes; never ``bytes(n)`` (an n-byte allocation)."""
    if not args:
        return b''
    if len(args) == 1 and isinstance(args[0], (bytes, bytearray)):
        return bytes(args[0])
    kinds = ', '.join(f'<{_qualname(type(a))}>' for a in args)
    raise _RefusedCall(
        f'builtins.bytes({kinds})',
        'only bytes() or a copy of bytes may be built (never bytes(n), an '
        'n-byte allocation)')


def _plain_items(items: Any, what: str) -> list:
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise _RefusedCall(f'builtins.{what}(<{_qualname(type(items))}>)',
                           f'only a {what} of a pickled list, tuple or set '
                           'may be built')
    return list(items)


def _safe_frozenset(*args: Any) -> frozenset:
    """``builtins.frozenset`` of a pickled list/tuple/set only."""
    return frozenset(_plain_items(args[0], 'frozenset') if args else ())


def _safe_range(*args: Any) -> range:
    """``builtins.range`` of plain ints only."""
    if not args or len(args) > 3 or not all(
            type(a) is int for a in args):  # noqa: E721 - no int subclasses
        raise _RefusedCall(f'builtins.range{_short_repr(args)}',
                           'only a range of one to three plain ints may be '
                           'built')
    return range(*args)


def _data_dtype_classes() -> List[type]:
    """``numpy.dtypes.Float64DType`` & co.: every dtype but ``object``.

    bool/int/float/complex, str (``U``), bytes (``S``), datetime64 /
    timedelta64 and void (structured records, whose fields are again
    dtypes from this list: an ``object`` field is refused).
    """
    codes = ('?' + np.typecodes['AllInteger'] + np.typecodes['AllFloat'] +
             'USV' + 'Mm')
    classes = {type(np.dtype(c)) for c in codes}
    classes.discard(np.dtype)  # old numpy: plain dtype instances
    return sorted(classes, key=lambda c: c.__name__)


def _safe_globals() -> List[Union[Callable, tuple]]:
    reconstruct, scalar = _np_multiarray._reconstruct, _np_multiarray.scalar
    return [
        (_HistoryBufferRecord, _HISTORY_BUFFER_NAME),
        np.ndarray,
        np.dtype,
        *_data_dtype_classes(),
        (reconstruct, 'numpy._core.multiarray._reconstruct'),
        (reconstruct, 'numpy.core.multiarray._reconstruct'),
        (scalar, 'numpy._core.multiarray.scalar'),
        (scalar, 'numpy.core.multiarray.scalar'),
        (_restricted_getattr, 'builtins.getattr'),
        (_safe_bytes, 'builtins.bytes'),
        (_safe_frozenset, 'builtins.frozenset'),
        (_safe_range, 'builtins.range'),
        (slice, 'builtins.slice'),
    ]


#: Globals allow-listed for ``weights_only`` loading (see module docstring).
#: They are active only inside this module's loader, never process-wide.
SAFE_GLOBALS = _safe_globals()


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


def _numeric_1d(value: Any) -> bool:
    return (isinstance(value, np.ndarray) and value.ndim == 1
            and value.dtype.kind in 'biuf')


def _describe(value: Any) -> str:
    """What a refused piece of data is, in words: ``a list``, ``the class
    numpy.ndarray``, ``a numpy.dtypes.VoidDType object (dtype('V4'))``."""
    if isinstance(value, _MethodRef):
        return f'getattr(HistoryBuffer, {_short_repr(value.name)})'
    if isinstance(value, type):
        return f'the class {_qualname(value)}'
    text = f'a {_qualname(type(value))}'
    if isinstance(value, np.dtype):
        text += f' object ({_short_repr(value)})'
    return text


def _history_buffer_refusal(filename: str, what: str,
                            why: str) -> UnsafeCheckpointError:
    """Refusal of a HistoryBuffer whose pickled state is not plain data.

    ``HistoryBuffer`` itself is allow-listed, so the message names the
    part of its state that was refused (``what``), not the class.
    """
    return UnsafeCheckpointError(
        filename, [f'HistoryBuffer state: {what}'],
        reason=(f'the pickled state of a HistoryBuffer ({_HISTORY_BUFFER_NAME}'
                f', allow-listed) was refused: {what} {why}. A HistoryBuffer '
                'is accepted only with the plain state '
                'HistoryBuffer.__getstate__ writes'))


def _history_buffer(record: _HistoryBufferRecord,
                    filename: str) -> HistoryBuffer:
    """A fresh HistoryBuffer from a record's checked plain data."""

    def refuse(what: str, why: str) -> UnsafeCheckpointError:
        return _history_buffer_refusal(filename, what, why)

    allowed = sorted(_HISTORY_BUFFER_STATE)
    state = record.state
    if not isinstance(state, dict):
        raise refuse(f'its state, {_describe(state)},',
                     f'is not a dict of {allowed}')
    extra = sorted(map(str, set(state) - _HISTORY_BUFFER_STATE))
    if extra:
        raise refuse(f'the state key(s) {extra}',
                     f'are not written by HistoryBuffer (only {allowed})')
    methods = state.get('statistics_methods', {})
    if not isinstance(methods, dict):
        raise refuse(f'statistics_methods, {_describe(methods)},',
                     'is not a dict')
    wrong = {
        str(name): _describe(ref)
        for name, ref in methods.items()
        if not isinstance(ref, _MethodRef) or ref.name != name
    }
    if wrong:
        shown = ', '.join(f'{k!r}: {v}' for k, v in sorted(wrong.items()))
        raise refuse(
            f'statistics_methods {{{shown}}}',
            'are not the HistoryBuffer methods of the same name (only '
            f'{list(_HISTORY_BUFFER_METHODS)}, each under its own name)')
    log, count = state.get('_log_history'), state.get('_count_history')
    if not (_numeric_1d(log) and _numeric_1d(count)
            and len(log) == len(count)):
        raise refuse(
            f'_log_history ({_describe(log)}) / _count_history '
            f'({_describe(count)})',
            'must be 1-D numeric arrays of equal length')
    max_length = state.get('max_length', 1000000)
    if type(max_length) is not int or max_length < 1:  # noqa: E721
        raise refuse(f'max_length {_short_repr(max_length)}',
                     'is not a positive int')
    return HistoryBuffer(log, count, max_length)


def _rebuild(obj: Any, filename: str, seen: dict) -> Any:
    """Replace every HistoryBuffer record in ``obj`` by a checked buffer."""
    if id(obj) in seen:
        return seen[id(obj)]
    if isinstance(obj, _HistoryBufferRecord):
        seen[id(obj)] = _history_buffer(obj, filename)
    elif isinstance(obj, dict):  # also OrderedDict; keeps its type
        seen[id(obj)] = obj
        for key in list(obj):
            obj[key] = _rebuild(obj[key], filename, seen)
    elif isinstance(obj, list):
        seen[id(obj)] = obj
        obj[:] = [_rebuild(v, filename, seen) for v in obj]
    elif type(obj) is tuple:  # noqa: E721 - named tuples are not pickled
        seen[id(obj)] = tuple(_rebuild(v, filename, seen) for v in obj)
    else:
        seen[id(obj)] = obj
    return seen[id(obj)]


def _leftover(obj: Any, seen: set) -> Optional[Any]:
    """A HistoryBuffer record or method name :func:`_rebuild` left."""
    if id(obj) in seen:
        return None
    seen.add(id(obj))
    if isinstance(obj, (_HistoryBufferRecord, _MethodRef)):
        return obj
    if isinstance(obj, dict):
        children = obj.values()
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = obj
    else:
        return None
    for child in children:
        found = _leftover(child, seen)
        if found is not None:
            return found
    return None


def _restore_history_buffers(checkpoint: Any, filename: str) -> Any:
    checkpoint = _rebuild(checkpoint, filename, {})
    found = _leftover(checkpoint, set())
    if isinstance(found, _MethodRef):
        raise UnsafeCheckpointError(
            filename, [_describe(found)],
            reason=(f'the value {_describe(found)} appears outside the '
                    'statistics_methods of a HistoryBuffer, the only place '
                    'MMEngine pickles it'))
    if found is not None:
        raise _history_buffer_refusal(
            filename, 'a HistoryBuffer inside a set or frozenset',
            'cannot be checked and rebuilt there (only inside dicts, lists '
            'and tuples)')
    return checkpoint


def _headerless_pickle_protocol(filename: str) -> Optional[int]:
    """Protocol (0 or 1) of a pickle without the PROTO header, else None.

    Only parses the opcodes of the file's first pickle (``pickletools``;
    nothing is unpickled) within its first MiB.
    """
    with open(filename, 'rb') as f:
        data = io.BytesIO(f.read(1 << 20))
    proto = 0
    try:
        for op, _, _ in pickletools.genops(data):
            proto = max(proto, op.proto)
            if op.name == 'STOP':
                return proto if proto <= 1 else None
    except Exception:  # noqa: BLE001 - not a pickle
        return None
    return None


def _check_torch_file(filename: str) -> None:
    """Fail clearly on files that are not torch checkpoints at all.

    ``torch.save`` writes a zip archive (or, in the legacy format, a pickle,
    whose first byte is the PROTO opcode 0x80); anything else is named here
    instead of surfacing as a bare ``KeyError`` from the unpickler. A pickle
    in protocol 0 or 1 (no PROTO header) is refused as such: the
    weights-only unpickler cannot read the opcodes these write.
    """
    if zipfile.is_zipfile(filename):
        return
    with open(filename, 'rb') as f:
        head = f.read(4)
    if head[:1] == b'\x80':
        return
    proto = _headerless_pickle_protocol(filename)
    if proto is not None:
        kind = 'text' if proto == 0 else 'binary'
        raise UnsafeCheckpointError(
            filename, [f'pickle protocol {proto}'],
            reason=(f'it is a pickle in protocol {proto} (the legacy {kind} '
                    'protocol, without a PROTO header), which the '
                    'weights-only loader does not support: it reads the '
                    'binary protocols 2 and 3 (torch.save writes 2 by '
                    'default), so the file is refused as untrusted without '
                    'unpickling it'),
            advice=_RESAVE_ADVICE)
    raise CheckpointReadError(
        f'Could not read checkpoint "{filename}" (truncated, or not a '
        f'torch checkpoint?): neither a complete zip archive nor a '
        f'pickle (starts with {head!r})')


_RESAVE_ADVICE = ('If the file comes from a source you trust, load it '
                  'there and re-save it with torch.save and its default '
                  'pickle_protocol.')
#: Pickle opcodes by their byte value.
_OPCODES = {ord(op.code): op for op in pickletools.opcodes}


def _opcode_refusal(filename: str, code: int) -> UnsafeCheckpointError:
    """The weights-only unpickler met an opcode it does not implement."""
    op = _OPCODES.get(code)
    if op is None:
        return UnsafeCheckpointError(
            filename, [f'byte 0x{code:02x}'],
            reason=(f'its pickle holds the byte 0x{code:02x} where an '
                    'opcode is expected, and that is no pickle opcode '
                    '(a corrupt or crafted file); it is refused as '
                    'untrusted'))
    legacy = ', the legacy text protocol' if op.proto == 0 else ''
    return UnsafeCheckpointError(
        filename, [f'opcode {op.name}'],
        reason=(f'its pickle uses the opcode {op.name} (0x{code:02x}, from '
                f'pickle protocol {op.proto}{legacy}), which the '
                'weights-only loader does not allow (it reads the opcodes '
                'torch.save writes with its default pickle protocol 2), so '
                'the file is refused as untrusted'),
        advice=_RESAVE_ADVICE)


def _unpickling_refusal(filename: str,
                        err: BaseException) -> UnsafeCheckpointError:
    """The refusal for an ``UnpicklingError`` of the weights-only load."""
    cause: Optional[BaseException] = err
    for _ in range(8):  # torch re-raises ours ``from None``
        if cause is None:
            break
        if isinstance(cause, _RefusedCall):
            return UnsafeCheckpointError(
                filename, [cause.call],
                reason=(f'the call {cause.call} in its pickle was refused: '
                        f'{cause.why}'))
        cause = cause.__cause__ or cause.__context__
    detail = _unpickler_detail(err)
    operand = re.search(r'Unsupported operand (\d+)', detail)
    if operand:
        return _opcode_refusal(filename, int(operand.group(1)))
    return UnsafeCheckpointError(filename, _refused_from_error(err), detail)


def _safe_torch_load(filename: str, map_location: Any = None) -> Any:
    """Weights-only ``torch.load`` of a local file, with clear refusals.

    :data:`SAFE_GLOBALS` are allow-listed only for this call.
    """
    _check_torch_file(filename)
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        unsafe = _static_unsafe_globals(filename)
        if unsafe:
            raise UnsafeCheckpointError(filename, unsafe)
        try:
            checkpoint = torch.load(
                filename, map_location=map_location, weights_only=True)
        except pickle.UnpicklingError as err:
            raise _unpickling_refusal(filename, err) from err
        except (RuntimeError, EOFError, OSError, KeyError, ValueError,
                TypeError, UnicodeDecodeError) as err:
            raise CheckpointReadError(
                f'Could not read checkpoint "{filename}" (truncated, or not '
                f'a torch checkpoint?): {err}') from err
    return _restore_history_buffers(checkpoint, filename)


#: Entries of an MMEngine checkpoint that MMEngine reads as dicts (all but
#: ``state_dict`` may be None, as in checkpoints stripped for release).
_DICT_ENTRIES = ('state_dict', 'meta', 'message_hub', 'optimizer',
                 'ema_state_dict')


def _is_dtype(value: Any) -> bool:
    """A numpy dtype object, or a dtype class (``numpy.dtypes.*``)."""
    return isinstance(value, np.dtype) or (isinstance(value, type)
                                           and issubclass(value, np.dtype))


def _check_layout(checkpoint: Any, filename: str) -> None:
    """Refuse data that is no checkpoint before MMEngine trips over it.

    A checkpoint is a dict (a state dict or MMEngine's ``{'meta': ...,
    'state_dict': ...}``); its dict entries must be dicts, and no weight
    (a value of the checkpoint or of its ``state_dict``) may be a bare
    numpy dtype object. Otherwise ``runner.load_checkpoint`` and the hooks
    fail with a bare ``AttributeError`` / ``TypeError``.
    """

    def refuse(where: str, value: Any, expected: str, note: str = '') -> None:
        found = _describe(value)
        raise CheckpointLayoutError(
            filename, [f'{where}: {found}'],
            reason=f'{where} holds {found} where {expected} is expected'
            + note,
            advice='It is not a checkpoint this loader can use; only load '
            'checkpoints you trust.')

    if not isinstance(checkpoint, dict):
        refuse('it', checkpoint,
               'a checkpoint (a dict: a state dict, or MMEngine\'s '
               '{"meta": ..., "state_dict": ...})')
    for key in _DICT_ENTRIES:
        value = checkpoint.get(key)
        if key in checkpoint and not isinstance(value, dict) and not (
                value is None and key != 'state_dict'):  # stripped: fine
            refuse(f'its "{key}" entry', value, 'a dict')
    for where, mapping in (('its entry', checkpoint),
                           ('its "state_dict" entry',
                            checkpoint.get('state_dict', {}))):
        for key, value in mapping.items():
            if _is_dtype(value):
                refuse(f'{where} {_short_repr(key)}', value, 'a tensor',
                       ' (a numpy dtype on its own is no weight)')


def _not_found_message(filename: str) -> str:
    """A missing local file, or an address of a scheme nobody loads."""
    scheme = re.match(r'([A-Za-z][\w+.-]*)://', filename)
    if scheme is None:
        return f'Checkpoint "{filename}" can not be found (no such file).'
    known = sorted({
        prefix.replace('(\\S+\\:)?', '')  # MMEngine's s3:// / petrel://
        for prefix in mme_ckpt.CheckpointLoader._schemes if prefix
    })
    return (f'Checkpoint "{filename}" can not be loaded: the scheme '
            f'"{scheme.group(1)}://" is not supported (supported: '
            f'{", ".join(known)}, or a local path), and no local file has '
            'this name.')


def load_from_local(filename: str, map_location: Any = None) -> Any:
    """Safe replacement for MMEngine's local-file checkpoint scheme."""
    filename = osp.expanduser(os.fspath(filename))
    if not filename:
        raise FileNotFoundError(
            'Checkpoint path is empty (load_from / --resume / init_cfg '
            'checkpoint set to ""?); give the path of a checkpoint file.')
    if not osp.isfile(filename):
        raise FileNotFoundError(_not_found_message(filename))
    checkpoint = _safe_torch_load(filename, map_location)
    _check_layout(checkpoint, filename)
    return checkpoint


def load_checkpoint_safely(path: str, map_location: Any = 'cpu') -> dict:
    """Load a checkpoint with ``weights_only=True`` and the allow-list.

    The one weight loader of the package and its tools: a local path, or a
    URL / ``torchvision://`` ... (downloaded first, see the module
    docstring), always ends in :func:`load_from_local`. It picks the scheme
    the way MMEngine's ``CheckpointLoader`` does but never calls MMEngine's
    loaders and changes nothing in MMEngine.

    Args:
        path (str): Checkpoint file or URL.
        map_location: Same as :func:`torch.load`. Defaults to ``'cpu'``.

    Returns:
        dict: The checkpoint (a full MMEngine checkpoint or a state dict).

    Raises:
        FileNotFoundError: ``path`` does not exist (or has a scheme no
            loader handles).
        UnsafeCheckpointError: ``path`` references non-allow-listed globals,
            calls an allow-listed one with refused arguments, or uses a
            pickle opcode / protocol the weights-only loader does not read.
        CheckpointLayoutError: (an ``UnsafeCheckpointError`` and a
            ``TypeError``) the file does not hold a dict, or a bare numpy
            dtype object where a dict or tensor belongs.
        CheckpointReadError: the file is truncated or no torch checkpoint.
    """
    path = os.fspath(path)
    checkpoint = safe_loader_for(path)(path, map_location)
    if not isinstance(checkpoint, dict):
        raise TypeError(f'Checkpoint "{path}" holds a '
                        f'{type(checkpoint).__name__}, expected a dict')
    return checkpoint


def safe_loader_for(path: str) -> Callable:
    """The safe loader of ``path``'s scheme: the one MMEngine's
    ``CheckpointLoader`` would dispatch to, replaced by ours (local files:
    :func:`load_from_local`; URLs and model-zoo schemes: download, then
    :func:`load_from_local`; a scheme we do not know: a refusal)."""
    loader = mme_ckpt.CheckpointLoader._get_checkpoint_loader(path)
    prefix = next((p for p, fn in mme_ckpt.CheckpointLoader._schemes.items()
                   if fn is loader), loader.__name__)
    return _safe_stand_in(prefix, loader)


def _safe_stand_in(prefix: str, loader: Callable) -> Callable:
    """Ours for MMEngine's ``loader`` of ``prefix``: itself if already
    safe, :func:`load_from_local` for local files, the download-then-load
    loader of a known scheme, else a refusal."""
    if getattr(loader, '_mdc_safe', False):
        return loader
    if prefix == '' or loader.__name__ == 'load_from_local':
        return load_from_local
    return (safe_scheme_loaders(load_from_local).get(loader.__name__)
            or _refusing_loader(prefix))


def _refusing_loader(prefix: str) -> Callable:
    """Loader for a third-party scheme: refuse instead of unpickling."""

    def refuse(filename, *args, **kwargs):
        raise UnknownCheckpointSchemeError(
            f'Refusing to load "{filename}": the checkpoint scheme '
            f'{prefix!r} has no safe (weights-only) loader in mdc_plugin. '
            'Download the file and pass its local path.')

    refuse._mdc_safe = True
    return refuse


# --------------------------------------------- hardened MMEngine loading --
class _Hardening:
    """What :func:`hardened_checkpoints` changes in MMEngine, and undoes.

    Inside the context:

    * every scheme registered in ``CheckpointLoader`` (at entry) loads
      through :func:`safe_loader_for` (``CheckpointLoader.register_scheme``
      with ``force=True``, MMEngine's extension point), and
      ``mmengine.runner.checkpoint.load_from_local`` / ``load_from_http``
      ... name the safe loaders, for code that calls them directly;
    * ``'Pretrained'`` in MMEngine's ``WEIGHT_INITIALIZERS`` is
      :class:`~mdc_plugin.utils.weights.SafePretrainedInit` (safe loading,
      fails loudly when no weight loaded).

    On exit each entry gets back the object it held before (an entry that
    someone else changed meanwhile is left as it is).
    """

    def __init__(self) -> None:
        self.open_blocks: set = set()  # one token per open block
        self.saved: List[Tuple[Callable, Callable, Any, Any]] = []
        self.schemes: Optional[dict] = None  # MMEngine's table at entry
        self.installed: Optional[dict] = None  # ours, as installed
        self.scheme_items: Optional[list] = None  # its entries at entry

    def _swap(self, get: Callable, put: Callable, new: Any) -> None:
        old = get()
        put(new)
        self.saved.append((get, put, old, new))

    @property
    def depth(self) -> int:
        return len(self.open_blocks)

    def enter(self) -> object:
        """Open a block; the token closes it (:meth:`exit`)."""
        token = object()
        self.open_blocks.add(token)
        if self.depth > 1:
            return token
        from mmengine.registry import WEIGHT_INITIALIZERS
        from .weights import SafePretrainedInit
        loader_cls = mme_ckpt.CheckpointLoader
        self.schemes = loader_cls._schemes
        # register_scheme writes into the current table before re-sorting
        # it into a new one: keep what the original held.
        self.scheme_items = list(self.schemes.items())
        for prefix in list(self.schemes):
            _register_scheme(prefix, _safe_stand_in(
                prefix, loader_cls._schemes[prefix]))
        self.installed = dict(loader_cls._schemes)
        for name, loader in dict(
                safe_scheme_loaders(load_from_local),
                load_from_local=load_from_local).items():
            if hasattr(mme_ckpt, name):
                self._swap(lambda n=name: getattr(mme_ckpt, n),
                           lambda fn, n=name: setattr(mme_ckpt, n, fn),
                           loader)
        self._swap(lambda: WEIGHT_INITIALIZERS.get('Pretrained'),
                   lambda cls: WEIGHT_INITIALIZERS.register_module(
                       name='Pretrained', force=True, module=cls),
                   SafePretrainedInit)
        return token

    def exit(self, token: Optional[object] = None) -> None:
        """Close the block of ``token`` (None: every open block); the
        last one restores MMEngine. A block closed already is ignored."""
        if token is None:
            self.open_blocks.clear()
        elif token in self.open_blocks:
            self.open_blocks.discard(token)
        else:
            return
        if self.depth > 0 or self.schemes is None:
            return
        while self.saved:
            get, put, old, new = self.saved.pop()
            if get() is new:
                put(old)
        # MMEngine's own scheme table back (the very dict object), plus any
        # scheme someone else registered or replaced inside the block.
        loader_cls = mme_ckpt.CheckpointLoader
        added = {p: fn for p, fn in loader_cls._schemes.items()
                 if self.installed.get(p) is not fn}
        self.schemes.clear()
        self.schemes.update(self.scheme_items)
        loader_cls._schemes = self.schemes
        for prefix, loader in added.items():
            _register_scheme(prefix, loader)
        self.schemes = self.installed = self.scheme_items = None


def _register_scheme(prefix: str, loader: Callable) -> None:
    mme_ckpt.CheckpointLoader.register_scheme(prefix, loader, force=True)


_HARDENING = _Hardening()


@contextlib.contextmanager
def hardened_checkpoints() -> Iterator[None]:
    """Within the block, MMEngine loads every checkpoint safely.

    ``import mdc_plugin`` changes nothing in MMEngine. Runs of configs built
    on ``configs/_base_/default_runtime.py`` get this through the registered
    :class:`~mdc_plugin.engine.hooks.SafeCheckpointLoadingHook`
    (``before_run`` to ``after_run``); the tools wrap their work in it; code
    of your own that loads through MMEngine (``mmpretrain.get_model``,
    ``mmengine.runner.load_checkpoint``, ``init_cfg`` ``Pretrained``) can do
    the same::

        from mdc_plugin.utils import hardened_checkpoints
        with hardened_checkpoints():
            model = get_model(cfg, pretrained='https://...')

    What it changes and restores: see :class:`_Hardening`. Re-entrant
    (nested blocks restore at the outermost exit); not thread-local.
    """
    token = _HARDENING.enter()
    try:
        yield
    finally:
        _HARDENING.exit(token)


def hardening_active() -> bool:
    """Whether a :func:`hardened_checkpoints` block is open."""
    return _HARDENING.depth > 0


def close_abandoned_hardening() -> None:
    """Close every open :func:`hardened_checkpoints` block (a run that
    raised never reaches ``after_run``, so its hook keeps the block open
    until the runner is garbage collected): MMEngine is as it was."""
    _HARDENING.exit(None)


# ---------------------------------------------------------------- saving --
_ORIG_SAVE_CHECKPOINT = mme_ckpt.save_checkpoint


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
    """MMEngine's ``save_checkpoint``, atomic for local files (what
    :class:`~mdc_plugin.engine.hooks.AtomicCheckpointHook` writes with).

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
        writer = _WriteErrors(f)
        try:
            torch.save(checkpoint, writer)
            f.flush()
        except (RuntimeError, OSError) as err:
            _raise_if_disk_full(writer.error or err, filename, err)
            raise


class _WriteErrors:
    """File proxy for ``torch.save`` that keeps the OSError of a failed
    write (torch reports it only as ``enforce fail at inline_container``).
    """

    def __init__(self, f) -> None:
        self._f = f
        self.error: Optional[OSError] = None

    def write(self, data) -> int:
        try:
            return self._f.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self._f.flush()


def _raise_if_disk_full(cause: BaseException, filename: str,
                        err: BaseException) -> None:
    """Name a full disk and what to do about it."""
    if not (isinstance(cause, OSError)
            and cause.errno in (errno.ENOSPC, errno.EDQUOT)):
        return
    dirname = osp.dirname(osp.abspath(filename))
    free = shutil.disk_usage(dirname).free
    raise OSError(
        cause.errno,
        f'No space left on the device to write checkpoint "{filename}" '
        f'({free / 2**20:.1f} MiB free in {dirname}); nothing was replaced '
        'and the previous checkpoints are kept. Free disk space (or lower '
        'CheckpointHook max_keep_ckpts, or use --work-dir on a larger disk) '
        'and resume with --resume.') from err


