"""MC-Diffusion: the mask-and-replace transition against dense matrices,
condition masking statistics, batched guidance, the VQ neck, build-time
errors, and the embedded configs end to end with the real runner."""
import math
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mdc_plugin  # noqa: F401
from mdc_plugin.models.diffusion import (MaskedConditionGuidance,
                                         MaskReplaceTransition)
from mdc_plugin.models.heads import D3PMCaptionHead
from mdc_plugin.models.necks import VQTokenizerNeck

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MCS_CFG = 'configs/mc_diffusion/mcs_vit-tiny-vq_shapes.py'
VQ_CFG = 'configs/mc_diffusion/vq-vit-tiny_shapes.py'

V, MASK, T = 7, 4, 10  # small vocabulary with [MASK] in the middle


# ------------------------------------------------------- dense reference
def dense_q(a: float, b: float, g: float) -> torch.Tensor:
    """(V, V) mask-and-replace matrix, [Q]_ij = q(x_t = j | x_s = i)."""
    q = torch.full((V, V), b, dtype=torch.float64)
    q += a * torch.eye(V, dtype=torch.float64)
    q[:, MASK] = g
    q[MASK] = 0
    q[MASK, MASK] = 1
    return q


def one_step(tr: MaskReplaceTransition, t: int) -> torch.Tensor:
    a, g = tr.abar, tr.gbar
    at = float(a[t] / a[t - 1])
    gt = float(1 - (1 - g[t]) / (1 - g[t - 1]))
    return dense_q(at, (1 - at - gt) / (V - 1), gt)


def product(tr, s: int, t: int) -> torch.Tensor:
    out = torch.eye(V, dtype=torch.float64)
    for k in range(s + 1, t + 1):
        out = out @ one_step(tr, k)
    return out


@pytest.fixture(scope='module')
def tr():
    return MaskReplaceTransition(V, MASK, num_timesteps=T)


def rows_of(tr, abg) -> torch.Tensor:
    """Rows of the transition through ``propagate``: (V, V)."""
    eye = torch.eye(V).clamp(min=1e-30).log()[None]
    b = len(abg[0])
    return tr.propagate(eye.expand(b, V, V), abg).exp()


def test_transition_rows_sum_to_one_and_match_dense(tr):
    for t in range(1, T + 1):
        s, tt = torch.tensor([t - 1]), torch.tensor([t])
        step = rows_of(tr, tr.jump(s, tt))[0].double()
        torch.testing.assert_close(step.sum(-1), torch.ones(V,
                                   dtype=torch.float64), atol=1e-5, rtol=0)
        torch.testing.assert_close(step, one_step(tr, t), atol=1e-5,
                                   rtol=1e-4)
        # cumulative q(x_t | x_0) is the product Q_1 ... Q_t
        cum = rows_of(tr, tr.cumulative(tt))[0].double()
        torch.testing.assert_close(cum, product(tr, 0, t), atol=1e-5,
                                   rtol=1e-4)
    # a skipped jump s -> t equals Q_{s+1} ... Q_t
    jump = rows_of(tr, tr.jump(torch.tensor([3]), torch.tensor([8])))[0]
    torch.testing.assert_close(jump.double(), product(tr, 3, 8), atol=1e-5,
                               rtol=1e-4)
    # the likelihood view q(x_t = j | x_s = i) is a column of the matrix
    x_t = torch.arange(V)[None]
    lik = tr.likelihood(x_t, tr.jump(torch.tensor([3]), torch.tensor([8])))
    torch.testing.assert_close(lik[0].exp().t().double(), product(tr, 3, 8),
                               atol=1e-5, rtol=1e-4)


def test_posterior_matches_dense(tr):
    torch.manual_seed(0)
    batch, length = 6, 5
    logits = torch.randn(batch, length, V)
    logits[..., MASK] = -1e9
    p0 = logits.softmax(-1)
    x_t = torch.randint(0, V, (batch, length))
    t = torch.tensor([1, 2, 5, 10, 7, 10])
    s = torch.tensor([0, 1, 4, 9, 2, 0])
    got = tr.posterior(p0.clamp(min=1e-30).log(), x_t, t, s).exp().double()
    for i in range(batch):
        q_st = product(tr, int(s[i]), int(t[i]))
        q_0s = product(tr, 0, int(s[i]))
        q_0t = product(tr, 0, int(t[i]))
        for j in range(length):
            xt = int(x_t[i, j])
            want = torch.zeros(V, dtype=torch.float64)
            for x0 in range(V):
                if x0 == MASK:
                    continue
                want += p0[i, j, x0].double() * q_st[:, xt] * q_0s[x0] / \
                    q_0t[x0, xt]
            torch.testing.assert_close(got[i, j], want / want.sum(),
                                       atol=2e-4, rtol=1e-3)


