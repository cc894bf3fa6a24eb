"""The fast-decoding levers of the caption samplers (issue: MDC at batch 32).

Exact levers give the captions of the plain sampler: a caption vocabulary
(against the plain sampler that forbids every other id, MDC and AR) and
early stop (the same text, fewer decoder passes). The approximate one,
confidence-threshold parallel decoding, reduces to the plain one-token-per-
step sampler when no confidence reaches the threshold, and on a trained
head keeps the captions while taking fewer steps.

The trained head is tiny and learns in seconds: 12 fixed captions of the
shapes grammar, each tied to one random image-token set.
"""
import pytest
import torch

import mdc_plugin  # noqa: F401
from mdc_plugin.models.heads import (AutoregressiveCaptionHead,
                                     MaskedDiffusionCaptionHead)

pytestmark = pytest.mark.usefixtures('one_thread')

L, DIMS = 16, 16
CAPTIONS = [f'a {size} {colour} {shape}'
            for size in ('small', 'large')
            for colour in ('red', 'blue')
            for shape in ('circle', 'square', 'triangle')]


def _head(cls=MaskedDiffusionCaptionHead, **kwargs):
    torch.manual_seed(0)
    return cls(tokenizer=dict(type='ShapesTokenizer'), max_length=L,
               image_dims=DIMS, embed_dims=32, num_layers=1, num_heads=2,
               **kwargs).eval()


def _pad(head, caption):
    tok = head.tokenizer
    ids = [tok.bos_id] + tok.encode(caption) + [tok.eos_id]
    return torch.tensor(ids + [tok.pad_id] * (L - len(ids)))


