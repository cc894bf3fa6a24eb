"""Build a small word-level HuggingFace tokenizer directory from a word list.
"""
import json
import os
import os.path as osp
from typing import Iterable

#: Special tokens of word-level tokenizers written by this module.
WORD_LEVEL_SPECIALS = dict(
    pad_token='[PAD]', unk_token='[UNK]', bos_token='[BOS]',
    eos_token='[EOS]', mask_token='[MASK]')


def save_word_level_tokenizer(words: Iterable[str], out_dir: str) -> str:
    """Write a lower-casing, whitespace/punctuation-splitting word-level
    tokenizer that ``transformers.AutoTokenizer`` loads offline.

    Ids: the specials of :data:`WORD_LEVEL_SPECIALS` first (pad=0, unk=1,
    bos=2, eos=3, mask=4), then ``words`` in sorted order.

    Args:
        words: content words (lower-case; punctuation marks allowed as
            single-character words).
        out_dir (str): directory to (over)write ``tokenizer.json``,
            ``tokenizer_config.json`` and ``special_tokens_map.json`` in.

    Returns:
        str: ``out_dir``.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers

    specials = list(WORD_LEVEL_SPECIALS.values())
    content = sorted({w.strip().lower() for w in words if w.strip()})
    clash = [w for w in content if w in specials or ' ' in w]
    if clash:
        raise ValueError(f'words must be single tokens and not specials: '
                         f'{clash}')
    vocab = {tok: i for i, tok in enumerate(specials + content)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token='[UNK]'))
    tok.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    # WordPiece decoding joins words with spaces and, with cleanup, removes
    # the space before punctuation (no word carries the '##' prefix).
    tok.decoder = decoders.WordPiece(prefix='##', cleanup=True)
    tok.add_special_tokens(specials)

    os.makedirs(out_dir, exist_ok=True)
    tok.save(osp.join(out_dir, 'tokenizer.json'))
    config = dict(
        tokenizer_class='PreTrainedTokenizerFast',
        clean_up_tokenization_spaces=True,
        model_max_length=512,
        **WORD_LEVEL_SPECIALS)
    with open(osp.join(out_dir, 'tokenizer_config.json'), 'w') as f:
        json.dump(config, f, indent=2, sort_keys=True)
        f.write('\n')
    with open(osp.join(out_dir, 'special_tokens_map.json'), 'w') as f:
        json.dump(WORD_LEVEL_SPECIALS, f, indent=2, sort_keys=True)
        f.write('\n')
    return out_dir
