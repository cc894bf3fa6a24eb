"""Evaluation: CaptionMetric and its scorers."""
from . import metrics, scorers  # noqa: F401
