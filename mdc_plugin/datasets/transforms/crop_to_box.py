"""``CropToBox``: crop a loaded image to the sample's ``crop_bbox``."""
import math
from numbers import Real
from typing import Any, Sequence, Tuple

import numpy as np
from mmcv.transforms import BaseTransform
from mmpretrain.registry import TRANSFORMS


def box_to_pixels(box: Sequence[Any], shape: Tuple[int, int],
                  where: str) -> Tuple[int, int, int, int]:
    """Pixel bounds of an ``(x, y, w, h)`` box inside an image.

    The corners are rounded as PIL's ``Image.crop`` rounds them (ARO crops
    with PIL) and clipped to the image (PIL would pad with black instead).

    Args:
        box: ``(x, y, w, h)``, finite numbers.
        shape: the image's ``(H, W)``.
        where (str): names the sample in error messages.

    Returns:
        tuple: ``(x0, y0, x1, y1)``, ``0 <= x0 < x1 <= W``, same for y.

    Raises:
        ValueError: a malformed box, or one that is empty after clipping.
    """
    if (not isinstance(box, (list, tuple, np.ndarray)) or len(box) != 4
            or not all(isinstance(v, Real) and not isinstance(v, bool)
                       and math.isfinite(v) for v in box)):
        raise ValueError(f'CropToBox: {where}: crop_bbox must be (x, y, w, '
                         f'h), four finite numbers, got {box!r:.200}')
    x, y, w, h = (float(v) for v in box)
    height, width = shape
    x0, y0 = max(0, round(x)), max(0, round(y))
    x1, y1 = min(width, round(x + w)), min(height, round(y + h))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f'CropToBox: {where}: crop_bbox (x, y, w, h) = '
                         f'{tuple(box)} is empty inside the {width}x{height} '
                         'image (W x H)')
    return x0, y0, x1, y1


@TRANSFORMS.register_module()
class CropToBox(BaseTransform):
    """Crop ``results['img']`` to ``results['crop_bbox']``, ``(x, y, w, h)``
    in pixels, as ARO crops its Visual Genome images before scoring.

    Put it after ``LoadCaptionImage``. Without ``crop_bbox`` (or with
    None) it does nothing. The box is clipped to the image; a box that is
    empty after clipping raises ``ValueError`` naming ``sample_id`` (or
    ``img_path``).

    **Required keys:** ``img``. **Read:** ``crop_bbox``, ``sample_id``.
    **Modified keys:** ``img`` (``(h, w, C)``, C-contiguous), ``img_shape``.
    """

    def transform(self, results: dict) -> dict:
        """Crop ``img`` and set ``img_shape`` to ``(h, w)``."""
        box = results.get('crop_bbox')
        if box is None:
            return results
        where = results.get('sample_id', results.get('img_path', '?'))
        if 'img' not in results:
            raise KeyError(f'CropToBox: {where}: no "img" to crop (put '
                           'CropToBox after LoadCaptionImage)')
        img = results['img']
        x0, y0, x1, y1 = box_to_pixels(box, img.shape[:2], where)
        results['img'] = np.ascontiguousarray(img[y0:y1, x0:x1])
        results['img_shape'] = results['img'].shape[:2]
        return results

    def __repr__(self) -> str:
        return f'{type(self).__name__}()'
