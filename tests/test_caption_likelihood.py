"""Semi-autoregressive MDC decoding, the padding weight of the MDC loss and
the per-token likelihoods of both caption heads (issue 21)."""
import pytest
import torch
import torch.nn.functional as F

import mdc_plugin  # noqa: F401
from mdc_plugin.evaluation import caption_likelihood
from test_caption_heads import CAPTIONS, IMAGE_DIMS, L, make_head, samples_for

pytestmark = pytest.mark.usefixtures('one_thread')


def test_block_schedule_splits_steps_and_positions():
    head = make_head()  # L = 12: 11 caption positions
    blocks = head.block_schedule(8, 'uniform', 3)
    assert [(s, e) for s, e, _ in blocks] == [(1, 4), (4, 7), (7, 10),
                                              (10, 12)]
    assert [len(c) for _, _, c in blocks] == [2, 2, 2, 2]
    assert [sum(c) for _, _, c in blocks] == [3, 3, 3, 2]
    # one block is the whole caption, as before blocks existed
    (whole,) = head.block_schedule(4, 'uniform', None)
    assert whole[:2] == (1, L) and sum(whole[2]) == L - 1
    # fewer steps than blocks: the blocks widen to ceil(11 / steps), so
    # the decoding still takes exactly the steps asked for
    widened = head.block_schedule(4, 'uniform', 1)
    assert [(s, e) for s, e, _ in widened] == [(1, 4), (4, 7), (7, 10),
                                               (10, 12)]
    assert sum(len(c) for _, _, c in widened) == 4
    with pytest.raises(ValueError, match='steps'):
        head.block_schedule(0, 'uniform', 3)
    with pytest.raises(ValueError, match='block_length'):
        head.block_schedule(8, 'uniform', 0)
    with pytest.raises(ValueError, match='block_length'):
        make_head(sampler=dict(block_length=-2))


@pytest.mark.parametrize('remasking', ['low_confidence', 'random'])
def test_blocks_are_committed_left_to_right(remasking):
    torch.manual_seed(0)
    head = make_head().eval()
    tok = head.tokenizer
    ids, trace = head.sample(torch.randn(3, 5, IMAGE_DIMS), steps=6,
                             block_length=4, remasking=remasking,
                             return_trace=True)
    # blocks 1-4, 5-8, 9-11, two steps each: after each step, a block
    # holds exactly the masks its schedule leaves, so no position of a
    # block is committed while an earlier block still has a mask
    blocks = head.block_schedule(6, 'uniform', 4)
    assert [(s, e) for s, e, _ in blocks] == [(1, 5), (5, 9), (9, 12)]
    expected = []  # masks left per block after each step
    left = [e - s for s, e, _ in blocks]
    for b, (_, _, counts) in enumerate(blocks):
        for count in counts:
            left[b] -= count
            expected.append(list(left))
    assert len(trace) == len(expected) == 6
    for state, masks in zip(trace, expected):
        got = [int((state[0, s:e] == tok.mask_id).sum()) for s, e, _ in
               blocks]
        assert got == masks
    assert not (ids == tok.mask_id).any()


def test_block_length_one_is_greedy_left_to_right():
    torch.manual_seed(0)
    head = make_head().eval()
    image = torch.randn(2, 5, IMAGE_DIMS)
    ids = head.sample(image, steps=L - 1, block_length=1)
    # the same as re-predicting position i from its committed prefix
    tok = head.tokenizer
    expect = torch.full((2, L), tok.mask_id)
    expect[:, 0] = tok.bos_id
    for i in range(1, L):
        hidden, _ = head.decoder(expect, memory=image)
        logits = head.logits(hidden[:, i]).float()
        logits[:, head.forbidden_mask('cpu')] = float('-inf')
        expect[:, i] = logits.argmax(-1)
    assert torch.equal(ids, expect)


