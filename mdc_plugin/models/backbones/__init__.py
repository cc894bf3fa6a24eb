"""Backbone variants and adaptors for reusing MMPretrain ViTs.

* :class:`CheckpointVisionTransformer`: MMPretrain's ``VisionTransformer``
  with an activation-checkpointing switch (``with_cp``); same weights.
* :class:`ViTSimplePyramid`: ViTDet's simple feature pyramid, turning a
  plain ViT's single-stride feature map into a multi-scale pyramid for
  detection necks/heads (used by ``configs/downstream/``).
"""
from .vit_checkpoint import CheckpointVisionTransformer
from .vit_simple_pyramid import ViTSimplePyramid

__all__ = ['CheckpointVisionTransformer', 'ViTSimplePyramid']
