"""CLIP byte-pair-encoding caption tokenizer (offline, ships with open_clip).
"""
from functools import lru_cache
from typing import List

from mmpretrain.registry import TOKENIZER

from .base import CaptionTokenizer
from .detokenize import join_pieces


@lru_cache(maxsize=None)
def _load_simple_tokenizer():
    """Return a process-wide open_clip ``SimpleTokenizer`` (slow to build)."""
    from open_clip.tokenizer import SimpleTokenizer
    return SimpleTokenizer()


@TOKENIZER.register_module()
class CLIPBPETokenizer(CaptionTokenizer):
    """open_clip's CLIP BPE (49408 entries) plus appended ``pad`` and
    ``mask`` ids.

    ``bos_id``/``eos_id`` are ``<start_of_text>``/``<end_of_text>``;
    ``pad_id = 49408``, ``mask_id = 49409``, ``vocab_size = 49410``. Text is
    cleaned and lower-cased as open_clip does (``clean='lower'``).

    Decoding joins the BPE words back into caption text
    (:func:`~.detokenize.join_pieces`: ``t-shirt``, ``doesn't``, ``3:30
    p.m.``), so a decoded caption PTB-tokenizes as the encoded one did.
    """

    def __init__(self) -> None:
        self._bpe = _load_simple_tokenizer()
        base = len(self._bpe.encoder)
        self.bos_id = int(self._bpe.sot_token_id)
        self.eos_id = int(self._bpe.eot_token_id)
        self.pad_id = base
        self.mask_id = base + 1
        self.vocab_size = base + 2
        self._check_specials()

    def encode(self, text: str) -> List[int]:
        """``str`` -> content BPE ids (lower-cased, cleaned, no specials)."""
        if not isinstance(text, str):
            raise TypeError(f'CLIPBPETokenizer.encode expects str, got '
                            f'{type(text).__name__}')
        return [int(i) for i in self._bpe.encode(text)]

    def _decode_content(self, ids: List[int]) -> str:
        # Each BPE word ends in '</w>', which open_clip decodes to a space:
        # the split gives the encoder's pieces (words, single digits,
        # punctuation runs, clitics), joined back as captions are written.
        return join_pieces(self._bpe.decode(ids).split(), split_digits=True)