def test_padding_weight_one_is_the_elbo_and_zero_ignores_padding():
    torch.manual_seed(0)
    image = torch.randn(2, 5, IMAGE_DIMS)
    full = make_head()
    samples = samples_for(CAPTIONS[:1] + ['a red circle'], full.tokenizer)
    torch.manual_seed(3)
    reference = full.loss(image, samples)['loss']
    full.padding_weight = 1.0 - 1e-12  # the weighted path, weights all ~1
    torch.manual_seed(3)
    assert full.loss(image, samples)['loss'].item() == pytest.approx(
        reference.item(), rel=1e-5)
    # padding_weight=0: the padding after the first eos gets no gradient
    words = make_head(padding_weight=0.0)
    words.load_state_dict(full.state_dict())
    logits_seen = []
    original = words.logits

    def spy(hidden):
        out = original(hidden)
        out.retain_grad()
        logits_seen.append(out)
        return out

    words.logits = spy
    torch.manual_seed(3)
    words.loss(image, samples)['loss'].backward()
    grad = logits_seen[0].grad.abs().sum(-1)
    torch.manual_seed(3)  # the same masks again, to locate the rows
    targets = words.targets(words.caption_ids(samples, 'cpu'))
    t = words.sample_t(2, 'cpu')
    masked = torch.rand(2, L) < t[:, None]
    masked[:, 0] = False
    weights = words.position_weights(targets)[masked]
    assert (grad[weights == 0] == 0).all()
    assert (grad[weights > 0] > 0).all()
    with pytest.raises(ValueError, match='padding_weight'):
        make_head(padding_weight=1.5)


def test_real_token_mask_counts_words_and_first_eos():
    head = make_head()
    ids = head.caption_ids(samples_for(['a red circle'], head.tokenizer),
                           'cpu')
    mask = head.real_token_mask(ids)
    assert mask[0].tolist() == [False] + [True] * 4 + [False] * (L - 5)


def test_cap_token_nll_is_the_teacher_forced_loss():
    torch.manual_seed(0)
    head = make_head('AutoregressiveCaptionHead').eval()
    samples = samples_for(CAPTIONS, head.tokenizer)
    image = torch.randn(2, 5, IMAGE_DIMS)
    ids = head.caption_ids(samples, 'cpu')
    real = head.real_token_mask(ids)
    nll = head.token_nll(image, ids)
    assert (nll[:, 0] == 0).all()
    loss = head.loss(image, samples)['loss']  # mean over real tokens
    mean = (nll * real).sum() / real.sum()
    assert mean.item() == pytest.approx(loss.item(), rel=1e-5)


def test_mdc_chain_rule_nll_masks_everything_from_the_position_on():
    torch.manual_seed(0)
    head = make_head().eval()
    samples = samples_for(CAPTIONS, head.tokenizer)
    image = torch.randn(2, 5, IMAGE_DIMS)
    ids = head.caption_ids(samples, 'cpu')
    nll = head.token_nll(image, ids)
    targets = head.targets(ids)
    i = 4
    inputs = targets.clone()
    inputs[:, i:] = head.tokenizer.mask_id
    hidden, _ = head.decoder(inputs, memory=image)
    expect = F.cross_entropy(head.logits(hidden[:, i]), targets[:, i],
                             reduction='none')
    assert torch.allclose(nll[:, i], expect, atol=1e-5)
    assert (nll[:, 0] == 0).all() and (nll[:, 1:] > 0).all()


def test_mdc_elbo_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    head = make_head().eval()
    ids = head.caption_ids(samples_for(CAPTIONS, head.tokenizer), 'cpu')
    image = torch.randn(2, 5, IMAGE_DIMS)
    state = torch.get_rng_state()
    a = head.elbo_nll(image, ids, draws=8, seed=5)
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(a, head.elbo_nll(image, ids, draws=8, seed=5))
    assert not torch.equal(a, head.elbo_nll(image, ids, draws=8, seed=6))
    # an untrained model: the bound is near L-1 uniform guesses
    uniform = (L - 1) * torch.log(torch.tensor(float(head.vocab_size)))
    assert ((a > 0.5 * uniform) & (a < 2 * uniform)).all()
    with pytest.raises(ValueError, match='draws'):
        head.elbo_nll(image, ids, draws=0)


