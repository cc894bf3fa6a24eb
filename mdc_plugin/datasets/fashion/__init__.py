"""Fashion-MNIST: IDX reading and caption-scene composition."""
from .idx import (DEFAULT_ROOTS, EMBEDDED_COUNTS, EMBEDDED_DATA_ROOT,
                  EMBEDDED_ROOT, INSTALL_HINT,
                  IDXFormatError, SplitSource, load_fashion_split,
                  locate_split, read_idx, read_split, split_files, write_idx)
from .scenes import (CLASSES, NAMES, Placement, caption_scene, compose_scene,
                     render_item, render_scene, scene_captions, vocabulary)

__all__ = [
    'DEFAULT_ROOTS', 'EMBEDDED_COUNTS', 'EMBEDDED_DATA_ROOT',
    'EMBEDDED_ROOT', 'INSTALL_HINT',
    'IDXFormatError', 'SplitSource', 'load_fashion_split', 'locate_split',
    'read_idx', 'read_split', 'split_files', 'write_idx', 'CLASSES', 'NAMES',
    'Placement', 'caption_scene', 'compose_scene', 'render_item',
    'render_scene', 'scene_captions', 'vocabulary'
]
