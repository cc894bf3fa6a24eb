"""Engine extensions: hooks, FSDP wrap policy."""
from . import fsdp, hooks  # noqa: F401
