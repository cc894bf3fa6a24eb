"""Read the official Fashion-MNIST IDX files (gzip-compressed or raw).

IDX layout (big-endian): a 4-byte magic (0x00000801 = 2049 for label files,
0x00000803 = 2051 for image files), the item count, for images the row and
column counts, then one unsigned byte per label or pixel.

Where the files come from (:func:`locate_split`): an explicit ``data_root``
only (``'embedded'`` names the shipped subset, whatever else is
installed); else the full official set on the default search path
(``data/fashion-mnist``, then Debian's ``/usr/share/datasets/fashion-mnist``);
else the small subset shipped in ``mdc_plugin/assets/fashion_mnist_subset``
(the first 10,000 train and 2,000 test items, checked against its
``SHA256SUMS`` before use).
"""
import functools
import gzip
import os.path as osp
import struct
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from ...utils.file_digest import sha256_file

LABEL_MAGIC = 2049
IMAGE_MAGIC = 2051
#: Official file stems per split and the item counts they must hold.
SPLIT_FILES = dict(train='train', test='t10k')
SPLIT_COUNTS = dict(train=60000, test=10000)
KINDS = ('images-idx3-ubyte', 'labels-idx1-ubyte')
#: Where ``apt-get install dataset-fashion-mnist`` puts the files.
SYSTEM_ROOT = '/usr/share/datasets/fashion-mnist'
DEFAULT_ROOTS = ('data/fashion-mnist', SYSTEM_ROOT)
#: The subset shipped with the package (``tools/misc/make_fashion_subset.py``
#: cut it: the first items of each official split, official IDX format).
EMBEDDED_ROOT = osp.join(
    osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'assets',
    'fashion_mnist_subset')
EMBEDDED_COUNTS = dict(train=10000, test=2000)
#: ``data_root`` value that selects the shipped subset explicitly (so a run
#: reads the same items on every machine, full set installed or not).
EMBEDDED_DATA_ROOT = 'embedded'
INSTALL_HINT = (
    'Get the four official files (train-images-idx3-ubyte.gz, '
    'train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, '
    't10k-labels-idx1-ubyte.gz) into data/fashion-mnist/ (see '
    'docs/data_preparation.md), or on Debian/Ubuntu: '
    '`apt-get install dataset-fashion-mnist`, which puts them under '
    f'{SYSTEM_ROOT}')


class SplitSource(NamedTuple):
    """The (images, labels) IDX files of one split and where they came from:
    ``kind`` is ``'data_root'`` (the folder given), ``'search'`` (the full
    set on the default search path), ``'embedded'`` (the shipped subset, as
    the fallback) or ``'embedded_by_config'`` (the shipped subset, asked for
    with ``data_root='embedded'``)."""
    images: str
    labels: str
    kind: str

    @property
    def embedded(self) -> bool:
        return self.kind in ('embedded', 'embedded_by_config')

    @property
    def fallback(self) -> bool:
        """Whether the embedded subset stands in for a full set not found."""
        return self.kind == 'embedded'


class IDXFormatError(ValueError):
    """An IDX file is truncated, has the wrong magic or the wrong count."""


def _read_bytes(path: str) -> bytes:
    """File contents, gunzipped when the name ends in ``.gz``."""
    try:
        if path.endswith('.gz'):
            with gzip.open(path, 'rb') as f:
                return f.read()
        with open(path, 'rb') as f:
            return f.read()
    except (OSError, EOFError) as err:  # gzip: bad header / truncated
        raise IDXFormatError(f'{path}: cannot be read ({err}); the file is '
                             f'damaged. {INSTALL_HINT}') from err