def test_forward_corruption_rates(tr):
    torch.manual_seed(0)
    x0 = torch.randint(0, V - 1, (4000, 50))
    x0 = x0 + (x0 >= MASK).long()  # real tokens only
    t = torch.full((4000, ), 5)
    x_t = tr.q_sample(x0, t)
    a, b, g = (float(v[0]) for v in tr.cumulative(t[:1]))
    n = x0.numel()
    masked = (x_t == MASK).float().mean().item()
    same = (x_t == x0).float().mean().item()
    for got, want in ((masked, g), (same, a + b)):
        assert abs(got - want) < 5 * math.sqrt(want * (1 - want) / n) + 1e-4


# -------------------------------------------------------------- guidance
@pytest.mark.parametrize('mode', ['mcs', 'cfg'])
def test_condition_masking_rates(mode):
    torch.manual_seed(0)
    guide = MaskedConditionGuidance(mode=mode, p_cond=0.2, p_mask=0.3)
    batch, num, k = 20000, 16, 50
    codes = torch.randint(0, k, (batch, num))
    out = guide.train_condition(codes, mask_index=k)
    masked = out == k
    touched = masked.any(1)
    # MCS: a p_cond fraction of samples, p_mask of their tokens; CFG: all
    p_token = 0.3 if mode == 'mcs' else 1.0
    p_touched = 0.2 * (1 - (1 - p_token) ** num)
    sd = math.sqrt(p_touched * (1 - p_touched) / batch)
    assert abs(touched.float().mean().item() - p_touched) < 5 * sd
    rate = masked[touched].float().mean().item()
    if mode == 'mcs':
        # per-token rate among touched samples (conditioned on >= 1 mask)
        want = 0.3 / (1 - 0.7 ** num)
        sd = math.sqrt(want * (1 - want) / (touched.sum().item() * num))
        assert abs(rate - want) < 5 * sd
    else:
        assert rate == 1.0
    assert torch.equal(out[~masked], codes[~masked])


def test_sampling_mask_rate_is_separate_from_training():
    torch.manual_seed(0)
    guide = MaskedConditionGuidance(p_cond=1.0, p_mask=0.1,
                                    sample_p_mask=0.6)
    codes = torch.zeros(500, 40, dtype=torch.long)
    train_rate = (guide.train_condition(codes, 9) == 9).float().mean()
    sample_rate = (guide.weaken(codes, 9) == 9).float().mean()
    assert abs(train_rate - 0.1) < 0.01 and abs(sample_rate - 0.6) < 0.02
    with pytest.raises(ValueError, match='sample_p_mask'):
        MaskedConditionGuidance(sample_p_mask=1.5)


def tiny_head(**kw) -> D3PMCaptionHead:
    cfg = dict(type='D3PMCaptionHead', tokenizer=dict(type='ShapesTokenizer'),
               max_length=8, num_codes=12, condition_length=5, embed_dims=32,
               num_layers=1, num_heads=2, num_timesteps=20,
               guidance=dict(type='MaskedConditionGuidance', mode='mcs',
                             p_cond=0.5, p_mask=0.5))
    cfg.update(kw)
    return MODELS.build(cfg).eval()


def test_guidance_batched_equals_two_passes():
    torch.manual_seed(0)
    head = tiny_head()
    codes = torch.randint(0, 12, (3, 5))
    weak = head.guidance.weaken(codes, 12)
    x_t = torch.randint(0, head.vocab_size, (3, 8))
    t = torch.tensor([3, 10, 20])
    calls = []

    def predict(c):
        calls.append(c.shape[0])
        return head.denoise(x_t, t, c)

    with torch.no_grad():
        batched = head.guidance.guided_log_probs(predict, codes, 12,
                                                 scale=3.0, weak_codes=weak)
        full = head.denoise(x_t, t, codes)
        weak_logits = head.denoise(x_t, t, weak)
    assert calls == [6]  # one forward of the doubled batch
    two = (1 - 3.0) * weak_logits.log_softmax(-1) + \
        3.0 * full.log_softmax(-1)
    torch.testing.assert_close(batched, two.log_softmax(-1), atol=1e-5,
                               rtol=1e-5)
    # scale 1 is the conditional model with a single pass
    calls.clear()
    with torch.no_grad():
        cond = head.guidance.guided_log_probs(predict, codes, 12, scale=1.0)
    assert calls == [3]
    torch.testing.assert_close(cond, full.log_softmax(-1))


@pytest.mark.parametrize('scale', [1.0, 3.0])
def test_sampling_from_all_mask_returns_valid_tokens(scale):
    torch.manual_seed(0)
    head = tiny_head()
    codes = torch.randint(0, 13, (4, 5))  # includes the mask id 12
    for steps in (20, 6, 1):
        ids = head.sample(codes, steps=steps, scale=scale)
        assert ids.shape == (4, 8)
        tok = head.tokenizer
        assert (ids[:, 0] == tok.bos_id).all()
        body = ids[:, 1:]
        assert ((body >= 0) & (body < head.vocab_size)).all()
        for bad in (tok.mask_id, tok.pad_id, tok.bos_id):
            assert not (body == bad).any()
    assert all(isinstance(c, str) for c in head.predict(codes, steps=4))