def test_caption_likelihood_driver_over_a_dataloader():
    torch.manual_seed(0)

    class Captioner(torch.nn.Module):
        def __init__(self, head):
            super().__init__()
            self.head = head
            self.image = torch.randn(2, 5, IMAGE_DIMS)

        def data_preprocessor(self, batch, training):
            return batch

        def extract_feat(self, inputs):
            return self.image

    samples = samples_for(CAPTIONS, make_head().tokenizer)
    loader = [dict(inputs=None, data_samples=samples)] * 2
    mdc = Captioner(make_head())
    out = caption_likelihood(mdc, loader, elbo_draws=4)
    real = int(mdc.head.real_token_mask(
        mdc.head.caption_ids(samples, 'cpu')).sum())
    assert out['captions'] == 4 and out['real_tokens'] == 2 * real
    assert out['nll_order'] == 'left_to_right'
    assert out['elbo_per_position'] * 4 * (L - 1) == pytest.approx(
        out['elbo_per_real_token'] * out['real_tokens'])
    cap = Captioner(make_head('AutoregressiveCaptionHead'))
    out = caption_likelihood(cap, loader)
    assert out['nll_order'] == 'autoregressive'
    assert 'elbo_per_real_token' not in out
    with pytest.raises(TypeError, match='cannot score captions'):
        caption_likelihood(torch.nn.Module(), loader)


def _shipped_mdc_configs():
    import glob
    import os.path as osp

    from fixtures_data import REPO, load_repo_config
    found = []
    for path in sorted(glob.glob(osp.join(REPO, 'configs', 'mdc', '*.py'))):
        rel = osp.relpath(path, REPO)
        head = load_repo_config(rel).model.head
        # with no loss on the padding the model is never sure of it, and
        # surest-first over the whole caption is right (words-loss config)
        if head.type == 'MaskedDiffusionCaptionHead' and \
                head.get('padding_weight', 1.0) > 0:
            found.append(rel)
    return found


@pytest.mark.parametrize('config', _shipped_mdc_configs())
def test_shipped_mdc_samplers_commit_no_padding_before_the_words(config):
    """Surest-first decoding over the whole caption commits the padding
    EOS first (a trained model is surest of them) and empties captions:
    234 of 500 on the Fashion val scenes at one token per step. Every
    shipped MDC config decodes surest-first in left-to-right blocks
    (docs/results.md, "Why MDC trails Cap"): no step commits a position
    beyond the block it is in while an earlier position is masked."""
    from mmpretrain.registry import MODELS

    from fixtures_data import load_repo_config
    cfg = load_repo_config(config)
    torch.manual_seed(0)
    head = MODELS.build(cfg.model.head).eval()
    sampler = head.sampler_cfg
    assert sampler['remasking'] == 'low_confidence'
    assert sampler['block_length'] is not None
    assert sampler['block_length'] < head.max_length - 1
    image = torch.randn(2, 4, head.memory_dims)
    _, trace = head.sample(image, return_trace=True)
    mask = head.tokenizer.mask_id
    for state in trace:
        committed = (state[:, 1:] != mask)
        for row in committed:
            last = int(row.nonzero().max()) + 1  # furthest committed
            open_block_end = ((last - 1) // sampler['block_length'] + 1) * \
                sampler['block_length']
            first_masked = int((~row).nonzero().min()) + 1 if (
                ~row).any() else head.max_length
            # everything before the open block is committed
            assert first_masked > open_block_end - sampler['block_length']


def test_one_block_as_long_as_the_caption_is_no_block():
    """``block_length = L - 1`` (or more) decodes exactly as one block
    (``None``), random draws included: the way to ask for one block over a
    config whose default has blocks (an override of None keeps the
    default)."""
    head = make_head(sampler=dict(block_length=3)).eval()
    image = torch.randn(2, 5, IMAGE_DIMS)
    whole = make_head().eval()
    whole.load_state_dict(head.state_dict())
    torch.manual_seed(4)
    expect = whole.sample(image, steps=4, remasking='random')
    for block in (L - 1, L + 5):
        torch.manual_seed(4)
        got = head.sample(image, steps=4, remasking='random',
                          block_length=block)
        assert torch.equal(got, expect)
    torch.manual_seed(4)
    kept = head.sample(image, steps=4, remasking='random', block_length=None)
    assert head.sampler_cfg['block_length'] == 3
    assert not torch.equal(kept, expect)
