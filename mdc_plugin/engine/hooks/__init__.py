"""Hooks: linear probe, caption visualisation, non-finite loss guard."""
from .caption_visualization_hook import CaptionVisualizationHook
from .linear_probe_hook import LinearProbeHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook

__all__ = [
    'CaptionVisualizationHook', 'LinearProbeHook', 'NonFiniteLossError',
    'NonFiniteLossHook'
]
