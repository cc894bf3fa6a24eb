"""The shared diffusion core (``mdc_plugin.models.diffusion``) against the
per-head implementations it replaced, and the heads' checkpoint keys."""
import math

import pytest
import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import nn

import mdc_plugin  # noqa: F401
from mdc_plugin.models.diffusion import (TimestepMLP, gumbel_draw,
                                         mask_replace_schedule,
                                         merge_sampler_cfg, sampling_timesteps,
                                         softmax_draw, timestep_embedding,
                                         timestep_pairs)
from mdc_plugin.models.heads import (BaseCaptionHead, D3PMCaptionHead,
                                     PrefixDiffusionHead)


# ------------------------------------------- the replaced implementations
def old_d3pm_embedding(t, dims):
    half = dims // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(
        half, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    return F.pad(emb, (0, dims - emb.shape[-1]))


def old_prefix_embedding(t, dims):
    half = dims // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(
        half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([args.cos(), args.sin()], dim=-1)
    return F.pad(emb, (0, dims % 2))


@pytest.mark.parametrize('dims', [7, 32])
def test_timestep_embedding_keeps_both_orders(dims):
    t = torch.tensor([0, 1, 17, 999])
    assert torch.equal(timestep_embedding(t, dims),
                       old_d3pm_embedding(t, dims))
    assert torch.equal(timestep_embedding(t, dims, flip_sin_to_cos=True),
                       old_prefix_embedding(t, dims))


def test_timestep_mlp_keeps_parameter_names_and_init_order():
    torch.manual_seed(0)
    old = nn.Sequential(nn.Linear(16, 16), nn.SiLU(), nn.Linear(16, 16))
    torch.manual_seed(0)
    new = TimestepMLP(16, flip_sin_to_cos=True)
    assert list(new.state_dict()) == list(old.state_dict()) == [
        '0.weight', '0.bias', '2.weight', '2.bias']
    for a, b in zip(new.state_dict().values(), old.state_dict().values()):
        assert torch.equal(a, b)
    t = torch.tensor([3, 500])
    assert torch.equal(new(t), old(old_prefix_embedding(t, 16)))


def test_timestep_grids_match_the_old_formulas():
    for T, steps in [(100, 100), (100, 7), (10, 1)]:
        grid = torch.linspace(T, 0, steps + 1).round().long()
        assert timestep_pairs(T, steps) == list(
            zip(grid[:-1].tolist(), grid[1:].tolist()))
    assert torch.equal(sampling_timesteps(1000, 20),
                       torch.linspace(999, 0, 20).round().long())
    with pytest.raises(ValueError, match='steps=0'):
        timestep_pairs(10, 0)


def test_mask_replace_schedule_is_linear_with_identity_at_zero():
    abar, gbar = mask_replace_schedule(4, (0.9, 0.1), (0.05, 0.8))
    assert abar.dtype == torch.float64 and abar.shape == (5, )
    assert abar[0] == 1 and gbar[0] == 0
    assert torch.allclose(abar[1:], torch.tensor(
        [0.9, 0.9 - 0.8 / 3, 0.9 - 1.6 / 3, 0.1], dtype=torch.float64))
    with pytest.raises(ValueError, match='not a valid'):
        mask_replace_schedule(4, (0.1, 0.9), (0.05, 0.8))


def test_draws_match_the_old_formulas():
    logits = torch.randn(3, 5, 11)
    torch.manual_seed(0)
    probs = F.softmax(logits / 0.7, dim=-1)
    pred = torch.multinomial(probs.flatten(0, 1), 1).view(probs.shape[:-1])
    torch.manual_seed(0)
    ids, p = softmax_draw(logits, 0.7)
    assert torch.equal(ids, pred)
    assert torch.equal(p, probs.gather(-1, pred[..., None])[..., 0])
    gen = torch.Generator().manual_seed(1)
    u = torch.rand(logits.shape, generator=gen).clamp(1e-10, 1 - 1e-10)
    expected = (logits / 2.0 - (-u.log()).log()).argmax(-1)
    gen = torch.Generator().manual_seed(1)
    assert torch.equal(gumbel_draw(logits, 2.0, gen), expected)
    assert torch.equal(gumbel_draw(logits, 0, gen), logits.argmax(-1))


def test_sampler_merge_is_strict():
    defaults = dict(steps=8, temperature=0.0)
    assert merge_sampler_cfg(defaults, dict(steps=4, temperature=None),
                             'Head') == dict(steps=4, temperature=0.0)
    assert merge_sampler_cfg(defaults, None, 'Head') == defaults
    with pytest.raises(ValueError) as err:
        merge_sampler_cfg(defaults, dict(stepz=4), 'Head', hint=' (h)')
    assert str(err.value) == ("Head: unknown sampler keys ['stepz']; "
                              "allowed: ['steps', 'temperature'] (h)")


