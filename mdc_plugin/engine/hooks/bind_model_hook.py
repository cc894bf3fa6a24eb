"""Hand the runner's model to the metrics that run it."""
from typing import Optional

from mmengine.evaluator import Evaluator
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS


@HOOKS.register_module()
class BindModelToMetricsHook(Hook):
    """Before each validation / test, call ``metric.bind_model(model)`` on
    every metric of the loop's evaluator that has ``bind_model`` (e.g.
    ``ShapeWordAccuracy``); other metrics are left alone. On in every
    config through ``default_hooks.bind_model``."""

    def before_val(self, runner) -> None:
        self._bind(runner.val_evaluator, runner.model)

    def before_test(self, runner) -> None:
        self._bind(runner.test_evaluator, runner.model)

    @staticmethod
    def _bind(evaluator: Optional[Evaluator], model) -> None:
        for metric in getattr(evaluator, 'metrics', None) or []:
            if callable(getattr(metric, 'bind_model', None)):
                metric.bind_model(model)
