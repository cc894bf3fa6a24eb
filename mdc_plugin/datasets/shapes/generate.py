"""Deterministic, cached, atomic generation of the synthetic shapes set.

Layout of one generated set (``<data_root>/shapes-v1-<hash>/``)::

    meta.json            generation parameters, classes, vocabulary
    train.json val.json test.json   mmengine ``{metainfo, data_list}`` files
    images/<split>_<index>.png

A set is generated into a temporary sibling directory and moved into place
with one ``os.rename``, so concurrent ranks either create it or reuse the one
another rank finished first.
"""
import hashlib
import json
import os
import os.path as osp
import shutil
import tempfile
import time
from typing import Dict, Mapping, Optional, Tuple

import cv2
import numpy as np
from mmengine.logging import print_log

from .grammar import (CLASSES, NUM_CAPTIONS, check_vocabulary, make_captions,
                      pair_label, vocabulary)
from .render import render_scene, sample_scene

VERSION = 1
SPLITS = ('train', 'val', 'test')
DEFAULT_NUM_IMAGES = dict(train=5000, val=500, test=500)
_SPLIT_STREAM = dict(train=0, val=1, test=2)
_PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]
#: log progress every this many images
_PROGRESS_EVERY = 1000

#: number of sets this process has generated (for tests and logs)
GENERATION_COUNT = 0


def normalize_num_images(num_images: Optional[Mapping[str, int]]
                         ) -> Dict[str, int]:
    """Fill missing splits with defaults and validate the counts."""
    counts = dict(DEFAULT_NUM_IMAGES)
    if num_images is not None:
        if not isinstance(num_images, Mapping):
            raise TypeError('num_images must be a dict like '
                            f'{DEFAULT_NUM_IMAGES}, got {num_images!r}')
        unknown = set(num_images) - set(SPLITS)
        if unknown:
            raise ValueError(f'num_images has unknown splits {sorted(unknown)}'
                             f'; valid splits are {SPLITS}')
        counts.update({k: int(v) for k, v in num_images.items()})
    bad = {k: v for k, v in counts.items() if v < 0}
    if bad:
        raise ValueError(f'num_images must be >= 0, got {bad}')
    return counts


def generation_params(num_images: Mapping[str, int], img_size: int,
                      seed: int) -> dict:
    """The parameters that define a generated set (and its cache hash)."""
    return dict(version=VERSION, num_images=dict(sorted(num_images.items())),
                img_size=int(img_size), seed=int(seed))


def cache_dir_name(params: dict) -> str:
    """``shapes-v<version>-<8 hex digits of the parameter hash>``."""
    digest = hashlib.sha1(
        json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
    return f'shapes-v{params["version"]}-{digest}'


class _Progress:
    """Log a line every :data:`_PROGRESS_EVERY` images (log-file friendly).
    """

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.perf_counter()

    def update(self) -> None:
        self.done += 1
        if self.done % _PROGRESS_EVERY == 0 and self.done < self.total:
            print_log(f'shapes: {self.done}/{self.total} images '
                      f'({time.perf_counter() - self.start:.1f}s)',
                      logger='current')


def _generate_split(split: str, num: int, img_size: int, seed: int,
                    img_dir: str, progress: _Progress) -> list:
    """Draw and save one split; return its mmengine ``data_list``."""
    rng = np.random.default_rng([int(seed), _SPLIT_STREAM[split]])
    data_list = []
    for i in range(num):
        first, second, axis = sample_scene(rng, img_size)
        img = render_scene(first, second, img_size, rng)
        captions = make_captions(first, second, axis, rng)
        name = f'{split}_{i:05d}.png'
        if not cv2.imwrite(osp.join(img_dir, name), img, _PNG_FAST):
            raise OSError(f'could not write {osp.join(img_dir, name)}')
        data_list.append(dict(
            img_path=f'images/{name}',
            image_id=f'{split}_{i:05d}',
            gt_caption=captions,
            gt_label=pair_label(first, second),
            objects=[first.to_dict(), second.to_dict()],
            relation=axis))
        progress.update()
    return data_list


def _write_set(tmp: str, params: dict) -> None:
    """Generate every split of a set into the empty directory ``tmp``."""
    counts, img_size, seed = (params['num_images'], params['img_size'],
                              params['seed'])
    img_dir = osp.join(tmp, 'images')
    os.makedirs(img_dir)
    total = sum(counts.values())
    progress = _Progress(total)
    metainfo = dict(classes=list(CLASSES), vocabulary=vocabulary())
    for split in SPLITS:
        data_list = _generate_split(split, counts[split], img_size, seed,
                                    img_dir, progress)
        check_vocabulary([c for d in data_list for c in d['gt_caption']])
        with open(osp.join(tmp, f'{split}.json'), 'w') as f:
            f.write(json.dumps(dict(metainfo=metainfo, data_list=data_list)))
    meta = dict(params=params, classes=list(CLASSES), vocabulary=vocabulary(),
                captions_per_image=NUM_CAPTIONS)
    with open(osp.join(tmp, 'meta.json'), 'w') as f:
        json.dump(meta, f, indent=2)


def ensure_shapes_generated(data_root: str,
                            num_images: Optional[Mapping[str, int]] = None,
                            img_size: int = 64,
                            seed: int = 0) -> Tuple[str, bool]:
    """Generate the set under ``data_root`` unless it is already there.

    Args:
        data_root (str): parent directory of the cached set.
        num_images (dict, optional): images per split, defaults
            ``dict(train=5000, val=500, test=500)``.
        img_size (int): square image side in pixels (>= 32).
        seed (int): generation seed; same seed -> identical files.

    Returns:
        tuple: ``(set_dir, generated)``; ``generated`` is False when an
        existing set was reused.
    """
    global GENERATION_COUNT
    if int(img_size) < 32:
        raise ValueError(f'img_size must be >= 32, got {img_size}')
    params = generation_params(normalize_num_images(num_images), img_size,
                               seed)
    target = osp.join(data_root, cache_dir_name(params))
    if osp.isfile(osp.join(target, 'meta.json')):
        return target, False
    if osp.exists(target):
        raise RuntimeError(
            f'{target} exists but has no meta.json (not written by this '
            'generator, or damaged); delete it to regenerate')
    os.makedirs(data_root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f'.{osp.basename(target)}.tmp-',
                           dir=data_root)
    os.chmod(tmp, 0o755)  # mkdtemp makes it private; the set is shared
    start = time.perf_counter()
    print_log(f'Generating synthetic shapes set {params} into {target} ...',
              logger='current')
    try:
        _write_set(tmp, params)
        try:
            os.rename(tmp, target)
        except OSError:
            # another process finished first: use its (identical) set
            if not osp.isfile(osp.join(target, 'meta.json')):
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return target, False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    GENERATION_COUNT += 1
    print_log(f'Generated {sum(params["num_images"].values())} shapes images '
              f'in {time.perf_counter() - start:.1f}s at {target}',
              logger='current')
    return target, True
