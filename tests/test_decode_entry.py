"""One decode entry (issue 15): ``model.predict(inputs, data_samples,
num_samples=N, **options)`` on every captioner built from its real shapes
config, with each model's declared decode keys and nothing else."""
import pytest
import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

import mdc_plugin  # noqa: F401
from fixtures_data import load_repo_config
from mdc_plugin.apis import sampling_options
from test_pinned_outputs import (CAP_CFG, CLIP_CFG, MCS_CFG, MDC_CFG,
                                 PREFIX_CFG, VQ_CFG, seeded_checkpoint,
                                 shapes_batch)

pytestmark = pytest.mark.usefixtures('one_thread', 'initialised_as_in_a_run')

DECODE_KEYS = {
    MDC_CFG: ('block_cache', 'block_length', 'cache_refresh', 'early_stop',
              'refresh_ahead', 'remasking', 'schedule', 'steps',
              'temperature', 'threshold', 'vocabulary'),
    CAP_CFG: ('temperature', 'vocabulary'),
    MCS_CFG: ('scale', 'steps', 'temperature'),
    PREFIX_CFG: ('clamp', 'eta', 'num_candidates', 'steps'),
}
# a stochastic setting of each model, for draws that must differ
SAMPLED = {MDC_CFG: dict(temperature=1.0), CAP_CFG: dict(temperature=1.0),
           MCS_CFG: dict(steps=4), PREFIX_CFG: dict(num_candidates=1)}


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp('ckpt')
    return dict(vq=seeded_checkpoint(VQ_CFG, str(root / 'vq.pth')),
                clip=seeded_checkpoint(CLIP_CFG, str(root / 'clip.pth')))


def config(path: str, checkpoints: dict, **options) -> Config:
    """The shipped config, its frozen parts on seeded fresh weights."""
    cfg = load_repo_config(path)
    if path == MCS_CFG:
        cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint':
                             checkpoints['vq'],
                             'model.neck.init_cfg.checkpoint':
                             checkpoints['vq']})
    if path == PREFIX_CFG:
        cfg.merge_from_dict({'model.encoder.checkpoint': checkpoints['clip'],
                             'model.scorer.checkpoint': checkpoints['clip']})
    cfg.merge_from_dict(options)
    return cfg


def build(cfg: Config):
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.eval()


@pytest.mark.parametrize('path', list(DECODE_KEYS))
def test_decode_keys_declared_and_unknown_refused(path, checkpoints,
                                                  tiny_shapes_root):
    cfg = config(path, checkpoints)
    model = build(cfg)
    assert model.decode_keys == DECODE_KEYS[path]
    assert sampling_options(model) == list(DECODE_KEYS[path])
    assert set(model.decode_cfg) == set(DECODE_KEYS[path])
    inputs = shapes_batch(cfg, model, tiny_shapes_root, num=2)['inputs']
    with pytest.raises(ValueError, match=r"unknown decode options "
                       r"\['temprature'\]; allowed: .*num_samples"):
        model.predict(inputs, temprature=1.0)
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match='num_samples'):
            model.predict(inputs, num_samples=bad)


@pytest.mark.parametrize('path', list(DECODE_KEYS))
def test_num_samples_are_independent_draws(path, checkpoints,
                                           tiny_shapes_root):
    cfg = config(path, checkpoints)
    model = build(cfg)
    data = shapes_batch(cfg, model, tiny_shapes_root, num=2)
    torch.manual_seed(5)
    out = model.predict(data['inputs'], data['data_samples'], num_samples=3,
                        **SAMPLED[path])
    assert out is data['data_samples']  # filled in place, as MMPretrain does
    for sample in out:
        assert len(sample.pred_captions) == 3
        assert sample.pred_caption == sample.pred_captions[0]
        assert all(isinstance(c, str) for c in sample.pred_captions)
    draws = [c for s in out for c in s.pred_captions]
    assert len(set(draws)) > 1, 'stochastic draws came out identical'
    # the same seed gives the same draws
    torch.manual_seed(5)
    again = model.predict(data['inputs'], num_samples=3, **SAMPLED[path])
    assert [s.pred_captions for s in again] == [s.pred_captions for s in out]


def test_sequential_draws_match_single_calls(checkpoints, tiny_shapes_root):
    """For the cross-attention captioners N samples are N calls in a row."""
    cfg = config(MDC_CFG, checkpoints)
    model = build(cfg)
    inputs = shapes_batch(cfg, model, tiny_shapes_root, num=3)['inputs']
    torch.manual_seed(9)
    together = model.predict(inputs, num_samples=2, temperature=1.0)
    torch.manual_seed(9)
    first = model.predict(inputs, temperature=1.0)
    second = model.predict(inputs, temperature=1.0)
    assert [s.pred_captions for s in together] == [
        [a.pred_caption, b.pred_caption] for a, b in zip(first, second)]


def test_prefix_samples_are_single_draws_of_the_batch(checkpoints,
                                                      tiny_shapes_root):
    """Prefix-diffusion draws all B * N * n noise samples as one batch:
    N samples with n = 1 are the head's draws on the repeated prefix."""
    cfg = config(PREFIX_CFG, checkpoints)
    model = build(cfg)
    inputs = shapes_batch(cfg, model, tiny_shapes_root, num=2)['inputs']
    torch.manual_seed(4)
    out = model.predict(inputs, num_samples=3, num_candidates=1, steps=4)
    torch.manual_seed(4)
    draws = model.head.predict(
        model.prefix(inputs).repeat_interleave(3, 0), steps=4)
    assert [s.pred_captions for s in out] == [draws[0:3], draws[3:6]]
    # reranked samples: each is the best of its own n candidates
    out = model.predict(inputs, num_samples=2, num_candidates=3, steps=4)
    assert all(len(s.pred_captions) == 2 for s in out)
    with pytest.raises(ValueError, match='num_candidates=0'):
        model.predict(inputs, num_candidates=0)


@pytest.mark.parametrize('path,options,stored', [
    (MDC_CFG, {'model.predict_cfg.steps': 3}, dict(steps=3)),
    (MCS_CFG, {'model.predict_cfg.scale': 2.0}, dict(scale=2.0)),
    (PREFIX_CFG, {'model.predict_cfg.num_candidates': 2,
                  'model.predict_cfg.eta': 0.0},
     dict(num_candidates=2, eta=0.0)),
])
def test_predict_cfg_and_head_sampler_are_one_place(path, options, stored,
                                                    checkpoints):
    """``model.predict_cfg.KEY`` lands in the head's sampler: the decoding
    settings in force are in one dict, whichever knob set them."""
    model = build(config(path, checkpoints, **options))
    for key, value in stored.items():
        assert model.decode_cfg[key] == value
    head_key = next(iter(set(stored) - {'num_candidates'}))
    assert model.head.sampler_cfg[head_key] == stored[head_key]


@pytest.mark.parametrize('path', [MDC_CFG, CAP_CFG, MCS_CFG, PREFIX_CFG])
def test_unknown_predict_cfg_refused_at_build(path, checkpoints):
    cfg = config(path, checkpoints, **{'model.predict_cfg.stepz': 4})
    with pytest.raises(ValueError, match=r"predict_cfg: unknown sampler keys "
                       r"\['stepz'\]"):
        MODELS.build(cfg.model)


def test_guidance_scale_checked_at_build(checkpoints):
    cfg = config(MCS_CFG, checkpoints, **{'model.predict_cfg.scale': -1.0})
    with pytest.raises(ValueError, match='scale=-1.0 must be >= 0'):
        MODELS.build(cfg.model)
