"""mdc_plugin: diffusion-based image captioning for MMPretrain.

Importing the package registers every component into MMPretrain's
registries (``MODELS``, ``DATASETS``, ``TRANSFORMS``, ``METRICS``,
``HOOKS``, ``LOOPS``, ``TOKENIZER``) and changes nothing else: MMEngine's
loaders, savers, hooks and loops stay as they are. Configs enable it with::

    custom_imports = dict(imports=['mdc_plugin'], allow_failed_imports=False)

The checkpoint hardening (safe loading under torch >= 2.6, atomic saving,
exact resume) is components chosen in config, on in every config built on
``configs/_base_/default_runtime.py``; see ``docs/reliability.md``.
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
    from . import datasets, engine, evaluation, models  # noqa: F401,E402

__all__ = ['__version__']
