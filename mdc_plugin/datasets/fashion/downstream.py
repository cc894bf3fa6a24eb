"""Exact instance and semantic labels of Fashion-MNIST scenes.

Items never overlap (one per 2 x 2 cell), so an item's mask is exactly the
non-black pixels it pastes onto the canvas. These labels feed the
MMDetection (COCO instances) and MMSegmentation (ADE20K-style label PNGs)
layouts written by ``tools/misc/make_downstream_data.py``.
"""
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from .scenes import ITEM, Placement

#: Semantic-map value of pixels that belong to no item.
BACKGROUND = 0


@dataclass(frozen=True)
class Instance:
    """One labelled item: class (0-9), (H, W) bool mask, COCO xywh box."""
    label: int
    mask: np.ndarray
    bbox: List[float]

    @property
    def area(self) -> int:
        return int(self.mask.sum())


def upscale(image: np.ndarray, scale: int) -> np.ndarray:
    """Nearest-neighbour upscale of an (H, W) array by an integer factor."""
    if scale < 1:
        raise ValueError(f'scale must be an integer >= 1, got {scale}')
    return np.kron(image, np.ones((scale, scale), dtype=image.dtype))


def scene_instances(images: np.ndarray, placements: Sequence[Placement],
                    canvas: int = 64, scale: int = 1,
                    threshold: int = 0) -> List[Instance]:
    """Masks and boxes of a scene's items at ``canvas * scale`` px.

    A pixel belongs to an item when its value is above ``threshold``;
    items whose mask would be empty are dropped (Fashion-MNIST has none).
    """
    out = []
    for p in placements:
        mask = np.zeros((canvas, canvas), dtype=bool)
        mask[p.y:p.y + ITEM, p.x:p.x + ITEM] = images[p.item] > threshold
        mask = upscale(mask, scale)
        if not mask.any():
            continue
        ys, xs = np.nonzero(mask)
        x0, y0 = int(xs.min()), int(ys.min())
        box = [float(x0), float(y0), float(xs.max() + 1 - x0),
               float(ys.max() + 1 - y0)]
        out.append(Instance(p.label, mask, box))
    return out


def semantic_map(instances: Sequence[Instance], size: int) -> np.ndarray:
    """(size, size) uint8 map: ``BACKGROUND`` (0) or item class + 1."""
    out = np.full((size, size), BACKGROUND, dtype=np.uint8)
    for inst in instances:
        out[inst.mask] = inst.label + 1
    return out
