"""Caption tokenizers: contract, round trips, offline loading, errors."""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmpretrain.registry import TOKENIZER

from mdc_plugin.datasets.shapes import vocabulary
from mdc_plugin.models.tokenizers import (SHAPES_TOKENIZER_DIR,
                                          CaptionTokenizer, CLIPBPETokenizer,
                                          HFCaptionTokenizer, ShapesTokenizer,
                                          build_caption_tokenizer)


def check_contract(tok: CaptionTokenizer) -> None:
    specials = [tok.pad_id, tok.mask_id, tok.bos_id, tok.eos_id]
    assert len(set(specials)) == 4
    assert all(0 <= s < tok.vocab_size for s in specials)
    assert all(isinstance(s, int) for s in specials + [tok.vocab_size])


def make_bert_like(path, with_mask: bool) -> str:
    """A tiny WordPiece tokenizer dir with [CLS]/[SEP]/[PAD] (+ [MASK])."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    specials = ['[PAD]', '[UNK]', '[CLS]', '[SEP]'] + (['[MASK]']
                                                         if with_mask else [])
    words = ['a', 'dog', 'runs', 'on', 'the', 'grass', '##s', '.']
    vocab = {w: i for i, w in enumerate(specials + words)}
    tk = Tokenizer(models.WordPiece(vocab=vocab, unk_token='[UNK]'))
    tk.normalizer = normalizers.BertNormalizer(lowercase=True)
    tk.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tk.add_special_tokens(specials)
    path.mkdir(parents=True, exist_ok=True)
    tk.save(str(path / 'tokenizer.json'))
    cfg = dict(tokenizer_class='PreTrainedTokenizerFast', unk_token='[UNK]',
               pad_token='[PAD]', cls_token='[CLS]', sep_token='[SEP]')
    if with_mask:
        cfg['mask_token'] = '[MASK]'
    (path / 'tokenizer_config.json').write_text(json.dumps(cfg))
    return str(path)


def test_clip_bpe_offline_contract_and_round_trip():
    tok = build_caption_tokenizer(dict(type='CLIPBPETokenizer'))
    assert isinstance(tok, CLIPBPETokenizer)
    check_contract(tok)
    assert tok.vocab_size == 49408 + 2
    assert (tok.pad_id, tok.mask_id) == (49408, 49409)
    assert (tok.bos_id, tok.eos_id) == (49406, 49407)
    ids = tok.encode('A  Large RED circle, to the left of a dog.')
    assert tok.bos_id not in ids and tok.eos_id not in ids
    assert tok.decode(ids) == 'a large red circle, to the left of a dog.'
    # stops at eos, drops bos/pad/mask
    seq = [tok.bos_id, *ids[:3], tok.mask_id, tok.eos_id, *ids[3:], tok.pad_id]
    assert tok.decode(torch.tensor(seq)) == 'a large red'


def test_shapes_tokenizer_covers_grammar_and_round_trips():
    tok = TOKENIZER.build(dict(type='ShapesTokenizer'))
    assert isinstance(tok, ShapesTokenizer)
    check_contract(tok)
    assert tok.vocab_size < 64
    unk = tok._tok.unk_token_id
    for word in vocabulary():
        ids = tok.encode(word)
        assert len(ids) == 1 and ids[0] != unk, word
    cap = 'a green triangle and a yellow triangle, the green one on the left'
    assert tok.decode(tok.encode(cap)) == cap
    assert tok.decode(tok.encode(cap.upper())) == cap


def test_batch_decode_tensor_and_lists():
    tok = ShapesTokenizer()
    a, b = tok.encode('a red circle'), tok.encode('a blue cross above')
    L = 8
    rows = []
    for ids in (a, b):
        row = [tok.bos_id, *ids, tok.eos_id]
        rows.append(row + [tok.pad_id] * (L - len(row)))
    expect = ['a red circle', 'a blue cross above']
    assert tok.batch_decode(torch.tensor(rows)) == expect
    assert tok.batch_decode(np.array(rows)) == expect
    assert tok.batch_decode(rows) == expect
    with pytest.raises(ValueError, match='B, L'):
        tok.batch_decode(torch.tensor(rows[0]))


def test_hf_local_dir_uses_own_specials(tmp_path):
    path = make_bert_like(tmp_path / 'bert', with_mask=True)
    tok = HFCaptionTokenizer(path)
    check_contract(tok)
    assert tok.num_appended == 0 and tok.vocab_size == 13
    assert (tok.pad_id, tok.bos_id, tok.eos_id, tok.mask_id) == (0, 2, 3, 4)
    ids = tok.encode('A dog runs on the grass.')
    assert all(i not in tok.special_ids for i in ids)
    assert tok.decode([tok.bos_id, *ids, tok.eos_id, tok.pad_id]) == \
        'a dog runs on the grass.'


def test_hf_local_dir_appends_missing_specials(tmp_path):
    path = make_bert_like(tmp_path / 'nomask', with_mask=False)
    tok = build_caption_tokenizer(dict(type='HFCaptionTokenizer', path=path))
    check_contract(tok)
    assert tok.num_appended == 1
    assert tok.mask_id == 12 and tok.vocab_size == 13
    ids = tok.encode('the dog')
    assert tok.decode([tok.mask_id, *ids, tok.eos_id]) == 'the dog'


def test_hf_missing_or_invalid_dir_names_path(tmp_path):
    missing = str(tmp_path / 'nope')
    with pytest.raises(FileNotFoundError, match='nope'):
        HFCaptionTokenizer(missing)
    empty = tmp_path / 'empty'
    empty.mkdir()
    (empty / 'readme.txt').write_text('not a tokenizer')
    with pytest.raises(ValueError, match='empty'):
        HFCaptionTokenizer(str(empty))
    broken = tmp_path / 'broken'
    broken.mkdir()
    (broken / 'tokenizer.json').write_text('{not json')
    with pytest.raises(ValueError, match='broken'):
        HFCaptionTokenizer(str(broken))


def test_check_vocab_size_names_sizes_and_owner():
    tok = ShapesTokenizer()
    tok.check_vocab_size(tok.vocab_size, 'Head')
    with pytest.raises(ValueError) as err:
        tok.check_vocab_size(49410, 'MaskedDiffusionCaptionHead')
    msg = str(err.value)
    assert '49410' in msg and str(tok.vocab_size) in msg
    assert 'MaskedDiffusionCaptionHead' in msg


def test_build_passes_instances_and_rejects_others():
    tok = ShapesTokenizer()
    assert build_caption_tokenizer(tok) is tok
    with pytest.raises(TypeError):
        build_caption_tokenizer('ShapesTokenizer')
    with pytest.raises(TypeError, match='not a CaptionTokenizer'):
        build_caption_tokenizer(
            dict(type='AutoTokenizer', name_or_path=SHAPES_TOKENIZER_DIR))


def test_decode_rejects_out_of_range_ids():
    tok = ShapesTokenizer()
    with pytest.raises(ValueError, match='outside'):
        tok.decode([tok.bos_id, tok.vocab_size])


def test_shipped_asset_matches_grammar(tmp_path):
    """The committed tokenizer equals a fresh build from the grammar."""
    from mdc_plugin.models.tokenizers import save_word_level_tokenizer
    out = save_word_level_tokenizer(vocabulary(), str(tmp_path / 'fresh'))
    for name in ('tokenizer.json', 'tokenizer_config.json'):
        with open(osp.join(SHAPES_TOKENIZER_DIR, name)) as f:
            shipped = json.load(f)
        with open(osp.join(out, name)) as f:
            fresh = json.load(f)
        assert shipped == fresh, name
