"""Necks between a backbone and a caption head."""
from .vq_tokenizer_neck import VQNeckOutput, VQTokenizerNeck

__all__ = ['VQTokenizerNeck', 'VQNeckOutput']
