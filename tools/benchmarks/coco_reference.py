"""Run pycocoevalcap's ``COCOEvalCap`` as the reference implementation.

``COCOEvalCap.evaluate`` always builds ``Spice()``, whose constructor tries
to download Stanford CoreNLP. :func:`run_coco_eval_cap` swaps SPICE for a
stub (unless asked for) so BLEU/METEOR/ROUGE-L/CIDEr can be computed
offline exactly as the toolkit does. Used by the parity tests and the
benchmark, never by ``CaptionMetric`` itself.

A benchmark/test fixture, kept beside ``benchmark_caption_metric.py`` (which
imports it as a sibling) and put on ``sys.path`` by ``tests/conftest.py``;
not part of the installed package.
"""
import contextlib
import io
import json
import os
import tempfile
from typing import Dict, List, Tuple
from unittest import mock

#: COCOEvalCap key -> CaptionMetric key.
COCO_TO_METRIC_KEYS = {
    'Bleu_1': 'BLEU-1',
    'Bleu_2': 'BLEU-2',
    'Bleu_3': 'BLEU-3',
    'Bleu_4': 'BLEU-4',
    'METEOR': 'METEOR',
    'ROUGE_L': 'ROUGE-L',
    'CIDEr': 'CIDEr',
    'SPICE': 'SPICE',
}


class _SkippedSpice:
    """Stand-in for ``pycocoevalcap.spice.spice.Spice`` that scores nothing."""

    def compute_score(self, gts: dict, res: dict) -> Tuple[float, list]:
        return float('nan'), [float('nan')] * len(gts)

    def method(self) -> str:
        return 'SPICE'


def run_coco_eval_cap(refs: Dict[int, List[str]],
                      preds: Dict[int, str],
                      with_spice: bool = False,
                      quiet: bool = True) -> Tuple[Dict[str, float], dict]:
    """Score ``preds`` against ``refs`` with pycocoevalcap's COCOEvalCap.

    Args:
        refs (dict): image id (int) -> list of reference str.
        preds (dict): image id (int) -> predicted str (same ids as ``refs``).
        with_spice (bool): Run the real SPICE (needs its CoreNLP jars).
        quiet (bool): Swallow the toolkit's prints.

    Returns:
        tuple: ``(scores, per_image)``; ``scores`` maps CaptionMetric keys
        (``'BLEU-4'``, ``'CIDEr'``, ...) to float, ``per_image`` is
        ``COCOEvalCap.imgToEval`` (image id -> dict of per-image scores).
    """
    from pycocoevalcap.eval import COCOEvalCap
    from pycocotools.coco import COCO

    from synthetic_captions import to_coco_format
    ann, results = to_coco_format(refs, preds)
    with tempfile.TemporaryDirectory() as tmp:
        ann_file = os.path.join(tmp, 'ann.json')
        with open(ann_file, 'w') as f:
            json.dump(ann, f)
        sink = io.StringIO()
        redirect = contextlib.redirect_stdout(sink) if quiet else \
            contextlib.nullcontext()
        patch = contextlib.nullcontext() if with_spice else mock.patch(
            'pycocoevalcap.eval.Spice', _SkippedSpice)
        with redirect, patch:
            coco = COCO(ann_file)
            coco_res = coco.loadRes(results)
            coco_eval = COCOEvalCap(coco, coco_res)
            coco_eval.params['image_id'] = coco_res.getImgIds()
            coco_eval.evaluate()
    scores = {
        COCO_TO_METRIC_KEYS[k]: float(v)
        for k, v in coco_eval.eval.items()
        if with_spice or k != 'SPICE'
    }
    return scores, coco_eval.imgToEval
