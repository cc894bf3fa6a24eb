"""Evaluation: CaptionMetric and its scorers.

* :class:`~.metrics.CaptionMetric` (``METRICS``): COCO caption scores equal
  to pycocoevalcap's, CLIPScore / RefCLIPScore and diversity.
* :mod:`.scorers` (``MODELS``): image-text scorers for CLIPScore.
* :mod:`.functional`: the scores as plain functions.
"""
from . import metrics, scorers  # noqa: F401
from .metrics import CaptionMetric  # noqa: F401
