"""Real-image caption scenes and the official probe task, from Fashion-MNIST.

``FashionSceneCaption``: 1-4 Fashion-MNIST product photos on a 2 x 2 grid,
with captions naming every item (the pretraining data). ``FashionMNISTItems``:
single items at scene scale with their class (the probe's 10-class task).
Both render images on the fly from the official IDX files (or, when the full
set is not found, from the small subset shipped with the package); nothing
is written to disk and nothing is downloaded.
"""
import logging
from typing import List, Optional, Sequence, Set

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmpretrain.registry import DATASETS

from .base_caption import BaseCaptionDataset
from .fashion import (CLASSES, SplitSource, compose_scene, locate_split,
                      read_split, render_item, render_scene, scene_captions)
from .fashion import idx as fashion_idx

#: Which official item split feeds each scene split.
ITEM_SPLIT = dict(train='train', val='test', test='test')
#: Separates the random streams of the scene splits.
SPLIT_CODES = dict(train=0, val=1, test=2)
DEFAULT_NUM_SCENES = dict(train=100000, val=500, test=1000)
#: Source lines already logged in this process (each is logged once).
_LOGGED: Set[str] = set()


def describe_source(name: str, split: str, count: str, source: SplitSource,
                    item_split: str, num_items: int) -> str:
    """One line naming the IDX files a Fashion data set reads (absolute
    paths), how many items it holds and, for the embedded subset, that it
    is the subset and of how many official items."""
    if source.kind == 'search':
        where = ' (found on the default search path)'
    elif source.kind == 'embedded_by_config':
        official = fashion_idx.SPLIT_COUNTS[item_split]
        where = (f" (embedded subset, chosen by data_root='embedded': the "
                 f'first {num_items:,} of the {official:,} official '
                 f'{item_split} items, shipped with mdc_plugin)')
    elif source.embedded:
        official = fashion_idx.SPLIT_COUNTS[item_split]
        searched = ' or '.join(map(str, fashion_idx.DEFAULT_ROOTS))
        where = (f' (embedded subset: the first {num_items:,} of the '
                 f'{official:,} official {item_split} items, shipped with '
                 f'mdc_plugin; the full set was not found in {searched}: '
                 'see docs/data_preparation.md to get it)')
    else:
        where = ''
    return (f'{name} ({split}): {count} from the {num_items:,} '
            f'Fashion-MNIST {item_split} items of {source.images} and '
            f'{source.labels}{where}')


def log_source_once(line: str, fallback: bool = False) -> None:
    """Log ``line`` through the current MMLogger unless already logged
    (as a warning when the embedded subset stands in for the full set)."""
    if line not in _LOGGED:
        _LOGGED.add(line)
        print_log(line, logger='current',
                  level=logging.WARNING if fallback else logging.INFO)


@DATASETS.register_module()
class FashionSceneCaption(BaseCaptionDataset):
    """Captioned scenes of real Fashion-MNIST items.

    Scene ``i`` of a split is drawn from a generator seeded with
    ``(seed, split, i)``, so it is the same on every run, worker and rank,
    and the train set can be as large as wanted at no storage cost. Train
    scenes use only the 60,000 official train items; val and test scenes
    only the 10,000 official test items (10,000 / 2,000 with the embedded
    subset, used when ``data_root=None`` and no full set is found).

    data_info keys: ``img`` ((canvas, canvas) uint8, grayscale), ``gt_caption``
    (list[str], ``num_captions`` phrasings), ``image_id`` (str, e.g.
    ``'val_000012'``), ``labels`` (list[int], the items' classes in reading
    order) and ``cells`` (list[int], 0-3 = top left .. bottom right).

    Args:
        data_root: folder with the four official IDX files (``.gz`` or
            raw); ``None`` searches ``data/fashion-mnist`` then
            ``/usr/share/datasets/fashion-mnist`` (Debian's package), then
            falls back to the embedded subset (logged as such);
            ``'embedded'`` always reads the embedded subset.
        split: ``'train'``, ``'val'`` or ``'test'``.
        num_scenes: scenes in the split (default 100,000 / 500 / 1,000).
        canvas: scene side in px (>= 56, even); items stay 28 px.
        num_items: (min, max) items per scene, within 1-4.
        num_captions: phrasings per scene.
        seed: generation seed.
        check_count: require the official item counts, or the embedded
            subset's (tests set False).
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.
    """

    METAINFO = dict(classes=CLASSES)

    def __init__(self, data_root: Optional[str] = None, split: str = 'train',
                 num_scenes: Optional[int] = None, canvas: int = 64,
                 num_items: Sequence[int] = (1, 4), num_captions: int = 5,
                 seed: int = 0, check_count: bool = True, **kwargs) -> None:
        if split not in ITEM_SPLIT:
            raise ValueError(f'FashionSceneCaption: split must be one of '
                             f'{tuple(ITEM_SPLIT)}, got {split!r}')
        for key in ('ann_file', 'data_prefix'):
            if key in kwargs:
                raise TypeError(f'FashionSceneCaption does not take {key!r}: '
                                'scenes are composed from the IDX files in '
                                'data_root')
        self.split = split
        self.num_scenes = int(num_scenes or DEFAULT_NUM_SCENES[split])
        self.canvas = int(canvas)
        self.num_items = tuple(int(n) for n in num_items)
        self.num_captions = int(num_captions)
        self.seed = int(seed)
        self.check_count = check_count
        self.item_root = data_root
        self._item_source: Optional[SplitSource] = None
        super().__init__(data_root='', **kwargs)

    def item_source(self) -> SplitSource:
        """The IDX files of this split's item pool and where they were
        found (looked up once per data set)."""
        if self._item_source is None:
            self._item_source = locate_split(self.item_root,
                                             ITEM_SPLIT[self.split])
        return self._item_source

    def items(self):
        """The (images, labels) arrays of this split's item pool."""
        return read_split(self.item_source(), ITEM_SPLIT[self.split],
                          self.check_count)

    def source_files(self) -> List[str]:
        """Absolute paths of the (images, labels) IDX files read."""
        return list(self.item_source()[:2])

    def describe_source(self) -> str:
        """Which IDX files this split reads and how many scenes it holds
        (logged once per process when the data set is loaded)."""
        return describe_source(
            type(self).__name__, self.split, f'{self.num_scenes:,} scenes '
            'composed on the fly', self.item_source(),
            ITEM_SPLIT[self.split], len(self.items()[1]))

    def load_data_list(self) -> List[dict]:
        """One small entry per scene; images and captions are made in
        :meth:`get_data_info`."""
        self.items()  # fail now, naming the file, if the data is bad
        if self.num_scenes < 1:
            raise ValueError(f'FashionSceneCaption: num_scenes must be >= 1, '
                             f'got {self.num_scenes}')
        data_list = [dict(scene_index=i, image_id=f'{self.split}_{i:06d}',
                          img_path='') for i in range(self.num_scenes)]
        log_source_once(self.describe_source(), self.item_source().fallback)
        return self.finalize(data_list, f'Fashion-MNIST {self.split} scenes')

    def compose(self, scene_index: int) -> dict:
        """Image, captions and layout of one scene (deterministic)."""
        images, labels = self.items()
        rng = np.random.default_rng(
            [self.seed, SPLIT_CODES[self.split], scene_index])
        placements = compose_scene(rng, labels, self.canvas, self.num_items)
        return dict(
            img=render_scene(images, placements, self.canvas),
            gt_caption=scene_captions(rng, placements, self.num_captions),
            labels=[p.label for p in placements],
            cells=[p.cell for p in placements])

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        info.pop('img_path', None)
        info.update(self.compose(info['scene_index']))
        return info


