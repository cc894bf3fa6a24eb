"""Hooks shared by the training tests."""
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module(force=True)
class LossLogHook(Hook):
    """Keeps ``(iteration, loss)`` of every training step."""

    def __init__(self):
        self.losses = []

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None):
        self.losses.append((runner.iter, float(outputs['loss'].detach())))


def train_and_log(cfg):
    """Train ``cfg`` with the Runner (it must list ``LossLogHook``):
    -> (losses, a copy of the final state dict, the runner)."""
    from mmengine.runner import Runner
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = next(h for h in runner.hooks if isinstance(h, LossLogHook))
    state = {k: v.clone() for k, v in runner.model.state_dict().items()}
    return log.losses, state, runner
