"""Hooks: linear probe of frozen features."""
from .linear_probe_hook import LinearProbeHook

__all__ = ['LinearProbeHook']
