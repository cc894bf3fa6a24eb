"""The shipped COCO and CUB evaluators score METEOR (Java present) and say
clearly when it is skipped; a bare MMEngine ``Evaluator`` finds
``CaptionMetric`` outside the runner."""
import os.path as osp

import pytest
from fixtures_data import REPO
from mmengine.config import Config

from mdc_plugin.evaluation.functional.java import java_executable

BASES = ['configs/_base_/datasets/coco_karpathy_caption.py',
         'configs/_base_/datasets/cub_caption.py']
SAMPLES = [dict(image_id=i, pred_caption=p, gt_caption=refs) for i, (p, refs)
           in enumerate([('a dog on a couch', ['A dog lies on a couch.']),
                         ('a red bus', ['A red bus on the street.',
                                        'A bus parked.'])])]


@pytest.mark.parametrize('base', BASES)
def test_shipped_evaluators_include_meteor(base):
    from mdc_plugin.evaluation.metrics import CaptionMetric
    cfg = Config.fromfile(osp.join(REPO, base))
    for key in ('val_evaluator', 'test_evaluator'):
        assert 'METEOR' in cfg[key]['scores'], (base, key)
    if java_executable() is None:
        pytest.skip('no java: METEOR cannot run here')
    metric = CaptionMetric(**{k: v for k, v in cfg.val_evaluator.items()
                              if k != 'type'}, meteor_warmup=0)
    metric.process(None, SAMPLES)
    result = metric.evaluate(len(SAMPLES))
    assert 0 < result['caption/METEOR'] < 1


def test_meteor_skipped_without_java_is_said_after_evaluation(
        monkeypatch, capsys):
    from mmengine.logging import MMLogger

    from mdc_plugin.evaluation.metrics import caption_metric
    monkeypatch.setattr(caption_metric, 'java_executable', lambda: None)
    MMLogger.get_instance('mdc_meteor_skip_test')
    metric = caption_metric.CaptionMetric(
        scores=['BLEU', 'METEOR', 'CIDEr'])
    metric.process(None, SAMPLES)
    result = metric.evaluate(len(SAMPLES))
    assert 'caption/METEOR' not in result and 'caption/CIDEr' in result
    out = capsys.readouterr()
    assert 'METEOR was not computed (no `java` executable on PATH)' in \
        out.out + out.err


def test_bare_mmengine_evaluator_finds_caption_metric(monkeypatch):
    """No runner, no default scope (as in a fresh script)."""
    from mmengine.evaluator import Evaluator
    from mmengine.registry import DefaultScope
    monkeypatch.setattr(DefaultScope, 'get_current_instance',
                        classmethod(lambda cls: None))
    ev = Evaluator([dict(type='CaptionMetric', scores=['BLEU', 'CIDEr'])])
    ev.process(SAMPLES[:1])
    assert ev.evaluate(1)['caption/BLEU-1'] == pytest.approx(0.8187, 1e-3)
