"""Caption heads: each owns its loss and its decoding."""
from .autoregressive_head import AutoregressiveCaptionHead
from .base_caption_head import BaseCaptionHead
from .masked_diffusion_head import MaskedDiffusionCaptionHead

__all__ = ['BaseCaptionHead', 'MaskedDiffusionCaptionHead',
           'AutoregressiveCaptionHead']
