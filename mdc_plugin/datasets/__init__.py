"""Caption datasets and transforms (registered in mmpretrain's registries).
"""
from . import transforms  # noqa: F401
from .aro import (ARO_PERTURBATIONS, AROCOCOOrder, AROFlickr30kOrder,
                  AROVGAttribution, AROVGRelation, BaseImageTextMatching,
                  SpacyModelMissingError, aro_pre_caption)
from .base_caption import BaseCaptionDataset, CorruptEntryError
from .coco_karpathy import COCOKarpathyCaption
from .cub_caption import CUBCaption
from .fashion_matching import FashionSceneMatching
from .fashion_scene_caption import FashionMNISTItems, FashionSceneCaption
from .shapes_caption import SyntheticShapesCaption

__all__ = [
    'BaseCaptionDataset', 'CorruptEntryError', 'COCOKarpathyCaption',
    'CUBCaption', 'FashionMNISTItems', 'FashionSceneCaption',
    'FashionSceneMatching',
    'SyntheticShapesCaption'
]
__all__ += [
    'ARO_PERTURBATIONS', 'AROCOCOOrder', 'AROFlickr30kOrder',
    'AROVGAttribution', 'AROVGRelation', 'BaseImageTextMatching',
    'SpacyModelMissingError', 'aro_pre_caption'
]
