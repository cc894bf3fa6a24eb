"""Unit tests of the caption heads with real tokenizers and real decoders."""
import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mdc_plugin  # noqa: F401
from mdc_plugin.models.diffusion import commit_counts
from mdc_plugin.models.tokenizers import ShapesTokenizer

L = 12
IMAGE_DIMS = 24


def make_head(kind='MaskedDiffusionCaptionHead', **kwargs):
    cfg = dict(type=kind, tokenizer=dict(type='ShapesTokenizer'),
               max_length=L, image_dims=IMAGE_DIMS, embed_dims=32,
               num_layers=2, num_heads=4)
    cfg.update(kwargs)
    return MODELS.build(cfg)


def samples_for(captions, tokenizer):
    out = []
    for text in captions:
        words = tokenizer.encode(text)
        ids = np.full(L, tokenizer.pad_id, np.int64)
        ids[:len(words) + 2] = [tokenizer.bos_id, *words, tokenizer.eos_id]
        out.append(DataSample(caption_ids=ids, gt_caption=text))
    return out


CAPTIONS = ['a large red circle left of a small blue square',
            'a small green triangle above a large yellow circle']


@pytest.mark.parametrize('steps,schedule', [(4, 'uniform'), (11, 'uniform'),
                                            (5, 'cosine'), (30, 'cosine')])
def test_commit_counts_cover_every_position(steps, schedule):
    counts = commit_counts(11, steps, schedule)
    assert sum(counts) == 11
    assert len(counts) == min(steps, 11)
    assert min(counts) >= 1


def test_mdc_targets_pad_with_eos_and_keep_bos_visible():
    head = make_head()
    tok = head.tokenizer
    ids = head.caption_ids(samples_for(CAPTIONS, tok), 'cpu')
    targets = head.targets(ids)
    assert (targets != tok.pad_id).all()
    # Everything after the caption is eos: that is how length is learned.
    n = len(tok.encode(CAPTIONS[0]))
    assert (targets[0, n + 1:] == tok.eos_id).all()
    assert (targets[:, 0] == tok.bos_id).all()


def test_mdc_t_is_stratified_within_range():
    head = make_head(t_range=(0.2, 0.6))
    t = head.sample_t(1000, 'cpu')
    assert t.min() >= 0.2 and t.max() <= 0.6
    # Antithetic draws: one per stratum of width 0.4 / 1000.
    counts = torch.histc(t, bins=10, min=0.2, max=0.6)
    assert (counts == 100).all()


def test_mdc_loss_is_elbo_weighted_and_learns():
    torch.manual_seed(0)
    head = make_head()
    tok = head.tokenizer
    samples = samples_for(CAPTIONS, tok)
    image = torch.randn(2, 5, IMAGE_DIMS)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    first = None
    for _ in range(150):
        losses = head.loss(image, samples)
        opt.zero_grad()
        losses['loss'].backward()
        opt.step()
        first = first if first is not None else losses['loss'].item()
    assert losses['loss'].item() < 0.2 * first
    # After fitting two captions, 1-token-per-step greedy decoding recovers
    # them from their images, eos and length included.
    head.eval()
    assert head.predict(image, steps=L - 1) == CAPTIONS
    assert head.predict(image, steps=4) == CAPTIONS


def test_mdc_loss_uniform_weighting_and_bad_config():
    head = make_head(loss_weighting='uniform')
    samples = samples_for(CAPTIONS, head.tokenizer)
    loss = head.loss(torch.randn(2, 5, IMAGE_DIMS), samples)['loss']
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match='loss_weighting'):
        make_head(loss_weighting='bogus')
    with pytest.raises(ValueError, match='t_range'):
        make_head(t_range=(0.0, 1.0))


def test_one_token_per_step_when_steps_equal_length():
    head = make_head().eval()
    tok = head.tokenizer
    ids, trace = head.sample(torch.randn(3, 5, IMAGE_DIMS), steps=L - 1,
                             return_trace=True)
    assert len(trace) == L - 1
    masked = [int((step == tok.mask_id).sum(1).max()) for step in trace]
    assert masked == list(range(L - 2, -1, -1))
    assert not (ids == tok.mask_id).any()
    assert (ids[:, 0] == tok.bos_id).all()
    forbidden = {tok.pad_id, tok.mask_id, tok.bos_id}
    assert not forbidden & set(ids[:, 1:].flatten().tolist())


