"""Engine extensions: hooks."""
from . import hooks  # noqa: F401
