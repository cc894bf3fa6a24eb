"""Atomic JSON writing (temp file in the same folder + ``os.replace``)."""
import json
import math
import os
import tempfile
from typing import Any


def _jsonable(obj: Any) -> Any:
    """Replace NaN/inf by None and numpy/torch scalars by Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
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


def atomic_write_json(path: str, obj: Any, indent: int = 1) -> str:
    """Write ``obj`` as JSON to ``path`` atomically; return the path.

    Readers see either the old file or the complete new one, never a
    partial write. NaN/inf are written as ``null``.
    """
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                               suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'w', encoding='utf-8') as f:
            json.dump(_jsonable(obj), f, indent=indent, ensure_ascii=False,
                      allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path
