"""Engine extensions: hooks (checkpoint hardening included), optimizer
constructors, FSDP wrap policy, exact-resume training loops. Importing
registers them; nothing in MMEngine is changed."""
from . import exact_resume, fsdp, hooks, optimizers  # noqa: F401
