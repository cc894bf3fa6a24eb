"""Detect a NaN / inf training loss before it reaches the weights.

A hook that runs after the step (``after_train_iter``) is too late: the
optimizer has already applied the non-finite gradients. This hook therefore
wraps, when training starts, the two calls MMEngine's ``train_step`` makes
between the forward pass and the update:

* ``model.parse_losses`` (of the unwrapped model): the summed loss is
  checked with ``torch.isfinite``; on failure the iteration and every logged
  loss term are reported;
* ``optim_wrapper.update_params``: with ``action='skip'`` a flagged
  iteration runs no backward and no optimizer step (gradients are zeroed).
  Its loss values are still logged as they were, so the logging window that
  holds it shows a non-finite mean; the skip count is in the message hub
  (``nonfinite_loss_skips``).

With ``action='stop'`` a :class:`NonFiniteLossError` is raised before the
backward pass, so the weights, the optimizer state and every checkpoint on
disk are those of the last good iteration.

Cost: one host-device synchronisation per iteration on GPU (the finiteness
test is read on the host), plus one all-reduce of a flag per iteration in
distributed runs (so that all ranks skip together); nothing on CPU beyond a
scalar check. It is on (``action='stop'``) in every config through
``default_hooks.nonfinite_loss`` in ``configs/_base_/default_runtime.py``.
"""
import logging
from typing import Dict, Optional

import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmpretrain.registry import HOOKS

ACTIONS = ('stop', 'skip')


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or inf."""


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Stop or skip the step when the training loss is NaN or inf.

    Args:
        action: ``'stop'`` raises :class:`NonFiniteLossError` (nothing is
            updated or saved); ``'skip'`` drops the iteration's update and
            logs a warning.
        max_consecutive_skips: with ``'skip'``, raise after this many
            non-finite iterations in a row (a diverged run would otherwise
            skip forever). ``None`` never stops. 'skip' refuses gradient
            accumulation (it would drop the accumulated gradients).
    """

    priority = 'VERY_HIGH'

    def __init__(self, action: str = 'stop',
                 max_consecutive_skips: Optional[int] = 20) -> None:
        if action not in ACTIONS:
            raise ValueError(f'NonFiniteLossHook: action must be one of '
                             f'{ACTIONS}, got {action!r}')
        if max_consecutive_skips is not None and max_consecutive_skips < 1:
            raise ValueError('NonFiniteLossHook: max_consecutive_skips must '
                             f'be >= 1 or None, got {max_consecutive_skips}')
        self.action = action
        self.max_consecutive_skips = max_consecutive_skips
        self.num_skipped = 0
        self._consecutive = 0
        self._flagged = False
        self._runner = None

    # ------------------------------------------------------------ wiring --
    def before_train(self, runner) -> None:
        self._runner = runner
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not getattr(model.parse_losses, '_nonfinite_guard', False):
            model.parse_losses = self._guard_parse_losses(model.parse_losses)
        optim = runner.optim_wrapper
        accumulate = getattr(optim, '_accumulative_counts', 1)
        if self.action == 'skip' and accumulate > 1:
            # Skipping would drop the gradients already accumulated from
            # earlier micro-batches and shift later step boundaries.
            raise ValueError(
                "NonFiniteLossHook(action='skip') does not support gradient "
                f'accumulation (optim_wrapper.accumulative_counts='
                f"{accumulate}); use action='stop'")
        if not getattr(optim.update_params, '_nonfinite_guard', False):
            optim.update_params = self._guard_update_params(
                optim.update_params, optim)

    def _guard_parse_losses(self, parse_losses):
        def guarded(losses):
            loss, log_vars = parse_losses(losses)
            self._check(loss, log_vars)
            return loss, log_vars
        guarded._nonfinite_guard = True
        return guarded

    def _guard_update_params(self, update_params, optim):
        def guarded(loss, *args, **kwargs):
            if self._flagged:
                self._flagged = False
                optim.zero_grad()
                return None
            return update_params(loss, *args, **kwargs)
        guarded._nonfinite_guard = True
        return guarded

    # ------------------------------------------------------------- check --
    def _check(self, loss: torch.Tensor, log_vars: Dict) -> None:
        bad = ~torch.isfinite(loss.detach()).all()
        if get_world_size() > 1:
            flag = bad.to(torch.int32)
            torch.distributed.all_reduce(flag)
            bad = flag > 0
        if not bool(bad):
            self._consecutive = 0
            return
        runner = self._runner
        terms = ', '.join(f'{k}={_as_float(v)}' for k, v in log_vars.items())
        where = (f'iteration {runner.iter + 1} (epoch {runner.epoch + 1})'
                 if runner is not None else 'this iteration')
        message = f'non-finite training loss at {where}: {terms}'
        if self.action == 'stop':
            raise NonFiniteLossError(
                f'{message}. Training stopped before the backward pass; '
                'weights and checkpoints are those of the last finite '
                'iteration (set NonFiniteLossHook(action="skip") to skip '
                'such steps instead).')
        self.num_skipped += 1
        self._consecutive += 1
        self._flagged = True
        if runner is not None:
            runner.message_hub.update_info('nonfinite_loss_skips',
                                           self.num_skipped)
        print_log(f'{message}; optimizer step skipped '
                  f'({self.num_skipped} skipped so far)', logger='current',
                  level=logging.WARNING)
        limit = self.max_consecutive_skips
        if limit is not None and self._consecutive >= limit:
            raise NonFiniteLossError(
                f'{message}. {self._consecutive} consecutive non-finite '
                f'iterations (max_consecutive_skips={limit}): the run has '
                'diverged.')


def _as_float(value) -> float:
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)
