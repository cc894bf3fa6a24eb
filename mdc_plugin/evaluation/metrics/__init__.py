"""Metrics registered in ``mmpretrain.registry.METRICS`` (CaptionMetric)
and MMEngine's ``METRICS`` (AtomicDumpResults)."""
from .caption_metric import VALID_SCORES, CaptionMetric
from .dump_results import AtomicDumpResults
from .references import load_caption_annotations, normalize_image_id

__all__ = ['CaptionMetric', 'VALID_SCORES', 'AtomicDumpResults',
           'load_caption_annotations', 'normalize_image_id']
