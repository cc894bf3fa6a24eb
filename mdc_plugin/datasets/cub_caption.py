"""``CUBCaption``: CUB-200-2011 images with Reed et al.'s ``text_c10``
captions."""
import os.path as osp
from typing import Dict, List, Tuple

from mmpretrain.registry import DATASETS

from .base_caption import (BaseCaptionDataset, CorruptEntryError, check_file,
                           clean_captions)

CLASS_SPLITS = ('train', 'val', 'trainval', 'test')
IMAGE_SPLITS = ('train', 'test')
SPLIT_MODES = ('class', 'image')


def read_id_table(path: str, what: str) -> Dict[int, str]:
    """Read ``<int id> <value>`` lines (CUB's ``images.txt`` style).

    Returns:
        dict: id -> value (str). Raises naming the file/line on bad lines or
        duplicate ids.
    """
    check_file(path, f'CUB {what}')
    table: Dict[int, str] = {}
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or not parts[0].isdigit():
                raise CorruptEntryError(f'{path}:{lineno}: expected "<id> '
                                        f'<value>", got {line.rstrip()!r}')
            key = int(parts[0])
            if key in table:
                raise CorruptEntryError(f'{path}:{lineno}: duplicate id '
                                        f'{key}')
            table[key] = parts[1].strip()
    return table


def read_class_list(path: str) -> List[str]:
    """Read a class-list file (one ``001.Black_footed_Albatross`` per line).
    """
    check_file(path, 'CUB class-list file (standard zero-shot class split; '
               'copy trainvalclasses.txt/testclasses.txt into data_root or '
               'set class_list_dir)')
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if not names:
        raise ValueError(f'CUB class-list file is empty: {path}')
    return names


