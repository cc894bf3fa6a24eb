"""Utilities: safe checkpoint I/O, atomic writes and loud pretrained loading.

Importing it changes nothing in MMEngine: :func:`hardened_checkpoints` routes
MMEngine's checkpoint loading through the safe loader for a ``with`` block
(see :mod:`mdc_plugin.utils.safe_checkpoint`).
"""
from .safe_checkpoint import (SAFE_GLOBALS, UnsafeCheckpointError,
                              atomic_save_checkpoint, hardened_checkpoints,
                              load_checkpoint_safely)
from .atomic_io import atomic_dump_json, atomic_write, atomic_write_bytes
from .weights import (LoadReport, SafePretrainedInit, WeightsNotLoadedError,
                      assert_state_dict_loaded, extract_state_dict,
                      load_state_dict_with_report)

__all__ = [
    'SAFE_GLOBALS', 'UnsafeCheckpointError', 'hardened_checkpoints',
    'atomic_save_checkpoint', 'load_checkpoint_safely', 'atomic_write',
    'atomic_write_bytes', 'atomic_dump_json',
    'LoadReport', 'SafePretrainedInit', 'WeightsNotLoadedError',
    'assert_state_dict_loaded', 'extract_state_dict',
    'load_state_dict_with_report'
]