def read_idx(path: str, magic: int) -> np.ndarray:
    """Decode one IDX file into uint8 ``(N,)`` labels or ``(N, H, W)``
    images, checking the magic number and that the payload is complete."""
    data = _read_bytes(path)
    ndim = 1 if magic == LABEL_MAGIC else 3
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f'{path}: {len(data)} bytes is shorter than an '
                             f'IDX header ({header} bytes). {INSTALL_HINT}')
    found = struct.unpack('>I', data[:4])[0]
    if found != magic:
        kind = 'label' if magic == LABEL_MAGIC else 'image'
        raise IDXFormatError(
            f'{path}: magic number {found} is not the IDX {kind} magic '
            f'{magic}; is this the right file? {INSTALL_HINT}')
    dims = struct.unpack(f'>{ndim}I', data[4:header])
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise IDXFormatError(
            f'{path}: header says {dims} ({expected} bytes of data) but the '
            f'file holds {len(data) - header}; the file is truncated or '
            f'damaged. {INSTALL_HINT}')
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def find_file(roots: Sequence[str], name: str, note: str = '') -> str:
    """The first ``<root>/<name>.gz`` or ``<root>/<name>`` that exists."""
    for root in roots:
        for candidate in (osp.join(root, name + '.gz'), osp.join(root, name)):
            if osp.isfile(candidate):
                return candidate
    raise FileNotFoundError(
        f'Fashion-MNIST file {name}[.gz] not found in '
        f'{", ".join(map(str, roots))}{note}. {INSTALL_HINT}')


def resolve_roots(data_root: Optional[str]) -> Tuple[str, ...]:
    """``data_root`` if given, else the default search path."""
    return (data_root, ) if data_root else tuple(DEFAULT_ROOTS)


def official_file_names() -> Tuple[str, ...]:
    """The four official file names (without ``.gz``)."""
    return tuple(f'{stem}-{kind}' for stem in SPLIT_FILES.values()
                 for kind in KINDS)


def full_set_on_search_path() -> bool:
    """Whether any official file is on the default search path (then the
    full set is used, and a missing one is an error, never a silent mix
    with the embedded subset)."""
    return any(osp.isfile(osp.join(root, name + ext))
               for root in DEFAULT_ROOTS for name in official_file_names()
               for ext in ('.gz', ''))


def locate_split(data_root: Optional[str], split: str) -> SplitSource:
    """Absolute paths of the (images, labels) IDX files of ``split``.

    An explicit ``data_root`` is the only place looked at (a missing folder
    or file is an error); ``data_root='embedded'`` is the shipped subset.
    With ``data_root=None`` the full official set is
    searched on :data:`DEFAULT_ROOTS`; only when none of its files is there
    the embedded subset (:data:`EMBEDDED_ROOT`) is used.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f'Fashion-MNIST split must be one of '
                         f'{tuple(SPLIT_FILES)}, got {split!r}')
    names = [f'{SPLIT_FILES[split]}-{kind}' for kind in KINDS]
    if data_root == EMBEDDED_DATA_ROOT and not osp.isdir(data_root):
        note = ('; data_root=\'embedded\' asks for the embedded subset, '
                'which is missing or incomplete: reinstall mdc_plugin or '
                'regenerate it with tools/misc/make_fashion_subset.py')
        images, labels = (find_file((EMBEDDED_ROOT, ), n, note)
                          for n in names)
        kind = 'embedded_by_config'
    elif data_root:
        missing = not osp.isdir(data_root)
        note = (f'{" (that folder does not exist)" if missing else ""}'
                '; data_root is set explicitly, so neither the '
                'default search path nor the embedded subset is used (leave '
                'data_root=None for those)')
        images, labels = (find_file((data_root, ), n, note) for n in names)
        kind = 'data_root'
    elif full_set_on_search_path() or not osp.isdir(EMBEDDED_ROOT):
        note = ('' if osp.isdir(EMBEDDED_ROOT) else
                f' (and the embedded subset {EMBEDDED_ROOT} is missing: '
                'reinstall mdc_plugin)')
        images, labels = (find_file(DEFAULT_ROOTS, n, note) for n in names)
        kind = 'search'
    else:
        note = ('; the embedded subset is incomplete: reinstall mdc_plugin '
                'or regenerate it with tools/misc/make_fashion_subset.py')
        images, labels = (find_file((EMBEDDED_ROOT, ), n, note)
                          for n in names)
        kind = 'embedded'
    return SplitSource(osp.abspath(images), osp.abspath(labels), kind)


def split_files(data_root: Optional[str], split: str) -> Tuple[str, str]:
    """Absolute paths of the (images, labels) IDX files of ``split`` that
    :func:`load_fashion_split` reads for ``data_root`` (same search)."""
    return tuple(locate_split(data_root, split)[:2])


def embedded_checksums() -> Dict[str, str]:
    """File name -> sha256 from the embedded subset's ``SHA256SUMS``."""
    path = osp.join(EMBEDDED_ROOT, 'SHA256SUMS')
    try:
        with open(path) as f:
            rows = [line.split() for line in f if line.strip()]
    except OSError as err:
        raise IDXFormatError(f'{path} cannot be read ({err}): the embedded '
                             'Fashion-MNIST subset is incomplete; reinstall '
                             'mdc_plugin') from err
    return {name.lstrip('*'): digest for digest, name in rows}