@DATASETS.register_module()
class CUBCaption(BaseCaptionDataset):
    """CUB-200-2011 captions (10 per image from Reed et al.'s ``text_c10``).

    Layout under ``data_root``::

        images.txt                 <image id> <class_dir>/<name>.jpg
        image_class_labels.txt     <image id> <class index, 1-based>
        train_test_split.txt       <image id> <1 = train, 0 = test>
        classes.txt                <class index> <class_dir>   (optional)
        images/<class_dir>/<name>.jpg
        text_c10/<class_dir>/<name>.txt   one caption per line
        trainvalclasses.txt testclasses.txt [trainclasses.txt valclasses.txt]

    data_info keys: ``img_path``, ``gt_caption`` (list[str]), ``image_id``
    (int, CUB image id), ``gt_label`` (int, 0-based CUB class index, not
    remapped per split).

    Args:
        data_root (str): the ``CUB_200_2011`` directory.
        split (str): with ``split_mode='class'``: ``'train'``, ``'val'``,
            ``'trainval'`` or ``'test'``, read from ``<split>classes.txt``;
            with ``split_mode='image'``: ``'train'`` or ``'test'`` from
            ``train_test_split.txt``.
        split_mode (str): ``'class'`` (standard zero-shot class split,
            default) or ``'image'``.
        caption_dir (str): caption directory under ``data_root``.
        class_list_dir (str): directory of the class-list files, relative to
            ``data_root`` (default: ``data_root`` itself).
        data_prefix (dict): ``dict(img_path='images')``.
        on_corrupt (str): ``'raise'`` or ``'skip'`` images with a missing or
            empty caption file.
        check_images (bool): decode every image at load time; missing or
            unreadable ones raise (or, with ``on_corrupt='skip'``, are
            dropped), see :class:`BaseCaptionDataset`.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.
    """

    def __init__(self,
                 data_root: str,
                 split: str = 'trainval',
                 split_mode: str = 'class',
                 caption_dir: str = 'text_c10',
                 class_list_dir: str = '',
                 data_prefix: dict = dict(img_path='images'),
                 **kwargs) -> None:
        if split_mode not in SPLIT_MODES:
            raise ValueError(f'CUBCaption: split_mode must be one of '
                             f'{SPLIT_MODES}, got {split_mode!r}')
        valid = CLASS_SPLITS if split_mode == 'class' else IMAGE_SPLITS
        if split not in valid:
            raise ValueError(f'CUBCaption: split must be one of {valid} with '
                             f'split_mode={split_mode!r}, got {split!r}')
        if not data_root:
            raise ValueError('CUBCaption: data_root is required')
        self.split = split
        self.split_mode = split_mode
        self.caption_dir = caption_dir
        self.class_list_dir = class_list_dir
        super().__init__(data_root=data_root, data_prefix=dict(data_prefix),
                         **kwargs)

    def _path(self, *parts: str) -> str:
        return osp.join(self.data_root, *parts)

    def _class_names(self, images: Dict[int, str],
                     labels: Dict[int, int]) -> Tuple[str, ...]:
        """Class names by 0-based label, from classes.txt or image dirs."""
        classes_file = self._path('classes.txt')
        if osp.isfile(classes_file):
            table = read_id_table(classes_file, 'classes file')
            return tuple(table[k] for k in sorted(table))
        names: Dict[int, str] = {}
        for img_id, rel in images.items():
            names.setdefault(labels[img_id], osp.dirname(rel))
        return tuple(names.get(i, str(i)) for i in range(max(names) + 1))

    def _selected(self, images: Dict[int, str]) -> set:
        """Image ids of the requested split."""
        if self.split_mode == 'image':
            path = self._path('train_test_split.txt')
            flags = read_id_table(path, 'train/test split file')
            want = '1' if self.split == 'train' else '0'
            missing = sorted(set(images) - set(flags))
            if missing:
                raise CorruptEntryError(f'{path}: no entry for image id(s) '
                                        f'{missing[:10]}')
            return {i for i in images if flags[i] == want}
        path = self._path(self.class_list_dir, f'{self.split}classes.txt')
        wanted = set(read_class_list(path))
        known = {osp.dirname(rel) for rel in images.values()}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f'{path}: classes {unknown[:5]} do not appear in '
                             f'{self._path("images.txt")}')
        return {i for i, rel in images.items() if osp.dirname(rel) in wanted}

    def load_data_list(self) -> List[dict]:
        """Read the CUB tables and caption files of the selected split."""
        images = read_id_table(self._path('images.txt'), 'images file')
        label_path = self._path('image_class_labels.txt')
        raw_labels = read_id_table(label_path, 'class-label file')
        labels: Dict[int, int] = {}
        for img_id in images:
            if img_id not in raw_labels:
                raise CorruptEntryError(f'{label_path}: no class label for '
                                        f'image id {img_id}')
            value = raw_labels[img_id]
            if not value.isdigit() or int(value) < 1:
                raise CorruptEntryError(f'{label_path}: bad class label '
                                        f'{value!r} for image id {img_id}')
            labels[img_id] = int(value) - 1
        if 'classes' not in self._metainfo:
            self._metainfo['classes'] = self._class_names(images, labels)
        selected = self._selected(images)
        prefix = self.data_prefix['img_path']
        data_list = []
        for img_id in sorted(selected):
            rel = images[img_id]
            cap_file = self._path(self.caption_dir,
                                  osp.splitext(rel)[0] + '.txt')
            where = f'image id {img_id} ({rel})'
            if not osp.isfile(cap_file):
                self.corrupt(f'{where}: caption file not found: {cap_file}')
                continue
            try:
                with open(cap_file, encoding='utf-8') as f:
                    lines = f.read().splitlines()
            except UnicodeDecodeError as e:
                self.corrupt(f'{where}: caption file is not UTF-8 text: '
                             f'{cap_file} ({e})')
                continue
            captions = clean_captions(lines, cap_file)
            if not captions:
                self.corrupt(f'{where}: caption file is empty: {cap_file}')
                continue
            data_list.append(dict(
                img_path=osp.join(prefix, rel),
                gt_caption=captions,
                image_id=img_id,
                gt_label=labels[img_id]))
        return self.finalize(data_list, self.data_root)
