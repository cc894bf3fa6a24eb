"""Parity: CaptionMetric == pycocoevalcap's COCOEvalCap (within 1e-4).

600 images x 5 references from the seeded generator in
``tools/benchmarks/synthetic_captions.py`` (COCO-like captions with
punctuation, contractions, numbers, some non-ASCII), scored by COCOEvalCap
(SPICE stubbed out, it would download CoreNLP) and by CaptionMetric through
``process``/``evaluate``; corpus and per-image scores are compared.
"""
import json
import shutil

import pytest

from coco_reference import COCO_TO_METRIC_KEYS, run_coco_eval_cap
from synthetic_captions import make_corpus

from mdc_plugin.evaluation.metrics import CaptionMetric

NUM_IMAGES = 600
TOL = 1e-4


def _java_or_skip():
    if shutil.which('java') is None:
        reason = ('Java not found: COCOEvalCap (PTB tokenizer, METEOR) and '
                  'CaptionMetric\'s METEOR need a `java` on PATH')
        print(reason)
        pytest.skip(reason)


def test_parity_with_coco_eval_cap(tmp_path):
    _java_or_skip()
    refs, preds, _ = make_corpus(NUM_IMAGES, refs_per_image=5, seed=2024)
    assert len(refs) >= 500 and all(len(r) == 5 for r in refs.values())

    dump = tmp_path / 'per_image.json'
    metric = CaptionMetric(
        scores=['BLEU', 'METEOR', 'ROUGE-L', 'CIDEr'],
        dump_per_image=str(dump), meteor_warmup=0)
    ids = list(refs)
    for start in range(0, len(ids), 64):  # batches, as a ValLoop would
        metric.process(None, [
            dict(image_id=i, pred_caption=preds[i], gt_caption=refs[i])
            for i in ids[start:start + 64]
        ])
    ours = metric.evaluate(len(ids))

    expected, per_image = run_coco_eval_cap(refs, preds)
    assert set(expected) == {'BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4',
                             'METEOR', 'ROUGE-L', 'CIDEr'}
    for key, value in expected.items():
        assert abs(ours[f'caption/{key}'] - value) <= TOL, (
            key, ours[f'caption/{key}'], value)

    rows = {row['image_id']: row for row in json.loads(dump.read_text())}
    for coco_key, key in COCO_TO_METRIC_KEYS.items():
        if key not in expected:
            continue
        worst = max(abs(rows[i][key] - per_image[i][coco_key]) for i in ids)
        assert worst <= TOL, (key, worst)
