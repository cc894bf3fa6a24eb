"""CaptionMetric: interface, bad input, diversity, dumps, SPICE skipping."""
import json
import math
import os
import shutil

import pytest
from mmengine.evaluator import Evaluator
from mmengine.registry import DefaultScope
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

from mdc_plugin.evaluation.metrics import caption_metric as cm_module
from mdc_plugin.evaluation.metrics import CaptionMetric

needs_java = pytest.mark.skipif(
    shutil.which('java') is None,
    reason='Java not found: pycocoevalcap\'s PTB tokenizer cannot run')

# No METEOR here (its JVM is exercised in test_caption_metric_parity.py).
FAST = ['BLEU', 'ROUGE-L', 'CIDEr']

REFS = {
    1: ['A man riding a wave on top of a surfboard.',
        'A surfer rides a large wave in the ocean.'],
    2: ['Two dogs playing with a frisbee in the park',
        'Dogs run after a red frisbee on the grass.'],
    3: ['A kitchen with a stove, a sink and a refrigerator.',
        'An empty kitchen with white cabinets.'],
}
PREDS = {1: 'a man surfing a big wave', 2: 'two dogs play in a park',
         3: 'a white kitchen with a sink'}


def _samples(preds=PREDS, refs=REFS, with_refs=True):
    return [dict(image_id=i, pred_caption=p,
                 **({'gt_caption': refs[i]} if with_refs else {}))
            for i, p in preds.items()]


def _evaluate(samples, **kwargs):
    kwargs.setdefault('scores', FAST)
    metric = METRICS.build(dict(type='CaptionMetric', **kwargs))
    metric.process(None, samples)
    return metric.evaluate(len(samples))


