"""Shared checks for caption data sets: files, captions, ids, bad entries."""
import logging
import os.path as osp
from typing import Any, Dict, List, Sequence

from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from .image_check import find_bad_images, summarize_bad_images

ON_CORRUPT = ('raise', 'skip')


class CorruptEntryError(ValueError):
    """An annotation entry is unusable (no caption, missing field...)."""


def check_file(path: str, what: str) -> str:
    """Return ``path`` or raise ``FileNotFoundError`` naming it."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'{what} not found: {path}')
    return path


def clean_captions(captions: Any, where: str) -> List[str]:
    """Normalise a caption field to a list of non-empty stripped strings.

    Args:
        captions: a str or a list of str.
        where (str): names the entry in error messages.

    Returns:
        list[str]: possibly empty when every caption is blank.
    """
    if isinstance(captions, str):
        captions = [captions]
    if not isinstance(captions, (list, tuple)):
        raise CorruptEntryError(f'{where}: captions must be a str or a list '
                                f'of str, got {type(captions).__name__}')
    out = []
    for cap in captions:
        if not isinstance(cap, str):
            raise CorruptEntryError(f'{where}: caption {cap!r} is not a str')
        cap = ' '.join(cap.split())
        if cap:
            out.append(cap)
    return out


def raise_or_count_corrupt(dataset: Any, message: str) -> None:
    """``dataset.on_corrupt == 'raise'``: raise :class:`CorruptEntryError`
    naming the data set class; else count the entry in
    ``dataset.num_skipped`` and ``dataset.skipped_entries``."""
    if dataset.on_corrupt == 'raise':
        raise CorruptEntryError(
            f'{type(dataset).__name__}: {message} (set on_corrupt="skip" to '
            'skip such entries)')
    dataset.num_skipped += 1
    dataset.skipped_entries.append(message)


class BaseCaptionDataset(BaseDataset):
    """:class:`~mmengine.dataset.BaseDataset` with caption-set checks.

    Subclasses implement :meth:`load_data_list` and, for each annotation
    entry that is unusable, call :meth:`corrupt` (raise or count+skip, per
    ``on_corrupt``); at the end they return :meth:`finalize(data_list)` which
    checks ``image_id`` uniqueness and logs the skip count.

    Every data_info holds ``img_path`` (str), ``gt_caption`` (list[str], all
    references), ``image_id`` (str or int, unique) and, for labelled sets,
    ``gt_label`` (int).

    Args:
        on_corrupt (str): ``'raise'`` (default) or ``'skip'``.
        check_images (bool): open and decode every image when the data set
            is loaded, so that missing or unreadable files are found before
            training instead of when fetched (hours later). With
            ``on_corrupt='raise'`` any problem raises ``FileNotFoundError``
            with the counts; with ``'skip'`` those entries are dropped and
            counted. ``tools/misc/check_dataset.py CONFIG`` lists them all.
        check_workers (int): decoding threads for ``check_images``.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.

    Every skipped entry's reason is kept in :attr:`skipped_entries`.
    """

    def __init__(self, *args, on_corrupt: str = 'raise',
                 check_images: bool = False, check_workers: int = 8,
                 **kwargs) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f'on_corrupt must be one of {ON_CORRUPT}, got '
                             f'{on_corrupt!r}')
        self.on_corrupt = on_corrupt
        self.check_images = bool(check_images)
        self.check_workers = int(check_workers)
        self.num_skipped = 0
        self.skipped_entries: List[str] = []
        self._skip_examples: List[str] = []
        super().__init__(*args, **kwargs)

    def corrupt(self, message: str) -> None:
        """Report an unusable entry: raise, or count it to be skipped."""
        raise_or_count_corrupt(self, message)
        if len(self._skip_examples) < 5:
            self._skip_examples.append(message)

    def finalize(self, data_list: List[dict], source: str) -> List[dict]:
        """Check unique ``image_id`` values and log skipped entries.

        Args:
            data_list: the loaded data infos.
            source (str): annotation file / directory, for messages.
        """
        seen: Dict[Any, int] = {}
        for idx, info in enumerate(data_list):
            image_id = info['image_id']
            if image_id in seen:
                raise ValueError(
                    f'{type(self).__name__}: duplicate image_id {image_id!r} '
                    f'in {source} (data_list entries {seen[image_id]} and '
                    f'{idx}: {data_list[seen[image_id]]["img_path"]} and '
                    f'{info["img_path"]})')
            seen[image_id] = idx
        if self.check_images:
            data_list = self._drop_bad_images(data_list, source)
        if self.num_skipped:
            print_log(
                f'{type(self).__name__}: skipped {self.num_skipped} corrupt '
                f'entries of {source}, e.g. {self._skip_examples}',
                logger='current', level=logging.WARNING)
        if not data_list:
            raise ValueError(f'{type(self).__name__}: no usable samples in '
                             f'{source}')
        return data_list

    def _drop_bad_images(self, data_list: List[dict],
                         source: str) -> List[dict]:
        """Raise on (or skip) entries whose image is missing/unreadable."""
        missing, unreadable = find_bad_images(
            [info['img_path'] for info in data_list], self.check_workers)
        if not missing and not unreadable:
            return data_list
        summary = summarize_bad_images(missing, unreadable, len(data_list))
        if self.on_corrupt == 'raise':
            raise FileNotFoundError(
                f'{type(self).__name__} ({source}): {summary}\n(list them '
                'all with tools/misc/check_dataset.py CONFIG; set '
                'on_corrupt="skip" to train without them)')
        bad = set(missing) | {p for p, _ in unreadable}
        for path in missing:
            self.corrupt(f'image missing: {path}')
        for path, why in unreadable:
            self.corrupt(f'image {why}: {path}')
        return [info for info in data_list if info['img_path'] not in bad]

    @staticmethod
    def require(entry: dict, keys: Sequence[str], where: str) -> None:
        """Raise :class:`CorruptEntryError` naming ``where`` if ``entry`` is
        not a dict or lacks one of ``keys`` (never skipped)."""
        if not isinstance(entry, dict):
            raise CorruptEntryError(f'{where}: expected a dict, got '
                                    f'{type(entry).__name__}: {entry!r:.200}')
        missing = [k for k in keys if k not in entry]
        if missing:
            raise CorruptEntryError(f'{where}: missing field(s) {missing} in '
                           f'{entry!r:.300}')

    @staticmethod
    def require_str(entry: dict, key: str, where: str) -> str:
        """``entry[key]`` if it is a non-empty str, else raise
        :class:`CorruptEntryError` naming ``where`` (never skipped)."""
        value = entry[key]
        if not isinstance(value, str) or not value.strip():
            raise CorruptEntryError(f'{where}: field {key!r} must be a '
                                    f'non-empty str (a file name), got '
                                    f'{value!r:.200}')
        return value

    @staticmethod
    def check_image_id(image_id: Any, where: str) -> Any:
        """Return ``image_id`` if it is an int or a str, else raise
        :class:`CorruptEntryError` naming ``where``."""
        if isinstance(image_id, bool) or not isinstance(image_id, (int, str)):
            raise CorruptEntryError(f'{where}: image id must be an int or a '
                                    f'str, got {type(image_id).__name__}: '
                                    f'{image_id!r:.200}')
        return image_id

    def get_captions(self, idx: int) -> List[str]:
        """All reference captions of sample ``idx`` (no pipeline)."""
        return list(self.get_data_info(idx)['gt_caption'])
