"""The shared evaluation loop (``caption_and_score``) equals the loop the
sweeps used to write by hand, on the real MDC shapes config."""
import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.runner import Runner

import mdc_plugin  # noqa: F401
from mdc_plugin.evaluation import caption_and_score
from test_decode_entry import MDC_CFG, build, config

pytestmark = pytest.mark.usefixtures('one_thread')
METRIC = dict(type='CaptionMetric', scores=['BLEU', 'CIDEr'],
              diversity=True)


def loader(cfg, root):
    cfg.test_dataloader.dataset.update(
        data_root=root, num_images=dict(train=24, val=8, test=8))
    return Runner.build_dataloader(dict(
        cfg.test_dataloader, batch_size=4, num_workers=0,
        persistent_workers=False))


def test_equals_the_hand_written_loop(tiny_shapes_root):
    cfg = config(MDC_CFG, {})
    model = build(cfg)
    out = caption_and_score(model, loader(cfg, tiny_shapes_root), METRIC,
                            decode=dict(temperature=1.0), num_samples=3,
                            sample_decode=dict(temperature=1.0), seed=7,
                            num_examples=2)
    evaluator = Evaluator(METRIC)
    torch.manual_seed(7)
    with torch.no_grad():
        for batch in loader(cfg, tiny_shapes_root):
            data = model.data_preprocessor(batch, False)
            feats = model.extract_feat(data['inputs'])
            best = model.head.predict(feats, temperature=1.0)
            draws = [model.head.predict(feats, temperature=1.0)
                     for _ in range(3)]
            for i, sample in enumerate(data['data_samples']):
                sample.pred_caption = best[i]
                sample.pred_captions = [d[i] for d in draws]
            evaluator.process(data['data_samples'], batch)
    assert out['images'] == 8 and len(out['examples']) == 2
    assert len(out['examples'][0]['samples']) == 3
    assert out['metrics'] == evaluator.evaluate(8)
    assert out['metrics']['caption/Self-BLEU-4'] >= 0


def test_max_batches_and_empty_loader(tiny_shapes_root):
    cfg = config(MDC_CFG, {})
    model = build(cfg)
    seen = []
    out = caption_and_score(model, loader(cfg, tiny_shapes_root),
                            dict(type='CaptionMetric', scores=['BLEU']),
                            max_batches=1, on_batch=seen.append)
    assert out['images'] == 4 and seen == [4]
    with pytest.raises(ValueError, match='no images'):
        caption_and_score(model, [], dict(type='CaptionMetric'))
