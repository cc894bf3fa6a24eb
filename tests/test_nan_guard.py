"""NonFiniteLossHook with the real MMEngine runner: stop and skip."""
import glob
import logging
import os.path as osp
import sys
from typing import List, Optional, Sequence

import pytest
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS, MODELS

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import mdc_plugin  # noqa: E402,F401
import toy_model  # noqa: E402
from mdc_plugin.engine.hooks import (NonFiniteLossError,  # noqa: E402
                                     NonFiniteLossHook)
from mdc_plugin.utils import load_checkpoint_safely  # noqa: E402

ITERS_PER_EPOCH = 4  # ToyDataset(16) / batch 4


@MODELS.register_module()
class NanAtIterToyModel(toy_model.ToyModel):
    """ToyModel with two loss terms; ``loss_aux`` is ``bad`` (nan or inf)
    on the training iterations (1-based) listed in ``bad_iters``."""

    def __init__(self, bad_iters: Sequence[int] = (),
                 bad: float = float('nan'), **kwargs) -> None:
        super().__init__(**kwargs)
        self.bad_iters = set(bad_iters)
        self.bad = bad
        self.calls = 0

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = super().forward(inputs, data_samples, mode)
        if mode != 'loss':
            return out
        self.calls += 1
        aux = 0.1 * self.backbone.weight.abs().mean()
        if self.calls in self.bad_iters:
            aux = aux * self.bad
        return dict(loss_mse=out['loss'], loss_aux=aux)


@HOOKS.register_module()
class WeightTraceHook(Hook):
    """Records the backbone weight after every training iteration."""

    priority = 'LOWEST'

    def __init__(self) -> None:
        self.weights: List[torch.Tensor] = []

    def before_train(self, runner) -> None:
        self.weights = [runner.model.backbone.weight.detach().clone()]

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        self.weights.append(runner.model.backbone.weight.detach().clone())


class _Messages(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _runner(work_dir, bad_iters, action: Optional[str], bad=float('nan'),
            accumulative_counts: int = 1, **hook_kwargs):
    hooks = [dict(type='WeightTraceHook')]
    if action is not None:
        hooks.insert(0, dict(type='NonFiniteLossHook', action=action,
                             **hook_kwargs))
    cfg = toy_model.toy_runner_cfg(
        str(work_dir), max_epochs=2,
        model=dict(type='NanAtIterToyModel', bad_iters=bad_iters, bad=bad),
        custom_hooks=hooks, val_cfg=None, val_dataloader=None,
        val_evaluator=None, experiment_name=f'nan_{osp.basename(work_dir)}')
    cfg['train_cfg'] = dict(by_epoch=True, max_epochs=2)
    if accumulative_counts > 1:
        cfg['optim_wrapper'] = dict(cfg['optim_wrapper'],
                                    accumulative_counts=accumulative_counts)
    runner = Runner.from_cfg(cfg)
    handler = _Messages()
    runner.logger.addHandler(handler)
    trace = next(h for h in runner.hooks if isinstance(h, WeightTraceHook))
    return runner, trace, handler


def test_skip_drops_the_update_and_logs_terms(tmp_path):
    runner, trace, log = _runner(tmp_path / 'skip', bad_iters=[3],
                                 action='skip')
    runner.train()
    w = trace.weights  # w[i] = weights after iteration i (w[0] initial)
    assert len(w) == 2 * ITERS_PER_EPOCH + 1
    assert torch.equal(w[3], w[2]), 'the NaN iteration changed the weights'
    assert not torch.equal(w[4], w[3]), 'training did not go on'
    assert all(torch.isfinite(t).all() for t in w)
    hits = [m for m in log.messages if 'non-finite training loss' in m]
    assert len(hits) == 1, log.messages
    assert 'iteration 3 ' in hits[0]
    assert 'loss_mse=' in hits[0] and 'loss_aux=nan' in hits[0]
    assert 'skipped' in hits[0]
    assert runner.message_hub.get_info('nonfinite_loss_skips') == 1
    ckpt = load_checkpoint_safely(str(tmp_path / 'skip' / 'epoch_2.pth'))
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values())


def test_without_the_hook_nan_reaches_the_weights(tmp_path):
    """The failure the hook prevents (so the skip test can fail)."""
    runner, trace, _ = _runner(tmp_path / 'off', bad_iters=[3], action=None)
    runner.train()
    assert not torch.isfinite(trace.weights[3]).all()


def test_stop_raises_before_anything_is_updated_or_saved(tmp_path):
    work = tmp_path / 'stop'
    runner, trace, _ = _runner(work, bad_iters=[6], action='stop',
                               bad=float('inf'))
    with pytest.raises(NonFiniteLossError,
                       match=r'iteration 6 \(epoch 2\).*loss_aux=inf'):
        runner.train()
    # Iterations 1-5 ran; the inf iteration updated nothing.
    assert len(trace.weights) == 6
    assert torch.equal(runner.model.backbone.weight, trace.weights[5])
    # Only the epoch-1 checkpoint exists, complete and finite; no temp file.
    files = sorted(osp.basename(p) for p in glob.glob(str(work / '*.pth')))
    assert files == ['epoch_1.pth']
    assert not glob.glob(str(work / '.*.tmp'))
    ckpt = load_checkpoint_safely(str(work / 'epoch_1.pth'))
    assert all(torch.isfinite(v).all() for v in ckpt['state_dict'].values())


def test_consecutive_skips_limit(tmp_path):
    runner, _, _ = _runner(tmp_path / 'limit', bad_iters=[2, 3, 4],
                           action='skip', max_consecutive_skips=3)
    with pytest.raises(NonFiniteLossError, match='3 consecutive'):
        runner.train()


def test_skip_refuses_gradient_accumulation(tmp_path):
    runner, _, _ = _runner(tmp_path / 'accumulate', bad_iters=[],
                           action='skip', accumulative_counts=2)
    with pytest.raises(ValueError, match='accumulative_counts=2'):
        runner.train()
    # 'stop' needs no step bookkeeping and works with accumulation
    runner, trace, _ = _runner(tmp_path / 'accumulate_stop', bad_iters=[],
                               action='stop', accumulative_counts=2)
    runner.train()
    assert len(trace.weights) == 2 * ITERS_PER_EPOCH + 1


@pytest.mark.parametrize('kwargs, match', [
    (dict(action='ignore'), "action must be one of"),
    (dict(max_consecutive_skips=0), 'max_consecutive_skips must be'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        NonFiniteLossHook(**kwargs)
