"""Bit-identical resume as registered training loops.

MMEngine 0.10.x does not checkpoint the random-number state, so a resumed
run redraws the masks, noise and caption picks an uninterrupted run would
have drawn differently; and ``EpochBasedTrainLoop`` restarts an epoch from
its first batch when resumed from an iteration checkpoint (``iter_N.pth``
saved by ``CheckpointHook(by_epoch=False)``), re-running or over-running
iterations. Chosen in a config with ``train_cfg.type`` (our schedules do)::

    train_cfg = dict(type='ExactResumeIterBasedTrainLoop', max_iters=1200)
    train_cfg = dict(type='ExactResumeEpochBasedTrainLoop', max_epochs=8)

both loops register :class:`ExactResumeHook` with their runner. It writes
``checkpoint['rng_state']`` (torch CPU and every CUDA device, numpy's global
state, Python's ``random``) on every save and runs validation inside
training with the training RNG state saved and put back, so validation does
not shift the training stream (and a run resumed past a validation matches
one that ran it).

* :class:`ExactResumeEpochBasedTrainLoop`: on the first epoch after
  ``resume`` it creates the data iterator, loads and discards the batches of
  that epoch the checkpoint already trained on (so data workers draw what
  they drew before), restores the checkpoint's RNG state, and continues with
  the next batch; ``batch_idx`` and ``runner.iter`` continue from the
  checkpoint. A checkpoint whose position does not fit the current
  dataloader (another batch size or dataset size) is refused.
* :class:`ExactResumeIterBasedTrainLoop`: MMEngine already skips the
  batches the checkpoint trained on; this loop then restores the RNG state.

What stays inexact, and is logged at resume (it cannot be made exact
without replaying the whole run):

* epoch loop, ``num_workers > 0`` with ``persistent_workers=True``: data
  workers live across epochs in the uninterrupted run and are recreated in
  the resumed one, so worker-side random transforms (``TokenizeCaption``'s
  caption pick) restart. Use ``persistent_workers=False`` (workers are then
  reseeded identically every epoch) or ``num_workers=0``;
* iteration loop with a finite sampler (not ``InfiniteSampler``) and
  ``num_workers > 0`` without persistent workers, when the skipped batches
  cross the end of the data: each restart of the data iterator seeds its
  workers from the global RNG as it was at that moment in the uninterrupted
  run, which the resumed run does not have. ``InfiniteSampler`` (every
  shipped iteration-based config) or ``num_workers=0`` is exact.
"""
import logging
import random
from typing import Any, Dict, Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.runner.loops import EpochBasedTrainLoop, IterBasedTrainLoop
from mmpretrain.registry import LOOPS

__all__ = ['ExactResumeHook', 'ExactResumeEpochBasedTrainLoop',
           'ExactResumeIterBasedTrainLoop', 'ResumePositionError',
           'get_rng_state', 'set_rng_state']


class ResumePositionError(RuntimeError):
    """A checkpoint's iteration does not fit the current training loop."""


def get_rng_state() -> Dict[str, Any]:
    """Every global RNG state a training step can draw from (plain data)."""
    state = dict(
        torch=torch.get_rng_state(),
        numpy=np.random.get_state(),
        python=random.getstate())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Inverse of :func:`get_rng_state`."""
    torch.set_rng_state(torch.as_tensor(state['torch']).cpu())
    np.random.set_state(tuple(state['numpy']))
    version, internal, gauss = state['python']
    random.setstate((version, tuple(internal), gauss))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


class ExactResumeHook(Hook):
    """Checkpoint the RNG state; keep validation out of the training RNG.

    Registered by the exact-resume loops (see the module docstring); not
    meant for configs.
    """

    # Last in every stage, so after_val puts the state back after every
    # other hook's after_val (e.g. the linear probe) has run.
    priority = 'LOWEST'

    def __init__(self) -> None:
        self.resumed_rng: Optional[Dict[str, Any]] = None
        self._train_rng: Optional[Dict[str, Any]] = None

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint['rng_state'] = get_rng_state()

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self.resumed_rng = checkpoint.get('rng_state')

    def before_val(self, runner) -> None:
        self._train_rng = get_rng_state() if _training(runner) else None

    def after_val(self, runner) -> None:
        if self._train_rng is not None:
            set_rng_state(self._train_rng)
            self._train_rng = None


def _training(runner) -> bool:
    loop = getattr(runner, '_train_loop', None)
    return (isinstance(loop, (EpochBasedTrainLoop, IterBasedTrainLoop))
            and loop.iter < loop.max_iters)


def _hook(runner) -> Optional[ExactResumeHook]:
    return next((h for h in runner.hooks if isinstance(h, ExactResumeHook)),
                None)


def _warn_persistent_workers(loader) -> None:
    if loader.num_workers > 0 and loader.persistent_workers:
        print_log(
            'Resume: num_workers > 0 with persistent_workers=True, so the '
            'data workers restart here while an uninterrupted run would '
            'have kept them; random transforms in the workers (e.g. '
            "TokenizeCaption's caption pick) will differ. Set "
            'persistent_workers=False or num_workers=0 for a bit-identical '
            'resume.',
            logger='current',
            level=logging.WARNING)


def _resume_epoch(loop: EpochBasedTrainLoop, state: Dict[str, Any]):
    """Iterator positioned after the checkpoint's batches, RNG restored."""
    loader = loop.dataloader
    length = len(loader)
    skip = loop._iter - loop._epoch * length
    if not 0 <= skip <= length:
        raise ResumePositionError(
            f'Cannot resume: the checkpoint is at iteration {loop._iter}, '
            f'epoch {loop._epoch}, which is batch {skip} of an epoch of '
            f'{length} batches. The train dataloader (batch size, dataset '
            'size, drop_last, world size) must be the one the checkpoint '
            'was trained with.')
    # An uninterrupted run draws a worker base seed from the global RNG
    # whenever it creates the iterator: at every epoch start, or only at
    # the first one with persistent workers.
    drew_at_epoch_start = not (loader.num_workers > 0
                               and loader.persistent_workers
                               and loop._epoch > 0)
    _warn_persistent_workers(loader)
    iterator = iter(loader)
    for _ in range(skip):
        next(iterator)
    set_rng_state(state)
    if skip == 0 and drew_at_epoch_start:
        torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
    if skip:
        print_log(
            f'Resumed inside epoch {loop._epoch + 1}: skipped its first '
            f'{skip} of {length} batches (already trained)',
            logger='current')
    return skip, iterator


