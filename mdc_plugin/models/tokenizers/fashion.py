"""Word-level tokenizer for the Fashion-MNIST scene captions."""
import re
from typing import List

from mmpretrain.registry import TOKENIZER

from .base import CaptionTokenizer

#: Words keep inner hyphens and apostrophes ('t-shirt'); any other
#: non-space character is a token of its own (',', ':').
_WORD = re.compile(r"[^\W_]+(?:[-'][^\W_]+)*|[^\w\s]|_")
_SPACE_BEFORE_PUNCT = re.compile(r'\s+([,.:;!?])')
SPECIALS = ('[PAD]', '[UNK]', '[BOS]', '[EOS]', '[MASK]')
#: Every word and punctuation mark of a Fashion scene caption, sorted (ids 5
#: onwards, in this order). The caption grammar
#: (``mdc_plugin.datasets.fashion.scenes.vocabulary``) must produce exactly
#: these; ``tests/test_fashion_bed.py`` checks that it does.
WORDS = (
    ',', ':', 'a', 'above', 'alone', 'an', 'and', 'ankle', 'are', 'bag',
    'bags', 'below', 'blouse', 'blouses', 'boot', 'boots', 'bottom', 'coat',
    'coats', 'dress', 'dresses', 'four', 'handbag', 'handbags', 'in', 'is',
    'item', 'items', 'jacket', 'jackets', 'jumper', 'jumpers', 'left', 'no',
    'of', 'one', 'pair', 'pairs', 'pants', 'photo', 'picture', 'product',
    'products', 'pullover', 'pullovers', 'right', 'sandal', 'sandals',
    'shirt', 'shirts', 'sneaker', 'sneakers', 'sweater', 'sweaters',
    't-shirt', 't-shirts', 'tee', 'tees', 'the', 'there', 'three', 'to',
    'top', 'tops', 'trainer', 'trainers', 'trousers', 'two', 'with')


@TOKENIZER.register_module()
class FashionTokenizer(CaptionTokenizer):
    """Lower-casing word-level tokenizer over the closed vocabulary of
    :class:`FashionSceneCaption` captions (about 70 words).

    Ids: pad=0, unk=1, bos=2, eos=3, mask=4, then the vocabulary in sorted
    order. Decoding joins words with spaces and attaches punctuation to the
    word before it, so every generated caption text round-trips exactly.
    """

    def __init__(self) -> None:
        self.words = list(SPECIALS) + list(WORDS)
        self._ids = {w: i for i, w in enumerate(self.words)}
        self.pad_id, self.unk_id, self.bos_id, self.eos_id, self.mask_id = \
            range(5)
        self.vocab_size = len(self.words)
        self._check_specials()

    @staticmethod
    def split(text: str) -> List[str]:
        """Lower-cased words and punctuation marks of ``text``."""
        return _WORD.findall(text.lower())

    def encode(self, text: str) -> List[int]:
        """``str`` -> content ids; unknown words map to ``[UNK]`` (1)."""
        if not isinstance(text, str):
            raise TypeError(f'FashionTokenizer.encode expects str, got '
                            f'{type(text).__name__}')
        return [self._ids.get(w, self.unk_id) for w in self.split(text)]

    def _decode_content(self, ids: List[int]) -> str:
        text = ' '.join(self.words[i] for i in ids if i != self.unk_id)
        return _SPACE_BEFORE_PUNCT.sub(r'\1', text)
