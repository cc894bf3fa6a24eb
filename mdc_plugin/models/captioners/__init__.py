"""Top-level models (MMEngine BaseModel subclasses)."""
from .contrastive import ContrastiveImageText
from .image_captioner import ImageCaptioner

__all__ = ['ImageCaptioner', 'ContrastiveImageText']
