"""Tiny Fashion-MNIST folders in the official IDX layout, for tests.

The files are written byte by byte with ``struct`` here (not with the
library's own writer), so the reader is checked against the format itself.
Each class gets a distinct, slightly noisy 28 x 28 pattern so that probes
can learn the labels.
"""
import gzip
import os
import os.path as osp
import struct
from typing import Dict

import numpy as np

FILES = dict(train=('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
             test=('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'))


def idx_bytes(array: np.ndarray) -> bytes:
    """Big-endian IDX: magic (2049 labels / 2051 images), dims, payload."""
    magic = 2049 if array.ndim == 1 else 2051
    return struct.pack('>I', magic) + b''.join(
        struct.pack('>I', d) for d in array.shape) + \
        array.astype(np.uint8).tobytes()


def class_items(labels: np.ndarray, seed: int, value: int = 200
                ) -> np.ndarray:
    """(N, 28, 28) items: class k is a bright bar at rows 2k..2k+7, plus
    noise; ``value`` sets the bar brightness."""
    rng = np.random.default_rng(seed)
    out = rng.integers(0, 30, size=(len(labels), 28, 28)).astype(np.uint8)
    for i, k in enumerate(labels):
        out[i, 2 * k:2 * k + 8, 4:24] = value
    return out


def make_fashion_root(root: str, sizes: Dict[str, int] = None,
                      gz: bool = True, values=(200, 120)) -> str:
    """Write the four IDX files (gzip or raw) under ``root``; train items
    have bar brightness ``values[0]``, test items ``values[1]``."""
    sizes = sizes or dict(train=60, test=30)
    os.makedirs(root, exist_ok=True)
    for i, (split, (images_name, labels_name)) in enumerate(FILES.items()):
        labels = np.arange(sizes[split]) % 10
        images = class_items(labels, seed=i, value=values[i])
        for name, array in ((images_name, images), (labels_name, labels)):
            data = idx_bytes(array)
            if gz:
                with gzip.open(osp.join(root, name + '.gz'), 'wb') as f:
                    f.write(data)
            else:
                with open(osp.join(root, name), 'wb') as f:
                    f.write(data)
    return root


def write_tiny_fashion_config(path: str, base: str, root: str,
                              iters: int = 4, extra: str = '') -> str:
    """A child of the real Fashion config ``base`` (repo-relative) that
    trains ``iters`` iterations on the tiny IDX folder ``root`` (no loader
    workers, 8 val scenes, probes on 40 train / 30 test items)."""
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    text = f'''
_base_ = [{osp.join(repo, base)!r}]
root = {root!r}
loader = dict(num_workers=0, persistent_workers=False, batch_size=4)
train_dataloader = dict(loader, dataset=dict(data_root=root,
                                              check_count=False))
val_dataloader = dict(loader, dataset=dict(data_root=root, num_scenes=8,
                                            check_count=False))
test_dataloader = val_dataloader
train_cfg = dict(max_iters={iters}, val_interval={iters})
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=2),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=2, end={iters}),
]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(interval={iters}))
probe_set = dict(data_root=root, check_count=False)
custom_hooks = [dict(type='LinearProbeHook',
                     train_dataset=dict(type='FashionMNISTItems',
                                        split='train', num_items=40,
                                        **probe_set),
                     val_dataset=dict(type='FashionMNISTItems', split='test',
                                      **probe_set),
                     pipeline=[dict(type='LoadCaptionImage'),
                               dict(type='PackInputs')],
                     pooling='mean', baselines=['init', 'pixels'])]
''' + extra
    with open(path, 'w') as f:
        f.write(text)
    return path
