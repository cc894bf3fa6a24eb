"""Build tiny on-disk COCO (Karpathy and LAVIS formats) and CUB fixtures.

Every builder writes under ``root`` (e.g. pytest's ``tmp_path``), is
deterministic and returns a dict of the paths and counts it wrote::

    from fixtures_data import make_coco_karpathy
    info = make_coco_karpathy(tmp_path)
    dataset = dict(type='COCOKarpathyCaption', data_root=info['data_root'],
                   ann_file=info['ann_file'], split='val')
"""
import json
import os
import os.path as osp
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np
from PIL import Image

PathLike = Union[str, Path]

_WORDS = ('dog', 'cat', 'man', 'woman', 'bus', 'tree', 'bird', 'boat', 'car',
          'horse', 'kite', 'pizza')


def write_image(path: PathLike, size: Tuple[int, int] = (32, 24),
                mode: str = 'RGB', seed: int = 0) -> str:
    """Write a random image file (format from the suffix).

    Args:
        path: output file; parent directories are created.
        size: ``(width, height)``.
        mode: PIL mode: ``'RGB'``, ``'L'``, ``'RGBA'`` or ``'I;16'``.
        seed: pixel seed.

    Returns:
        str: ``path``.
    """
    path = str(path)
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == 'I;16':
        arr = rng.integers(0, 65536, size=(h, w), dtype=np.uint16)
        Image.fromarray(arr).save(path)  # 16-bit grayscale PNG
        return path
    channels = dict(RGB=3, L=1, RGBA=4)[mode]
    arr = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
    Image.fromarray(arr.squeeze(-1) if channels == 1 else arr).save(path)
    return path


def caption_for(index: int, k: int) -> str:
    """Deterministic caption ``k`` of image ``index``."""
    a = _WORDS[index % len(_WORDS)]
    b = _WORDS[(index + k + 1) % len(_WORDS)]
    return f'A {a} next to a {b} number {k}.'


def make_coco_karpathy(
        root: PathLike,
        images_per_split: Optional[Dict[str, int]] = None,
        captions_per_image: int = 5,
        img_size: Tuple[int, int] = (32, 24),
        ann_name: str = 'annotations/dataset_coco.json') -> dict:
    """Write a Karpathy ``dataset_coco.json`` and its images.

    Images of split ``'train'`` go to ``train2014/``, the others to
    ``val2014/`` (as in Karpathy's file); ``cocoid`` runs from 1.

    Args:
        root: data root.
        images_per_split: defaults ``dict(train=2, restval=1, val=2,
            test=2)``.
        captions_per_image: sentences per image.
        img_size: ``(width, height)``.
        ann_name: annotation path relative to ``root``.

    Returns:
        dict: ``data_root``, ``ann_file`` (relative), ``ann_path``
        (absolute), ``counts`` (split -> images), ``images`` (the written
        ``images`` list).
    """
    root = str(root)
    counts = images_per_split or dict(train=2, restval=1, val=2, test=2)
    images = []
    cocoid = 0
    for split, num in counts.items():
        for _ in range(num):
            cocoid += 1
            folder = 'train2014' if split == 'train' else 'val2014'
            filename = f'COCO_{folder}_{cocoid:012d}.jpg'
            write_image(osp.join(root, folder, filename), img_size,
                        seed=cocoid)
            sentences = [dict(raw=caption_for(cocoid, k),
                              tokens=caption_for(cocoid, k).split())
                         for k in range(captions_per_image)]
            images.append(dict(filepath=folder, filename=filename,
                               imgid=cocoid - 1, split=split, cocoid=cocoid,
                               sentences=sentences))
    ann_path = osp.join(root, ann_name)
    os.makedirs(osp.dirname(ann_path), exist_ok=True)
    with open(ann_path, 'w') as f:
        json.dump(dict(images=images, dataset='coco'), f)
    return dict(data_root=root, ann_file=ann_name, ann_path=ann_path,
                counts=dict(counts), images=images)


def make_coco_lavis(root: PathLike,
                    num_train: int = 3,
                    num_val: int = 2,
                    captions_per_image: int = 5,
                    img_size: Tuple[int, int] = (32, 24)) -> dict:
    """Write LAVIS-style list annotations and their images.

    ``annotations/coco_karpathy_train.json`` has one entry per caption with
    an ``image_id``; ``annotations/coco_karpathy_val.json`` has one entry per
    image with a caption list and no ``image_id``.

    Returns:
        dict: ``data_root``, ``train_file``, ``val_file`` (relative),
        ``num_train``, ``num_val``, ``captions_per_image``.
    """
    root = str(root)
    train, val = [], []
    for i in range(1, num_train + 1):
        image = f'train2014/COCO_train2014_{i:012d}.jpg'
        write_image(osp.join(root, image), img_size, seed=i)
        for k in range(captions_per_image):
            train.append(dict(image=image, caption=caption_for(i, k),
                              image_id=f'coco_{i}'))
    for i in range(1000, 1000 + num_val):
        image = f'val2014/COCO_val2014_{i:012d}.jpg'
        write_image(osp.join(root, image), img_size, seed=i)
        val.append(dict(image=image, caption=[
            caption_for(i, k) for k in range(captions_per_image)]))
    os.makedirs(osp.join(root, 'annotations'), exist_ok=True)
    files = dict(train_file='annotations/coco_karpathy_train.json',
                 val_file='annotations/coco_karpathy_val.json')
    for key, data in (('train_file', train), ('val_file', val)):
        with open(osp.join(root, files[key]), 'w') as f:
            json.dump(data, f)
    return dict(data_root=root, num_train=num_train, num_val=num_val,
                captions_per_image=captions_per_image, **files)