def run_epoch(self: EpochBasedTrainLoop) -> None:
    """``run_epoch`` of :class:`ExactResumeEpochBasedTrainLoop`: resumes at
    the exact batch."""
    hook = _hook(self.runner)
    state = hook.resumed_rng if hook is not None else None
    if hook is not None:
        hook.resumed_rng = None
    self.runner.call_hook('before_train_epoch')
    self.runner.model.train()
    if self.runner._resume and state is not None:
        start, batches = _resume_epoch(self, state)
    elif self._iter != self._epoch * len(self.dataloader):
        # a mid-epoch checkpoint without RNG state (not written here)
        start, batches = _resume_epoch(self, get_rng_state())
    else:
        start, batches = 0, iter(self.dataloader)
    for idx, data_batch in enumerate(batches, start=start):
        self.run_iter(idx, data_batch)
    self.runner.call_hook('after_train_epoch')
    self._epoch += 1


@LOOPS.register_module()
class ExactResumeEpochBasedTrainLoop(EpochBasedTrainLoop):
    """``EpochBasedTrainLoop`` that resumes at the exact batch with the RNG
    state of the checkpoint (see the module docstring)."""

    def __init__(self, runner, *args, **kwargs) -> None:
        super().__init__(runner, *args, **kwargs)
        _ensure_hook(runner)

    run_epoch = run_epoch


@LOOPS.register_module()
class ExactResumeIterBasedTrainLoop(IterBasedTrainLoop):
    """``IterBasedTrainLoop`` that restores the checkpoint's RNG state after
    skipping the batches already trained on (see the module docstring)."""

    def __init__(self, runner, *args, **kwargs) -> None:
        super().__init__(runner, *args, **kwargs)
        _ensure_hook(runner)

    def run(self) -> None:
        hook = _hook(self.runner)
        state = hook.resumed_rng if hook is not None else None
        if hook is not None:
            hook.resumed_rng = None
        self.runner.call_hook('before_train')
        self.runner.call_hook('before_train_epoch')
        if self._iter > 0:
            _skip_trained_batches(self, state)
        while self._iter < self._max_iters and not self.stop_training:
            self.runner.model.train()
            data_batch = next(self.dataloader_iterator)
            self.run_iter(data_batch)
            self._decide_current_val_interval()
            if (self.runner.val_loop is not None
                    and self._iter >= self.val_begin
                    and (self._iter % self.val_interval == 0
                         or self._iter == self._max_iters)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train_epoch')
        self.runner.call_hook('after_train')
        return self.runner.model


def _skip_trained_batches(loop: IterBasedTrainLoop,
                          state: Optional[Dict[str, Any]]) -> None:
    """Advance the data iterator past the checkpoint's batches, then put
    the checkpoint's RNG state back (or say why the resume is inexact)."""
    loader = loop.dataloader
    print_log(f'Resume: skipping the {loop._iter} batches the checkpoint '
              'already trained on', logger='current')
    for _ in range(loop._iter):
        next(loop.dataloader_iterator)
    restarts = loop.dataloader_iterator._epoch
    if restarts and loader.num_workers > 0 and not loader.persistent_workers:
        print_log(
            f'Resume is not bit-identical: the skipped batches ran through '
            f'the train data {restarts} time(s), and each restart of the '
            'data iterator seeded its workers from the global RNG as it was '
            'at that moment of the uninterrupted run. Use '
            "sampler=dict(type='InfiniteSampler') or num_workers=0 for an "
            'exact resume.', logger='current', level=logging.WARNING)
    if state is None:
        print_log(
            'Resume is not bit-identical: the checkpoint holds no RNG state '
            '(not written by ExactResumeIterBasedTrainLoop); random draws '
            'continue from the seed instead.', logger='current',
            level=logging.WARNING)
        return
    set_rng_state(state)


def _ensure_hook(runner) -> None:
    if _hook(runner) is None:
        runner.register_hook(ExactResumeHook())
