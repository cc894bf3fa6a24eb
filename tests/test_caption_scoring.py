"""``model.score``: image-text matching scores of every captioner, checked
against brute-force references (issue 22)."""
import itertools
import math
import os.path as osp
from typing import List

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mdc_plugin  # noqa: F401
from mdc_plugin.models.captioners import CaptionScoringUnsupported
from mdc_plugin.models.tokenizers.base import CaptionTokenizer

pytestmark = pytest.mark.usefixtures('one_thread')
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MDC_CFG = osp.join(ROOT, 'configs/mdc/resnet18-w32_fashion.py')
CAP_CFG = osp.join(ROOT, 'configs/baselines/cap_resnet18-w32_fashion.py')
CLIP_CFG = osp.join(ROOT, 'configs/baselines/clip_resnet18-w32_fashion.py')
CAPTIONS = ['a coat to the left of a sandal',
            'a sandal to the left of a coat',
            'two bags']


class ThreeWordTokenizer(CaptionTokenizer):
    """Words 'a', 'b', 'c' and the four specials: small enough to
    enumerate every mask of a caption."""

    def __init__(self) -> None:
        self.words = ['[PAD]', '[BOS]', '[EOS]', '[MASK]', 'a', 'b', 'c']
        self.pad_id, self.bos_id, self.eos_id, self.mask_id = range(4)
        self.vocab_size = len(self.words)
        self._check_specials()

    def encode(self, text: str) -> List[int]:
        return [self.words.index(w) for w in text.split()]

    def _decode_content(self, ids: List[int]) -> str:
        return ' '.join(self.words[i] for i in ids)


def build(cfg_path: str, seed: int = 0):
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    return MODELS.build(Config.fromfile(cfg_path).model).eval()


def images(batch: int = 2) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(batch, 3, 64, 64)


def tiny_head(kind: str, max_length: int = 5):
    torch.manual_seed(0)
    return MODELS.build(dict(type=kind, tokenizer=ThreeWordTokenizer(),
                             max_length=max_length, image_dims=8,
                             embed_dims=16, num_layers=1,
                             num_heads=2)).eval()


def encode(head, captions):
    rows = [head.tokenizer.encode_padded(c, head.max_length)[0]
            for c in captions]
    return torch.from_numpy(np.stack(rows))


# --------------------------------------------------------------- Cap / CapPa
def test_cap_score_is_the_sum_of_teacher_forced_log_probabilities():
    model = build(CAP_CFG)
    x = images()
    scores = model.score(x, CAPTIONS)
    assert scores.shape == (2, 3)
    head, feats = model.head, model.extract_feat(x)
    for b in range(2):
        for k, caption in enumerate(CAPTIONS):
            words = head.tokenizer.encode(caption)
            prefix = [head.tokenizer.bos_id]
            total = 0.0
            for target in words + [head.tokenizer.eos_id]:
                # brute force: the prefix alone, no padding, no cache
                hidden, _ = head.decoder(torch.tensor([prefix]),
                                         memory=feats[b:b + 1], causal=True)
                logp = F.log_softmax(head.logits(hidden[0, -1]), -1)
                total += logp[target].item()
                prefix.append(target)
            assert scores[b, k].item() == pytest.approx(total, abs=1e-4)
    mean = model.score(x, CAPTIONS, normalize='mean')
    lengths = torch.tensor([len(head.tokenizer.encode(c)) + 1
                            for c in CAPTIONS], dtype=torch.float)
    torch.testing.assert_close(mean, scores / lengths)


def test_cappa_config_scores_like_cap():
    model = build(osp.join(ROOT,
                           'configs/baselines/cappa_resnet18-w32_fashion.py'))
    assert model.score_cfg == dict(normalize='sum')
    assert model.score(images(), CAPTIONS).shape == (2, 3)


