"""Evaluation: CaptionMetric and the functional scores.

* :class:`~.metrics.CaptionMetric` (``METRICS``): COCO caption scores equal
  to pycocoevalcap's, CLIPScore / RefCLIPScore and diversity; its image-text
  scorers live in :mod:`mdc_plugin.models.scorers` (models never import
  evaluation).
* :mod:`.functional`: the scores as plain functions.
* :func:`.caption_eval.caption_and_score`: caption a dataloader through
  ``model.predict`` and score it (the sweeps' and benchmarks' loop).
* :func:`.caption_likelihood.caption_likelihood`: nats per real token of
  the reference captions (Cap exact; MDC chain rule and ELBO).
* :func:`.matching_eval.score_and_match`: image-text matching accuracy of a
  matching benchmark through ``model.score``.
"""
from . import metrics  # noqa: F401
from .metrics import CaptionMetric  # noqa: F401
from .caption_eval import caption_and_score  # noqa: F401
from .caption_likelihood import caption_likelihood  # noqa: F401
from .matching_eval import score_and_match  # noqa: F401
