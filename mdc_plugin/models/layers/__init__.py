"""Building blocks shared by the caption heads."""
from .caption_transformer import Attention, CaptionBlock, CaptionTransformer

__all__ = ['Attention', 'CaptionBlock', 'CaptionTransformer']