def make_cub(root: PathLike,
             num_classes: int = 4,
             images_per_class: int = 3,
             captions_per_image: int = 10,
             test_classes: Sequence[int] = (3, ),
             val_classes: Sequence[int] = (2, ),
             img_size: Tuple[int, int] = (32, 24),
             with_classes_txt: bool = True) -> dict:
    """Write a CUB-200-2011 layout with ``text_c10`` captions and class
    splits.

    Class ``c`` (0-based) is ``f'{c + 1:03d}.Bird_{c}'``. Image ids run from
    1; in ``train_test_split.txt`` every other image is a train image.
    ``testclasses.txt`` lists ``test_classes``, ``valclasses.txt``
    ``val_classes``, ``trainclasses.txt`` the rest and
    ``trainvalclasses.txt`` train + val classes.

    Returns:
        dict: ``data_root``, ``class_dirs`` (list[str]), ``num_images``,
        ``image_classes`` (image id -> 0-based class), ``image_paths``
        (image id -> path relative to ``images/``), ``is_train`` (image id ->
        bool), ``test_classes``, ``trainval_classes`` (lists of 0-based ids).
    """
    root = str(root)
    class_dirs = [f'{c + 1:03d}.Bird_{c}' for c in range(num_classes)]
    image_classes, image_paths, is_train = {}, {}, {}
    img_id = 0
    for c, cdir in enumerate(class_dirs):
        for k in range(images_per_class):
            img_id += 1
            name = f'Bird_{c}_{k:04d}'
            rel = f'{cdir}/{name}.jpg'
            write_image(osp.join(root, 'images', rel), img_size, seed=img_id)
            cap_path = osp.join(root, 'text_c10', cdir, f'{name}.txt')
            os.makedirs(osp.dirname(cap_path), exist_ok=True)
            with open(cap_path, 'w') as f:
                f.write('\n'.join(caption_for(img_id, j)
                                  for j in range(captions_per_image)) + '\n')
            image_classes[img_id] = c
            image_paths[img_id] = rel
            is_train[img_id] = img_id % 2 == 1

    def write_lines(name: str, lines) -> None:
        with open(osp.join(root, name), 'w') as f:
            f.write(''.join(f'{line}\n' for line in lines))

    ids = sorted(image_paths)
    write_lines('images.txt', (f'{i} {image_paths[i]}' for i in ids))
    write_lines('image_class_labels.txt',
                (f'{i} {image_classes[i] + 1}' for i in ids))
    write_lines('train_test_split.txt',
                (f'{i} {int(is_train[i])}' for i in ids))
    if with_classes_txt:
        write_lines('classes.txt',
                    (f'{c + 1} {d}' for c, d in enumerate(class_dirs)))
    test = sorted(test_classes)
    val = sorted(val_classes)
    train = [c for c in range(num_classes) if c not in test and c not in val]
    trainval = sorted(train + val)
    for name, cls in (('testclasses.txt', test), ('valclasses.txt', val),
                      ('trainclasses.txt', train),
                      ('trainvalclasses.txt', trainval)):
        write_lines(name, (class_dirs[c] for c in cls))
    return dict(data_root=root, class_dirs=class_dirs, num_images=len(ids),
                image_classes=image_classes, image_paths=image_paths,
                is_train=is_train, test_classes=test,
                trainval_classes=trainval)


REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def write_tiny_shapes_config(path: PathLike, base: str, data_root: str,
                             epochs: int = 2, batch_size: int = 8,
                             val_interval: int = 1, extra: str = '') -> str:
    """Write a child config of ``base`` (repo-relative or absolute) that
    trains, validates and tests on the tiny shapes set under ``data_root``
    (24/8/8 images, no loader workers, logging every iteration); ``extra``
    is appended verbatim. Returns the path."""
    text = f'''
_base_ = [{osp.join(REPO, base)!r}]
tiny = dict(data_root={data_root!r},
            num_images=dict(train=24, val=8, test=8))
loader = dict(batch_size={batch_size}, num_workers=0,
              persistent_workers=False, dataset=tiny)
train_dataloader = loader
val_dataloader = loader
test_dataloader = loader
train_cfg = dict(max_epochs={epochs}, val_interval={val_interval})
default_hooks = dict(logger=dict(interval=1))
''' + extra
    Path(path).write_text(text)
    return str(path)


def load_tool(relpath: str):
    """Import a script under tools/ (e.g. 'tools/analysis/x.py') as a
    module, so tests can call its functions and ``main(argv)``."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        osp.splitext(osp.basename(relpath))[0], osp.join(REPO, relpath))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_repo_config(rel_path: str):
    """``Config.fromfile`` of a config of this repository, in MMPretrain's
    default scope."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    init_default_scope('mmpretrain')
    return Config.fromfile(osp.join(osp.dirname(osp.dirname(
        osp.abspath(__file__))), rel_path))
