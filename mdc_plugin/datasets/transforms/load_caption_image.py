"""``LoadCaptionImage``: robust image loading that always yields HxWx3 uint8
BGR images."""
import logging
from typing import Optional

import mmcv
import numpy as np
from mmcv.transforms import LoadImageFromFile
from mmengine import fileio
from mmengine.logging import print_log
from mmpretrain.registry import TRANSFORMS

ON_ERROR = ('raise', 'skip')


class ImageLoadError(OSError):
    """An image file is empty, truncated or cannot be decoded."""


def to_uint8_bgr(img: np.ndarray, to_rgb: bool = False) -> np.ndarray:
    """Convert a decoded image to ``(H, W, 3)`` uint8.

    Args:
        img: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 2)`` (gray + alpha),
            ``(H, W, 3)`` (BGR) or ``(H, W, 4)`` (BGRA); uint8, uint16 /
            wider integers (scaled from 16 bit) or float (``[0, 1]`` if its
            max is <= 1, else ``[0, 255]``). Alpha is dropped.
        to_rgb: return RGB instead of BGR.

    Returns:
        np.ndarray: ``(H, W, 3)`` uint8, C-contiguous.
    """
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise ValueError(f'unsupported image shape {img.shape}')
    if img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f'image has zero size {img.shape[:2]}')
    if img.shape[2] in (2, 4):  # drop alpha
        img = img[:, :, :img.shape[2] - 1]
    if img.dtype != np.uint8:
        if np.issubdtype(img.dtype, np.floating):
            scale = 255.0 if img.size and np.nanmax(img) <= 1.0 else 1.0
            img = np.clip(np.nan_to_num(img) * scale + 0.5, 0, 255)
        elif img.dtype == np.uint16 or (img.size and img.max() > 255):
            img = np.clip(img.astype(np.int64), 0, 65535) // 257
        img = img.astype(np.uint8)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if to_rgb:
        img = img[:, :, ::-1]
    return np.ascontiguousarray(img)


@TRANSFORMS.register_module()
class LoadCaptionImage(LoadImageFromFile):
    """Load ``results['img_path']`` as an ``(H, W, 3)`` uint8 BGR image.

    Grayscale, RGBA, 16-bit and float files are converted (see
    :func:`to_uint8_bgr`), so MMPretrain's data preprocessors with
    ``to_rgb=True`` see the usual mmcv channel order.

    **Required keys:** ``img_path``. **Added keys:** ``img``, ``img_shape``,
    ``ori_shape``.

    Args:
        on_error (str): for a missing, empty or undecodable file, ``'raise'``
            an error naming the path, or ``'skip'``: return ``None`` (mmengine
            datasets then fetch another index in training; in ``test_mode``
            they raise) and count the file in :attr:`num_skipped`.
        to_rgb (bool): output RGB instead of BGR. Defaults to False.
        log_interval (int): after the first 10 skipped files (each logged),
            log the running count every this many skips.
        **kwargs: :class:`mmcv.transforms.LoadImageFromFile` arguments
            (``imdecode_backend``, ``backend_args``, ``to_float32``...).
            ``color_type`` defaults to ``'color'``; ``ignore_empty`` is
            replaced by ``on_error``.
    """

    def __init__(self,
                 on_error: str = 'raise',
                 to_rgb: bool = False,
                 log_interval: int = 100,
                 **kwargs) -> None:
        if on_error not in ON_ERROR:
            raise ValueError(f'LoadCaptionImage: on_error must be one of '
                             f'{ON_ERROR}, got {on_error!r}')
        if 'ignore_empty' in kwargs:
            raise TypeError('LoadCaptionImage: use on_error="skip" instead '
                            'of ignore_empty')
        super().__init__(**kwargs)
        self.on_error = on_error
        self.to_rgb = bool(to_rgb)
        self.log_interval = max(1, int(log_interval))
        self.num_skipped = 0

    def _read_bytes(self, filename: str) -> bytes:
        if self.file_client_args is not None:
            client = fileio.FileClient.infer_client(self.file_client_args,
                                                    filename)
            return client.get(filename)
        return fileio.get(filename, backend_args=self.backend_args)

    def load(self, filename: str) -> np.ndarray:
        """Read and decode ``filename``; raise naming it on any failure.

        Returns:
            np.ndarray: ``(H, W, 3)`` uint8 (BGR unless ``to_rgb``).
        """
        try:
            img_bytes = self._read_bytes(filename)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'image file not found: {filename}') from e
        except Exception as e:
            raise ImageLoadError(f'cannot read image file {filename}: '
                                 f'{type(e).__name__}: {e}') from e
        if not img_bytes:
            raise ImageLoadError(f'image file is empty (0 bytes): {filename}')
        try:
            img = mmcv.imfrombytes(img_bytes, flag=self.color_type,
                                   backend=self.imdecode_backend)
        except Exception as e:
            raise ImageLoadError(f'cannot decode image file {filename} '
                                 f'(corrupt or truncated?): '
                                 f'{type(e).__name__}: {e}') from e
        if img is None or img.size == 0:
            raise ImageLoadError(f'cannot decode image file {filename} '
                                 '(corrupt, truncated or not an image)')
        try:
            return to_uint8_bgr(img, to_rgb=self.to_rgb)
        except ValueError as e:
            raise ImageLoadError(f'{filename}: {e}') from e

    def transform(self, results: dict) -> Optional[dict]:
        """Add ``img`` (``(H, W, 3)`` uint8, float32 if ``to_float32``),
        ``img_shape`` and ``ori_shape``; None for a skipped file."""
        if 'img_path' not in results:
            if 'img' in results:
                # Already loaded (e.g. by MMPretrain's inferencers): only
                # normalise the layout.
                try:
                    results['img'] = to_uint8_bgr(results['img'])
                except ValueError as e:
                    raise ImageLoadError(
                        f'LoadCaptionImage: in-memory image: {e}') from e
                results['img_shape'] = results['img'].shape[:2]
                results.setdefault('ori_shape', results['img'].shape[:2])
                return results
            raise KeyError('LoadCaptionImage: results have no "img_path" '
                           f'(keys: {sorted(results)})')
        filename = results['img_path']
        try:
            img = self.load(filename)
        except OSError as e:  # FileNotFoundError and ImageLoadError
            if self.on_error == 'raise':
                raise
            self._count_skip(filename, e)
            return None
        if self.to_float32:
            img = img.astype(np.float32)
        results['img'] = img
        results['img_shape'] = img.shape[:2]
        results['ori_shape'] = img.shape[:2]
        return results

    def _count_skip(self, filename: str, error: Exception) -> None:
        self.num_skipped += 1
        n = self.num_skipped
        if n <= 10 or n % self.log_interval == 0:
            print_log(f'LoadCaptionImage: skipped {filename} ({error}); '
                      f'{n} image(s) skipped so far in this process',
                      logger='current', level=logging.WARNING)

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(on_error={self.on_error!r}, '
                f'to_rgb={self.to_rgb}, color_type={self.color_type!r}, '
                f'imdecode_backend={self.imdecode_backend!r}, '
                f'to_float32={self.to_float32}, '
                f'backend_args={self.backend_args})')
