"""mdc_plugin: diffusion-based image captioning for MMPretrain.

Importing the package registers every component into MMPretrain's
registries (``MODELS``, ``DATASETS``, ``TRANSFORMS``, ``METRICS``,
``HOOKS``, ``TOKENIZER``) and makes MMEngine checkpoints load safely under
torch >= 2.6. Configs enable it with::

    custom_imports = dict(imports=['mdc_plugin'], allow_failed_imports=False)
"""
from .version import __version__
from .utils import safe_checkpoint  # noqa: F401  (must come before any load)
from . import datasets, engine, evaluation, models  # noqa: F401,E402

__all__ = ['__version__']
