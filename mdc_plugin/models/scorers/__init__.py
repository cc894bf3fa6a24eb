"""Image-text scorers: CLIPScore / RefCLIPScore in ``CaptionMetric`` and
candidate reranking (:mod:`.rerank`) in the Prefix-diffusion captioner.

They are registered in ``mmpretrain.registry.MODELS`` (plain classes, not
``nn.Module``), so ``CaptionMetric(clip_scorer=dict(type=...))`` builds
them like any other config object.
"""
from .base import (CLIP_SCORE_W, ImageTextScorer, clip_score_from_cosine,
                   images_to_uint8_hwc, ref_clip_score_from)
from .open_clip_scorer import OpenCLIPScorer
from .plugin_model_scorer import PluginModelScorer

__all__ = [
    'ImageTextScorer', 'OpenCLIPScorer', 'PluginModelScorer', 'CLIP_SCORE_W',
    'clip_score_from_cosine', 'ref_clip_score_from', 'images_to_uint8_hwc'
]
