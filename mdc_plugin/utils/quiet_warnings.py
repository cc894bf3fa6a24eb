"""Silence the known-harmless warnings every tool printed, and only those.

* mmcv-lite: ``Fail to import ``MultiScaleDeformableAttention`` from
  ``mmcv.ops.multi_scale_deform_attn``, You should install ``mmcv`` rather
  than ``mmcv-lite`` if you need this module.`` (a ``UserWarning`` from
  ``mmcv.cnn.bricks.transformer``, when MMPretrain imports it). Nothing in
  this plugin uses that op; mmcv-lite is enough (see the README).
* MMEngine: ``"FileClient" will be deprecated in future. ...`` and
  ``"HardDiskBackend" is the alias of "LocalBackend" and the former will be
  deprecated in future.`` (logged at WARNING through ``print_log`` each
  time ``CheckpointHook`` builds its deprecated ``FileClient``).

:func:`silence_known_warnings` is for the entry points under ``tools/``
(each calls it right after its imports). ``import mdc_plugin`` hides the
mmcv-lite warning only while its own import runs (``catch_warnings``, so no
filter outlives it) and changes no warning filter or logger.

Every other warning and log message is left as it is.
"""
import logging
import re
import warnings

__all__ = ['MMCV_LITE_WARNING', 'MMENGINE_DEPRECATION_LOGS',
           'silence_known_warnings', 'is_known_harmless_log']

#: Start of mmcv-lite's warning (a ``warnings`` regex, matched at the start).
MMCV_LITE_WARNING = r'Fail to import ``MultiScaleDeformableAttention`` from '
#: Module that issues it.
_MMCV_LITE_MODULE = r'mmcv\.cnn\.bricks\.transformer\Z'

#: Starts of MMEngine's deprecation log messages (logged, not warned).
MMENGINE_DEPRECATION_LOGS = (
    '"FileClient" will be deprecated in future. Please use io functions',
    '"HardDiskBackend" is the alias of "LocalBackend" and the former will '
    'be deprecated in future.',
)


def is_known_harmless_log(record: logging.LogRecord) -> bool:
    """Whether ``record`` is one of :data:`MMENGINE_DEPRECATION_LOGS`."""
    if record.levelno != logging.WARNING:
        return False
    msg = record.msg
    return isinstance(msg, str) and msg.startswith(MMENGINE_DEPRECATION_LOGS)


def _quiet_filter(original):
    """``MMLogger.filter`` that also drops the known deprecation logs."""

    def filter(self, record):  # noqa: A001 - logging.Filterer API
        if is_known_harmless_log(record):
            return False
        return original(self, record)

    filter._mdc_quiet = True
    filter._mdc_original = original
    return filter


def silence_known_warnings() -> None:
    """Hide exactly the warnings listed in the module docstring.

    Adds one ``warnings`` filter (mmcv-lite's message from its module) and
    makes ``MMLogger`` (every instance, also those created later) drop the
    two MMEngine deprecation messages. Idempotent.
    """
    warnings.filterwarnings(
        'ignore',
        message=re.escape(MMCV_LITE_WARNING),
        category=UserWarning,
        module=_MMCV_LITE_MODULE)
    from mmengine.logging import MMLogger  # no mmcv import
    if not getattr(MMLogger.filter, '_mdc_quiet', False):
        MMLogger.filter = _quiet_filter(MMLogger.filter)