def verify_embedded(path: str) -> None:
    """Raise unless ``path`` matches its sha256 in ``SHA256SUMS``."""
    expected = embedded_checksums().get(osp.basename(path))
    found = sha256_file(path)
    if expected != found:
        raise IDXFormatError(
            f'{path}: sha256 {found} does not match '
            f'{expected or "no entry"} in the embedded subset\'s SHA256SUMS; '
            'the file is damaged or was changed: reinstall mdc_plugin or '
            'regenerate it with tools/misc/make_fashion_subset.py. '
            f'{INSTALL_HINT}')


def expected_count(source: SplitSource, split: str) -> int:
    """Items the split must hold: the official count, or the embedded
    subset's known count."""
    return (EMBEDDED_COUNTS if source.embedded else SPLIT_COUNTS)[split]


@functools.lru_cache(maxsize=4)
def read_split(source: SplitSource, split: str, check_count: bool = True
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 of the files
    ``source`` names (see :func:`load_fashion_split`)."""
    image_path, label_path = source.images, source.labels
    if source.embedded:
        verify_embedded(image_path)
        verify_embedded(label_path)
    images = read_idx(image_path, IMAGE_MAGIC)
    labels = read_idx(label_path, LABEL_MAGIC)
    if len(images) != len(labels):
        raise IDXFormatError(
            f'{image_path} holds {len(images)} images but {label_path} holds '
            f'{len(labels)} labels: the files belong to different sets')
    if (check_count or source.embedded) and \
            len(images) != expected_count(source, split):
        what = ('the embedded subset\'s' if source.embedded else
                'the official')
        raise IDXFormatError(
            f'{image_path} holds {len(images)} images; {what} {split} '
            f'split has {expected_count(source, split)}. {INSTALL_HINT}')
    if images.shape[1:] != (28, 28):
        raise IDXFormatError(f'{image_path}: images are {images.shape[1:]}, '
                             'Fashion-MNIST items are 28 x 28')
    if labels.size and int(labels.max()) >= 10:
        raise IDXFormatError(f'{label_path}: label {int(labels.max())} is '
                             'outside the 10 Fashion-MNIST classes')
    return images, labels


def load_fashion_split(data_root: Optional[str], split: str,
                       check_count: bool = True
                       ) -> Tuple[np.ndarray, np.ndarray]:
    """Images ``(N, 28, 28)`` uint8 and labels ``(N,)`` uint8 of the official
    ``'train'`` (60,000) or ``'test'`` (10,000) split, or of the embedded
    subset (10,000 / 2,000) when the full set is not found.

    Args:
        data_root: folder holding the IDX files; ``None`` searches
            ``data/fashion-mnist`` then the Debian package's folder, then
            falls back to the embedded subset (:func:`locate_split`).
        split: ``'train'`` or ``'test'``.
        check_count: require the official item count (the embedded subset's
            known count for the subset; tests pass False for the tiny files
            they write).
    """
    return read_split(locate_split(data_root, split), split, check_count)


#: Reads are cached per file; tests that rewrite files clear the cache.
load_fashion_split.cache_clear = read_split.cache_clear


def write_idx(path: str, array: np.ndarray) -> str:
    """Write a uint8 ``(N,)`` label or ``(N, H, W)`` image array as an IDX
    file (gzip when ``path`` ends in ``.gz``); used by tests and tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = LABEL_MAGIC if array.ndim == 1 else IMAGE_MAGIC
    payload = struct.pack(f'>I{array.ndim}I', magic, *array.shape) + \
        array.tobytes()
    opener = gzip.open if path.endswith('.gz') else open
    with opener(path, 'wb') as f:
        f.write(payload)
    return path


def split_summary(data_root: Optional[str] = None) -> Dict[str, int]:
    """Item counts per split (reads every file: a quick integrity check)."""
    return {split: len(load_fashion_split(data_root, split)[1])
            for split in SPLIT_FILES}