# ------------------------------------------------------- heads and keys
def d3pm_head():
    return MODELS.build(dict(
        type='D3PMCaptionHead', tokenizer=dict(type='ShapesTokenizer'),
        max_length=8, num_codes=4, condition_length=3, embed_dims=16,
        num_layers=1, num_heads=2, num_timesteps=10))


def prefix_head():
    return MODELS.build(dict(
        type='PrefixDiffusionHead', tokenizer=dict(type='ShapesTokenizer'),
        max_length=8, prefix_length=2, word_dims=8, embed_dims=16,
        num_layers=1, num_heads=2, num_timesteps=100))


#: state-dict keys of the heads before the diffusion core existed (same
#: tiny shapes as above): existing checkpoints load into today's heads.
OLD_KEYS = {
    d3pm_head: [
        'condition_pos', 'decoder.pos_embed',
        'decoder.token_embed.weight',
        'decoder.blocks.0.norm_self.weight',
        'decoder.blocks.0.norm_self.bias',
        'decoder.blocks.0.self_attn.q.weight',
        'decoder.blocks.0.self_attn.q.bias',
        'decoder.blocks.0.self_attn.kv.weight',
        'decoder.blocks.0.self_attn.kv.bias',
        'decoder.blocks.0.self_attn.proj.weight',
        'decoder.blocks.0.self_attn.proj.bias',
        'decoder.blocks.0.norm_cross.weight',
        'decoder.blocks.0.norm_cross.bias',
        'decoder.blocks.0.cross_attn.q.weight',
        'decoder.blocks.0.cross_attn.q.bias',
        'decoder.blocks.0.cross_attn.kv.weight',
        'decoder.blocks.0.cross_attn.kv.bias',
        'decoder.blocks.0.cross_attn.proj.weight',
        'decoder.blocks.0.cross_attn.proj.bias',
        'decoder.blocks.0.norm_mlp.weight',
        'decoder.blocks.0.norm_mlp.bias',
        'decoder.blocks.0.mlp.0.weight',
        'decoder.blocks.0.mlp.0.bias',
        'decoder.blocks.0.mlp.2.weight',
        'decoder.blocks.0.mlp.2.bias', 'decoder.norm.weight',
        'decoder.norm.bias', 'condition_embed.weight',
        'time_mlp.0.weight', 'time_mlp.0.bias', 'time_mlp.2.weight',
        'time_mlp.2.bias'],
    prefix_head: [
        'pos_embed', 'word_embed.weight', 'in_proj.weight',
        'in_proj.bias', 'out_proj.weight', 'out_proj.bias',
        'time_mlp.0.weight', 'time_mlp.0.bias', 'time_mlp.2.weight',
        'time_mlp.2.bias', 'blocks.0.norm_self.weight',
        'blocks.0.norm_self.bias', 'blocks.0.self_attn.q.weight',
        'blocks.0.self_attn.q.bias', 'blocks.0.self_attn.kv.weight',
        'blocks.0.self_attn.kv.bias',
        'blocks.0.self_attn.proj.weight',
        'blocks.0.self_attn.proj.bias', 'blocks.0.norm_mlp.weight',
        'blocks.0.norm_mlp.bias', 'blocks.0.mlp.0.weight',
        'blocks.0.mlp.0.bias', 'blocks.0.mlp.2.weight',
        'blocks.0.mlp.2.bias', 'norm.weight', 'norm.bias'],
}


@pytest.mark.parametrize('build', [d3pm_head, prefix_head])
def test_old_format_state_dicts_load(build):
    head = build()
    assert isinstance(head, BaseCaptionHead)
    assert sorted(head.state_dict()) == sorted(OLD_KEYS[build])
    # an old-format checkpoint (its keys, other values) loads strictly
    old = {k: torch.randn_like(v) for k, v in head.state_dict().items()}
    fresh = build()
    fresh.load_state_dict(old, strict=True)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, old[key]), key


def test_heads_share_targets_and_decode():
    for head in (d3pm_head(), prefix_head()):
        tok = head.tokenizer
        ids = torch.tensor([[tok.bos_id, 5, tok.eos_id, tok.pad_id]])
        assert head.targets(ids)[0, -1] == tok.eos_id
        assert head.decode(ids) == [tok.decode(ids[0].tolist())]
    assert isinstance(d3pm_head(), D3PMCaptionHead)
    assert isinstance(prefix_head(), PrefixDiffusionHead)


@pytest.mark.parametrize('kind, extra', [
    ('D3PMCaptionHead', dict(num_codes=4, condition_length=3)),
    ('PrefixDiffusionHead', dict(prefix_length=2)),
    ('MaskedDiffusionCaptionHead', dict(image_dims=16)),
])
def test_every_head_refuses_unknown_sampler_keys(kind, extra):
    cfg = dict(type=kind, tokenizer=dict(type='ShapesTokenizer'),
               max_length=8, embed_dims=16, num_layers=1, num_heads=2,
               sampler=dict(bogus=1), **extra)
    with pytest.raises(ValueError,
                       match=rf"{kind}: unknown sampler keys \['bogus'\]; "
                       r'allowed: \['):
        MODELS.build(cfg)
