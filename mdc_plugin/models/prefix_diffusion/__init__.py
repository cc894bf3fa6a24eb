"""Prefix-diffusion: image-prefix continuous embedding diffusion captioning.

Frozen image encoder -> :class:`PrefixMapper` -> :class:`PrefixDiffusionHead`
(Diffusion-LM-style denoiser) -> n candidates reranked by an image-text
scorer (:class:`PrefixDiffusionCaptioner`).
"""
from .captioner import PrefixDiffusionCaptioner, count_parameters
from .encoders import (BackboneImageEncoder, ContrastiveImageEncoder,
                       FrozenImageEncoder, OpenCLIPImageEncoder)
from .head import PrefixDiffusionHead
from .mapper import PrefixMapper
from .optim import TrainableParamsOptimWrapperConstructor
from .rerank import check_scorer_tokenizer, raw_images, rerank
from .schedules import NOISE_SCHEDULES, noise_schedule, sampling_timesteps

__all__ = [
    'PrefixDiffusionCaptioner', 'count_parameters', 'BackboneImageEncoder',
    'ContrastiveImageEncoder', 'FrozenImageEncoder', 'OpenCLIPImageEncoder',
    'PrefixDiffusionHead', 'PrefixMapper',
    'TrainableParamsOptimWrapperConstructor', 'check_scorer_tokenizer',
    'raw_images', 'rerank', 'NOISE_SCHEDULES', 'noise_schedule',
    'sampling_timesteps'
]
