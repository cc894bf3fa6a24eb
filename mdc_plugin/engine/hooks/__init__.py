"""Hooks: linear probe, caption visualisation, non-finite loss guard, the
model for metrics that run it, safe checkpoint loading and atomic saving."""
from .bind_model_hook import BindModelToMetricsHook
from .checkpoint_hooks import AtomicCheckpointHook, SafeCheckpointLoadingHook
from .caption_visualization_hook import CaptionVisualizationHook
from .linear_probe_hook import LinearProbeHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook

__all__ = [
    'BindModelToMetricsHook', 'CaptionVisualizationHook', 'LinearProbeHook',
    'NonFiniteLossError', 'NonFiniteLossHook', 'AtomicCheckpointHook',
    'SafeCheckpointLoadingHook'
]
