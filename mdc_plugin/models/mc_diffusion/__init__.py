"""MC-Diffusion: D3PM mask-and-replace caption head and condition guidance."""
from .captioner import MCDiffusionCaptioner
from .d3pm_head import D3PMCaptionHead, timestep_pairs
from .guidance import MaskedConditionGuidance
from .mask_replace import MaskReplaceTransition
from .vq_image_tokenizer import VQImageTokenizer

__all__ = ['D3PMCaptionHead', 'MaskedConditionGuidance',
           'MaskReplaceTransition', 'MCDiffusionCaptioner',
           'VQImageTokenizer', 'timestep_pairs']
