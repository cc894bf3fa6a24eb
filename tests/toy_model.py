"""A tiny model, dataset and metric for the checkpoint and tools tests.

Everything is registered into MMPretrain's registries with a ``Toy`` prefix,
so configs using ``default_scope='mmpretrain'`` can build them. Import it
from a config with ``custom_imports=dict(imports=['toy_model'])`` while this
directory (``tests/``) is on ``PYTHONPATH``.
"""
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel, is_model_wrapper
from torch.utils.data import Dataset

from mmengine.dist import get_rank, get_world_size
from mmengine.hooks import Hook

from mmpretrain.registry import DATASETS, HOOKS, METRICS, MODELS


@MODELS.register_module()
class ToyModel(BaseModel):
    """Linear regression on 4-d inputs; trains in well under a second."""

    def __init__(self, in_dims: int = 4, init_cfg: Optional[dict] = None):
        super().__init__(init_cfg=init_cfg)
        self.backbone = nn.Linear(in_dims, 8)
        self.head = nn.Linear(8, 1)

    def forward(self,
                inputs: torch.Tensor,
                data_samples: Optional[dict] = None,
                mode: str = 'tensor'):
        if isinstance(inputs, (list, tuple)):
            inputs = torch.stack(list(inputs))
        out = self.head(torch.relu(self.backbone(inputs.float()))).squeeze(-1)
        if mode == 'tensor':
            return out
        targets = data_samples['target']
        if isinstance(targets, (list, tuple)):
            targets = torch.stack([torch.as_tensor(t) for t in targets])
        targets = targets.float()
        if mode == 'loss':
            return dict(loss=((out - targets)**2).mean())
        if mode == 'predict':
            return [
                dict(pred=p.detach(), target=t) for p, t in zip(out, targets)
            ]
        raise ValueError(f'ToyModel: unknown mode {mode!r}')


@DATASETS.register_module()
class ToyDataset(Dataset):
    """``length`` deterministic samples ``x -> sum(x)``."""

    metainfo = dict(classes=('toy', ))

    def __init__(self, length: int = 16, seed: int = 0):
        gen = torch.Generator().manual_seed(seed)
        self.inputs = torch.randn(length, 4, generator=gen)
        self.targets = self.inputs.sum(-1)

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitem__(self, idx: int) -> dict:
        return dict(
            inputs=self.inputs[idx],
            data_samples=dict(target=self.targets[idx]))


@METRICS.register_module()
class ToyMetric(BaseMetric):
    """Mean squared error of ``ToyModel`` predictions."""

    default_prefix = 'toy'

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for s in data_samples:
            self.results.append(float((s['pred'] - s['target'])**2))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        return dict(mse=sum(results) / max(len(results), 1))


@HOOKS.register_module()
class ToyRecorderHook(Hook):
    """Records what the runner looks like when training starts / saves.

    ``snapshot`` (in memory) holds epoch, iter, the length of the
    ``train/loss`` history and the optimizer state right after
    ``load_or_resume``. With ``record_dir`` set, each rank also appends
    lines to ``<record_dir>/rank<r>.log``: ``world_size N`` and
    ``start epoch E iter I`` when training starts, ``iter N`` per training
    iteration and ``save epoch_N`` per checkpoint it writes.
    """

    priority = 'VERY_LOW'

    def __init__(self, record_dir: Optional[str] = None):
        self.record_dir = record_dir
        self.snapshot: dict = {}

    def _record(self, line: str) -> None:
        if self.record_dir is None:
            return
        import os
        os.makedirs(self.record_dir, exist_ok=True)
        path = os.path.join(self.record_dir, f'rank{get_rank()}.log')
        with open(path, 'a') as f:
            f.write(line + '\n')

    def before_train(self, runner) -> None:
        loss = runner.message_hub.log_scalars.get('train/loss')
        optim_state = runner.optim_wrapper.state_dict()['state']
        model = runner.model
        if is_model_wrapper(model):
            model = model.module
        self.snapshot = dict(
            epoch=runner.epoch,
            iter=runner.iter,
            loss_history=0 if loss is None else len(loss.data[0]),
            optim_state={
                k: {
                    n: t.clone()
                    for n, t in v.items()
                }
                for k, v in optim_state.items()
            },
            lr=runner.optim_wrapper.get_lr()['lr'][0],
            weight=model.backbone.weight.detach().clone())
        self._record(f'world_size {get_world_size()}')
        self._record(f'start epoch {runner.epoch} iter {runner.iter}')

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self._record(f'iter {runner.iter}')

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self._record(f'save epoch_{checkpoint["meta"]["epoch"]}')


def toy_runner_cfg(work_dir: str, max_epochs: int = 2, **overrides) -> dict:
    """A plain-dict Runner config for the toy model (CPU, no val), with
    the plugin's checkpoint hardening chosen as a user's own config would
    (docs/reliability.md): the exact-resume loop, AtomicCheckpointHook and
    SafeCheckpointLoadingHook."""
    loader = dict(
        dataset=dict(type='ToyDataset', length=16),
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate'),
        batch_size=4,
        num_workers=0)
    cfg = dict(
        model=dict(type='ToyModel'),
        work_dir=work_dir,
        train_dataloader=loader,
        train_cfg=dict(type='ExactResumeEpochBasedTrainLoop',
                       max_epochs=max_epochs, val_interval=1),
        val_dataloader=loader,
        val_cfg=dict(),
        val_evaluator=dict(type='ToyMetric'),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        param_scheduler=dict(
            type='MultiStepLR', milestones=[1], by_epoch=True),
        default_hooks=dict(
            checkpoint=dict(type='AtomicCheckpointHook', interval=1),
            safe_checkpoint_loading=dict(type='SafeCheckpointLoadingHook'),
            logger=dict(type='LoggerHook', interval=1)),
        default_scope='mmpretrain',
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING',
        randomness=dict(seed=0),
        experiment_name='toy',
    )
    cfg.update(overrides)
    return cfg


def write_toy_config(path: str,
                     record_dir: Optional[str] = None,
                     **overrides) -> str:
    """Write a config file for ``tools/train.py`` / ``tools/test.py``.

    It loads ``mdc_plugin`` and this module through ``custom_imports``
    (``tests/`` must be on ``PYTHONPATH``) and has a test loop.
    """
    cfg = toy_runner_cfg(None, **overrides)
    cfg.pop('work_dir')
    cfg.update(
        custom_imports=dict(
            imports=['mdc_plugin', 'toy_model'], allow_failed_imports=False),
        test_dataloader=cfg['val_dataloader'],
        test_cfg=dict(),
        test_evaluator=cfg['val_evaluator'],
        custom_hooks=[dict(type='ToyRecorderHook', record_dir=record_dir)])
    with open(path, 'w') as f:
        f.writelines(f'{k} = {v!r}\n' for k, v in cfg.items())
    return str(path)
