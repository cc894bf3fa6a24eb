"""Prefix-diffusion: schedules, frozen encoder, sampler, reranking and
build-time errors, with the real config, tokenizer, scorer and checkpoint
loader (the frozen encoder is a freshly initialised contrastive model
saved to a temporary checkpoint)."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS

import mdc_plugin  # noqa: F401
from mdc_plugin.models.diffusion import (NOISE_SCHEDULES, noise_schedule,
                                         sampling_timesteps)
from mdc_plugin.models.diffusion.schedules import MAX_BETA, linear_betas
from mdc_plugin.models.image_encoders import ContrastiveImageEncoder
from mdc_plugin.models.scorers.rerank import (candidate_scores, raw_images,
                                              rerank)
from mdc_plugin.models.tokenizers import save_word_level_tokenizer

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
SHAPES_CFG = osp.join(ROOT, 'configs/prefix_diffusion/clip-tiny_shapes.py')
COCO_CFG = osp.join(ROOT, 'configs/prefix_diffusion/clip-vit-b32_coco.py')
CLIP_CFG = osp.join(ROOT, 'configs/baselines/clip_vit-tiny_shapes.py')


@pytest.fixture(scope='module')
def clip_ckpt(tmp_path_factory) -> str:
    """A freshly initialised contrastive baseline saved as a checkpoint."""
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(CLIP_CFG).model)
    path = str(tmp_path_factory.mktemp('clip') / 'clip.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def model_cfg(clip_ckpt: str, **overrides) -> dict:
    cfg = Config.fromfile(SHAPES_CFG)
    cfg.merge_from_dict({'model.encoder.checkpoint': clip_ckpt,
                         'model.scorer.checkpoint': clip_ckpt})
    cfg.merge_from_dict({f'model.{k}': v for k, v in overrides.items()})
    return cfg.model


def build(clip_ckpt: str, **overrides):
    init_default_scope('mmpretrain')
    return MODELS.build(model_cfg(clip_ckpt, **overrides))


def shapes_batch(root: str, model, num: int = 4):
    """Real test-split images and samples, preprocessed by ``model``."""
    cfg = Config.fromfile(SHAPES_CFG)
    dataset = DATASETS.build(dict(
        type='SyntheticShapesCaption', data_root=root, split='test',
        pipeline=cfg.test_pipeline, test_mode=True,
        num_images=dict(train=24, val=8, test=8), img_size=64, seed=0))
    batch = default_collate([dataset[i] for i in range(num)])
    return batch['inputs'], model.data_preprocessor(batch, False)


# ---------------------------------------------------------------- schedules
@pytest.mark.parametrize('name', NOISE_SCHEDULES)
def test_noise_schedules_decrease_inside_unit_interval(name):
    for steps in (100, 1000):
        ab = noise_schedule(name, steps)
        assert ab.shape == (steps, )
        assert torch.all(ab > 0) and torch.all(ab < 1)
        assert torch.all(ab[1:] < ab[:-1])
        assert ab[-1] < 0.05, f'{name}: x_T keeps too much signal'


def test_truncated_linear_is_linear_shifted_by_0_01():
    ab = noise_schedule('trunc_linear', 1000)
    betas = 1 - torch.cat([ab[:1], ab[1:] / ab[:-1]])
    torch.testing.assert_close(betas, linear_betas(1000) + 0.01)
    assert betas[0] == pytest.approx(0.0101)
    assert betas[-1] == pytest.approx(0.03)
    # more noise than the plain linear schedule at every step
    assert torch.all(ab < noise_schedule('linear', 1000))


@pytest.mark.parametrize('name,curve,truncated', [
    ('cosine', lambda t: math.cos((t + 0.008) / 1.008 * math.pi / 2)**2,
     False),
    ('trunc_cosine', lambda t: math.cos((t + 0.1) / 1.1 * math.pi / 2)**2,
     True),
    ('sqrt', lambda t: 1 - math.sqrt(t + 1e-4), False),
])
def test_curve_schedules_follow_their_formula(name, curve, truncated):
    """alpha_bar[t] == f((t+1)/T), renormalised by f(0) unless the schedule
    is a truncated one; checked where no beta was clipped."""
    steps = 1000
    ab = noise_schedule(name, steps)
    norm = 1.0 if truncated else curve(0)
    expected = torch.tensor([curve((t + 1) / steps) / norm
                             for t in range(steps)], dtype=torch.float64)
    betas = 1 - torch.cat([ab[:1], ab[1:] / ab[:-1]])
    unclipped = torch.cumprod(betas < MAX_BETA, 0).bool()
    torch.testing.assert_close(ab[unclipped], expected[unclipped])
    if truncated:  # the first step already removes about 2% of the signal
        assert ab[0] == pytest.approx(0.979, abs=1e-3)


def test_sampling_timesteps_skip_evenly():
    times = sampling_timesteps(1000, 5)
    assert times.tolist() == [999, 749, 500, 250, 0]
    assert sampling_timesteps(10, 50).tolist() == list(range(9, -1, -1))
    with pytest.raises(ValueError, match='steps=0'):
        sampling_timesteps(1000, 0)
    with pytest.raises(ValueError, match='not one of'):
        noise_schedule('square', 100)


# ----------------------------------------------------------- frozen encoder
def test_contrastive_encoder_loads_and_stays_frozen(clip_ckpt):
    init_default_scope('mmpretrain')
    encoder = ContrastiveImageEncoder(CLIP_CFG, clip_ckpt)
    reference = MODELS.build(Config.fromfile(CLIP_CFG).model)
    reference.load_state_dict(torch.load(clip_ckpt)['state_dict'])
    reference.eval()
    images = torch.randn(3, 3, 64, 64)
    torch.testing.assert_close(encoder(images),
                               reference.encode_image(images))
    encoder.train()
    assert not encoder.training
    assert not any(p.requires_grad for p in encoder.parameters())


def test_frozen_parameters_bit_identical_after_training_steps(
        clip_ckpt, tiny_shapes_root, mm_log_messages):
    model = build(clip_ckpt, num_candidates=1, scorer=None,
                  keep_candidates=False, cache_embeddings=False)
    assert any('trainable of' in m for m in mm_log_messages)
    cfg = Config.fromfile(SHAPES_CFG)
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    in_optimizer = {id(p) for g in optim.optimizer.param_groups
                    for p in g['params']}
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert in_optimizer == trainable
    assert not any(id(p) in in_optimizer
                   for p in model.encoder.parameters())

    source = torch.load(clip_ckpt)['state_dict']
    head_before = {k: v.clone() for k, v in model.head.state_dict().items()}
    model.train()
    _, data = shapes_batch(tiny_shapes_root, model, num=8)
    for _ in range(3):
        optim.update_params(
            model.parse_losses(model(**data, mode='loss'))[0])
    assert not model.encoder.training
    for key, value in model.encoder.state_dict().items():
        assert torch.equal(value, source[key]), key
    changed = [k for k, v in model.head.state_dict().items()
               if not torch.equal(v, head_before[k])]
    assert changed, 'the trainable head did not change'


# ------------------------------------------------------- sampler / rerank
def test_sampling_is_deterministic_under_a_fixed_seed(clip_ckpt):
    model = build(clip_ckpt).eval()
    prefix = torch.randn(3, model.head.prefix_length, model.head.embed_dims)
    runs = [
        model.head.sample(prefix, steps=4,
                          generator=torch.Generator().manual_seed(seed))
        for seed in (7, 7)
    ]
    assert torch.equal(runs[0], runs[1])
    assert runs[0].shape == (3, model.head.max_length)
    images = torch.randn(2, 3, 64, 64)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append([(s.pred_caption, s.pred_captions)
                     for s in model.predict(images, steps=4)])
    assert outs[0] == outs[1]


def test_rerank_picks_the_highest_scored_candidate(clip_ckpt,
                                                   tiny_shapes_root):
    model = build(clip_ckpt)
    raw, _ = shapes_batch(tiny_shapes_root, model, num=2)
    captions = ['there is a red circle', 'a blue square and a green cross',
                'the yellow triangle is left of the white circle',
                'there is a purple cross', 'a small red square',
                'a large blue triangle']
    scores = candidate_scores(model.scorer, raw, captions, 3)
    # the same numbers as the scorer's own pairwise similarity
    pairwise = model.scorer.image_text_similarity(
        raw.repeat_interleave(3, 0), captions)
    torch.testing.assert_close(scores.flatten(), pairwise)
    best, ranked, ranked_scores = rerank(scores, captions)
    for i in range(2):
        j = int(scores[i].argmax())
        assert best[i] == captions[i * 3 + j]
        assert ranked[i][0] == best[i] and sorted(ranked[i]) == sorted(
            captions[i * 3:i * 3 + 3])
        assert ranked_scores[i] == sorted(ranked_scores[i], reverse=True)


def test_predict_returns_best_of_n_and_keeps_all(clip_ckpt,
                                                 tiny_shapes_root):
    model = build(clip_ckpt, num_candidates=4).eval()
    raw, data = shapes_batch(tiny_shapes_root, model, num=3)
    # undoing the preprocessing recovers the loader's images
    torch.testing.assert_close(raw_images(model.data_preprocessor,
                                          data['inputs']),
                               raw.float(), atol=1e-3, rtol=0)
    torch.manual_seed(0)
    samples = model.predict(data['inputs'], data['data_samples'], steps=3)
    for image, sample in zip(raw, samples):
        assert len(sample.pred_captions) == 4
        assert sample.pred_caption == sample.pred_captions[0]
        sims = model.scorer.image_text_similarity(
            [image] * 4, sample.pred_captions)
        torch.testing.assert_close(
            sims, torch.tensor(sample.pred_candidate_scores), atol=1e-4,
            rtol=0)
        assert sample.pred_score == max(sample.pred_candidate_scores)


# ------------------------------------------------------------- bad input
def test_bad_input_is_refused_at_build_time(clip_ckpt, tmp_path):
    with pytest.raises(ValueError, match='in_dims=128 does not match'):
        build(clip_ckpt, mapper=dict(in_dims=128))
    with pytest.raises(ValueError, match='prefix_length / embed_dims'):
        build(clip_ckpt, mapper=dict(out_dims=64))
    with pytest.raises(ValueError, match='num_candidates=0'):
        build(clip_ckpt, num_candidates=0)
    with pytest.raises(ValueError, match='needs a scorer'):
        build(clip_ckpt, scorer=None)
    with pytest.raises(ValueError, match='unknown sampler keys'):
        build(clip_ckpt, head=dict(sampler=dict(temperature=1.0)))
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        build(clip_ckpt, encoder=dict(checkpoint=missing))

    # a scorer whose model reads another vocabulary
    tok_dir = save_word_level_tokenizer(['red', 'circle'],
                                        str(tmp_path / 'tok'))
    other = Config.fromfile(CLIP_CFG).model
    other.tokenizer = dict(type='HFCaptionTokenizer', path=tok_dir)
    init_default_scope('mmpretrain')
    torch.save({'state_dict': MODELS.build(other).state_dict()},
               str(tmp_path / 'other.pth'))
    Config(dict(model=other)).dump(str(tmp_path / 'other.py'))
    with pytest.raises(ValueError, match='tokenizes with'):
        build(clip_ckpt, scorer=dict(config=str(tmp_path / 'other.py'),
                                     checkpoint=str(tmp_path / 'other.pth')))


def test_coco_config_wants_a_local_open_clip_checkpoint():
    import open_clip
    cfg = Config.fromfile(COCO_CFG)
    assert cfg.model.encoder.type == 'OpenCLIPImageEncoder'
    assert cfg.model.mapper.in_dims == open_clip.get_model_config(
        cfg.model.encoder.model_name)['embed_dim']
    assert cfg.model.head.noise_schedule == 'trunc_linear'
    init_default_scope('mmpretrain')
    with pytest.raises(FileNotFoundError, match='ViT-B-32.pt'):
        MODELS.build(cfg.model)


def test_open_clip_encoder_loads_a_local_checkpoint(tmp_path):
    """A tiny open_clip architecture (registered from a JSON file), its
    random weights saved locally: the frozen tower reproduces the model's
    own normalised ``encode_image``."""
    import json

    import open_clip

    from mdc_plugin.models.image_encoders import OpenCLIPImageEncoder
    arch = dict(embed_dim=32,
                vision_cfg=dict(image_size=32, layers=1, width=64,
                                patch_size=16),
                text_cfg=dict(context_length=16, vocab_size=49408, width=32,
                              heads=2, layers=1))
    (tmp_path / 'Tiny-Test-32.json').write_text(json.dumps(arch))
    open_clip.add_model_config(str(tmp_path / 'Tiny-Test-32.json'))
    torch.manual_seed(0)
    model = open_clip.create_model('Tiny-Test-32', pretrained=None).eval()
    torch.save(model.state_dict(), str(tmp_path / 'tiny.pt'))
    encoder = OpenCLIPImageEncoder('Tiny-Test-32', str(tmp_path / 'tiny.pt'))
    assert encoder.embed_dims == 32
    images = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(encoder(images),
                               model.encode_image(images, normalize=True))
    assert not any(p.requires_grad for p in encoder.parameters())
    with pytest.raises(FileNotFoundError, match='missing.pt'):
        OpenCLIPImageEncoder('Tiny-Test-32', str(tmp_path / 'missing.pt'))


def test_backbone_encoder_pools_an_mmpretrain_backbone(clip_ckpt):
    from mdc_plugin.models.image_encoders import BackboneImageEncoder
    init_default_scope('mmpretrain')
    backbone = Config.fromfile(CLIP_CFG).model.backbone
    encoder = BackboneImageEncoder(backbone, embed_dims=192, pool='cls',
                                   checkpoint=clip_ckpt)
    source = torch.load(clip_ckpt)['state_dict']
    for key, value in encoder.backbone.state_dict().items():
        assert torch.equal(value, source[f'backbone.{key}']), key
    images = torch.randn(2, 3, 64, 64)
    tokens = encoder.backbone(images)[-1]
    torch.testing.assert_close(encoder(images), tokens[:, 0])
    wrong = BackboneImageEncoder(backbone, embed_dims=256)
    with pytest.raises(ValueError, match='set embed_dims'):
        wrong(images)


def test_coco_config_builds_and_captions_with_a_local_open_clip(tmp_path):
    """The COCO config's mapper, head and reranker wired to an open_clip
    tower of the same 512-d embedding (a 1-layer stand-in for ViT-B-32, its
    random weights saved locally): builds and samples a caption."""
    import json

    import open_clip
    arch = dict(open_clip.get_model_config('ViT-B-32'))
    arch['vision_cfg'] = dict(arch['vision_cfg'], layers=1, width=64,
                              head_width=32)
    arch['text_cfg'] = dict(arch['text_cfg'], layers=1, width=64, heads=2)
    (tmp_path / 'ViT-B-32-Stub.json').write_text(json.dumps(arch))
    open_clip.add_model_config(str(tmp_path / 'ViT-B-32-Stub.json'))
    torch.manual_seed(0)
    weights = str(tmp_path / 'stub.pt')
    torch.save(open_clip.create_model('ViT-B-32-Stub').state_dict(), weights)
    cfg = Config.fromfile(COCO_CFG)
    for part in ('encoder', 'scorer'):
        cfg.model[part].update(model_name='ViT-B-32-Stub', checkpoint=weights)
    cfg.model.head.sampler.steps = 2
    cfg.model.num_candidates = 2
    init_default_scope('mmpretrain')
    model = MODELS.build(cfg.model).eval()
    assert model.encoder.embed_dims == cfg.model.mapper.in_dims == 512
    batch = model.data_preprocessor(
        dict(inputs=[torch.randint(0, 255, (3, 224, 224), dtype=torch.uint8)],
             data_samples=None), False)
    out = model(batch['inputs'], None, mode='predict')
    assert isinstance(out[0].pred_caption, str)
