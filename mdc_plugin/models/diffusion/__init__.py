"""Diffusion utilities: masking and commit schedules."""
from .schedules import commit_counts

__all__ = ['commit_counts']
