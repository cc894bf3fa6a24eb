"""Reference captions from annotation files, looked up by image id."""
import os.path as osp
from pathlib import Path
from typing import Any, Dict, Hashable, List, Optional, Sequence, Union


def normalize_image_id(image_id: Any) -> Optional[Hashable]:
    """Image ids as keys: ``'000000391895'`` and ``391895`` both -> 391895.

    MMPretrain's ``COCOCaption`` dataset gives string ids, COCO annotation
    files integers; digit strings, numpy and torch integers become int.
    """
    if image_id is None:
        return None
    if hasattr(image_id, 'item') and callable(image_id.item):
        image_id = image_id.item()
    if isinstance(image_id, str) and image_id.strip().isdigit():
        return int(image_id.strip())
    if isinstance(image_id, float) and image_id.is_integer():
        return int(image_id)
    return image_id


def as_caption_list(value: Any, what: str) -> Optional[List[str]]:
    """``str`` -> ``[str]``, list of str -> list, None -> None."""
    if value is None:
        return None
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)) and all(
            isinstance(v, str) for v in value):
        return list(value)
    raise TypeError(f'{what} must be a str or a list of str, got '
                    f'{type(value).__name__}: {value!r:.80}')


def load_caption_annotations(
    ann_file: Union[str, Sequence[dict], dict]
) -> Dict[Hashable, List[str]]:
    """Load ``image id -> list of reference captions``.

    Accepts a COCO caption file (``{'annotations': [{'image_id', 'caption'},
    ...], 'images': ...}``, what ``COCOEvalCap`` reads) or an MMPretrain /
    BLIP style list (``[{'image_id' or 'image', 'caption': str | list}]``;
    without ``image_id`` the id is taken from the image file name as
    MMPretrain's ``COCOCaption`` dataset does).
    """
    if isinstance(ann_file, str):
        if not osp.isfile(ann_file):
            raise FileNotFoundError(
                f'CaptionMetric: ann_file {ann_file!r} is not a file')
        import mmengine
        data = mmengine.load(ann_file)
    else:
        data = ann_file
    refs: Dict[Hashable, List[str]] = {}
    if isinstance(data, dict) and 'annotations' in data:
        for ann in data['annotations']:
            key = normalize_image_id(ann['image_id'])
            refs.setdefault(key, []).append(str(ann['caption']))
        for img in data.get('images', []):
            refs.setdefault(normalize_image_id(img.get('id')), [])
        return refs
    if isinstance(data, list):
        for item in data:
            if 'image_id' in item:
                key = item['image_id']
            elif 'image' in item:
                key = Path(item['image']).stem.split('_')[-1]
            else:
                raise ValueError('CaptionMetric: annotation entries need '
                                 f"'image_id' or 'image', got {item!r:.80}")
            captions = as_caption_list(item.get('caption'), 'caption') or []
            refs.setdefault(normalize_image_id(key), []).extend(captions)
        return refs
    raise ValueError(
        'CaptionMetric: ann_file must be a COCO caption file (a dict with '
        "'annotations') or a list of {'image_id'|'image', 'caption'} "
        f'entries, got {type(data).__name__}')
