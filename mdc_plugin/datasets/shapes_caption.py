"""``SyntheticShapesCaption``: the embedded, locally generated caption set."""
import itertools
import json
import os.path as osp
from typing import List, Mapping, Optional

from mmpretrain.registry import DATASETS

from .base_caption import BaseCaptionDataset, check_file
from .shapes import (CLASSES, SHAPES, SPLITS, ensure_shapes_generated,
                     vocabulary)

#: Unordered shape pairs (``label='shape_set'``): 4 same-shape + 6 mixed.
SET_CLASSES = tuple(f'{a}+{b}'
                    for a, b in itertools.combinations_with_replacement(
                        SHAPES, 2))
LABELS = dict(shape_set=SET_CLASSES, shape_pair=CLASSES)


def shape_set_label(objects) -> int:
    """Index in ``SET_CLASSES`` of the two objects' shapes, order ignored."""
    a, b = sorted(SHAPES.index(o['shape']) for o in objects)
    return SET_CLASSES.index(f'{SHAPES[a]}+{SHAPES[b]}')


@DATASETS.register_module()
class SyntheticShapesCaption(BaseCaptionDataset):
    """Two coloured shapes per image, ~5 true captions each, labelled.

    The set is generated deterministically from ``seed`` on first use and
    cached in ``<data_root>/shapes-v1-<hash>/`` (hash of ``num_images``,
    ``img_size``, ``seed``); later builds reuse it. Nothing is downloaded.

    data_info keys: ``img_path`` (str), ``gt_caption`` (list[str], 5
    captions), ``image_id`` (str, e.g. ``'val_00012'``), ``gt_label`` (int: see
    ``label``),
    ``objects`` (two dicts: shape, color, size, cx, cy, radius) and
    ``relation`` (``'horizontal'`` or ``'vertical'``).

    Args:
        data_root (str): where the generated set is cached.
        split (str): ``'train'``, ``'val'`` or ``'test'``.
        num_images (dict, optional): images per split; defaults to
            ``dict(train=5000, val=500, test=500)``.
        img_size (int): image side in pixels. Defaults to 64.
        seed (int): generation seed. Defaults to 0.
        label (str): what ``gt_label`` means. ``'shape_set'`` (default, 10
            classes): which two shapes are in the image, order ignored —
            the linear-probe target, since pooled features keep what is
            present but not where. ``'shape_pair'`` (16 classes): the
            ordered pair (first = left/upper object), which also needs the
            spatial relation.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments
            (``pipeline``, ``test_mode``, ``indices``, ``lazy_init``...).
    """

    METAINFO = dict(classes=CLASSES, vocabulary=tuple(vocabulary()))

    def __init__(self,
                 data_root: str,
                 split: str = 'train',
                 num_images: Optional[Mapping[str, int]] = None,
                 img_size: int = 64,
                 seed: int = 0,
                 label: str = 'shape_set',
                 **kwargs) -> None:
        if split not in SPLITS:
            raise ValueError(f'SyntheticShapesCaption: split must be one of '
                             f'{SPLITS}, got {split!r}')
        if label not in LABELS:
            raise ValueError(f'SyntheticShapesCaption: label must be one of '
                             f'{tuple(LABELS)}, got {label!r}')
        self.label = label
        kwargs.setdefault('metainfo', dict(classes=LABELS[label]))
        for key in ('ann_file', 'data_prefix'):
            if key in kwargs:
                raise TypeError(f'SyntheticShapesCaption does not take '
                                f'{key!r}: files live in the generated set')
        self.split = split
        self.num_images = None if num_images is None else dict(num_images)
        self.img_size = int(img_size)
        self.seed = int(seed)
        self.set_dir: Optional[str] = None
        self.freshly_generated = False
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Generate (or reuse) the set, then read ``<split>.json``."""
        self.set_dir, self.freshly_generated = ensure_shapes_generated(
            self.data_root, self.num_images, self.img_size, self.seed)
        ann_file = check_file(
            osp.join(self.set_dir, f'{self.split}.json'),
            'SyntheticShapesCaption annotation file')
        with open(ann_file) as f:
            data_list = json.load(f)['data_list']
        for info in data_list:
            info['img_path'] = osp.join(self.set_dir, info['img_path'])
            if self.label == 'shape_set':
                info['gt_label'] = shape_set_label(info['objects'])
        if not data_list:
            raise ValueError(f'SyntheticShapesCaption: split {self.split!r} '
                             f'of {self.set_dir} is empty (num_images)')
        return self.finalize(data_list, ann_file)
