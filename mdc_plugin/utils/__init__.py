"""Utilities: safe checkpoint I/O, atomic writes and loud pretrained loading.

Importing this package patches MMEngine's checkpoint loading/saving (see
:mod:`mdc_plugin.utils.safe_checkpoint`) and registers the fail-loudly
``Pretrained`` initializer (see :mod:`mdc_plugin.utils.weights`).
"""
from .safe_checkpoint import (SAFE_GLOBALS, UnsafeCheckpointError,
                              apply_patches, atomic_save_checkpoint,
                              load_checkpoint_safely)
from .atomic_io import atomic_dump_json, atomic_write, atomic_write_bytes
from .weights import (LoadReport, SafePretrainedInit, WeightsNotLoadedError,
                      assert_state_dict_loaded, extract_state_dict,
                      load_state_dict_with_report)

__all__ = [
    'SAFE_GLOBALS', 'UnsafeCheckpointError', 'apply_patches',
    'atomic_save_checkpoint', 'load_checkpoint_safely', 'atomic_write',
    'atomic_write_bytes', 'atomic_dump_json',
    'LoadReport', 'SafePretrainedInit', 'WeightsNotLoadedError',
    'assert_state_dict_loaded', 'extract_state_dict',
    'load_state_dict_with_report'
]
