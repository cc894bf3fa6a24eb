"""FSDP support for the captioners (MMEngine ``FSDPStrategy``): an
auto-wrap policy and gradient clipping by the global norm over shards.

Only the image encoder's transformer layers become their own FSDP units.
The caption decoder and head stay in the root unit: the decoder projects
the image tokens with every block's cross-attention weights before the
blocks run, and the tied output layer reads the token embedding from the
head, so their weights must be gathered for the whole forward pass.
"""
from typing import Iterable, Optional, Sequence

import torch
import torch.distributed as dist
from mmengine.optim import OptimWrapper
from mmengine.registry import FUNCTIONS
from mmpretrain.registry import OPTIM_WRAPPERS
from torch import nn

__all__ = ['wrap_layers_by_name', 'clip_sharded_grad_norm_',
           'ShardedClipOptimWrapper']

#: MMPretrain's ViT / BEiT / EVA layers.
DEFAULT_LAYER_NAMES = ('TransformerEncoderLayer',
                       'BEiTTransformerEncoderLayer')


@FUNCTIONS.register_module()
def wrap_layers_by_name(module: nn.Module, recurse: bool,
                        nonwrapped_numel: int,
                        layer_names: Sequence[str] = DEFAULT_LAYER_NAMES
                        ) -> bool:
    """FSDP auto-wrap policy: wrap modules whose class name is listed.

    Config use (names are strings, so the config stays plain)::

        strategy = dict(type='FSDPStrategy', model_wrapper=dict(
            auto_wrap_policy=dict(type='wrap_layers_by_name',
                                  layer_names=['TransformerEncoderLayer'])))

    Args:
        module: the module FSDP asks about.
        recurse: True while FSDP descends (always continue), False when it
            asks whether to wrap ``module`` itself.
        nonwrapped_numel: parameters not yet wrapped (unused).
        layer_names: class names to wrap.
    """
    if recurse:
        return True
    return type(module).__name__ in set(layer_names)


def clip_sharded_grad_norm_(parameters: Iterable[torch.Tensor],
                            max_norm: float, norm_type: float = 2.0,
                            eps: float = 1e-6) -> torch.Tensor:
    """Clip gradients by their global L2 norm when each rank holds a shard.

    Under FSDP (``FULL_SHARD`` / ``SHARD_GRAD_OP``) every gradient element
    lives on exactly one rank, so the squared local norms are summed over
    ranks before clipping; ``torch.nn.utils.clip_grad_norm_`` would clip
    each shard by its own norm.

    Returns:
        Tensor: the global norm before clipping (scalar).
    """
    if float(norm_type) != 2.0:
        raise ValueError(f'clip_sharded_grad_norm_ supports norm_type=2, '
                         f'got {norm_type}')
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    squared = torch.stack(
        [g.detach().float().pow(2).sum() for g in grads]).sum()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(squared)
    total = squared.sqrt()
    scale = (max_norm / (total + eps)).clamp(max=1.0)
    for grad in grads:
        grad.detach().mul_(scale.to(grad.dtype))
    return total


@OPTIM_WRAPPERS.register_module()
class ShardedClipOptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``clip_grad=dict(max_norm=...)`` uses the
    global norm over FSDP shards (:func:`clip_sharded_grad_norm_`); the
    logged ``grad_norm`` is that global norm."""

    def __init__(self, optimizer, *args, clip_grad: Optional[dict] = None,
                 **kwargs) -> None:
        if clip_grad and clip_grad.get('type', 'norm') != 'norm':
            raise ValueError('ShardedClipOptimWrapper clips by norm only, '
                             f"got clip_grad type {clip_grad['type']!r}")
        super().__init__(optimizer, *args, clip_grad=clip_grad, **kwargs)
        if clip_grad:
            self.clip_func = clip_sharded_grad_norm_
