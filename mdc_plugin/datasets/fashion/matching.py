"""Minimal pairs of Fashion scenes for image-text matching.

A pair is two scenes A and B that differ by one edit, and their two
captions, written with the same template and the same name for every class,
so they differ only where the edit shows:

* ``swap``: two items of different classes exchange cells ("a coat to the
  left of a sandal" / "a sandal to the left of a coat": the same words);
* ``move``: one item moves to an empty cell (the positions caption);
* ``count``: one more (or one fewer) item of a class already there (the
  inventory caption: "two coats and a bag" / "three coats and a bag");
* ``replace``: one item becomes an item of a class not in the scene (the
  positions caption).

Each caption is true of its own scene and false of the other (a swap whose
reversed relation also holds through a repeated class is skipped). Each
pair gives two matching cases, (image A: A's caption against B's) and
(image B: B's caption against A's). A model that never looks at the image
and scores deterministically gives both captions the same two scores in
both cases, so it is right in exactly one of them: 50% by construction,
whatever its language prior (a Monte-Carlo score draws other masks for the
two images, so it is 50% in expectation).
"""
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .scenes import (CELL_NAMES, ITEM, NAMES, Placement, join_phrases,
                     noun_phrase, scene_geometry, where_phrase)

#: The edits, in the order the benchmark reports them.
NEGATIVE_TYPES = ('swap', 'move', 'count', 'replace')
#: Inventory leads that do not depend on the item count.
_LEADS = ('', 'a picture of ', 'a photo of ')


@dataclass(frozen=True)
class MatchingPair:
    """Scenes A and B (placements) and their captions; ``kind`` is one of
    :data:`NEGATIVE_TYPES`."""
    kind: str
    scene_a: Tuple[Placement, ...]
    scene_b: Tuple[Placement, ...]
    caption_a: str
    caption_b: str


def _positions_caption(scene: Sequence[Placement],
                       names: Dict[int, int]) -> str:
    parts = [f'{noun_phrase(p.label, 1, names[p.label])} in the '
             f'{CELL_NAMES[p.cell]}' for p in sorted(scene, key=_cell)]
    return join_phrases(parts)


def _inventory(scene: Sequence[Placement], order: Sequence[int],
               names: Dict[int, int]) -> str:
    labels = [p.label for p in scene]
    return join_phrases([noun_phrase(lab, labels.count(lab), names[lab])
                         for lab in order if lab in labels])


def _cell(p: Placement) -> int:
    return p.cell


def _swapped(scene: Sequence[Placement], i: int, j: int) -> List[Placement]:
    """``scene`` with items i and j in each other's cells (the other
    items first, then the two swapped ones)."""
    a, b = scene[i], scene[j]
    return [p for k, p in enumerate(scene) if k not in (i, j)] + [
        replace(b, cell=a.cell, x=a.x, y=a.y),
        replace(a, cell=b.cell, x=b.x, y=b.y)]


def _relation_holds(scene: Sequence[Placement], first: int, second: int,
                    where: str) -> bool:
    """Whether some item of class ``first`` is ``where`` some item of
    class ``second`` in ``scene``."""
    return any(p.label == first and q.label == second and
               p.cell != q.cell and where_phrase(p.cell, q.cell) == where
               for p in scene for q in scene)


def _swap_is_unambiguous(scene: Sequence[Placement], i: int, j: int
                         ) -> bool:
    """Whether swapping items i and j gives two relation captions that
    are each false in the other scene (a repeated class elsewhere could
    make "a bag to the left of a coat" true in both)."""
    a, b = scene[i], scene[j]
    where = where_phrase(a.cell, b.cell)
    return not (_relation_holds(scene, b.label, a.label, where) or
                _relation_holds(_swapped(scene, i, j), a.label, b.label,
                                where))


