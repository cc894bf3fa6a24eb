"""Top-level models (MMEngine BaseModel subclasses)."""
from .contrastive import ContrastiveImageText
from .image_captioner import ImageCaptioner
from .mc_diffusion_captioner import MCDiffusionCaptioner
from .prefix_diffusion_captioner import PrefixDiffusionCaptioner
from .scoring import CaptionScoringUnsupported
from .utils import count_parameters

__all__ = ['ImageCaptioner', 'ContrastiveImageText', 'MCDiffusionCaptioner',
           'PrefixDiffusionCaptioner', 'CaptionScoringUnsupported',
           'count_parameters']
