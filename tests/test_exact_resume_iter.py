"""Resume is bit-identical in the iteration-based loop, on the real Fashion
MDC config (shrunk: batch 4, 6 iterations, checkpoints every 3, validation
on 4 scenes at iteration 3 and at the end, the embedded Fashion subset).

An uninterrupted run is compared, loss by loss and weight by weight, with a
run resumed from its ``iter_3.pth``: with the shipped loader (one data
worker, persistent, ``InfiniteSampler``) and in the main process. Where it
cannot be exact (a finite sampler whose skipped batches cross the end of the
data, with non-persistent workers) the resume says so, with the reason.
"""
import glob
import itertools
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from fixtures_train import train_and_log

import mdc_plugin  # noqa: F401
from mdc_plugin.engine.exact_resume import ExactResumeIterBasedTrainLoop
from mdc_plugin.utils import load_checkpoint_safely

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(ROOT, 'configs/mdc/resnet18-w32_fashion_embedded.py')
ITERS, EVERY, BATCH = 6, 3, 4
_IDS = itertools.count()


def _cfg(work_dir, num_workers=1, persistent=True, sampler=None,
         **overrides):
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.update(
        batch_size=BATCH, num_workers=num_workers,
        persistent_workers=persistent and num_workers > 0)
    if sampler is not None:
        cfg.train_dataloader.sampler = sampler
        cfg.train_dataloader.dataset.num_scenes = 8  # 2 batches per pass
    cfg.val_dataloader.update(batch_size=BATCH, num_workers=0,
                              persistent_workers=False)
    cfg.val_dataloader.dataset.num_scenes = 4
    cfg.merge_from_dict(dict(
        work_dir=str(work_dir), experiment_name=f'iterexact{next(_IDS)}',
        log_level='WARNING', custom_hooks=[dict(type='LossLogHook')]))
    cfg.train_cfg.update(max_iters=ITERS, val_interval=EVERY)
    cfg.default_hooks.checkpoint.interval = EVERY
    cfg.default_hooks.logger.interval = 100
    cfg.param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=False,
                                begin=0, end=ITERS, eta_min_ratio=0.1)]
    cfg.model.head.sampler.steps = 2  # validation: 2 decoding steps
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        cfg[key] = None
    cfg.merge_from_dict(overrides)
    return cfg


def _train(cfg):
    losses, state, runner = train_and_log(cfg)
    assert isinstance(runner.train_loop, ExactResumeIterBasedTrainLoop)
    return losses, state, runner


@pytest.mark.parametrize('workers', [1, 0], ids=['shipped-loader',
                                                 'main-process'])
def test_iter_resume_is_bit_identical(tmp_path, workers):
    ref_losses, ref_state, _ = _train(_cfg(tmp_path / 'ref', workers))
    assert [i for i, _ in ref_losses] == list(range(ITERS))
    ckpt = str(tmp_path / 'ref' / f'iter_{EVERY}.pth')
    assert set(load_checkpoint_safely(ckpt)['rng_state']) >= {
        'torch', 'numpy', 'python'}
    losses, state, runner = _train(_cfg(tmp_path / 'resumed', workers,
                                        resume=True, load_from=ckpt))
    assert losses == ref_losses[EVERY:]  # the rest, once each, same losses
    assert runner.iter == ITERS
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)


def test_iter_resume_that_cannot_be_exact_says_why(tmp_path):
    """A finite sampler, non-persistent workers, and a resume point past
    the end of the data: the workers of each restart were seeded from RNG
    state the resumed run does not have. The resume says so."""
    finite = dict(type='DefaultSampler', shuffle=True)
    cfg = _cfg(tmp_path / 'ref', 1, False, finite)
    _train(cfg)
    _train(_cfg(tmp_path / 'resumed', 1, False, finite, resume=True,
                load_from=str(tmp_path / 'ref' / f'iter_{EVERY}.pth')))
    log = open(glob.glob(str(tmp_path / 'resumed' / '*' / '*.log'))[0]).read()
    assert ('Resume is not bit-identical: the skipped batches ran through '
            'the train data 1 time(s)') in log
    assert "sampler=dict(type='InfiniteSampler')" in log
