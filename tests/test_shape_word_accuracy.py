"""ShapeWordAccuracy: registered metric, same numbers as the old tool.

Models are seeded and untrained; an untrained head never names a shape, so
where a non-trivial number is needed its logits are limited to the four
shape words (the choice among them still depends on image and text).
"""
import ast
import json
import types

import pytest
import torch
import torch.nn.functional as F
from mmengine.dataset import pseudo_collate
from mmengine.evaluator import Evaluator
from mmpretrain.registry import DATASETS, METRICS, MODELS

from fixtures_data import (load_repo_config, load_tool,
                           write_tiny_shapes_config)
from mdc_plugin.datasets.shapes import SHAPES
from mdc_plugin.evaluation.metrics import ShapeWordAccuracy, caption_reading
from mdc_plugin.evaluation.metrics import shape_word_accuracy as swa_module

MDC_CFG = 'configs/mdc/vit-tiny_shapes.py'
CAP_CFG = 'configs/baselines/cap_vit-tiny_shapes.py'

#: float32 accuracies printed by tools/analysis/shape_token_accuracy.py as
#: of commit 92fc832 (before it became a CLI over this metric), RECORDED on
#: the inputs of ``seeded_model`` + ``shapes_batch`` (24 train images, 48
#: shape words), not derived by hand.
OLD_TOOL = {
    (MDC_CFG, 0): 0.25,
    (MDC_CFG, 1): 0.1875,
    (MDC_CFG, 2): 0.2916666567325592,
    (CAP_CFG, 0): 0.1875,
    (CAP_CFG, 1): 0.1875,
    (CAP_CFG, 2): 0.2916666567325592,
}


# one thread: values are the same with 1 and 2, and it is faster here
pytestmark = pytest.mark.usefixtures('one_thread')


def shape_ids(head) -> list:
    return [i for s in SHAPES for i in head.tokenizer.encode(s)]


def only_shape_words(head) -> None:
    """Limit ``head.logits`` to the shape words (instance attribute)."""
    keep = torch.full((head.vocab_size, ), -1e4)
    keep[shape_ids(head)] = 0
    logits = head.logits
    head.logits = lambda hidden, weight=None: logits(hidden, weight) + keep


def seeded_model(rel_path: str, seed: int):
    torch.manual_seed(seed)
    model = MODELS.build(load_repo_config(rel_path).model)
    model.init_weights()
    return model.eval()


def shapes_batch(rel_path: str, root: str, split: str = 'train') -> dict:
    """Every image of a tiny shapes split, raw (as a dataloader gives)."""
    dataset = DATASETS.build(dict(
        type='SyntheticShapesCaption', data_root=root, split=split,
        pipeline=load_repo_config(rel_path).test_pipeline, test_mode=True,
        num_images=dict(train=24, val=8, test=8), img_size=64, seed=0))
    return pseudo_collate([dataset[i] for i in range(len(dataset))])


def evaluate(model, batch: dict) -> dict:
    metric = METRICS.build(dict(type='ShapeWordAccuracy'))
    metric.bind_model(model)
    metric.process(batch, batch['data_samples'])
    return metric.evaluate(len(batch['data_samples']))


@pytest.mark.parametrize('cfg,seed', sorted(OLD_TOOL))
def test_same_numbers_as_the_old_tool(cfg, seed, tiny_shapes_root):
    model = seeded_model(cfg, seed)
    only_shape_words(model.head)
    result = evaluate(model, shapes_batch(cfg, tiny_shapes_root))
    assert result == {'shape_word/accuracy': 100 * OLD_TOOL[cfg, seed]}


@pytest.mark.parametrize('cfg', [MDC_CFG, CAP_CFG])
def test_constant_guess_scores_its_share_of_the_captions(
        cfg, tiny_shapes_root):
    """Always guessing 'circle' scores the share of 'circle' among the
    shape words of the first reference captions (read from the text)."""
    model = seeded_model(cfg, 0)
    head = model.head
    circle = head.tokenizer.encode('circle')[0]
    head.logits = lambda hidden, weight=None: F.one_hot(
        torch.full(hidden.shape[:-1], circle), head.vocab_size).float()
    batch = shapes_batch(cfg, tiny_shapes_root)
    words = [w.strip('.,') for s in batch['data_samples']
             for w in s.gt_caption[0].lower().split()]
    shapes = [w for w in words if w in SHAPES]
    assert len(set(shapes)) > 1
    expected = 100 * torch.tensor(shapes.count('circle') /
                                  len(shapes)).float().item()
    assert evaluate(model, batch)['shape_word/accuracy'] == pytest.approx(
        expected, abs=1e-4)


def test_masked_diffusion_head_never_sees_the_shape_word(tiny_shapes_root):
    """Predicting the decoder's own input token: every other word would be
    right, a shape word only if it were not hidden behind [MASK]."""
    model = seeded_model(MDC_CFG, 0)
    head, seen = model.head, {}
    decoder = head.decoder.forward

    def spy(ids, **kwargs):
        seen['ids'] = ids
        return decoder(ids, **kwargs)

    head.decoder.forward = spy
    head.logits = lambda hidden, weight=None: F.one_hot(seen['ids'],
                                           head.vocab_size).float()
    batch = shapes_batch(MDC_CFG, tiny_shapes_root)
    assert evaluate(model, batch) == {'shape_word/accuracy': 0.0}
    assert (seen['ids'] == head.tokenizer.mask_id).sum() == 48


