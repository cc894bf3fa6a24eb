"""ImageTextMatchingAccuracy: strict wins, fractional ties, macro vs plain
accuracy, refusals, and a real MMEngine ``Evaluator``."""
import itertools
import math
import pickle

import numpy as np
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmpretrain.registry import METRICS
from mmpretrain.structures import DataSample

from mdc_plugin.evaluation.metrics import ImageTextMatchingAccuracy
from mdc_plugin.evaluation.metrics.image_text_matching import match_credit


def run(metric, samples):
    metric.process(None, samples)
    return metric.compute_metrics(metric.results)


def brute_force_credit(scores, true_index):
    """Chance that the true option wins when ties are broken by a uniformly
    random order: the mean over every order of the options."""
    k = len(scores)
    wins = 0
    for order in itertools.permutations(range(k)):
        rank = {opt: r for r, opt in enumerate(order)}
        best = max(range(k), key=lambda o: (scores[o], -rank[o]))
        wins += best == true_index
    return wins / math.factorial(k)


def test_against_brute_force_with_ties():
    rng = np.random.default_rng(0)
    samples, credits, ties = [], [], 0
    for i in range(300):
        k = int(rng.integers(2, 5))
        scores = rng.integers(0, 3, k).astype(float)  # many ties
        true_index = int(rng.integers(0, k))
        group = f'g{rng.integers(0, 4)}'
        kind = i % 3  # tensor, ndarray and list
        value = (torch.tensor(scores) if kind == 0 else
                 scores if kind == 1 else scores.tolist())
        samples.append(dict(match_scores=value, true_index=true_index,
                            group=group))
        credits.append((group, brute_force_credit(scores, true_index)))
        ties += int((scores == scores.max()).sum() > 1)
    out = run(ImageTextMatchingAccuracy(per_group=True), samples)
    assert out['num_cases'] == 300 and out['ties'] == ties > 0
    assert out['accuracy'] == pytest.approx(
        100 * np.mean([c for _, c in credits]))
    groups = sorted({g for g, _ in credits})
    per = {g: 100 * np.mean([c for h, c in credits if h == g])
           for g in groups}
    for g in groups:
        assert out[f'accuracy/{g}'] == pytest.approx(per[g])
    assert out['macro_accuracy'] == pytest.approx(np.mean(list(per.values())))
    assert out['num_groups'] == len(groups) and out['groups_left_out'] == 0


def test_strict_win_and_tie_credit():
    assert match_credit(np.array([0.1, 0.9]), 1) == (1.0, False)
    assert match_credit(np.array([0.9, 0.1]), 1) == (0.0, False)
    assert match_credit(np.array([0.5, 0.5]), 1) == (0.5, True)
    assert match_credit(np.array([2., 2., 2., 1.]), 0) == (1 / 3, True)
    assert match_credit(np.array([2., 2., 1.]), 2) == (0.0, True)
    assert match_credit(np.array([-np.inf, 3.]), 1) == (1.0, False)


def test_macro_vs_plain_on_unbalanced_groups():
    # group a: 9 cases, all right; group b: 1 case, wrong
    samples = [dict(match_scores=[0., 1.], true_index=1, group='a')] * 9 + \
        [dict(match_scores=[1., 0.], true_index=1, group='b')]
    out = run(ImageTextMatchingAccuracy(), samples)
    assert out['accuracy'] == pytest.approx(90.0)
    assert out['macro_accuracy'] == pytest.approx(50.0)
    assert 'accuracy/a' not in out  # per_group=False
    # min_group_size leaves b out of the macro mean, and says so
    out = run(ImageTextMatchingAccuracy(min_group_size=2), samples)
    assert out['macro_accuracy'] == pytest.approx(100.0)
    assert out['accuracy'] == pytest.approx(90.0)
    assert out['num_groups'] == 2 and out['groups_left_out'] == 1
    out = run(ImageTextMatchingAccuracy(exclude_groups=['a']), samples)
    assert out['macro_accuracy'] == pytest.approx(0.0)
    out = run(ImageTextMatchingAccuracy(min_group_size=20), samples)
    assert math.isnan(out['macro_accuracy']) and out['groups_left_out'] == 2