@DATASETS.register_module()
class FashionMNISTItems(BaseDataset):
    """The official Fashion-MNIST classification task at scene scale: each
    28 px item centred on a black ``canvas`` px image, ``gt_label`` its
    class (0-9).

    Args:
        data_root: as for :class:`FashionSceneCaption`.
        split: ``'train'`` (60,000 items) or ``'test'`` (10,000); with
            the embedded subset 10,000 / 2,000.
        num_items: use a fixed random subset of this size (``None``: all;
            more than the split holds: all, and the log says so).
        canvas: image side in px.
        seed: seed of the subset.
        check_count: require the official item counts (or the embedded
            subset's).
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.
    """

    METAINFO = dict(classes=CLASSES)

    def __init__(self, data_root: Optional[str] = None, split: str = 'test',
                 num_items: Optional[int] = None, canvas: int = 64,
                 seed: int = 0, check_count: bool = True, **kwargs) -> None:
        self.split = split
        self.num_items = num_items
        self.canvas = int(canvas)
        self.seed = int(seed)
        self.check_count = check_count
        self.item_root = data_root
        self._item_source: Optional[SplitSource] = None
        super().__init__(data_root='', **kwargs)

    def item_source(self) -> SplitSource:
        """The IDX files of this split and where they were found."""
        if self._item_source is None:
            self._item_source = locate_split(self.item_root, self.split)
        return self._item_source

    def items(self):
        """The (images, labels) arrays of this split."""
        return read_split(self.item_source(), self.split, self.check_count)

    def load_data_list(self) -> List[dict]:
        _, labels = self.items()
        index = np.arange(len(labels))
        if self.num_items is not None and self.num_items < len(labels):
            rng = np.random.default_rng(self.seed)
            index = np.sort(rng.choice(len(labels), self.num_items,
                                       replace=False))
        data_list = [dict(item=int(i), gt_label=int(labels[i]),
                          image_id=f'{self.split}_{int(i):05d}')
                     for i in index]
        log_source_once(self._describe(len(data_list), len(labels)),
                        self.item_source().fallback)
        return data_list

    def source_files(self) -> List[str]:
        """Absolute paths of the (images, labels) IDX files read."""
        return list(self.item_source()[:2])

    def _describe(self, count: int, pool: int) -> str:
        what = f'{count:,} items' + (
            '' if count == pool else f' (a fixed subset, seed {self.seed})')
        if self.num_items is not None and self.num_items > pool:
            what += (f' (num_items={self.num_items:,} asks for more than the '
                     f'{pool:,} there are: all of them are used)')
        return describe_source(type(self).__name__, self.split,
                               f'{what} rendered on the fly',
                               self.item_source(), self.split, pool)

    def describe_source(self) -> str:
        """Which IDX files this data set reads and how many items it holds
        (logged once per process when the data set is loaded)."""
        return self._describe(len(self), len(self.items()[1]))

    def get_data_info(self, idx: int) -> dict:
        info = super().get_data_info(idx)
        images, _ = self.items()
        info['img'] = render_item(images[info['item']], self.canvas)
        return info
