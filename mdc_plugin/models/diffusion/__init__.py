"""The diffusion core shared by the caption heads.

* :mod:`.schedules`: every schedule (MDC commit counts, D3PM
  mask-and-replace, Gaussian noise) and the timestep grids.
* :mod:`.timestep_embedding`: sinusoidal timestep embedding + time MLP.
* :mod:`.sampling`: the strict sampler-config merge and the random draws.
* :mod:`.mask_replace`: VQ-Diffusion's mask-and-replace transition.
* :mod:`.guidance`: condition masking with MCS or CFG guidance.
"""
from .guidance import MaskedConditionGuidance
from .mask_replace import LOG_ZERO, MaskReplaceTransition
from .sampling import gumbel_draw, merge_sampler_cfg, softmax_draw
from .schedules import (COMMIT_SCHEDULES, NOISE_SCHEDULES, commit_counts,
                        descending_grid, mask_replace_schedule,
                        noise_schedule, sampling_timesteps, timestep_pairs)
from .timestep_embedding import TimestepMLP, timestep_embedding

__all__ = [
    'MaskedConditionGuidance', 'LOG_ZERO', 'MaskReplaceTransition',
    'gumbel_draw', 'merge_sampler_cfg', 'softmax_draw', 'COMMIT_SCHEDULES',
    'NOISE_SCHEDULES', 'commit_counts', 'descending_grid',
    'mask_replace_schedule', 'noise_schedule', 'sampling_timesteps',
    'timestep_pairs', 'TimestepMLP', 'timestep_embedding'
]
