"""``COCOKarpathyCaption``: COCO captions with the Karpathy splits."""
import os.path as osp
import re
from collections import OrderedDict
from typing import Any, List, Optional, Union

import mmengine
from mmengine.fileio import join_path
from mmpretrain.registry import DATASETS

from .base_caption import (BaseCaptionDataset, CorruptEntryError, check_file,
                           clean_captions)

KARPATHY_SPLITS = ('train', 'val', 'test', 'restval')


def image_id_from_path(path: str) -> Union[int, str]:
    """``'val2014/COCO_val2014_000000391895.jpg'`` -> ``391895``; a stem
    without trailing digits is returned as is."""
    stem = osp.splitext(osp.basename(path))[0]
    match = re.search(r'(\d+)$', stem)
    return int(match.group(1)) if match else stem


@DATASETS.register_module()
class COCOKarpathyCaption(BaseCaptionDataset):
    """COCO caption data set; one data_info per image with all its captions.

    Two annotation formats are read (detected from the JSON):

    * Karpathy's ``dataset_coco.json``: ``{'images': [{'filepath',
      'filename', 'sentences': [{'raw'}, ...], 'split', 'cocoid'}, ...]}``;
      ``split`` picks ``'train'``, ``'val'``, ``'test'`` or ``'restval'``
      (``None``: all). With ``train_includes_restval`` (default), ``'train'``
      also returns the ``'restval'`` images (the usual 113k training set).
    * The LAVIS / MMPretrain list format: ``[{'image': 'val2014/x.jpg',
      'caption': str or [str], 'image_id': ...}]`` (one entry per caption or
      per image; ``image_id`` optional, else the trailing digits of the file
      name). The file fixes the split, so ``split`` must be ``None``.

    data_info keys: ``img_path``, ``gt_caption`` (list[str]), ``image_id``
    (``cocoid`` / given id / int from the file name), ``split`` (Karpathy
    format only).

    Args:
        data_root (str): root for ``ann_file`` and ``data_prefix``.
        ann_file (str): annotation JSON.
        data_prefix (dict): ``dict(img_path=...)``, the directory holding
            ``train2014/`` and ``val2014/``.
        split (str, optional): Karpathy split, see above.
        train_includes_restval (bool): see above. Defaults to True.
        on_corrupt (str): ``'raise'`` or ``'skip'`` images without captions.
        check_images (bool): decode every image at load time; missing or
            unreadable ones raise (or, with ``on_corrupt='skip'``, are
            dropped), see :class:`BaseCaptionDataset`.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.
    """

    def __init__(self,
                 data_root: str = '',
                 ann_file: str = '',
                 data_prefix: dict = dict(img_path=''),
                 split: Optional[str] = None,
                 train_includes_restval: bool = True,
                 **kwargs) -> None:
        if split is not None and split not in KARPATHY_SPLITS:
            raise ValueError(f'COCOKarpathyCaption: split must be None or one '
                             f'of {KARPATHY_SPLITS}, got {split!r}')
        if not ann_file:
            raise ValueError('COCOKarpathyCaption: ann_file is required')
        self.split = split
        self.train_includes_restval = bool(train_includes_restval)
        super().__init__(data_root=data_root, ann_file=ann_file,
                         data_prefix=dict(data_prefix), **kwargs)

    def load_data_list(self) -> List[dict]:
        """Read ``ann_file`` (either format) into per-image data infos."""
        check_file(self.ann_file, 'COCOKarpathyCaption annotation file')
        try:
            annotations = mmengine.load(self.ann_file, file_format='json')
        except ValueError as e:
            raise ValueError(f'COCOKarpathyCaption: {self.ann_file} is not '
                             f'valid JSON: {e}') from e
        if isinstance(annotations, dict) and 'images' in annotations:
            data_list = self._load_karpathy(annotations['images'])
        elif isinstance(annotations, list):
            if self.split is not None:
                raise ValueError(
                    f'COCOKarpathyCaption: split={self.split!r} given, but '
                    f'{self.ann_file} is a list-format file whose split is '
                    'fixed by the file; use split=None')
            data_list = self._load_list(annotations)
        else:
            raise ValueError(
                f'COCOKarpathyCaption: unknown annotation format in '
                f'{self.ann_file}: expected a dict with "images" (Karpathy '
                'dataset_coco.json) or a list of {"image", "caption"} dicts')
        return self.finalize(data_list, self.ann_file)

    def _wanted_splits(self) -> Optional[set]:
        if self.split is None:
            return None
        if self.split == 'train' and self.train_includes_restval:
            return {'train', 'restval'}
        return {self.split}

    def _load_karpathy(self, images: Any) -> List[dict]:
        if not isinstance(images, list):
            raise ValueError(f'COCOKarpathyCaption: "images" in '
                             f'{self.ann_file} must be a list')
        wanted = self._wanted_splits()
        prefix = self.data_prefix['img_path']
        data_list = []
        for idx, entry in enumerate(images):
            where = f'{self.ann_file}: images[{idx}]'
            self.require(entry, ['filename', 'sentences'], where)
            self.require_str(entry, 'filename', where)
            if wanted is not None:
                self.require(entry, ['split'], where)
                if entry['split'] not in wanted:
                    continue
            image_id = entry.get('cocoid', entry.get('imgid'))
            if image_id is None:
                image_id = image_id_from_path(entry['filename'])
            self.check_image_id(image_id, where)
            where = f'{where} (image_id={image_id!r}, {entry["filename"]})'
            sentences = entry['sentences']
            if not isinstance(sentences, list):
                raise CorruptEntryError(f'{where}: "sentences" must be a list')
            raw = []
            for sent in sentences:
                if isinstance(sent, dict) and 'raw' in sent:
                    raw.append(sent['raw'])
                elif isinstance(sent, dict) and 'tokens' in sent:
                    tokens = sent['tokens']
                    if not isinstance(tokens, list) or not all(
                            isinstance(t, str) for t in tokens):
                        raise CorruptEntryError(
                            f'{where}: sentence "tokens" must be a list of '
                            f'str, got {tokens!r:.200}')
                    raw.append(' '.join(tokens))
                else:
                    raise CorruptEntryError(f'{where}: sentence {sent!r:.200} '
                                            'has no "raw" or "tokens"')
            captions = clean_captions(raw, where)
            if not captions:
                self.corrupt(f'{where} has no caption')
                continue
            rel = entry['filename']
            if entry.get('filepath'):
                rel = join_path(entry['filepath'], rel)
            data_list.append(dict(
                img_path=join_path(prefix, rel) if prefix else rel,
                gt_caption=captions,
                image_id=image_id,
                split=entry.get('split')))
        return data_list

    def _load_list(self, entries: list) -> List[dict]:
        prefix = self.data_prefix['img_path']
        by_image: 'OrderedDict[str, dict]' = OrderedDict()
        for idx, entry in enumerate(entries):
            where = f'{self.ann_file}: entry [{idx}]'
            self.require(entry, ['image', 'caption'], where)
            image = self.require_str(entry, 'image', where)
            image_id = self.check_image_id(
                entry.get('image_id', image_id_from_path(image)), where)
            where = f'{where} (image={image!r}, image_id={image_id!r})'
            captions = clean_captions(entry['caption'], where)
            info = by_image.get(image)
            if info is None:
                info = by_image[image] = dict(
                    img_path=join_path(prefix, image) if prefix else image,
                    gt_caption=[], image_id=image_id, _where=where)
            elif info['image_id'] != image_id:
                raise CorruptEntryError(
                    f'{where}: image {image!r} has two image ids, '
                    f'{info["image_id"]!r} and {image_id!r}')
            info['gt_caption'].extend(captions)
        data_list = []
        for info in by_image.values():
            where = info.pop('_where')
            if not info['gt_caption']:
                self.corrupt(f'{where} has no caption')
                continue
            data_list.append(info)
        return data_list
