"""Necks between an image encoder and a caption head."""
from .blind_image_tokens import BlindImageTokens
from .prefix_mapper import PrefixMapper
from .vq_tokenizer_neck import VQNeckOutput, VQTokenizerNeck

__all__ = ['BlindImageTokens', 'VQTokenizerNeck', 'VQNeckOutput',
           'PrefixMapper']
