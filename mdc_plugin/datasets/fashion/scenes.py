"""Compose Fashion-MNIST items into captioned grayscale scenes.

A scene is a square canvas cut into a 2 x 2 grid of cells; 1-4 cells hold
one 28 x 28 item each, placed at a small random offset inside its cell.
Captions name every item (with synonyms), count repeated classes, and say
where items are or how they relate. There is no colour: every item is a
grayscale product photo on black, so a captioner has to recognise shape.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

#: Official class order of the Fashion-MNIST labels.
CLASSES = ('T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal',
           'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
#: Natural names per class: (singular, plural) pairs, any of which a caption
#: may use. Synonyms never cross classes.
NAMES = (
    (('t-shirt', 't-shirts'), ('top', 'tops'), ('tee', 'tees')),
    (('pair of trousers', 'pairs of trousers'),
     ('pair of pants', 'pairs of pants')),
    (('pullover', 'pullovers'), ('sweater', 'sweaters'),
     ('jumper', 'jumpers')),
    (('dress', 'dresses'), ),
    (('coat', 'coats'), ('jacket', 'jackets')),
    (('sandal', 'sandals'), ),
    (('shirt', 'shirts'), ('blouse', 'blouses')),
    (('sneaker', 'sneakers'), ('trainer', 'trainers')),
    (('bag', 'bags'), ('handbag', 'handbags')),
    (('ankle boot', 'ankle boots'), ('boot', 'boots')),
)
#: Cells in reading order and how captions name them.
CELL_NAMES = ('top left', 'top right', 'bottom left', 'bottom right')
COUNT_WORDS = ('no', 'one', 'two', 'three', 'four')
ITEM = 28  # Fashion-MNIST item side in pixels
TEMPLATES = ('inventory', 'positions', 'count', 'relation')


@dataclass(frozen=True)
class Placement:
    """One item in a scene: which item, its class, cell and pixel offset."""
    item: int
    label: int
    cell: int
    x: int
    y: int


def scene_geometry(canvas: int) -> int:
    """Cell side of a ``canvas`` px scene; raises if an item does not fit."""
    if canvas % 2 or canvas // 2 < ITEM:
        raise ValueError(f'canvas={canvas} px: needs an even size of at '
                         f'least {2 * ITEM} so that each 2 x 2 cell holds a '
                         f'{ITEM} px item')
    return canvas // 2


def compose_scene(rng: np.random.Generator, labels: np.ndarray,
                  canvas: int = 64, num_items: Tuple[int, int] = (1, 4)
                  ) -> List[Placement]:
    """Draw a scene: how many items, which ones (from the split's pool
    ``labels``), which cells and the jitter inside each cell."""
    cell = scene_geometry(canvas)
    low, high = num_items
    if not 1 <= low <= high <= 4:
        raise ValueError(f'num_items={num_items}: need 1 <= min <= max <= 4')
    count = int(rng.integers(low, high + 1))
    cells = np.sort(rng.choice(4, size=count, replace=False))
    items = rng.integers(0, len(labels), size=count)
    slack = cell - ITEM
    out = []
    for c, item in zip(cells, items):
        dx, dy = rng.integers(0, slack + 1, size=2)
        out.append(Placement(int(item), int(labels[item]), int(c),
                             int(c % 2 * cell + dx), int(c // 2 * cell + dy)))
    return out


def render_scene(images: np.ndarray, placements: Sequence[Placement],
                 canvas: int = 64) -> np.ndarray:
    """Paste each item onto a black ``(canvas, canvas)`` uint8 image."""
    out = np.zeros((canvas, canvas), dtype=np.uint8)
    for p in placements:
        out[p.y:p.y + ITEM, p.x:p.x + ITEM] = images[p.item]
    return out


def render_item(image: np.ndarray, canvas: int = 64) -> np.ndarray:
    """One item centred on a black canvas at scene scale (the probe's
    rendering)."""
    out = np.zeros((canvas, canvas), dtype=np.uint8)
    off = (canvas - ITEM) // 2
    out[off:off + ITEM, off:off + ITEM] = image
    return out


# ------------------------------------------------------------------ captions
def _article(phrase: str) -> str:
    return ('an ' if phrase[0] in 'aeiou' else 'a ') + phrase


def noun_phrase(label: int, count: int, synonym: int) -> str:
    """'a coat', 'an ankle boot', 'two pairs of trousers'...: ``count``
    items of class ``label`` named by its ``synonym``-th name."""
    singular, plural = NAMES[label][synonym]
    if count == 1:
        return _article(singular)
    return f'{COUNT_WORDS[count]} {plural}'


def _noun(rng: np.random.Generator, label: int, count: int) -> str:
    """:func:`noun_phrase` with a random synonym."""
    return noun_phrase(label, count, int(rng.integers(len(NAMES[label]))))


def join_phrases(parts: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(parts) == 1:
        return parts[0]
    return ', '.join(parts[:-1]) + ' and ' + parts[-1]


def _inventory(rng, placements: Sequence[Placement]) -> str:
    labels = [p.label for p in placements]
    order = list(dict.fromkeys(labels))  # first appearance (reading order)
    rng.shuffle(order)
    return join_phrases([_noun(rng, lab, labels.count(lab)) for lab in order])


def where_phrase(cell_a: int, cell_b: int) -> str:
    """How an item in ``cell_a`` sits relative to one in ``cell_b``
    ('to the left of', 'above and to the right of'...; different cells)."""
    dcol, drow = cell_b % 2 - cell_a % 2, cell_b // 2 - cell_a // 2
    horiz = {1: 'to the left of', -1: 'to the right of'}.get(dcol)
    vert = {1: 'above', -1: 'below'}.get(drow)
    if horiz and vert:
        return f'{vert} and {horiz}'
    return horiz or vert


def _relation(rng, a: Placement, b: Placement) -> str:
    """How ``a`` sits relative to ``b`` (different cells)."""
    where = where_phrase(a.cell, b.cell)
    return f'{_noun(rng, a.label, 1)} {where} {_noun(rng, b.label, 1)}'


def caption_scene(rng: np.random.Generator, placements: Sequence[Placement],
                  template: str) -> str:
    """One caption of ``template`` kind; every caption names every item."""
    n = len(placements)
    if template == 'inventory':
        lead = ('', 'a picture of ', 'a photo of ',
                'there is ' if n == 1 else 'there are ')[int(rng.integers(4))]
        return lead + _inventory(rng, placements)
    if template == 'positions':
        parts = [f'{_noun(rng, p.label, 1)} in the {CELL_NAMES[p.cell]}'
                 for p in placements]
        return join_phrases(parts)
    if template == 'count':
        noun = ('item', 'items') if int(rng.integers(2)) else (
            'product', 'products')
        return (f'{COUNT_WORDS[n]} {noun[n > 1]}: '
                f'{_inventory(rng, placements)}')
    if template == 'relation':
        if n == 1:
            p = placements[0]
            return f'{_noun(rng, p.label, 1)} alone in the ' \
                   f'{CELL_NAMES[p.cell]}'
        i, j = rng.choice(n, size=2, replace=False)
        text = _relation(rng, placements[i], placements[j])
        rest = [p for k, p in enumerate(placements) if k not in (i, j)]
        if rest:
            text += ', with ' + _inventory(rng, rest)
        return text
    raise ValueError(f'template {template!r} not one of {TEMPLATES}')


def scene_captions(rng: np.random.Generator,
                   placements: Sequence[Placement],
                   num_captions: int = 5) -> List[str]:
    """``num_captions`` phrasings: each template once, then random ones."""
    kinds = list(TEMPLATES)
    rng.shuffle(kinds)
    while len(kinds) < num_captions:
        kinds.append(TEMPLATES[int(rng.integers(len(TEMPLATES)))])
    return [caption_scene(rng, placements, k) for k in kinds[:num_captions]]


def vocabulary() -> List[str]:
    """Every word and punctuation mark a caption can contain."""
    words = {'a', 'an', 'and', 'in', 'the', 'picture', 'photo', 'of',
             'there', 'is', 'are', 'item', 'items', 'product', 'products',
             'to', 'left', 'right', 'above', 'below', 'alone', 'with',
             'top', 'bottom', ',', ':'}
    words.update(COUNT_WORDS)
    for names in NAMES:
        for phrase in names:
            for form in phrase:
                words.update(form.split())
    return sorted(words)