def test_loss_is_finite_and_trains_the_decoder():
    from mmpretrain.structures import DataSample
    torch.manual_seed(0)
    head = tiny_head().train()
    ids, _ = head.tokenizer.encode_padded('a red circle', max_length=8)
    samples = []
    for _ in range(4):
        sample = DataSample()
        sample.caption_ids = torch.as_tensor(ids)
        samples.append(sample)
    losses = head.loss(torch.randint(0, 12, (4, 5)), samples)
    assert set(losses) >= {'loss_vb', 'loss_aux', 'x0_acc'}
    total = losses['loss_vb'] + losses['loss_aux']
    assert torch.isfinite(total)
    total.backward()
    assert head.decoder.token_embed.weight.grad.abs().sum() > 0
    assert head.condition_embed.weight.grad.abs().sum() > 0


# --------------------------------------------------------------- VQ neck
def test_learned_neck_straight_through_ema_and_usage():
    torch.manual_seed(0)
    neck = VQTokenizerNeck(in_dims=16, num_codes=8, code_dims=4,
                           num_tokens=6, num_prefix_tokens=1,
                           ema_decay=0.5, dead_threshold=0.5)
    tokens = torch.randn(3, 7, 16, requires_grad=True)
    before = neck.codebook.clone()
    out = neck(tokens)
    assert out.codes.shape == (3, 6) and out.embeddings.shape == (3, 6, 4)
    assert out.mask_index == 8 and neck.vocab_size == 9
    assert {'loss_vq_commit', 'vq_perplexity', 'vq_dead_codes'} <= \
        set(out.losses)
    assert 1 <= out.losses['vq_perplexity'] <= 8
    (out.embeddings.sum() + out.losses['loss_vq_commit']).backward()
    assert neck.proj.weight.grad.abs().sum() > 0  # straight-through
    assert tokens.grad[:, 0].abs().sum() == 0  # cls token dropped
    assert not torch.equal(neck.codebook, before)  # EMA moved the codes
    # nearest-code assignment
    z = neck.proj(tokens[:, 1:]).detach().reshape(-1, 4)
    neck.eval()
    codes = neck(tokens).codes.flatten()
    brute = torch.cdist(z, neck.codebook).argmin(-1)
    assert torch.equal(codes, brute)
    with pytest.raises(ValueError, match='num_tokens=6'):
        neck(torch.randn(2, 9, 16))


def test_dead_codes_are_counted_and_restarted():
    torch.manual_seed(0)
    neck = VQTokenizerNeck(in_dims=16, num_codes=8, code_dims=4,
                           num_tokens=6, ema_decay=0.9, dead_threshold=0.5)
    with torch.no_grad():
        neck.codebook[4:] = 100.0  # far away: never chosen
        neck.embed_sum[4:] = 100.0  # so the EMA rebuild keeps them far
    neck.cluster_size[4:] = 0.1
    tokens = torch.randn(3, 7, 16)
    z = neck.proj(tokens[:, 1:]).detach().reshape(-1, 4)
    out = neck(tokens)
    assert out.losses['vq_dead_codes'] == 4
    assert out.losses['vq_used_codes'] <= 4
    # restarted from batch vectors: usable again, no longer dead
    for code in neck.codebook[4:]:
        assert torch.isclose(z, code).all(-1).any(), code
    assert (neck.cluster_size[4:] == 1).all()
    # without restarts the dead codes stay where they were
    torch.manual_seed(0)
    keep = VQTokenizerNeck(in_dims=16, num_codes=8, code_dims=4,
                           num_tokens=6, ema_decay=0.9, dead_threshold=0.5,
                           restart_dead=False)
    with torch.no_grad():
        keep.codebook[4:] = 100.0
        keep.embed_sum[4:] = 100.0
    keep.cluster_size[4:] = 0.1
    keep(tokens)
    assert (keep.codebook[4:] > 90).all()


def fake_vqkd(path, dims=16, codes=10, code_dims=4, prefix=''):
    state = {
        f'{prefix}encode_task_layer.0.weight': torch.randn(dims, dims),
        f'{prefix}encode_task_layer.0.bias': torch.randn(dims),
        f'{prefix}encode_task_layer.2.weight': torch.randn(code_dims, dims),
        f'{prefix}encode_task_layer.2.bias': torch.randn(code_dims),
        f'{prefix}quantize.embedding.weight': torch.randn(codes, code_dims),
        f'{prefix}encoder.patch_embed.projection.weight': torch.randn(2, 2),
    }
    torch.save(dict(state_dict=state), str(path))
    return state


