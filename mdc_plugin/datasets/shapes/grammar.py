"""Vocabulary, labels and caption grammar of the synthetic shapes data set.

A scene holds two objects. ``first`` is the *subject*: the left object when
the relation is horizontal, the upper one when it is vertical; ``second`` is
the other object.
"""
import re
from dataclasses import asdict, dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np

SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'cross')
COLORS: Dict[str, Tuple[int, int, int]] = {  # name -> RGB
    'red': (220, 40, 40),
    'green': (40, 190, 60),
    'blue': (50, 90, 240),
    'yellow': (235, 215, 40),
    'purple': (160, 60, 210),
    'white': (235, 235, 235),
}
SIZES: Tuple[str, ...] = ('small', 'large')
AXES: Tuple[str, ...] = ('horizontal', 'vertical')

#: ``gt_label = len(SHAPES) * shape(first) + shape(second)``.
CLASSES: Tuple[str, ...] = tuple(f'{a}-{b}' for a in SHAPES for b in SHAPES)

# (relation of first to second, of second to first, short forms, positions)
_REL = {
    'horizontal': dict(fs='to the left of', sf='to the right of',
                       fs_short='left of', sf_short='right of',
                       pos_first='left', pos_second='right'),
    'vertical': dict(fs='above', sf='below', fs_short='above',
                     sf_short='below', pos_first='top', pos_second='bottom'),
}

NUM_CAPTIONS = 5


@dataclass(frozen=True)
class ShapeObject:
    """One drawn object; ``cx, cy, radius`` in pixels (float)."""
    shape: str
    color: str
    size: str
    cx: float
    cy: float
    radius: float

    def to_dict(self) -> dict:
        return asdict(self)


def pair_label(first: ShapeObject, second: ShapeObject) -> int:
    """Class index of the ordered shape pair ``(first, second)``."""
    return len(SHAPES) * SHAPES.index(first.shape) + SHAPES.index(second.shape)


def relation_axis(first: ShapeObject, second: ShapeObject) -> str:
    """``'horizontal'`` if the displacement is mostly along x, else
    ``'vertical'``."""
    dx, dy = abs(second.cx - first.cx), abs(second.cy - first.cy)
    return 'horizontal' if dx >= dy else 'vertical'


def _full(o: ShapeObject) -> str:
    return f'{o.size} {o.color} {o.shape}'


def _cs(o: ShapeObject) -> str:
    return f'{o.color} {o.shape}'


def _ss(o: ShapeObject) -> str:
    return f'{o.size} {o.shape}'


def _ref(o: ShapeObject, other: ShapeObject) -> str:
    """``size shape`` if that tells ``o`` from ``other``, else ``color
    shape``, else the full description."""
    if (o.size, o.shape) != (other.size, other.shape):
        return _ss(o)
    if (o.color, o.shape) != (other.color, other.shape):
        return _cs(o)
    return _full(o)


def _distinguish(o: ShapeObject, other: ShapeObject) -> str:
    """Shortest description of ``o`` that tells it from ``other``."""
    if o.shape != other.shape:
        return o.shape
    if o.color != other.color:
        return f'{o.color} one'
    return f'{o.size} one'


def is_describable(first: ShapeObject, second: ShapeObject) -> bool:
    """Objects must differ in shape, colour or size to be told apart."""
    return (first.shape, first.color, first.size) != \
        (second.shape, second.color, second.size)


def make_captions(first: ShapeObject, second: ShapeObject, axis: str,
                  rng: np.random.Generator) -> List[str]:
    """Return :data:`NUM_CAPTIONS` differently phrased, true captions.

    Args:
        first: the subject (left / upper object).
        second: the other object.
        axis: ``'horizontal'`` or ``'vertical'``.
        rng: source of the random word orders.

    Returns:
        list[str]: lower-case captions; the only punctuation is ``','``.
    """
    r = _REL[axis]
    a, b = first, second
    # random order for the symmetric phrasings
    x, y = (a, b) if rng.random() < 0.5 else (b, a)
    pos_x = r['pos_first'] if x is a else r['pos_second']
    u, v = (a, b) if rng.random() < 0.5 else (b, a)
    return [
        f'a {_full(a)} {r["fs"]} a {_full(b)}',
        f'a {_full(b)} is {r["sf_short"]} a {_full(a)}',
        f'there is a {_cs(u)} and a {_cs(v)}',
        f'a {_cs(x)} and a {_cs(y)}, the {_distinguish(x, y)} on the {pos_x}',
        f'the {_ref(b, a)} is {r["sf"]} the {_ref(a, b)}',
    ]


def vocabulary() -> List[str]:
    """All words (and the ``','`` mark) the captions can use, sorted."""
    words = set(SHAPES) | set(COLORS) | set(SIZES) | {'one'}
    for rel in _REL.values():
        for phrase in rel.values():
            words.update(phrase.split())
    templates = ('a is there and the on the ,')
    words.update(templates.split())
    return sorted(words)


_WORD_RE = re.compile(r'\w+|[^\w\s]')


def caption_words(caption: str) -> List[str]:
    """Split a caption like the shapes tokenizer does (words and marks)."""
    return _WORD_RE.findall(caption.lower())


def check_vocabulary(captions: Sequence[str]) -> None:
    """Raise ``ValueError`` if a caption uses a word outside
    :func:`vocabulary`."""
    vocab = set(vocabulary())
    for cap in captions:
        unknown = [w for w in caption_words(cap) if w not in vocab]
        if unknown:
            raise ValueError(f'caption {cap!r} uses words {unknown} outside '
                             'the shapes vocabulary')
