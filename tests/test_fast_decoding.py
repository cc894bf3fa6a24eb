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
from contextlib import contextmanager

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


def _learn(cls, captions, seed: int = 2, iters: int = 400, **kwargs):
    """A head of ``cls`` that has learnt ``captions`` from random images."""
    head = _head(cls, **kwargs).train()
    torch.manual_seed(seed)
    images = torch.randn(len(captions), 3, DIMS)
    samples = [dict(caption_ids=_pad(head, c)) for c in captions]
    opt = torch.optim.AdamW(head.parameters(), lr=3e-3)
    for _ in range(iters):
        loss = head.loss(images, samples)['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
    return head.eval(), images


@pytest.fixture(scope='module')
def trained():
    """An MDC head that has learnt the 12 captions from their images."""
    return _learn(MaskedDiffusionCaptionHead, CAPTIONS, seed=1, iters=300,
                  sampler=dict(block_length=4))


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


def test_finished_rows_are_the_captions_that_cannot_change(trained):
    """A caption is finished once it has an eos and no mask before it; one
    that has not ended stays in the batch."""
    head, _ = trained
    tok = head.tokenizer
    rows = torch.tensor([
        [tok.bos_id, 7, 8, tok.eos_id, tok.mask_id],  # finished
        # a mask before the first eos: the text can still change
        [tok.bos_id, 7, tok.mask_id, tok.eos_id, tok.mask_id],
        [tok.bos_id, 7, 8, 9, tok.mask_id]])  # no eos yet
    assert head._finished_rows(rows).tolist() == [True, False, False]


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


@pytest.mark.parametrize('options, match', [
    (dict(block_cache=True, cache_refresh='sometimes'),
     'cache_refresh must be one of'),
    (dict(cache_refresh='committed'), 'needs block_cache=True'),
    (dict(block_cache=True, refresh_ahead=-1), 'must be an int >= 0'),
    (dict(block_cache=True, refresh_ahead=True), 'must be an int >= 0'),
    (dict(refresh_ahead=4), 'needs block_cache=True')])
def test_block_cache_options_are_checked(options, match):
    with pytest.raises(ValueError, match=match):
        _head().sample(torch.randn(1, 3, DIMS), **options)


# --------------------------------------------------- rows in each pass --
@contextmanager
def rows_per_pass(head):
    """Record (rows, start, width) of every decoder pass, full or window
    (start 0 and the full length for a full pass)."""
    passes = []

    def full(module, args, kwargs):
        tokens = args[0] if args else kwargs['tokens']
        passes.append((tokens.shape[0], kwargs.get('start', 0),
                       tokens.shape[1]))
    hook = head.decoder.register_forward_pre_hook(full, with_kwargs=True)
    window = head.decoder.forward_window

    def counted(tokens, start, *args, **kwargs):
        passes.append((tokens.shape[0], start, tokens.shape[1]))
        return window(tokens, start, *args, **kwargs)
    head.decoder.forward_window = counted
    try:
        yield passes
    finally:
        hook.remove()
        del head.decoder.forward_window


def _untrained_batch(cls=MaskedDiffusionCaptionHead, **kwargs):
    """An untrained head and 8 images."""
    head = _head(cls, **kwargs)
    torch.manual_seed(3)
    return head, torch.randn(8, 3, DIMS)


#: Captions of 2 to 11 words: in blocks of 4 they end in blocks 1 to 3.
MIXED = ['a circle', 'one blue cross', 'a small red circle',
         'there is a purple circle', 'a large blue square on the left',
         'a small green triangle above a large red circle',
         'a white cross to the right of a small yellow square',
         'a red square']


@pytest.fixture(scope='module')
def trained_mixed():
    """An MDC head that has learnt captions of different lengths."""
    return _learn(MaskedDiffusionCaptionHead, MIXED,
                  sampler=dict(block_length=4))


@pytest.mark.parametrize('options', [
    dict(steps=L - 1), dict(threshold=0.5),
    dict(threshold=0.5, block_cache=True),
    dict(threshold=0.5, block_cache=True, cache_refresh='committed')])
def test_finished_captions_leave_the_batch(trained_mixed, options):
    """Early stop retires each caption once it has committed its eos and
    everything before it: later passes run fewer rows, and the text is the
    plain sampler's (exact: a finished caption cannot change)."""
    head, images = trained_mixed
    plain = head.sample(images, early_stop=False, **options)
    with rows_per_pass(head) as passes:
        fast = head.sample(images, early_stop=True, **options)
    rows = [r for r, _, _ in passes]
    assert rows[0] == len(MIXED) and min(rows) < len(MIXED) - 1
    assert head.decode(fast) == head.decode(plain) == MIXED


def test_each_caption_decodes_as_if_alone(trained_mixed):
    """Retiring rows and running only the rows with masks left never mixes
    rows: a batch whose captions end in different blocks gives each image
    the ids it gets alone (no cache: every pass is exact)."""
    head, images = trained_mixed
    for options in (dict(steps=L - 1), dict(threshold=0.9)):
        with rows_per_pass(head) as passes:
            batch = head.sample(images, **options)
        assert min(r for r, _, _ in passes) < len(MIXED) - 1  # retired
        alone = torch.cat([head.sample(images[i:i + 1], **options)
                           for i in range(len(images))])
        assert torch.equal(batch, alone), options
        assert head.decode(batch) == MIXED


def test_threshold_steps_run_only_rows_with_masks_left(trained_mixed):
    """A block's later threshold steps skip the rows that have committed
    the whole block (no early stop here, so no row retires)."""
    head, images = trained_mixed
    with rows_per_pass(head) as passes:
        ids = head.sample(images, threshold=0.99, early_stop=False)
    assert head.decode(ids) == MIXED
    rows = [r for r, _, _ in passes]
    assert rows[0] == len(MIXED) and min(rows) < len(MIXED)


def test_ar_finished_captions_leave_the_batch():
    """AR: a caption leaves the batch at its eos (with its key/value cache
    rows), later steps run the others only, and each image gets the ids
    it gets alone, padded after its eos."""
    head, images = _learn(AutoregressiveCaptionHead, MIXED)
    tok = head.tokenizer
    with rows_per_pass(head) as passes:
        batch = head.sample(images)
    assert head.decode(batch) == MIXED
    rows = [r for r, _, _ in passes]
    # one row a step until the shortest caption's eos, one fewer after it
    assert rows[:3] == [8, 8, 8] and rows[3] == 7 and min(rows) == 1
    assert rows == sorted(rows, reverse=True)
    alone = torch.cat([head.sample(images[i:i + 1])
                       for i in range(len(images))])
    assert torch.equal(batch, alone)
    for row in batch.tolist():
        if tok.eos_id in row:
            tail = row[row.index(tok.eos_id) + 1:]
            assert set(tail) <= {tok.pad_id}


# ------------------------------------------------------ cache refresh --
def test_committed_refresh_with_one_block_is_the_full_refresh():
    """With a single block only the first pass is full either way."""
    head = _head()
    images = torch.randn(6, 3, DIMS)
    for options in (dict(steps=L - 1), dict(threshold=0.5)):
        full = head.sample(images, block_cache=True, **options)
        assert torch.equal(full, head.sample(
            images, block_cache=True, cache_refresh='committed', **options))


def test_committed_refresh_reencodes_only_what_changed():
    """One token per step in blocks of 4: the only full pass is the first;
    a later block starts with a window from the first position committed
    since its last encoding (the previous block's last commit, the
    earliest over the rows) to the block's end; its other steps run the
    block alone."""
    head = _head(sampler=dict(block_length=4))
    images = torch.randn(6, 3, DIMS)
    with rows_per_pass(head) as passes:
        _, trace = head.sample(images, steps=L - 1, early_stop=False,
                               block_cache=True, cache_refresh='committed',
                               return_trace=True)
    assert passes[0] == (6, 0, L)
    assert all(width < L for _, _, width in passes[1:])
    blocks = head.block_schedule(L - 1, 'uniform', 4)
    step = 0
    for i, (start, end, counts) in enumerate(blocks):
        first = passes[step]
        if i:
            # the positions the block's last step committed
            last = (trace[step - 1] != trace[step - 2]).nonzero()[:, 1]
            assert first[1:] == (int(last.min()), end - int(last.min()))
        for later in passes[step + 1:step + len(counts)]:
            assert later[1:] == (start, end - start)
        step += len(counts)
    assert step == len(passes) == L - 1


def test_committed_refresh_keeps_trained_captions(trained):
    """Approximate (the masked suffix keeps its first keys and values), yet
    on the trained head every caption is kept, with fewer decoder
    positions than the full refresh."""
    head, images = trained
    for options in (dict(steps=L - 1), dict(threshold=0.9)):
        cost = {}
        for refresh in ('full', 'committed'):
            with rows_per_pass(head) as passes:
                ids = head.sample(images, block_cache=True,
                                  cache_refresh=refresh, **options)
            assert head.decode(ids) == CAPTIONS, (options, refresh)
            cost[refresh] = sum(r * w for r, _, w in passes)
        assert cost['committed'] < cost['full'], options


def test_retired_rows_leave_the_cache_aligned():
    """ActiveBatch.retire drops a row's ids, image keys/values and cache
    rows together: the rows left get, from the cache, the states a batch
    of only them gets."""
    from mdc_plugin.models.heads.block_decoding import ActiveBatch
    head = _head()
    tok = head.tokenizer
    memory = torch.randn(3, 3, DIMS)
    ids = torch.randint(5, head.vocab_size, (3, L))
    ids[:, 0] = tok.bos_id

    def block_states(rows):
        state = ActiveBatch(ids[rows].clone(),
                            head.decoder.memory_kv(memory[rows]),
                            head.decoder, block_cache=True,
                            cache_refresh='committed')
        state.window(1, 5)()  # the full pass: fills the cache
        if len(rows) == 3:
            state.retire(torch.tensor([False, True, False]))
        state.ids[:, 3] = tok.mask_id  # re-encoded from position 3 on
        with rows_per_pass(head) as passes:
            states = state.window(5, 9)()
        assert passes == [(2, 3, 6)]  # a window over the cache
        return states, state

    kept, state = block_states([0, 1, 2])
    alone, _ = block_states([0, 2])
    torch.testing.assert_close(kept, alone)
    assert state.rows.tolist() == [0, 2]
    assert torch.equal(state.sync()[1], ids[1])


def test_window_outside_the_cache_is_refused():
    head = _head()
    ids = torch.randint(0, head.vocab_size, (2, L))
    memory_kv = head.decoder.memory_kv(torch.randn(2, 3, DIMS))
    _, cache = head.decoder(ids[:, :8], memory_kv=memory_kv)
    with pytest.raises(ValueError, match='outside the 8 cached positions'):
        head.decoder.forward_window(ids[:, 6:10], 6, cache, memory_kv)


@pytest.mark.parametrize('cls', [MaskedDiffusionCaptionHead,
                                 AutoregressiveCaptionHead])
def test_an_empty_batch_gives_no_captions(cls):
    head = _head(cls)
    ids = head.sample(torch.randn(0, 3, DIMS))
    assert ids.shape == (0, L) and head.decode(ids) == []


@pytest.mark.parametrize('refresh', ['full', 'committed'])
def test_refresh_ahead_recomputes_the_positions_after_the_block(refresh):
    """Every cached pass runs the block and the next k positions (cut at
    the caption's end): with the full refresh each block still starts with
    a full pass, with the committed one only the first block does and a
    later block starts at its earliest re-encoded position."""
    head = _head(sampler=dict(block_length=4))
    images = torch.randn(3, 3, DIMS)
    with rows_per_pass(head) as passes:
        _, trace = head.sample(images, steps=L - 1, early_stop=False,
                               block_cache=True, cache_refresh=refresh,
                               refresh_ahead=3, return_trace=True)
    blocks = head.block_schedule(L - 1, 'uniform', 4)
    step = 0
    for i, (start, end, counts) in enumerate(blocks):
        ahead = min(L, end + 3)
        if i == 0 or refresh == 'full':
            assert passes[step] == (3, 0, L)
        else:
            last = (trace[step - 1] != trace[step - 2]).nonzero()[:, 1]
            lo = int(last.min())
            assert passes[step] == (3, lo, ahead - lo)
        for later in passes[step + 1:step + len(counts)]:
            assert later == (3, start, ahead - start)
        step += len(counts)
    assert step == len(passes)
    # the last block reaches the caption's end: nothing past it
    assert max(s + w for _, s, w in passes) == L


def test_refresh_ahead_keeps_trained_captions(trained_mixed):
    head, images = trained_mixed
    for refresh in ('full', 'committed'):
        ids = head.sample(images, threshold=0.9, block_cache=True,
                          cache_refresh=refresh, refresh_ahead=4)
        assert head.decode(ids) == MIXED, refresh