def test_unbound_metric_says_how_to_bind():
    metric = ShapeWordAccuracy()
    with pytest.raises(RuntimeError, match='BindModelToMetricsHook'):
        metric.process({'inputs': [], 'data_samples': []}, [])
    # a bare MMEngine Evaluator finds it too
    assert isinstance(Evaluator([dict(type='ShapeWordAccuracy')]).metrics[0],
                      ShapeWordAccuracy)


def test_metric_knows_no_head_class():
    """The metric module imports nothing from mdc_plugin.models and names
    no head class: it reads the head through ``caption_reading``."""
    with open(swa_module.__file__) as f:
        source = f.read()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            assert 'models' not in (node.module or ''), node.module
    assert 'CaptionHead' not in source and 'isinstance(head' not in source


@pytest.mark.parametrize('cfg,reading', [(MDC_CFG, 'masked'),
                                         (CAP_CFG, 'causal')])
def test_reading_from_the_head_attribute(cfg, reading):
    head = seeded_model(cfg, 0).head
    assert caption_reading(head) == reading
    # the metric's argument overrides the head's attribute
    other = 'causal' if reading == 'masked' else 'masked'
    head.caption_reading = other
    assert caption_reading(head) == other
    assert caption_reading(head, reading) == reading


def test_heads_it_cannot_read_are_refused():
    decoder = dict(decoder=lambda *a, **k: None, logits=lambda h: h)
    d3pm_like = types.SimpleNamespace(
        decode_keys=('scale', 'steps', 'temperature'), **decoder)
    with pytest.raises(TypeError, match='cannot tell how'):
        caption_reading(d3pm_like)
    prefix_like = types.SimpleNamespace(decode_keys=('clamp', 'eta',
                                                     'steps'))
    with pytest.raises(TypeError, match='no token decoder'):
        caption_reading(prefix_like, 'masked')
    with pytest.raises(ValueError, match='reading='):
        caption_reading(d3pm_like, 'sideways')
    with pytest.raises(ValueError, match='reading='):
        ShapeWordAccuracy(reading='sideways')


def test_reading_in_the_metric_config(tiny_shapes_root):
    """``reading`` given in the config: same numbers as when inferred."""
    model = seeded_model(CAP_CFG, 1)
    only_shape_words(model.head)
    batch = shapes_batch(CAP_CFG, tiny_shapes_root)
    metric = METRICS.build(dict(type='ShapeWordAccuracy', reading='causal'))
    metric.bind_model(model)
    metric.process(batch, batch['data_samples'])
    assert metric.evaluate(24) == {
        'shape_word/accuracy': 100 * OLD_TOOL[CAP_CFG, 1]}


def seeded_checkpoint_with_shape_logits(path: str, monkeypatch):
    """MDC seed 2 saved to ``path``; every MDC head's logits limited to
    the shape words (class attribute, so models built by tools are too)."""
    from mdc_plugin.models.heads import MaskedDiffusionCaptionHead
    model = seeded_model(MDC_CFG, 2)
    torch.save({'state_dict': model.state_dict()}, path)
    keep = torch.full((model.head.vocab_size, ), -1e4)
    keep[shape_ids(model.head)] = 0
    logits = MaskedDiffusionCaptionHead.logits
    monkeypatch.setattr(MaskedDiffusionCaptionHead, 'logits',
                        lambda self, hidden, weight=None:
                        logits(self, hidden, weight) + keep)
    return model


def test_tool_prints_the_metric(tiny_shapes_root, tmp_path, monkeypatch,
                                capsys):
    """tools/analysis/shape_token_accuracy.py: same JSON as before, its
    number the metric's on the val split, rounded to 0.1."""
    ckpt = str(tmp_path / 'seeded.pth')
    model = seeded_checkpoint_with_shape_logits(ckpt, monkeypatch)
    config = write_tiny_shapes_config(tmp_path / 'cfg.py', MDC_CFG,
                                      tiny_shapes_root)
    load_tool('tools/analysis/shape_token_accuracy.py').main(
        [config, ckpt, '--num', '500'])
    printed = json.loads(capsys.readouterr().out)
    expected = evaluate(model, shapes_batch(MDC_CFG, tiny_shapes_root, 'val'))
    assert printed == dict(
        config=config, checkpoint=ckpt, images=8,
        shape_token_accuracy=round(expected['shape_word/accuracy'], 1))
    assert printed['shape_token_accuracy'] > 0


def test_in_a_config_test_evaluator_through_tools_test(
        tiny_shapes_root, tmp_path, monkeypatch):
    """``tools/test.py`` with ShapeWordAccuracy beside CaptionMetric in
    ``test_evaluator`` (batches of 3: 3 + 3 + 2 images): the default hooks
    bind the model and the result equals one batch of all 8 images."""
    ckpt = str(tmp_path / 'seeded.pth')
    model = seeded_checkpoint_with_shape_logits(ckpt, monkeypatch)
    config = write_tiny_shapes_config(
        tmp_path / 'cfg.py', MDC_CFG, tiny_shapes_root, batch_size=3,
        extra="test_evaluator = [dict(type='CaptionMetric', "
        "scores=['BLEU']), dict(type='ShapeWordAccuracy')]\n")
    out = tmp_path / 'test.json'
    load_tool('tools/test.py').main([
        config, ckpt, '--work-dir', str(tmp_path / 'work'), '--out',
        str(out), '--no-predictions'
    ])
    metrics = json.loads(out.read_text())['metrics']
    assert 'caption/BLEU-4' in metrics
    expected = evaluate(model, shapes_batch(MDC_CFG, tiny_shapes_root,
                                            'test'))
    assert 0 < expected['shape_word/accuracy'] < 100
    assert metrics['shape_word/accuracy'] == expected['shape_word/accuracy']
