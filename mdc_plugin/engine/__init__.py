"""Engine extensions: hooks, FSDP wrap policy, exact resume."""
from . import exact_resume, fsdp, hooks  # noqa: F401
