"""Caption datasets and transforms (registered in mmpretrain's registries).
"""
from . import transforms  # noqa: F401
from .base_caption import BaseCaptionDataset, CorruptEntryError
from .coco_karpathy import COCOKarpathyCaption
from .cub_caption import CUBCaption
from .shapes_caption import SyntheticShapesCaption

__all__ = [
    'BaseCaptionDataset', 'CorruptEntryError', 'COCOKarpathyCaption',
    'CUBCaption', 'SyntheticShapesCaption'
]
