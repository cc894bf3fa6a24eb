"""Resume is bit-identical on the real MDC shapes config (shrunk).

An uninterrupted run is compared, loss by loss and weight by weight, with
runs resumed from its epoch checkpoint and from a mid-epoch iteration
checkpoint (``CheckpointHook(by_epoch=False)`` inside the epoch-based
loop), with the data loaded in the main process and by two workers, and
validation after every epoch (which the run resumed from ``epoch_1`` skips).
"""
import itertools
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from fixtures_train import train_and_log
from mmengine.runner import Runner

import mdc_plugin  # noqa: F401
from mdc_plugin.engine.exact_resume import ResumePositionError
from mdc_plugin.utils import load_checkpoint_safely

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs/mdc/vit-tiny_shapes.py')
TRAIN_IMAGES, BATCH, EPOCHS = 24, 4, 2
ITERS_PER_EPOCH = TRAIN_IMAGES // BATCH  # 6
_IDS = itertools.count()


def _cfg(work_dir, data_root, num_workers, **overrides):
    cfg = Config.fromfile(CONFIG)
    shapes = dict(num_images=dict(train=TRAIN_IMAGES, val=8, test=8),
                  img_size=64, seed=0)
    loader = dict(batch_size=BATCH, num_workers=num_workers,
                  persistent_workers=False)
    cfg.train_dataloader.update(loader)
    cfg.train_dataloader.dataset.update(data_root=str(data_root), **shapes)
    # validation after every epoch: it draws from the global RNG too
    cfg.val_dataloader.update(batch_size=BATCH, num_workers=0,
                              persistent_workers=False)
    cfg.val_dataloader.dataset.update(data_root=str(data_root), **shapes)
    cfg.merge_from_dict(dict(
        work_dir=str(work_dir),
        experiment_name=f'exact{next(_IDS)}',
        train_cfg=dict(max_epochs=EPOCHS, val_interval=1),
        log_level='WARNING',
        custom_hooks=[
            dict(type='LossLogHook'),
            dict(type='AtomicCheckpointHook', by_epoch=False, interval=4,
                 max_keep_ckpts=-1)
        ]))
    cfg.model.backbone.arch.num_layers = 1  # shrunk: one block each
    cfg.model.head.num_layers = 1
    cfg.default_hooks.checkpoint.max_keep_ckpts = -1
    cfg.default_hooks.logger.interval = 100
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.merge_from_dict(overrides)
    return cfg


_train = train_and_log


@pytest.fixture(scope='module')
def data_root(tmp_path_factory):
    return tmp_path_factory.mktemp('shapes')


@pytest.fixture(scope='module', params=[0, 2], ids=['workers0', 'workers2'])
def reference(request, data_root, tmp_path_factory):
    work = tmp_path_factory.mktemp(f'ref{request.param}')
    losses, state, _ = _train(_cfg(work, data_root, request.param))
    assert len(losses) == EPOCHS * ITERS_PER_EPOCH
    return request.param, work, losses, state


@pytest.mark.parametrize('ckpt', ['epoch_1.pth', 'iter_4.pth', 'iter_8.pth'])
def test_resume_is_bit_identical(reference, data_root, tmp_path, ckpt):
    workers, work, ref_losses, ref_state = reference
    if workers and ckpt == 'iter_4.pth':
        pytest.skip('one mid-epoch point is enough with workers')
    saved = load_checkpoint_safely(str(work / ckpt))
    assert set(saved['rng_state']) >= {'torch', 'numpy', 'python'}
    start = saved['meta']['iter']
    losses, state, runner = _train(
        _cfg(tmp_path, data_root, workers, resume=True,
             load_from=str(work / ckpt)))
    # the remaining iterations exactly once each, with the same losses
    assert losses == ref_losses[start:]
    assert runner.iter == EPOCHS * ITERS_PER_EPOCH
    assert set(state) == set(ref_state)
    assert all(torch.equal(state[k], ref_state[k]) for k in state)


def test_mid_epoch_checkpoint_of_another_loader_is_refused(
        reference, data_root, tmp_path):
    """A position that does not fit the dataloader is a clear error."""
    workers, work, _, _ = reference
    if workers:
        pytest.skip('independent of the workers')
    cfg = _cfg(tmp_path, data_root, 0, resume=True,
               load_from=str(work / 'iter_8.pth'))
    cfg.train_dataloader.batch_size = 24  # 2 batches per epoch, not 6
    with pytest.raises(ResumePositionError, match='batch size'):
        Runner.from_cfg(cfg).train()


def test_nan_run_stops_by_default(data_root, tmp_path):
    """The default runtime's NonFiniteLossHook stops a NaN run before it
    writes a NaN checkpoint (the real config's hooks; an lr of 1e30 makes
    the second iteration's loss non-finite; torch refuses lr=nan itself)."""
    from mdc_plugin.engine.hooks import NonFiniteLossError
    cfg = _cfg(tmp_path, data_root, 0)
    assert cfg.default_hooks.nonfinite_loss == dict(
        type='NonFiniteLossHook', action='stop')
    cfg.optim_wrapper.optimizer.lr = 1e30
    with pytest.raises(NonFiniteLossError, match='iteration 2'):
        Runner.from_cfg(cfg).train()
    assert not list(tmp_path.glob('*.pth'))
