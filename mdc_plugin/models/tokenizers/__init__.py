"""Caption tokenizers (registered in mmpretrain's ``TOKENIZER`` registry)."""
from .base import CaptionTokenizer, build_caption_tokenizer
from .clip_bpe import CLIPBPETokenizer
from .fashion import FashionTokenizer
from .hf import SHAPES_TOKENIZER_DIR, HFCaptionTokenizer, ShapesTokenizer
from .word_level import save_word_level_tokenizer

__all__ = [
    'CaptionTokenizer', 'build_caption_tokenizer', 'CLIPBPETokenizer',
    'FashionTokenizer',
    'HFCaptionTokenizer', 'ShapesTokenizer', 'SHAPES_TOKENIZER_DIR',
    'save_word_level_tokenizer'
]