def test_missing_group_is_one_group():
    samples = [dict(match_scores=[0., 1.], true_index=1),
               dict(match_scores=[0., 1.], true_index=0)]
    out = run(ImageTextMatchingAccuracy(per_group=True), samples)
    assert out['num_groups'] == 1 and out['accuracy/all'] == 50.0
    assert out['macro_accuracy'] == out['accuracy'] == 50.0


@pytest.mark.parametrize('sample, err, match', [
    (dict(match_scores=[0.2, float('nan')], true_index=0,
          sample_id='vg.json[4]'), ValueError, r'vg\.json\[4\].*NaN'),
    (dict(match_scores=torch.tensor([float('nan'), 1.]), true_index=0),
     ValueError, r'case 0.*NaN'),
    (dict(match_scores=[1.0], true_index=0), ValueError, 'K >= 2'),
    (dict(match_scores=[1.0, 2.0], true_index=2), ValueError,
     'not one of the 2 options'),
    (dict(match_scores=[1.0, 2.0], true_index=True), ValueError,
     'must be an int'),
    (dict(true_index=0), KeyError, 'no match_scores'),
    (dict(match_scores=[1., 2.], true_index=0, group=3), TypeError,
     'group must be a str'),
])
def test_refusals(sample, err, match):
    with pytest.raises(err, match=match):
        ImageTextMatchingAccuracy().process(None, [sample])


def test_results_are_plain_python():
    metric = ImageTextMatchingAccuracy()
    metric.process(None, [dict(match_scores=torch.tensor([[0.3, 0.7]]),
                               true_index=torch.tensor(1), group='on')])
    (result, ) = metric.results
    assert type(result) is tuple and type(result[1]) is float
    assert type(result[0]) is str and type(result[2]) is bool
    assert pickle.loads(pickle.dumps(metric.results)) == metric.results


def test_through_evaluator_with_data_samples():
    assert METRICS.get('ImageTextMatchingAccuracy') is \
        ImageTextMatchingAccuracy
    evaluator = Evaluator([dict(type='ImageTextMatchingAccuracy',
                                per_group=True)])
    batches = [
        [DataSample(match_scores=torch.tensor([0.1, 0.9]), true_index=1,
                    group='on', sample_id='a'),
         DataSample(match_scores=torch.tensor([0.9, 0.1]), true_index=1,
                    group='on', sample_id='b')],
        [DataSample(match_scores=torch.tensor([0.4, 0.4, 0.1]),
                    true_index=0, group='under', sample_id='c')],
    ]
    for batch in batches:
        evaluator.process(data_samples=batch, data_batch=None)
    out = evaluator.evaluate(3)
    assert out['matching/accuracy'] == pytest.approx(100 * 1.5 / 3)
    assert out['matching/macro_accuracy'] == pytest.approx((50 + 50) / 2)
    assert out['matching/accuracy/on'] == pytest.approx(50.0)
    assert out['matching/accuracy/under'] == pytest.approx(50.0)
    assert out['matching/num_cases'] == 3 and out['matching/ties'] == 1
    # DataSample given straight to the metric works too
    metric = ImageTextMatchingAccuracy(prefix='vgr')
    metric.process(None, batches[0])
    assert metric.evaluate(2) == {
        'vgr/accuracy': 50.0, 'vgr/macro_accuracy': 50.0,
        'vgr/num_cases': 2, 'vgr/num_groups': 1, 'vgr/groups_left_out': 0,
        'vgr/ties': 0}


def test_bad_options():
    with pytest.raises(ValueError, match='min_group_size'):
        ImageTextMatchingAccuracy(min_group_size=0)
