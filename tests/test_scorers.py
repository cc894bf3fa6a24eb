"""Image-text scorers (CLIPScore / RefCLIPScore), all offline.

OpenCLIPScorer runs a real open_clip model (a tiny ViT/text-transformer
config registered for the test) with random weights saved to a local
checkpoint; PluginModelScorer runs a tiny registered BaseModel with a real
data preprocessor, and the plugin's own contrastive baseline config.
"""
import json
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmengine.registry import DefaultScope
from mmpretrain.registry import MODELS

from mdc_plugin.evaluation.metrics import CaptionMetric
from mdc_plugin.models.scorers import (ImageTextScorer, OpenCLIPScorer,
                                       PluginModelScorer,
                                       clip_score_from_cosine,
                                       ref_clip_score_from)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _images(n=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 256, (3, 48 + 8 * i, 64), generator=g,
                          dtype=torch.uint8) for i in range(n)]


# --------------------------------------------------------------- formulas
def test_clip_score_formulas():
    cos = torch.tensor([-0.2, 0.0, 0.4])
    assert torch.allclose(clip_score_from_cosine(cos),
                          torch.tensor([0.0, 0.0, 1.0]))
    clip_s = torch.tensor([1.0, 0.0, 0.5, 0.8])
    ref_max = torch.tensor([0.5, 0.3, -0.1, 0.8])
    expected = torch.tensor([2 * 1.0 * 0.5 / 1.5, 0.0, 0.0, 0.8])
    assert torch.allclose(ref_clip_score_from(clip_s, ref_max), expected)


class _TableScorer(ImageTextScorer):
    """Embeddings looked up in fixed tables (to check the score logic)."""

    def __init__(self, image_vecs, text_vecs):
        super().__init__(prompt='')
        self.image_vecs = image_vecs
        self.text_vecs = text_vecs

    def encode_images(self, images):
        return F.normalize(torch.stack([self.image_vecs[int(i)]
                                        for i in images]), dim=-1)

    def encode_texts(self, texts):
        return F.normalize(torch.stack([self.text_vecs[t] for t in texts]),
                           dim=-1)


def test_score_uses_best_reference_and_nan_without_refs():
    e = torch.eye(3)
    scorer = _TableScorer(
        {0: e[0], 1: e[1]},
        {'cand0': e[0] + e[1], 'cand1': e[1], 'refA': e[1], 'refB': e[2]})
    clip_s, ref_clip = scorer.score(
        torch.tensor([0, 1]), ['cand0', 'cand1'], [['refB', 'refA'], []])
    c0 = 2.5 * (1 / 2**0.5)  # cos(e0, e0 + e1) = 1/sqrt(2)
    assert clip_s.tolist() == pytest.approx([c0, 2.5])
    best = 1 / 2**0.5  # cand0 vs refA (refB is orthogonal)
    assert ref_clip[0].item() == pytest.approx(2 * c0 * best / (c0 + best))
    assert torch.isnan(ref_clip[1])


# -------------------------------------------------------------- open_clip
@pytest.fixture(scope='module')
def tiny_open_clip(tmp_path_factory):
    """A tiny open_clip architecture, random weights in a local file."""
    import open_clip
    root = tmp_path_factory.mktemp('open_clip')
    name = 'mdc-test-tiny-clip'
    cfg = dict(embed_dim=32,
               vision_cfg=dict(image_size=64, layers=2, width=64,
                               patch_size=32, head_width=32),
               text_cfg=dict(context_length=77, vocab_size=49408, width=64,
                             heads=2, layers=2))
    (root / 'configs').mkdir()
    (root / 'configs' / f'{name}.json').write_text(json.dumps(cfg))
    open_clip.add_model_config(str(root / 'configs'))
    torch.manual_seed(0)
    model = open_clip.create_model(name, pretrained=None)
    ckpt = root / 'tiny.pt'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    return name, str(ckpt), model.eval()


def test_open_clip_scorer_matches_open_clip(tiny_open_clip):
    import open_clip
    from PIL import Image
    name, ckpt, model = tiny_open_clip
    scorer = OpenCLIPScorer(model_name=name, checkpoint=ckpt)
    for a, b in zip(scorer.model.state_dict().values(),
                    model.state_dict().values()):
        assert torch.equal(a, b)

    images = _images()
    texts = ['a red car', 'two dogs on grass', 'café ☕ au lait']
    _, _, preprocess = open_clip.create_model_and_transforms(name)
    tokenizer = open_clip.get_tokenizer(name)
    with torch.no_grad():
        pix = torch.stack([
            preprocess(Image.fromarray(img.permute(1, 2, 0).numpy()[..., ::-1]
                                       .copy())) for img in images
        ])
        img = model.encode_image(pix, normalize=True)
        txt = model.encode_text(tokenizer(['A photo depicts ' + t
                                           for t in texts]), normalize=True)
    cos = (img * txt).sum(-1)
    assert torch.allclose(scorer.image_text_similarity(images, texts), cos,
                          atol=1e-5)
    assert torch.allclose(scorer.clip_score(images, texts),
                          2.5 * cos.clamp(min=0), atol=1e-5)


def test_open_clip_scorer_missing_checkpoint():
    with pytest.raises(FileNotFoundError, match='/no/such/ViT-B-32.pt'):
        OpenCLIPScorer(model_name='ViT-B-32',
                       checkpoint='/no/such/ViT-B-32.pt')
    with pytest.raises(FileNotFoundError, match='never downloaded'):
        OpenCLIPScorer(model_name='ViT-B-32')