def _coco_scorers(preds, refs):
    """pycocoevalcap's own tokenizer + BLEU/ROUGE-L/CIDEr scorers."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer
    tok = PTBTokenizer()
    gts = tok.tokenize({i: [{'caption': c} for c in refs[i]] for i in refs})
    res = tok.tokenize({i: [{'caption': preds[i]}] for i in refs})
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f'BLEU-{k + 1}': b for k, b in enumerate(bleu)}
    out['ROUGE-L'] = Rouge().compute_score(gts, res)[0]
    out['CIDEr'] = Cider().compute_score(gts, res)[0]
    return out


def _assert_close(ours, ref, keys=None, tol=1e-4):
    for key in keys or ref:
        assert abs(ours[f'caption/{key}'] - ref[key]) <= tol, key


# ---------------------------------------------------------------------------
def test_unknown_score_lists_valid_names():
    with pytest.raises(ValueError, match='BLEU.*METEOR.*ROUGE-L.*CIDEr'):
        CaptionMetric(scores=['BLEU', 'WER'])


def test_clip_scores_need_a_scorer():
    with pytest.raises(ValueError, match='clip_scorer'):
        CaptionMetric(scores=['CLIPScore'])


@needs_java
def test_evaluator_from_config_with_datasamples():
    # as in a Runner with default_scope='mmpretrain'
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        evaluator = Evaluator(dict(type='CaptionMetric', scores=FAST))
    samples = []
    for i, pred in PREDS.items():
        ds = DataSample()
        ds.set_field(i, 'image_id', field_type='metainfo')
        ds.set_field(pred, 'pred_caption')
        ds.set_field(REFS[i], 'gt_caption')
        samples.append(ds)
    evaluator.process(data_samples=samples)
    results = evaluator.evaluate(len(samples))
    assert list(results) == [
        'caption/BLEU-1', 'caption/BLEU-2', 'caption/BLEU-3',
        'caption/BLEU-4', 'caption/ROUGE-L', 'caption/CIDEr'
    ]
    _assert_close(results, _coco_scorers(PREDS, REFS), tol=1e-12)


@needs_java
def test_empty_prediction_scored_as_empty_string(mm_log_messages):
    preds = {**PREDS, 2: ''}
    samples = _samples(preds)
    samples[0]['pred_caption'] = None  # None counts as empty too
    preds[1] = ''
    results = _evaluate(samples)
    assert any('2 of 3 predictions are empty' in m for m in mm_log_messages)
    _assert_close(results, _coco_scorers(preds, REFS), tol=1e-12)


@needs_java
def test_prediction_without_references_is_left_out(mm_log_messages):
    samples = _samples()
    del samples[1]['gt_caption']
    results = _evaluate(samples)
    assert any('1 of 3 predictions have no references' in m
               for m in mm_log_messages)
    kept = {i: PREDS[i] for i in (1, 3)}
    _assert_close(results, _coco_scorers(kept, {i: REFS[i] for i in kept}),
                  tol=1e-12)


def test_no_references_at_all_raises():
    with pytest.raises(ValueError, match='none of the 3 predictions has '
                       'references'):
        _evaluate(_samples(with_refs=False))


@needs_java
def test_non_ascii_text():
    refs = {
        1: ['Un café au lait sur une table.', 'A cup of café crème.'],
        2: ['日本の寿司の皿', 'Sushi on a plate — très bon!'],
        3: ['A naïve “smiley” 😀 face', 'Emoji 😀 on a sign.'],
    }
    preds = {1: 'a café on a table', 2: 'sushi 寿司 on a plate',
             3: 'a smiley 😀 sign'}
    results = _evaluate(_samples(preds, refs))
    assert all(math.isfinite(v) for v in results.values())
    _assert_close(results, _coco_scorers(preds, refs), tol=1e-12)


@needs_java
def test_references_from_coco_ann_file(tmp_path):
    ann = dict(images=[dict(id=i) for i in REFS], annotations=[
        dict(id=k, image_id=i, caption=c)
        for k, (i, c) in enumerate((i, c) for i in REFS for c in REFS[i])
    ])
    ann_file = tmp_path / 'captions.json'
    ann_file.write_text(json.dumps(ann))
    # string ids as MMPretrain's COCOCaption dataset gives them
    samples = [dict(image_id=f'{i:012d}', pred_caption=p)
               for i, p in PREDS.items()]
    results = _evaluate(samples, ann_file=str(ann_file))
    _assert_close(results, _coco_scorers(PREDS, REFS), tol=1e-12)


@needs_java
def test_repeated_image_ids_are_dropped():
    samples = _samples()
    padded = samples + [dict(samples[0], pred_caption='something else')]
    assert _evaluate(padded) == _evaluate(samples)


def test_bad_types_have_clear_errors():
    metric = CaptionMetric(scores=FAST)
    with pytest.raises(TypeError, match='pred_caption must be a str'):
        metric.process(None, [dict(pred_caption=['a', 'b'])])
    with pytest.raises(TypeError, match='gt_caption must be'):
        metric.process(None, [dict(pred_caption='a', gt_caption=3)])


def test_diversity_hand_computed():
    samples = [
        dict(image_id=1, pred_caption='A dog runs.',
             pred_captions=['a dog runs fast', 'a dog runs fast']),
        dict(image_id=2, pred_caption='a dog sits',
             pred_captions=['a b c d', 'e f g h']),
        dict(image_id=3, pred_caption='a cat', pred_captions=['only one']),
    ]
    results = _evaluate(samples, scores=['Diversity'])
    expected = {
        # 8 words, 5 distinct; 5 bigrams, 4 distinct; 2 trigrams, 2 distinct
        'Dist-1': 5 / 8, 'Dist-2': 4 / 5, 'Dist-3': 1.0, 'Vocab': 5,
        'MeanLength': 8 / 3,
        # image 1: identical samples (BLEU-4 = 1), image 2: disjoint (0)
        'Self-BLEU-4': 0.5,
        # image 1: 4/8 and 3/8; image 2: 8/8 and 6/8; image 3 (1 sample) out
        'Div-1': (4 / 8 + 8 / 8) / 2, 'Div-2': (3 / 8 + 6 / 8) / 2,
    }
    assert set(results) == {f'caption/{k}' for k in expected}
    _assert_close(results, expected, tol=1e-6)


@needs_java
def test_per_image_dump_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / 'out' / 'per_image.json'
    results = _evaluate(_samples(), dump_per_image=str(path))
    rows = json.loads(path.read_text())
    assert [r['image_id'] for r in rows] == list(PREDS)
    assert rows[1]['pred_caption'] == PREDS[2]
    assert rows[1]['references'] == REFS[2]
    mean_cider = sum(r['CIDEr'] for r in rows) / len(rows)
    assert abs(mean_cider - results['caption/CIDEr']) < 1e-12

    # a failing write leaves the previous file whole and no temp file
    before = path.read_text()

    def broken_dump(*args, **kwargs):
        raise OSError('disk full')

    monkeypatch.setattr('mdc_plugin.utils.atomic_io.json.dump',
                        broken_dump)
    with pytest.raises(OSError, match='disk full'):
        _evaluate(_samples(), dump_per_image=str(path))
    assert path.read_text() == before
    assert os.listdir(path.parent) == ['per_image.json']


def test_spice_skipped_once_without_download(mm_log_messages, monkeypatch):
    from mdc_plugin.evaluation.functional import spice_unavailable_reason
    if spice_unavailable_reason() is None:
        pytest.skip('SPICE can run here (its jars are installed)')
    monkeypatch.setattr(cm_module, '_WARNED', set())

    def no_download(*args, **kwargs):
        raise AssertionError('SPICE must never download anything')

    monkeypatch.setattr('urllib.request.urlretrieve', no_download)
    CaptionMetric(scores=['BLEU', 'SPICE'])
    metric = CaptionMetric(scores=['BLEU', 'SPICE'])
    skipped = [m for m in mm_log_messages if 'SPICE is skipped' in m]
    assert len(skipped) == 1, skipped
    reason = skipped[0]
    assert 'stanford-corenlp-3.6.0' in reason or 'java' in reason
    if shutil.which('java') is not None:
        metric.process(None, _samples())
        results = metric.evaluate(3)
        assert 'caption/BLEU-4' in results
        assert 'caption/SPICE' not in results


def test_meteor_skipped_without_java(mm_log_messages, monkeypatch):
    monkeypatch.setattr(cm_module, '_WARNED', set())
    monkeypatch.setattr(cm_module, 'java_executable', lambda: None)
    metric = CaptionMetric(scores=['BLEU', 'METEOR'])
    assert metric.ref_scores == ['BLEU']
    assert any('METEOR is skipped: no `java`' in m for m in mm_log_messages)


def test_spice_runs_the_jar_when_present(monkeypatch, tmp_path):
    """With the jars present, SPICE runs spice-1.0.jar like the toolkit."""
    from mdc_plugin.evaluation.functional import spice as spice_module
    monkeypatch.setattr(spice_module, 'missing_spice_files', lambda: [])
    monkeypatch.setattr(spice_module, 'java_executable', lambda: 'java')
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append(cmd)
        data = json.loads(open(cmd[cmd.index('-jar') + 3]).read())
        out = [dict(image_id=d['image_id'],
                    scores=dict(All=dict(f=0.1 * (k + 1), pr=0, re=0)))
               for k, d in enumerate(data)]
        with open(cmd[cmd.index('-out') + 1], 'w') as f:
            json.dump(out, f)

        class Done:
            returncode = 0
            stderr = b''
        return Done()

    monkeypatch.setattr(spice_module.subprocess, 'run', fake_run)
    score, per = spice_module.compute_spice(
        ['a dog', 'a cat'], [['a dog runs'], ['a cat', 'cats']],
        cache_dir=str(tmp_path))
    assert per == pytest.approx([0.1, 0.2]) and score == pytest.approx(0.15)
    cmd = calls[0]
    assert cmd[:3] == ['java', '-jar', '-Xmx8G']
    assert cmd[3] == 'spice-1.0.jar' and '-subset' in cmd and '-silent' in cmd


def test_toolkit_scores_on_tokenized_edge_cases():
    """BLEU/ROUGE-L/CIDEr vs pycocoevalcap's scorers, no Java involved:
    empty captions, one reference, repeated words, very long captions."""
    import random

    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    from mdc_plugin.evaluation.functional import coco_caption_scores
    rng = random.Random(0)
    vocab = ['a', 'dog', 'cat', 'on', 'the', 'red', 'big', 'runs', 'grass']

    def sent(lo=0, hi=25):
        return ' '.join(rng.choice(vocab) for _ in range(rng.randint(lo, hi)))

    preds = [sent() for _ in range(200)] + ['', 'a', 'a a a a a a', '']
    refs = [[sent(1) for _ in range(rng.randint(1, 6))] for _ in range(200)]
    refs += [['a dog'], [''], ['a a', 'a a a a a'], ['x y', '', 'q']]
    ours, per = coco_caption_scores(preds, refs, ['BLEU', 'ROUGE-L', 'CIDEr'],
                                    tokenized=True)
    gts = dict(enumerate(refs))
    res = {i: [p] for i, p in enumerate(preds)}
    bleu, bleu_per = Bleu(4).compute_score(gts, res, verbose=0)
    rouge, rouge_per = Rouge().compute_score(gts, res)
    cider, cider_per = Cider().compute_score(gts, res)
    for k in range(4):
        assert ours[f'BLEU-{k + 1}'] == pytest.approx(bleu[k], abs=1e-12)
        assert per[f'BLEU-{k + 1}'] == pytest.approx(bleu_per[k], abs=1e-12)
    assert ours['ROUGE-L'] == pytest.approx(rouge, abs=1e-12)
    assert per['ROUGE-L'] == pytest.approx(list(rouge_per), abs=1e-12)
    assert ours['CIDEr'] == pytest.approx(cider, abs=1e-12)
    assert per['CIDEr'] == pytest.approx(list(cider_per), abs=1e-12)


def test_self_bleu_is_the_toolkit_sentence_bleu():
    """Self-BLEU-4 = mean over samples of pycocoevalcap's per-image BLEU-4
    of the sample against the image's other samples (empty samples,
    near-duplicates and groups of different sizes included)."""
    import random

    import numpy as np
    from pycocoevalcap.bleu.bleu import Bleu

    from mdc_plugin.evaluation.functional import sample_diversity, self_bleu
    rng = random.Random(1)
    vocab = ['a', 'dog', 'cat', 'on', 'the', 'red', 'big', 'runs', 'grass']
    groups = []
    for _ in range(60):
        base = [rng.choice(vocab) for _ in range(rng.randint(0, 12))]
        groups.append([' '.join(w if rng.random() < 0.8 else
                                rng.choice(vocab) for w in base)
                       for _ in range(rng.randint(2, 6))])
    groups.append(['a dog', ''])

    def toolkit(samples):
        gts = {i: samples[:i] + samples[i + 1:] for i in range(len(samples))}
        res = {i: [s] for i, s in enumerate(samples)}
        _, per = Bleu(4).compute_score(gts, res, verbose=0)
        return float(np.mean(per[3]))

    expected = [toolkit(g) for g in groups]
    assert max(expected) > 0.5  # near-duplicates: a non-trivial check
    for group, value in zip(groups, expected):
        assert self_bleu(group) == pytest.approx(value, abs=1e-12)
    assert sample_diversity(groups)['Self-BLEU-4'] == pytest.approx(
        float(np.mean(expected)), abs=1e-12)