@pytest.fixture(scope='module')
def trained():
    """An MDC head that has learnt the 12 captions from their images."""
    head = _head(sampler=dict(block_length=4)).train()
    torch.manual_seed(1)
    images = torch.randn(len(CAPTIONS), 3, DIMS)
    ids = torch.stack([_pad(head, c) for c in CAPTIONS])
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    samples = [dict(caption_ids=row) for row in ids]
    for _ in range(300):
        loss = head.loss(images, samples)['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval(), images


def test_trained_head_learnt_the_captions(trained):
    head, images = trained
    ids = head.sample(images, steps=L - 1, early_stop=False)
    assert head.decode(ids) == CAPTIONS


# ------------------------------------------------------------ early stop --
def test_early_stop_gives_the_same_captions_in_fewer_passes(trained):
    head, images = trained
    plain, plain_trace = head.sample(images, steps=L - 1, early_stop=False,
                                     return_trace=True)
    fast, fast_trace = head.sample(images, steps=L - 1, early_stop=True,
                                   return_trace=True)
    assert head.decode(fast) == head.decode(plain) == CAPTIONS
    # captions of 4-5 words + eos end in the 2nd of the 4 blocks of 4
    assert len(fast_trace) == 8 < len(plain_trace) == L - 1


def test_early_stop_waits_for_every_caption(trained):
    """One caption that has not ended keeps the batch going."""
    head, _ = trained
    tok = head.tokenizer
    # a mask before the first eos: the text can still change
    assert not head._finished(torch.tensor(
        [[tok.bos_id, 7, tok.mask_id, tok.eos_id, tok.mask_id]]))
    done = torch.tensor([[tok.bos_id, 7, 8, tok.eos_id, tok.mask_id]])
    assert head._finished(done)
    assert not head._finished(torch.cat([done, torch.tensor(
        [[tok.bos_id, 7, 8, 9, tok.mask_id]])]))


# ------------------------------------------------------------ vocabulary --
def _forbid_outside(head, vocab, monkeypatch):
    base = head.forbidden_mask

    def forbidden_mask(device):
        mask = base(device).clone()
        outside = torch.ones_like(mask)
        outside[vocab] = False
        return mask | outside
    monkeypatch.setattr(head, 'forbidden_mask', forbidden_mask)


@pytest.mark.parametrize('cls', [MaskedDiffusionCaptionHead,
                                 AutoregressiveCaptionHead])
def test_vocabulary_is_exact(cls, monkeypatch):
    """Untrained head (its captions use any id): restricting the output
    layer to a vocabulary gives the ids of the plain sampler that forbids
    every other id."""
    head = _head(cls)
    tok = head.tokenizer
    images = torch.randn(6, 3, DIMS)
    vocab = [tok.eos_id] + tok.encode('a small red blue circle square')
    fast = head.sample(images, vocabulary=vocab)
    assert set(fast[:, 1:].flatten().tolist()) <= set(vocab) | {tok.pad_id}
    _forbid_outside(head, vocab, monkeypatch)
    assert torch.equal(fast, head.sample(images))


def test_vocabulary_of_the_corpus_keeps_the_trained_captions(trained):
    head, images = trained
    tok = head.tokenizer
    vocab = sorted({i for c in CAPTIONS for i in tok.encode(c)})
    ids = head.sample(images, steps=L - 1, vocabulary=vocab)
    assert head.decode(ids) == CAPTIONS


def test_vocabulary_from_a_json_file(tmp_path, trained):
    import json
    head, images = trained
    tok = head.tokenizer
    path = tmp_path / 'vocab.json'
    path.write_text(json.dumps(dict(ids=sorted(
        {i for c in CAPTIONS for i in tok.encode(c)}))))
    assert head.decode(head.sample(images, steps=L - 1,
                                   vocabulary=str(path))) == CAPTIONS


@pytest.mark.parametrize('bad, match', [
    ([10**6], r'outside \[0, '), ([], 'is empty'),
    ('no-such-file.json', 'not found'), (3.5, 'must be None, a list')])
def test_bad_vocabulary_is_refused(bad, match):
    head = _head()
    with pytest.raises(ValueError, match=match):
        head.sample(torch.randn(1, 3, DIMS), vocabulary=bad)


# ------------------------------------------------------------- threshold --
def test_threshold_above_every_confidence_is_one_token_per_step():
    """Untrained head (no confidence near 1): threshold 1 commits only the
    surest position each step, as the plain sampler at one token per
    step does."""
    head = _head(sampler=dict(block_length=4))
    images = torch.randn(6, 3, DIMS)
    plain = head.sample(images, steps=L - 1, early_stop=False)
    assert torch.equal(
        head.sample(images, threshold=1.0, early_stop=False), plain)


def test_threshold_keeps_trained_captions_in_fewer_steps(trained):
    head, images = trained
    ids, trace = head.sample(images, threshold=0.9, return_trace=True)
    assert head.decode(ids) == CAPTIONS
    assert len(trace) < 8  # one token per step and early stop: 8


@pytest.mark.parametrize('options, match', [
    (dict(threshold=1.5), r'threshold=1.5 must be a number in \[0, 1\]'),
    (dict(threshold=0.9, remasking='random'), 'needs remasking'),
    (dict(early_stop='yes'), 'early_stop must be True or False')])
def test_bad_threshold_options_are_refused(options, match):
    with pytest.raises(ValueError, match=match):
        _head().sample(torch.randn(1, 3, DIMS), **options)


def test_caption_vocabulary_tool_on_the_main_job_config(tmp_path):
    """tools/misc/caption_vocabulary.py on the real Fashion config: the ids
    of the train captions (and eos), which the config's head then accepts
    as its sampler vocabulary."""
    import json
    import os.path as osp

    from fixtures_data import load_tool
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    config = osp.join(root, 'configs/mdc/resnet18-w32_fashion_embedded.py')
    out = tmp_path / 'vocab.json'
    load_tool('tools/misc/caption_vocabulary.py').main(
        [config, '--out', str(out), '--max-images', '50'])
    report = json.loads(out.read_text())
    assert report['images'] == 50 and report['captions'] == 250
    head = MODELS.build(Config.fromfile(config).model.head)
    tok = head.tokenizer
    assert tok.eos_id in report['ids']
    assert set(report['ids']) < set(range(head.vocab_size))
    ids = head.sample(torch.randn(2, 4, head.memory_dims),
                      vocabulary=str(out))
    assert set(ids[:, 1:].flatten().tolist()) <= set(report['ids'])


# ----------------------------------------------------------- block cache --
def test_window_pass_equals_the_full_pass_on_unchanged_ids():
    """The mechanics of the block cache: recomputing a window against the
    keys/values of a full pass over the same ids gives that pass's states."""
    head = _head()
    ids = torch.randint(0, head.vocab_size, (3, L))
    memory_kv = head.decoder.memory_kv(torch.randn(3, 3, DIMS))
    full, cache = head.decoder(ids, memory_kv=memory_kv)
    window, _ = head.decoder.forward_window(ids[:, 5:9], 5, cache,
                                            memory_kv)
    torch.testing.assert_close(window, full[:, 5:9])


def test_block_cache_is_exact_with_one_step_per_block():
    head = _head(sampler=dict(block_length=4))
    images = torch.randn(6, 3, DIMS)
    plain = head.sample(images, steps=4, early_stop=False)
    assert torch.equal(head.sample(images, steps=4, early_stop=False,
                                   block_cache=True), plain)


def test_block_cache_keeps_trained_captions(trained):
    """Approximate (the other positions' keys and values are a step old),
    yet on the trained head every caption is kept, one token per step and
    with the threshold."""
    head, images = trained
    for options in (dict(steps=L - 1), dict(threshold=0.9)):
        ids = head.sample(images, block_cache=True, **options)
        assert head.decode(ids) == CAPTIONS, options
