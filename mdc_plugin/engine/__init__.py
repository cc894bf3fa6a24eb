"""Engine extensions: hooks, optimizer constructors, FSDP wrap policy,
exact resume."""
from . import exact_resume, fsdp, hooks, optimizers  # noqa: F401
