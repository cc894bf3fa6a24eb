"""``FashionSceneMatching``: image-text matching on minimal pairs of real
Fashion-MNIST scenes, which no model passes by its language prior alone
(see :mod:`mdc_plugin.datasets.fashion.matching`)."""
from typing import List, Optional, Sequence

import numpy as np
from mmengine.dataset import BaseDataset
from mmpretrain.registry import DATASETS

from .fashion import compose_scene, locate_split, read_split, render_scene
from .fashion.matching import NEGATIVE_TYPES, items_by_class, make_pair
from .fashion_scene_caption import (ITEM_SPLIT, SPLIT_CODES, describe_source,
                                    log_source_once)


@DATASETS.register_module()
class FashionSceneMatching(BaseDataset):
    """Matching cases built from the scenes of a Fashion split.

    For each negative kind, the split's scenes are read in order (scene i is
    the same scene as :class:`FashionSceneCaption`'s scene i with the same
    ``seed``) and each scene that allows the edit gives a pair (A, B) until
    ``pairs_per_type`` pairs; each pair gives two cases, one per image, with
    the same two captions. Added and replacing items come from the same
    split's item pool.

    data_info keys (the matching contract): ``img`` ((canvas, canvas) uint8),
    ``caption_options`` ([caption of A, caption of B]), ``true_index`` (0 for
    image A, 1 for image B), ``group`` (the negative kind), ``sample_id``
    and ``scene_index``.

    Args:
        data_root: as for :class:`FashionSceneCaption` (``None``: search,
            then the embedded subset; ``'embedded'``: the subset).
        split: ``'val'`` (default) or ``'test'`` (official test items);
            ``'train'`` is allowed for checks.
        num_scenes: scenes of the split to draw pairs from.
        pairs_per_type: pairs per negative kind at most (fewer when the
            scenes run out; the log says how many).
        negative_types: which kinds, from :data:`NEGATIVE_TYPES`.
        canvas / num_items / seed: as for :class:`FashionSceneCaption`.
        check_count: require the official item counts (tests: False).
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.
    """

    METAINFO = dict(negative_types=NEGATIVE_TYPES)

    def __init__(self, data_root: Optional[str] = None, split: str = 'val',
                 num_scenes: int = 500, pairs_per_type: int = 250,
                 negative_types: Sequence[str] = NEGATIVE_TYPES,
                 canvas: int = 64, num_items: Sequence[int] = (1, 4),
                 seed: int = 0, check_count: bool = True, **kwargs) -> None:
        if split not in ITEM_SPLIT:
            raise ValueError(f'FashionSceneMatching: split must be one of '
                             f'{tuple(ITEM_SPLIT)}, got {split!r}')
        unknown = sorted(set(negative_types) - set(NEGATIVE_TYPES))
        if unknown or not negative_types:
            raise ValueError(f'FashionSceneMatching: negative_types '
                             f'{list(negative_types)} must be a non-empty '
                             f'subset of {NEGATIVE_TYPES}')
        if int(num_scenes) < 1 or int(pairs_per_type) < 1:
            raise ValueError('FashionSceneMatching: num_scenes and '
                             'pairs_per_type must be >= 1')
        self.split = split
        self.num_scenes = int(num_scenes)
        self.pairs_per_type = int(pairs_per_type)
        self.negative_types = tuple(negative_types)
        self.canvas = int(canvas)
        self.num_items = tuple(int(n) for n in num_items)
        self.seed = int(seed)
        self.check_count = check_count
        self.item_root = data_root
        self._items = None
        super().__init__(data_root='', **kwargs)

    def items(self):
        """The (images, labels) arrays of the split's item pool."""
        if self._items is None:
            source = locate_split(self.item_root, ITEM_SPLIT[self.split])
            self._items = (source, read_split(
                source, ITEM_SPLIT[self.split], self.check_count))
        return self._items[1]

    def load_data_list(self) -> List[dict]:
        """Two cases per pair, pairs of each kind in scene order."""
        _, labels = self.items()
        by_class = items_by_class(labels)
        data_list, counts = [], {}
        for kind in self.negative_types:
            found = 0
            for scene_index in range(self.num_scenes):
                if found == self.pairs_per_type:
                    break
                rng = np.random.default_rng(
                    [self.seed, SPLIT_CODES[self.split], scene_index])
                scene = compose_scene(rng, labels, self.canvas,
                                      self.num_items)
                pair_rng = np.random.default_rng(
                    [self.seed, 100 + NEGATIVE_TYPES.index(kind),
                     scene_index])
                pair = make_pair(pair_rng, scene, kind, by_class,
                                 self.canvas)
                if pair is None:
                    continue
                found += 1
                options = [pair.caption_a, pair.caption_b]
                for true_index, layout in enumerate((pair.scene_a,
                                                     pair.scene_b)):
                    data_list.append(dict(
                        layout=layout, caption_options=options,
                        true_index=true_index, group=kind,
                        scene_index=scene_index,
                        sample_id=(f'{self.split} scene {scene_index}, '
                                   f'{kind} pair, image '
                                   f'{"AB"[true_index]}')))
            counts[kind] = found
        source = self._items[0]
        log_source_once(describe_source(
            type(self).__name__, self.split,
            f'{len(data_list):,} cases from the first {self.num_scenes:,} '
            f'scenes (pairs per kind: {counts})', source,
            ITEM_SPLIT[self.split], len(labels)), source.fallback)
        return data_list

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        images, _ = self.items()
        info['img'] = render_scene(images, info.pop('layout'), self.canvas)
        return info