def test_low_confidence_commits_the_most_confident_first():
    torch.manual_seed(0)
    head = make_head().eval()
    image = torch.randn(1, 5, IMAGE_DIMS)
    ids, trace = head.sample(image, steps=L - 1, return_trace=True)
    tok = head.tokenizer
    start = torch.full((1, L), tok.mask_id)
    start[0, 0] = tok.bos_id
    hidden, _ = head.decoder(start, memory=image)
    logits = head.logits(hidden).float()
    logits[..., head.forbidden_mask('cpu')] = float('-inf')
    conf = logits.softmax(-1).max(-1).values[0, 1:]
    first = int((trace[0][0] != tok.mask_id).nonzero()[-1])
    assert first == int(conf.argmax()) + 1


def test_stochastic_sampling_is_seeded():
    head = make_head().eval()
    image = torch.randn(2, 5, IMAGE_DIMS)
    torch.manual_seed(1)
    a = head.sample(image, steps=4, temperature=1.0)
    torch.manual_seed(1)
    b = head.sample(image, steps=4, temperature=1.0)
    assert torch.equal(a, b)


def test_ar_head_learns_and_kv_cache_matches_full_recompute():
    torch.manual_seed(0)
    head = make_head('AutoregressiveCaptionHead')
    samples = samples_for(CAPTIONS, head.tokenizer)
    image = torch.randn(2, 5, IMAGE_DIMS)
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    for _ in range(100):
        loss = head.loss(image, samples)['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    assert head.predict(image) == CAPTIONS
    # Cached incremental decoding == recomputing the causal prefix.
    ids = head.sample(image)
    hidden, _ = head.decoder(ids[:, :-1], memory=image, causal=True)
    greedy = head.logits(hidden).argmax(-1)
    tok = head.tokenizer
    for row, pred in zip(ids, greedy):
        n = int((row == tok.eos_id).nonzero()[0])
        assert torch.equal(row[1:n + 1], pred[:n])


def test_cappa_parallel_mix_builds_per_sample_masks():
    head = make_head('AutoregressiveCaptionHead', parallel_prob=0.5)
    samples = samples_for(CAPTIONS * 4, head.tokenizer)
    loss = head.loss(torch.randn(8, 5, IMAGE_DIMS), samples)['loss']
    assert torch.isfinite(loss)


def test_vocabulary_mismatch_and_missing_ids_are_named():
    head = make_head()
    bad = samples_for(CAPTIONS, head.tokenizer)
    bad[0].caption_ids = bad[0].caption_ids.copy()
    bad[0].caption_ids[1] = head.vocab_size + 5
    with pytest.raises(ValueError, match="pipeline's tokenizer differs"):
        head.loss(torch.randn(2, 5, IMAGE_DIMS), bad)
    with pytest.raises(KeyError, match='TokenizeCaption'):
        head.loss(torch.randn(1, 5, IMAGE_DIMS), [DataSample()])
    short = samples_for(CAPTIONS, head.tokenizer)
    for s in short:
        s.caption_ids = s.caption_ids[:8]
    with pytest.raises(ValueError, match='max_length'):
        head.loss(torch.randn(2, 5, IMAGE_DIMS), short)


def test_pooled_backbone_output_is_one_token_and_odd_shapes_refused():
    """A pooled vector (ViT ``out_type='cls_token'``) is one image token;
    an output that is neither tokens, a map nor a vector is refused."""
    model = MODELS.build(dict(
        type='ImageCaptioner',
        backbone=dict(type='VisionTransformer',
                      arch=dict(embed_dims=IMAGE_DIMS, num_layers=1,
                                num_heads=4, feedforward_channels=48),
                      img_size=32, patch_size=8, out_type='cls_token'),
        head=dict(type='MaskedDiffusionCaptionHead',
                  tokenizer=ShapesTokenizer(), max_length=L,
                  image_dims=IMAGE_DIMS, embed_dims=32, num_layers=1,
                  num_heads=4)))
    tokens = model(torch.randn(1, 3, 32, 32), mode='tensor')
    assert tokens.shape == (1, 1, IMAGE_DIMS)
    model.backbone.forward = lambda x: (torch.zeros(1, 2, 3, 4, 5), )
    with pytest.raises(ValueError, match=r'returned \(1, 2, 3, 4, 5\)'):
        model(torch.randn(1, 3, 32, 32), mode='tensor')
