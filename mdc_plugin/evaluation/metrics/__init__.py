"""Metrics registered in ``mmpretrain.registry.METRICS``."""
from .caption_metric import VALID_SCORES, CaptionMetric
from .references import load_caption_annotations, normalize_image_id

__all__ = ['CaptionMetric', 'VALID_SCORES', 'load_caption_annotations',
           'normalize_image_id']