def _moved(p: Placement, cell: int, side: int) -> Placement:
    """``p`` in another cell, at the same offset inside it."""
    dx, dy = p.x - p.cell % 2 * side, p.y - p.cell // 2 * side
    return replace(p, cell=cell, x=cell % 2 * side + dx,
                   y=cell // 2 * side + dy)


def _new_item(rng: np.random.Generator, by_class: Sequence[np.ndarray],
              label: int, cell: int, side: int) -> Placement:
    """A random pool item of class ``label`` at a random offset in
    ``cell``."""
    item = int(rng.choice(by_class[label]))
    dx, dy = (int(v) for v in rng.integers(0, side - ITEM + 1, size=2))
    return Placement(item, label, cell, cell % 2 * side + dx,
                     cell // 2 * side + dy)


def make_pair(rng: np.random.Generator, scene: Sequence[Placement],
              kind: str, by_class: Sequence[np.ndarray],
              canvas: int = 64) -> Optional[MatchingPair]:
    """The ``kind`` edit of ``scene`` and both captions, or None when the
    scene does not allow it (``swap`` needs two classes, ``move`` an empty
    cell, ``count`` an empty cell or a class seen twice).

    Args:
        rng: the pair's random choices (items, cells, names).
        scene: scene A's placements.
        kind: one of :data:`NEGATIVE_TYPES`.
        by_class: the item pool's indices of each class (added items).
        canvas: scene side in px.
    """
    side = scene_geometry(canvas)
    scene = tuple(sorted(scene, key=_cell))
    names = {lab: int(rng.integers(len(NAMES[lab])))
             for lab in range(len(NAMES))}
    empty = [c for c in range(4) if c not in {p.cell for p in scene}]
    labels = [p.label for p in scene]
    if kind == 'swap':
        pairs = [(i, j) for i in range(len(scene))
                 for j in range(len(scene))
                 if i != j and labels[i] != labels[j]
                 and _swap_is_unambiguous(scene, i, j)]
        if not pairs:
            return None
        i, j = pairs[int(rng.integers(len(pairs)))]
        a, b = scene[i], scene[j]
        other = [p for k, p in enumerate(scene) if k not in (i, j)]
        order = list(dict.fromkeys(p.label for p in other))
        rest = (', with ' + _inventory(other, order, names)) if other else ''
        where = where_phrase(a.cell, b.cell)

        def relation(first: int, second: int) -> str:
            return (f'{noun_phrase(first, 1, names[first])} {where} '
                    f'{noun_phrase(second, 1, names[second])}{rest}')
        return MatchingPair(kind, scene,
                            tuple(sorted(_swapped(scene, i, j), key=_cell)),
                            relation(a.label, b.label),
                            relation(b.label, a.label))
    if kind == 'move':
        if not empty:
            return None
        k = int(rng.integers(len(scene)))
        cell = empty[int(rng.integers(len(empty)))]
        edited = list(scene)
        edited[k] = _moved(scene[k], cell, side)
        return MatchingPair(kind, scene, tuple(sorted(edited, key=_cell)),
                            _positions_caption(scene, names),
                            _positions_caption(edited, names))
    if kind == 'count':
        repeated = sorted({lab for lab in labels if labels.count(lab) > 1})
        choices = sorted(set(labels)) if empty else repeated
        if not choices:
            return None
        label = choices[int(rng.integers(len(choices)))]
        if empty:
            cell = empty[int(rng.integers(len(empty)))]
            edited = list(scene) + [_new_item(rng, by_class, label, cell,
                                              side)]
        else:
            drop = [k for k, p in enumerate(scene) if p.label == label]
            gone = drop[int(rng.integers(len(drop)))]
            edited = [p for k, p in enumerate(scene) if k != gone]
        order = list(dict.fromkeys(labels))
        rng.shuffle(order)
        lead = _LEADS[int(rng.integers(len(_LEADS)))]
        return MatchingPair(kind, scene, tuple(sorted(edited, key=_cell)),
                            lead + _inventory(scene, order, names),
                            lead + _inventory(edited, order, names))
    if kind == 'replace':
        absent = [lab for lab in range(len(NAMES)) if lab not in labels]
        k = int(rng.integers(len(scene)))
        label = absent[int(rng.integers(len(absent)))]
        old = scene[k]
        new = _new_item(rng, by_class, label, old.cell, side)
        edited = list(scene)
        edited[k] = replace(new, x=old.x, y=old.y)
        return MatchingPair(kind, scene, tuple(edited),
                            _positions_caption(scene, names),
                            _positions_caption(edited, names))
    raise ValueError(f'negative kind {kind!r} is not one of {NEGATIVE_TYPES}')


def items_by_class(labels: np.ndarray, num_classes: int = len(NAMES)
                   ) -> List[np.ndarray]:
    """Indices of each class in an item pool's ``labels``."""
    return [np.flatnonzero(labels == c) for c in range(num_classes)]
