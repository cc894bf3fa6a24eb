"""Metrics registered in ``mmpretrain.registry.METRICS`` (CaptionMetric,
ShapeWordAccuracy) and MMEngine's ``METRICS`` (all three)."""
from .caption_metric import VALID_SCORES, CaptionMetric
from .dump_results import AtomicDumpResults
from .image_text_matching import ImageTextMatchingAccuracy
from .references import load_caption_annotations, normalize_image_id
from .shape_word_accuracy import (READINGS, ShapeWordAccuracy,
                                  caption_reading, shape_word_hits)

__all__ = ['CaptionMetric', 'VALID_SCORES', 'AtomicDumpResults',
           'ShapeWordAccuracy', 'shape_word_hits', 'caption_reading',
           'READINGS', 'load_caption_annotations', 'normalize_image_id']
__all__ += ['ImageTextMatchingAccuracy']
