"""Sample and draw two-object scenes for the synthetic shapes data set."""
import math
from typing import Tuple

import cv2
import numpy as np

from .grammar import (AXES, COLORS, SHAPES, SIZES, ShapeObject,
                      is_describable)

#: object half-extent as a fraction of the image side, per size word
SIZE_FRACTION = dict(small=0.10, large=0.17)
#: the dominant displacement axis must be this many times the other one
AXIS_RATIO = 1.5
_SHIFT = 4  # sub-pixel bits for cv2 drawing
_SCALE = 1 << _SHIFT


def sample_scene(rng: np.random.Generator, img_size: int,
                 max_tries: int = 1000
                 ) -> Tuple[ShapeObject, ShapeObject, str]:
    """Sample two non-overlapping objects with an unambiguous relation.

    Returns:
        tuple: ``(first, second, axis)`` where ``first`` is the left object
        (``axis='horizontal'``) or the upper one (``axis='vertical'``).
    """
    for _ in range(max_tries):
        objs = []
        for _k in range(2):
            size = SIZES[rng.integers(len(SIZES))]
            radius = round(
                SIZE_FRACTION[size] * img_size * rng.uniform(0.9, 1.1), 2)
            lo, hi = radius + 1.0, img_size - radius - 1.0
            objs.append(ShapeObject(
                shape=SHAPES[rng.integers(len(SHAPES))],
                color=list(COLORS)[rng.integers(len(COLORS))],
                size=size,
                cx=round(float(rng.uniform(lo, hi)), 2),
                cy=round(float(rng.uniform(lo, hi)), 2),
                radius=float(radius)))
        p, q = objs
        dx, dy = q.cx - p.cx, q.cy - p.cy
        gap = p.radius + q.radius + 2.0
        if math.hypot(dx, dy) < gap or not is_describable(p, q):
            continue
        if abs(dx) >= AXIS_RATIO * abs(dy) and abs(dx) >= gap:
            axis = AXES[0]
            first, second = (p, q) if dx > 0 else (q, p)
        elif abs(dy) >= AXIS_RATIO * abs(dx) and abs(dy) >= gap:
            axis = AXES[1]
            first, second = (p, q) if dy > 0 else (q, p)
        else:
            continue
        return first, second, axis
    raise RuntimeError(f'could not sample a scene for img_size={img_size} in '
                       f'{max_tries} tries; use img_size >= 32')


def _pts(points) -> np.ndarray:
    return np.round(np.asarray(points) * _SCALE).astype(np.int32)


def draw_object(img: np.ndarray, obj: ShapeObject,
                color_bgr: Tuple[int, int, int]) -> None:
    """Draw ``obj`` filled, anti-aliased, in place on a BGR uint8 image."""
    cx, cy, r = obj.cx, obj.cy, obj.radius
    color = tuple(int(c) for c in color_bgr)
    if obj.shape == 'circle':
        cv2.circle(img, (round(cx * _SCALE), round(cy * _SCALE)),
                   round(r * _SCALE), color, -1, cv2.LINE_AA, _SHIFT)
        return
    if obj.shape == 'square':
        h = 0.85 * r
        poly = [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h),
                (cx - h, cy + h)]
    elif obj.shape == 'triangle':
        s = math.sqrt(3) / 2
        poly = [(cx, cy - r), (cx + s * r, cy + 0.5 * r),
                (cx - s * r, cy + 0.5 * r)]
    elif obj.shape == 'cross':
        w = 0.33 * r
        poly = [(cx - w, cy - r), (cx + w, cy - r), (cx + w, cy - w),
                (cx + r, cy - w), (cx + r, cy + w), (cx + w, cy + w),
                (cx + w, cy + r), (cx - w, cy + r), (cx - w, cy + w),
                (cx - r, cy + w), (cx - r, cy - w), (cx - w, cy - w)]
    else:
        raise ValueError(f'unknown shape {obj.shape!r}')
    cv2.fillPoly(img, [_pts(poly)], color, cv2.LINE_AA, _SHIFT)


def render_scene(first: ShapeObject, second: ShapeObject, img_size: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Draw a scene on a dark, plain or lightly noisy background.

    Returns:
        np.ndarray: ``(img_size, img_size, 3)`` uint8 BGR image.
    """
    bg = rng.integers(10, 70, size=3)
    img = np.empty((img_size, img_size, 3), np.uint8)
    img[:] = bg.astype(np.uint8)
    for obj in (first, second):
        rgb = np.asarray(COLORS[obj.color]) + rng.integers(-15, 16, size=3)
        rgb = np.clip(rgb, 0, 255)
        draw_object(img, obj, tuple(rgb[::-1]))
    if rng.random() < 0.5:
        noise = rng.normal(0.0, rng.uniform(2.0, 6.0), size=img.shape)
        img = np.clip(img + noise, 0, 255).astype(np.uint8)
    return img