def test_frozen_vqkd_neck_loads_and_refuses_mismatch(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / 'vqkd.pth'
    state = fake_vqkd(ckpt, prefix='target_generator.')
    neck = VQTokenizerNeck(in_dims=16, num_codes=10, code_dims=4,
                           source='frozen', checkpoint=str(ckpt),
                           checkpoint_prefix='target_generator.',
                           num_prefix_tokens=0)
    assert not any(p.requires_grad for p in neck.parameters())
    neck.train()
    assert not neck.training  # frozen necks stay in eval mode
    tokens = torch.randn(2, 5, 16)
    z = torch.nn.functional.linear(
        torch.tanh(torch.nn.functional.linear(
            tokens, state['target_generator.encode_task_layer.0.weight'],
            state['target_generator.encode_task_layer.0.bias'])),
        state['target_generator.encode_task_layer.2.weight'],
        state['target_generator.encode_task_layer.2.bias'])
    book = torch.nn.functional.normalize(
        state['target_generator.quantize.embedding.weight'], dim=-1)
    want = (torch.nn.functional.normalize(z, dim=-1) @ book.t()).argmax(-1)
    assert torch.equal(neck(tokens).codes, want)

    with pytest.raises(ValueError, match='not a VQKD checkpoint.*shape'):
        VQTokenizerNeck(in_dims=16, num_codes=12, code_dims=4,
                        source='frozen', checkpoint=str(ckpt),
                        checkpoint_prefix='target_generator.')
    with pytest.raises(ValueError, match='missing'):
        VQTokenizerNeck(in_dims=16, num_codes=10, code_dims=4,
                        source='frozen', checkpoint=str(ckpt))
    with pytest.raises(ValueError, match='needs checkpoint'):
        VQTokenizerNeck(in_dims=16, num_codes=10, source='frozen')
    missing = VQTokenizerNeck(in_dims=16, num_codes=10, code_dims=4,
                              source='frozen', checkpoint='nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        missing.init_weights()


# ------------------------------------------------------ build-time errors
def _mcs_model_cfg():
    init_default_scope('mmpretrain')
    return Config.fromfile(osp.join(REPO, MCS_CFG)).model


@pytest.mark.parametrize('change, match', [
    (dict(neck=dict(num_codes=64)), 'codebook size mismatch'),
    (dict(neck=dict(num_tokens=32)), 'condition length mismatch'),
    (dict(head=dict(guidance=dict(scale=-1.0))), 'must be >= 0'),
    (dict(head=dict(guidance=dict(mode='drop'))), 'not one of'),
    (dict(head=dict(sampler=dict(steps=101))), r'steps=101'),
    (dict(head=dict(sampler=dict(scale=-2.0))), 'scale=-2.0 must be >= 0'),
    (dict(head=dict(sampler=dict(scales=3.0))),
     r"unknown sampler keys \['scales'\]; allowed: \['scale', 'steps'"),
    (dict(head=dict(image_dims=192)), 'condition_dims'),
])
def test_bad_configs_fail_at_build(change, match):
    cfg = _mcs_model_cfg()
    for part, values in change.items():
        for key, value in values.items():
            if isinstance(value, dict):
                cfg[part][key].update(value)
            else:
                cfg[part][key] = value
    with pytest.raises((ValueError, TypeError), match=match):
        MODELS.build(cfg)


def test_bad_inputs_name_the_problem():
    head = tiny_head()
    with pytest.raises(TypeError, match='discrete condition codes'):
        head.sample(torch.randn(2, 5, 32))
    with pytest.raises(ValueError, match='condition_length=5'):
        head.sample(torch.zeros(2, 6, dtype=torch.long))
    with pytest.raises(ValueError, match='num_codes=12'):
        head.sample(torch.full((2, 5), 13))
    with pytest.raises(ValueError, match='>= 0'):
        head.sample(torch.zeros(2, 5, dtype=torch.long), scale=-0.5)
    with pytest.raises(ValueError, match='no guidance'):
        tiny_head(guidance=None).sample(torch.zeros(2, 5, dtype=torch.long),
                                        scale=2.0)


@pytest.mark.parametrize('option', ['vq_model', 'tokenizer'])
def test_frozen_vq_model_option_and_its_former_name(option):
    """``vq_model`` names the frozen VQ image model; ``tokenizer`` (its name
    before issue 15) still reaches the same check."""
    from mdc_plugin.models.necks import VQTokenizerNeck
    with pytest.raises(ValueError, match=r"vq_model='vqgan' is not "
                       r"supported; use one of \('vqkd',\)"):
        VQTokenizerNeck(in_dims=8, num_codes=4, source='frozen',
                        checkpoint='x.pth', **{option: 'vqgan'})
