"""Shared pieces of the benchmark harness: the repository root, config
loading, the device, the fixed training batch and the optimizer.

The harness is tool code of the checkout (``tools/benchmarks/harness/``,
not part of the installed ``mdc_plugin``): it reads the checkout's
``configs/``, ``work_dirs/`` and ``tools/train.py``.
"""
import contextlib
import os
import os.path as osp
import re
from typing import Iterator, Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

#: ``tools/``, the folder holding the ``benchmarks`` package of the harness.
TOOLS = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: The repository checkout (``tools/benchmarks/harness/`` is three levels in).
ROOT = osp.dirname(TOOLS)
#: The config whose backbone and train split every case shares.
MDC_CONFIG = 'configs/mdc/vit-tiny_shapes.py'


def device() -> torch.device:
    """CUDA when available, else the CPU."""
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def load_cfg(path: str) -> Config:
    """A config by its path relative to :data:`ROOT`."""
    return Config.fromfile(osp.join(ROOT, path))


@contextlib.contextmanager
def chdir(path: str) -> Iterator[None]:
    """Run the block in ``path`` (configs name data relative to ROOT)."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def train_batch(batch_size: int) -> dict:
    """One collated batch of the embedded train split (fixed order):
    ``inputs`` (B uint8 (3, H, W) images), ``data_samples`` (B)."""
    cfg = load_cfg(MDC_CONFIG)
    loader_cfg = dict(cfg.train_dataloader, batch_size=batch_size,
                      num_workers=0, persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False))
    with chdir(ROOT):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        return next(iter(loader))


def build_optim(model: torch.nn.Module, cfg_path: str):
    """The optimizer wrapper of the config at ``cfg_path`` for ``model``."""
    from mmengine.optim import build_optim_wrapper
    return build_optim_wrapper(model, load_cfg(cfg_path).optim_wrapper)


def latest_checkpoint(path: str) -> Optional[str]:
    """``path`` if a file, else its highest ``epoch_N.pth`` (None if none).
    """
    full = osp.join(ROOT, path)
    if osp.isfile(full):
        return path
    if not osp.isdir(full):
        return None
    epochs = [(int(m.group(1)), name) for name in os.listdir(full)
              for m in [re.fullmatch(r'epoch_(\d+)\.pth', name)] if m]
    return osp.join(path, max(epochs)[1]) if epochs else None
