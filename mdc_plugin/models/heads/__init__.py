"""Caption heads: each owns its loss and its decoding."""
from .autoregressive_head import AutoregressiveCaptionHead
from .base_caption_head import BaseCaptionHead
from .d3pm_head import D3PMCaptionHead
from .masked_diffusion_head import MaskedDiffusionCaptionHead
from .prefix_diffusion_head import PrefixDiffusionHead

__all__ = ['BaseCaptionHead', 'MaskedDiffusionCaptionHead',
           'AutoregressiveCaptionHead', 'D3PMCaptionHead',
           'PrefixDiffusionHead']
