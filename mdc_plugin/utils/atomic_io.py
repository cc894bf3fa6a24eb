"""Crash-safe file writes: temp file in the same directory + fsync + rename.

A reader (or a resumed job) sees either the old file or the complete new
one, never a truncated file, even if the writer is killed mid-write.
"""
import contextlib
import json
import math
import os
import os.path as osp
import tempfile
from typing import IO, Any, Iterator

# Read the process umask once so atomic files get the same permissions as
# files created with ``open(path, 'w')`` (``mkstemp`` always uses 0o600).
_UMASK = os.umask(0)
os.umask(_UMASK)


def _fsync_dir(dirname: str) -> None:
    """Persist a rename by fsync-ing its directory (best effort)."""
    try:
        fd = os.open(dirname, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str, mode: str = 'wb', **open_kwargs) -> Iterator[IO]:
    """Open a temp file next to ``path``; on success it replaces ``path``.

    Args:
        path (str): The final file path. Its directory is created if needed.
        mode (str): ``'wb'`` or ``'w'``.
        **open_kwargs: Extra arguments for :func:`os.fdopen` (e.g.
            ``encoding``).

    Yields:
        The open temp file. If the ``with`` body raises, the temp file is
        removed and ``path`` is left untouched.
    """
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_write: mode must be "w" or "wb", got {mode}')
    path = os.fspath(path)
    dirname = osp.dirname(osp.abspath(path))
    os.makedirs(dirname, exist_ok=True)
    fd, tmp_path = tempfile.mkstemp(
        prefix=f'.{osp.basename(path)}.', suffix='.tmp', dir=dirname)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp_path)
        raise
    _fsync_dir(dirname)


def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, 'wb') as f:
        f.write(data)


def atomic_dump_json(obj: Any, path: str, **json_kwargs) -> None:
    """Dump ``obj`` as JSON to ``path`` atomically (``indent=2`` unless
    given; other keywords go to :func:`json.dump`)."""
    json_kwargs.setdefault('indent', 2)
    with atomic_write(path, 'w', encoding='utf-8') as f:
        json.dump(obj, f, **json_kwargs)
        f.write('\n')


def json_safe(obj: Any) -> Any:
    """Copy of ``obj`` that strict JSON accepts: NaN/inf -> None, numpy /
    torch scalars -> Python numbers, dict keys -> str, others -> str."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, 'item') and callable(obj.item):
        try:
            obj = obj.item()
        except (ValueError, RuntimeError):
            return str(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    return str(obj)
