"""Necks between an image encoder and a caption head."""
from .prefix_mapper import PrefixMapper
from .vq_tokenizer_neck import VQNeckOutput, VQTokenizerNeck

__all__ = ['VQTokenizerNeck', 'VQNeckOutput', 'PrefixMapper']