# ----------------------------------------------------------------------- MDC
def exact_negative_elbo(head, feats, ids) -> torch.Tensor:
    """-ELBO by enumerating every mask S of the L-1 positions and
    integrating t out: sum_S B(|S|, n-|S|+1) * sum_{i in S} CE_i(S)."""
    targets = head.targets(ids)
    n = ids.shape[1] - 1
    total = torch.zeros(ids.shape[0])
    for bits in itertools.product([0, 1], repeat=n):
        k = sum(bits)
        if k == 0:
            continue
        masked = torch.tensor([[False, *map(bool, bits)]]).expand_as(ids)
        inputs = targets.masked_fill(masked, head.tokenizer.mask_id)
        hidden, _ = head.decoder(inputs, memory=feats)
        ce = F.cross_entropy(head.logits(hidden).transpose(1, 2), targets,
                             reduction='none')
        beta = math.factorial(k - 1) * math.factorial(n - k) / \
            math.factorial(n)
        total += beta * (ce * masked).sum(1)
    return total


def test_mdc_monte_carlo_elbo_converges_to_the_enumerated_elbo():
    head = tiny_head('MaskedDiffusionCaptionHead')
    torch.manual_seed(2)
    feats = torch.randn(3, 2, 8)
    ids = encode(head, ['a b c', 'c a', 'b'])
    with torch.no_grad():
        exact = exact_negative_elbo(head, feats, ids)

    def error(draws: int, seed: int) -> torch.Tensor:
        # `copies` independent rows of `draws // copies` stratified draws
        # each (one batch: fast), averaged
        copies = max(1, draws // 40)
        estimate = -head.log_likelihood(
            feats.repeat(copies, 1, 1), ids.repeat(copies, 1),
            method='elbo', draws=draws // copies, seed=seed)
        estimate = estimate.view(copies, -1).mean(0)
        return ((estimate - exact) / exact).abs()
    # The 1/t weight gives the estimator a heavy tail (its variance grows
    # like log(1/t_min)), so it converges slowly: within 3% at 20,000
    # stratified draws (1.9% at worst measured), and the mean error over
    # seeds shrinks with the draws.
    assert bool((error(20000, 0) < 0.03).all())
    many = torch.stack([error(20000, s) for s in (1, 2)]).mean()
    few = torch.stack([error(20, s) for s in (1, 2)]).mean()
    assert many < few / 2
    # seeded: the same draws give the same estimate
    torch.testing.assert_close(
        head.log_likelihood(feats, ids, draws=50, seed=7),
        head.log_likelihood(feats, ids, draws=50, seed=7), rtol=0, atol=0)


def test_mdc_candidates_of_one_image_share_their_masks():
    head = tiny_head('MaskedDiffusionCaptionHead')
    feats = torch.randn(1, 2, 8).repeat(2, 1, 1)
    ids = encode(head, ['a b', 'a b'])
    shared = head.log_likelihood(feats, ids, draws=3, group_size=2)
    assert shared[0] == shared[1]
    alone = head.log_likelihood(feats, ids, draws=3, group_size=1)
    assert alone[0] != alone[1]
    unshared = head.log_likelihood(feats, ids, draws=3, group_size=2,
                                   shared_masks=False)
    torch.testing.assert_close(unshared, alone, rtol=0, atol=0)
    with pytest.raises(ValueError, match='group_size'):
        head.log_likelihood(feats[:1].repeat(3, 1, 1), encode(
            head, ['a', 'b', 'c']), group_size=2)


def test_mdc_heuristics_against_brute_force():
    head = tiny_head('MaskedDiffusionCaptionHead', max_length=6)
    torch.manual_seed(3)
    feats = torch.randn(2, 2, 8)
    ids = encode(head, ['a b c', 'c'])
    targets = head.targets(ids)
    real = head.real_token_mask(ids)

    def nll_with(masked):
        inputs = targets.masked_fill(masked, head.tokenizer.mask_id)
        hidden, _ = head.decoder(inputs, memory=feats)
        return F.cross_entropy(head.logits(hidden).transpose(1, 2), targets,
                               reduction='none')

    once = -(nll_with(real) * real).sum(1)
    torch.testing.assert_close(
        head.log_likelihood(feats, ids, method='masked_once'), once)
    pll = torch.zeros(2)
    ltr = torch.zeros(2)
    for i in range(1, ids.shape[1]):
        alone = torch.zeros_like(real)
        alone[:, i] = True
        pll -= nll_with(alone)[:, i] * real[:, i]
        after = torch.zeros_like(real)
        after[:, i:] = True
        ltr -= nll_with(after)[:, i] * real[:, i]
    torch.testing.assert_close(
        head.log_likelihood(feats, ids, method='one_at_a_time'), pll)
    torch.testing.assert_close(
        head.log_likelihood(feats, ids, method='left_to_right'), ltr)
    with pytest.raises(ValueError, match='score method'):
        head.log_likelihood(feats, ids, method='oracle')


def test_mdc_score_defaults_and_every_method_on_the_real_config():
    model = build(MDC_CFG)
    assert model.score_cfg == dict(method='elbo', draws=8, seed=0,
                                   normalize='sum', shared_masks=True)
    x = images()
    for method in ('elbo', 'masked_once', 'one_at_a_time', 'left_to_right'):
        scores = model.score(x, [CAPTIONS, CAPTIONS[::-1]], method=method)
        assert scores.shape == (2, 3) and bool((scores < 0).all())
        mean = model.score(x, [CAPTIONS, CAPTIONS[::-1]], method=method,
                           normalize='mean')
        assert not torch.allclose(mean, scores)


# --------------------------------------------------------------- CLIP-style
def test_clip_score_is_the_cosine_of_the_two_towers():
    model = build(CLIP_CFG)
    x = images()
    scores = model.score(x, CAPTIONS)
    with torch.no_grad():
        cos = model.encode_image(x) @ model.encode_text(CAPTIONS).t()
    torch.testing.assert_close(scores, cos)
    with pytest.raises(ValueError, match='unknown options'):
        model.score(x, CAPTIONS, normalize='mean')


# ----------------------------------------------------------------- refusals
def test_d3pm_and_prefix_diffusion_refuse_clearly():
    model = build(osp.join(ROOT, 'configs/mc_diffusion/'
                           'mcs_vit-tiny-vq_shapes.py'))
    with pytest.raises(CaptionScoringUnsupported,
                       match='D3PMCaptionHead cannot score.*num_timesteps'):
        model.score(torch.randn(1, 3, 64, 64), ['a red circle'])
    from mdc_plugin.models.captioners import PrefixDiffusionCaptioner
    with pytest.raises(CaptionScoringUnsupported,
                       match='no cheap likelihood'):
        PrefixDiffusionCaptioner.__new__(PrefixDiffusionCaptioner).score(
            torch.randn(1, 3, 8, 8), ['a'])


# --------------------------------------------------------------- bad inputs
@pytest.mark.parametrize('captions,message', [
    (['a coat', ''], 'caption 1 of image 0 is empty'),
    (['a coat', 'a zebra beside a coat'],
     r"words the tokenizer does not know: \['zebra', 'beside'\]"),
    (['a coat ' * 20], 'caption 0 of image 0 .* tokens long'),
    ([['a coat'], ['a bag'], ['a dress']], '3 rows of captions for 2'),
    ([['a coat', 'a bag'], ['a dress']], 'same number'),
    ('a coat', 'list of K strings'),
])
def test_bad_captions_are_refused_naming_them(captions, message):
    model = build(CAP_CFG)
    with pytest.raises(ValueError, match=message):
        model.score(images(), captions)


def test_bad_options_are_refused():
    mdc, cap = build(MDC_CFG), build(CAP_CFG)
    with pytest.raises(ValueError, match=r"unknown options \['draws'\]"):
        cap.score(images(), CAPTIONS, draws=4)
    with pytest.raises(ValueError, match='normalize'):
        mdc.score(images(), CAPTIONS, normalize='max')
    with pytest.raises(ValueError, match='draws'):
        mdc.score(images(), CAPTIONS, draws=0)
