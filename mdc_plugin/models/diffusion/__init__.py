"""Diffusion pieces shared by the caption heads: schedules, transitions
and condition guidance."""
from .guidance import MaskedConditionGuidance
from .mask_replace import LOG_ZERO, MaskReplaceTransition
from .noise_schedules import (NOISE_SCHEDULES, noise_schedule,
                              sampling_timesteps)
from .schedules import commit_counts

__all__ = ['commit_counts', 'MaskedConditionGuidance', 'LOG_ZERO',
           'MaskReplaceTransition', 'NOISE_SCHEDULES', 'noise_schedule',
           'sampling_timesteps']
