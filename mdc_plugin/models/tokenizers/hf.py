"""Caption tokenizers backed by a local HuggingFace tokenizer directory."""
import os
import os.path as osp
from functools import lru_cache
from typing import List, Optional

from mmpretrain.registry import TOKENIZER

from .base import CaptionTokenizer
from .detokenize import join_pieces

#: Directory of the word-level tokenizer for the embedded shapes data set.
SHAPES_TOKENIZER_DIR = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'assets',
    'shapes_tokenizer')

#: Text with the spacing a space-dropping tokenizer loses (see
#: :attr:`HFCaptionTokenizer.keeps_spacing`).
_SPACING_PROBE = "A t-shirt, isn't it? 3:30 p.m. (dogs' bowls)"

_TOKENIZER_FILES = ('tokenizer.json', 'tokenizer_config.json', 'vocab.txt',
                    'vocab.json', 'spiece.model', 'sentencepiece.bpe.model')


@lru_cache(maxsize=None)
def _load_hf_tokenizer(path: str):
    """Load (once per process) a tokenizer from a local directory."""
    if not osp.isdir(path):
        raise FileNotFoundError(
            f'HFCaptionTokenizer: tokenizer directory not found: {path!r} '
            '(give a local directory saved with save_pretrained; nothing is '
            'downloaded)')
    if not any(osp.exists(osp.join(path, f)) for f in _TOKENIZER_FILES):
        raise ValueError(
            f'HFCaptionTokenizer: {path!r} is not a tokenizer directory: none '
            f'of {list(_TOKENIZER_FILES)} is in it')
    os.environ.setdefault('TOKENIZERS_PARALLELISM', 'false')
    from transformers import AutoTokenizer
    try:
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as e:  # transformers raises many different types
        raise ValueError(f'HFCaptionTokenizer: could not load a tokenizer '
                         f'from {path!r}: {type(e).__name__}: {e}') from e


@TOKENIZER.register_module()
class HFCaptionTokenizer(CaptionTokenizer):
    """Wrap a local HuggingFace tokenizer directory.

    Special ids come from the tokenizer where it defines them: ``pad_token``,
    ``mask_token``, ``bos_token`` (else ``cls_token``) and ``eos_token``
    (else ``sep_token``). Missing ones, or ones that collide with an already
    chosen special (e.g. GPT-2's ``pad == bos == eos``), get new ids appended
    after the tokenizer's ``len()``, in the order bos, eos, pad, mask.

    Tokenizers that keep spacing (byte-level BPE, SentencePiece) decode as
    they do; ones that drop it (WordPiece, word-level) decode their tokens
    through :func:`~.detokenize.join_pieces`, so that ``t-shirt`` or
    ``doesn't`` come back as written rather than ``t - shirt`` /
    ``doesn ' t`` (:attr:`keeps_spacing` says which applies).

    Args:
        path (str): local directory with ``tokenizer.json`` /
            ``tokenizer_config.json`` (as written by ``save_pretrained``).
    """

    def __init__(self, path: str) -> None:
        self.path = osp.abspath(osp.expanduser(str(path)))
        self._tok = _load_hf_tokenizer(self.path)
        base = len(self._tok)
        next_id = base
        chosen = {}
        candidates = dict(
            bos_id=(self._tok.bos_token_id, self._tok.cls_token_id),
            eos_id=(self._tok.eos_token_id, self._tok.sep_token_id),
            pad_id=(self._tok.pad_token_id, ),
            mask_id=(self._tok.mask_token_id, ))
        for name, options in candidates.items():
            value: Optional[int] = None
            for opt in options:
                if opt is not None and opt not in chosen.values() \
                        and 0 <= opt < base:
                    value = int(opt)
                    break
            if value is None:
                value = next_id
                next_id += 1
            chosen[name] = value
        self.bos_id = chosen['bos_id']
        self.eos_id = chosen['eos_id']
        self.pad_id = chosen['pad_id']
        self.mask_id = chosen['mask_id']
        self.num_appended = next_id - base
        self._base_size = base
        self.vocab_size = next_id
        self._check_specials()
        self.keeps_spacing = self._probe_spacing()

    def _probe_spacing(self) -> bool:
        """Whether decode(encode(text)) gives the text back (up to case
        and repeated spaces)."""
        ids = self._tok.encode(_SPACING_PROBE, add_special_tokens=False)
        text = self._tok.decode(ids, skip_special_tokens=True,
                                clean_up_tokenization_spaces=False)
        return ' '.join(text.split()).lower() == _SPACING_PROBE.lower()

    def _pieces(self, ids: List[int]) -> List[str]:
        """The words of ``ids``, special tokens dropped.

        A fast tokenizer's WordPiece decoder may clean up spaces itself
        (``dogs ' bowls`` -> ``dogs'bowls``), so its tokens are joined here
        (``##`` continuations); other decoders' output is split on spaces.
        """
        special = set(self._tok.all_special_ids)
        ids = [i for i in ids if i not in special]
        backend = getattr(self._tok, 'backend_tokenizer', None)
        if type(getattr(backend, 'decoder', None)).__name__ != 'WordPiece':
            return self._tok.decode(
                ids, clean_up_tokenization_spaces=False).split()
        prefix = backend.decoder.prefix
        pieces: List[str] = []
        for token in self._tok.convert_ids_to_tokens(ids):
            if token.startswith(prefix) and pieces:
                pieces[-1] += token[len(prefix):]
            else:
                pieces.append(token)
        return pieces

    def encode(self, text: str) -> List[int]:
        """``str`` -> content ids (the tokenizer's normalisation, no
        specials)."""
        if not isinstance(text, str):
            raise TypeError(f'HFCaptionTokenizer.encode expects str, got '
                            f'{type(text).__name__}')
        ids = self._tok.encode(text, add_special_tokens=False)
        return [int(i) for i in ids]

    def _decode_content(self, ids: List[int]) -> str:
        ids = [i for i in ids if i < self._base_size]
        if not self.keeps_spacing:
            return join_pieces(self._pieces(ids))
        text = self._tok.decode(
            ids, skip_special_tokens=True, clean_up_tokenization_spaces=True)
        return ' '.join(text.split())

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f', path={self.path!r})'


@TOKENIZER.register_module()
class ShapesTokenizer(HFCaptionTokenizer):
    """Word-level tokenizer for :class:`SyntheticShapesCaption` (a few dozen
    words), shipped in ``mdc_plugin/assets/shapes_tokenizer``.

    Regenerate it with ``python tools/misc/make_shapes_tokenizer.py``.
    """

    def __init__(self, path: str = SHAPES_TOKENIZER_DIR) -> None:
        super().__init__(path)