def test_caption_metric_names_missing_clip_checkpoint():
    with pytest.raises(FileNotFoundError,
                       match=r"CaptionMetric\(clip_scorer=.*/no/such/w\.pt"):
        CaptionMetric(scores=['CLIPScore'],
                      clip_scorer=dict(type='OpenCLIPScorer',
                                       checkpoint='/no/such/w.pt'))


# ------------------------------------------------------ plugin model scorer
@MODELS.register_module()
class TinyImageTextForScorerTest(BaseModel):
    """Minimal model with the interface PluginModelScorer needs."""

    def __init__(self, dim: int = 8, data_preprocessor=None):
        super().__init__(data_preprocessor=data_preprocessor)
        self.image_proj = torch.nn.Linear(3 * 4 * 4, dim)
        self.char_emb = torch.nn.EmbeddingBag(256, dim, mode='mean')

    def encode_image(self, inputs):
        pooled = F.adaptive_avg_pool2d(inputs, 4).flatten(1)
        return F.normalize(self.image_proj(pooled), dim=-1)

    def encode_text(self, texts):
        ids = [torch.tensor([ord(c) % 256 for c in t] or [0]) for t in texts]
        offsets = torch.tensor([0] + [len(i) for i in ids[:-1]]).cumsum(0)
        return F.normalize(self.char_emb(torch.cat(ids), offsets), dim=-1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.encode_image(inputs)


@pytest.fixture
def tiny_plugin_model(tmp_path):
    cfg_file = tmp_path / 'tiny_scorer_cfg.py'
    cfg_file.write_text(
        "model = dict(type='TinyImageTextForScorerTest', dim=8,\n"
        "             data_preprocessor=dict(type='ImgDataPreprocessor',\n"
        "                 mean=[120., 110., 100.], std=[60., 50., 40.],\n"
        "                 bgr_to_rgb=True))\n")
    torch.manual_seed(1)
    model = MODELS.build(dict(
        type='TinyImageTextForScorerTest', dim=8,
        data_preprocessor=dict(type='ImgDataPreprocessor',
                               mean=[120., 110., 100.], std=[60., 50., 40.],
                               bgr_to_rgb=True))).eval()
    ckpt = tmp_path / 'tiny.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    return str(cfg_file), str(ckpt), model


def test_plugin_model_scorer_uses_preprocessor_and_weights(tiny_plugin_model):
    cfg_file, ckpt, model = tiny_plugin_model
    scorer = PluginModelScorer(config=cfg_file, checkpoint=ckpt)
    for a, b in zip(scorer.model.state_dict().values(),
                    model.state_dict().values()):
        assert torch.equal(a, b)
    images = _images(2)
    texts = ['a cat', 'a dog on a bench']
    with torch.no_grad():
        pix = model.data_preprocessor({'inputs': images}, False)['inputs']
        cos = (model.encode_image(pix) * model.encode_text(texts)).sum(-1)
    assert torch.allclose(scorer.image_text_similarity(images, texts), cos,
                          atol=1e-6)


def test_plugin_model_scorer_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match='no_cfg.py'):
        PluginModelScorer(config=str(tmp_path / 'no_cfg.py'))


def test_caption_metric_clip_scores(tiny_plugin_model):
    cfg_file, ckpt, _ = tiny_plugin_model
    clip_cfg = dict(type='PluginModelScorer', config=cfg_file,
                    checkpoint=ckpt)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        from mmengine.evaluator import Evaluator
        evaluator = Evaluator(dict(type='CaptionMetric',
                                   scores=['CLIPScore', 'RefCLIPScore'],
                                   clip_scorer=clip_cfg))
    images = _images(3)
    samples = [
        dict(image_id=1, pred_caption='a cat', gt_caption=['a cat', 'cat']),
        dict(image_id=2, pred_caption='', gt_caption='a dog'),
        dict(image_id=3, pred_caption='naïve café ☕'),  # no references
    ]
    evaluator.process(data_samples=samples, data_batch=dict(inputs=images))
    results = evaluator.evaluate(3)

    scorer = PluginModelScorer(config=cfg_file, checkpoint=ckpt)
    clip_s, ref_clip = scorer.score(images, [s['pred_caption']
                                             for s in samples],
                                    [['a cat', 'cat'], ['a dog'], None])
    assert results['caption/CLIPScore'] == pytest.approx(
        clip_s.mean().item(), abs=1e-6)
    assert results['caption/RefCLIPScore'] == pytest.approx(
        ref_clip[:2].mean().item(), abs=1e-6)

    metric = CaptionMetric(scores=['CLIPScore'], clip_scorer=clip_cfg)
    with pytest.raises(ValueError, match="raw images in data_batch"):
        metric.process(None, samples)


BASELINE = osp.join(REPO, 'configs/baselines/clip_vit-tiny_shapes.py')


@pytest.mark.skipif(not osp.isfile(BASELINE),
                    reason='the contrastive baseline config is not here')
def test_plugin_model_scorer_with_contrastive_baseline():
    scorer = PluginModelScorer(config=BASELINE)
    clip_s, ref_clip = scorer.score(
        _images(2), ['a red circle', 'a blue square'],
        [['a red circle', 'a circle'], []])
    assert clip_s.shape == (2, ) and ((clip_s >= 0) & (clip_s <= 2.5)).all()
    assert not torch.isnan(ref_clip[0]) and torch.isnan(ref_clip[1])
