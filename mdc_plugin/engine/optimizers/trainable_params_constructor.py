"""Optimizer constructor that leaves frozen parameters out entirely."""
from typing import List, Optional, Union

from mmengine.optim import DefaultOptimWrapperConstructor
from mmpretrain.registry import OPTIM_WRAPPER_CONSTRUCTORS
from torch import nn


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class TrainableParamsOptimWrapperConstructor(DefaultOptimWrapperConstructor):
    """MMEngine's default constructor, minus parameters with
    ``requires_grad=False`` (MMEngine's own keeps them in the param groups).

    Use with ``optim_wrapper = dict(constructor=
    'TrainableParamsOptimWrapperConstructor', ...)``; ``paramwise_cfg``
    works as usual.
    """

    def __init__(self, optim_wrapper_cfg: dict,
                 paramwise_cfg: Optional[dict] = None) -> None:
        # A non-empty paramwise_cfg routes construction through add_params,
        # where the filtering happens; bypass_duplicate=False is the default.
        super().__init__(optim_wrapper_cfg,
                         paramwise_cfg or dict(bypass_duplicate=False))

    def add_params(self, params: List[dict], module: nn.Module,
                   prefix: str = '',
                   is_dcn_module: Optional[Union[int, float]] = None
                   ) -> None:
        groups: List[dict] = []
        super().add_params(groups, module, prefix, is_dcn_module)
        params.extend(g for g in groups
                      if all(p.requires_grad for p in g['params']))
