"""mdc_plugin: diffusion-based image captioning for MMPretrain.

Importing the package registers every component into MMPretrain's
registries (``MODELS``, ``DATASETS``, ``TRANSFORMS``, ``METRICS``,
``HOOKS``, ``TOKENIZER``) and makes MMEngine checkpoints load safely under
torch >= 2.6. Configs enable it with::

    custom_imports = dict(imports=['mdc_plugin'], allow_failed_imports=False)
"""
import warnings

from .version import __version__

# mmcv-lite warns on import that its compiled MultiScaleDeformableAttention
# is missing; nothing here uses it. Hidden while *this* import runs (the
# filters are restored afterwards: importing the plugin changes no filter).
with warnings.catch_warnings():
    warnings.filterwarnings(
        'ignore', message='Fail to import ``MultiScaleDeformableAttention``',
        category=UserWarning)
    from .utils import safe_checkpoint  # noqa: F401  (before any load)
    from . import datasets, engine, evaluation, models  # noqa: F401,E402

__all__ = ['__version__']
