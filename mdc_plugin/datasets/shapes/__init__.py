"""The embedded synthetic shapes caption data set (grammar, drawing, cache).
"""
from .generate import (DEFAULT_NUM_IMAGES, SPLITS, ensure_shapes_generated,
                       normalize_num_images)
from .grammar import (CLASSES, COLORS, SHAPES, SIZES, ShapeObject,
                      make_captions, pair_label, vocabulary)

__all__ = [
    'DEFAULT_NUM_IMAGES', 'SPLITS', 'ensure_shapes_generated',
    'normalize_num_images', 'CLASSES', 'COLORS', 'SHAPES', 'SIZES',
    'ShapeObject', 'make_captions', 'pair_label', 'vocabulary'
]
