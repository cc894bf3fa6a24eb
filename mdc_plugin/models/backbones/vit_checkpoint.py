"""MMPretrain ``VisionTransformer`` with activation checkpointing.

MMPretrain 1.2.0's ``VisionTransformer`` has no ``with_cp`` option (its
``TransformerEncoderLayer`` always keeps every activation for backward).
:class:`CheckpointVisionTransformer` adds the switch without changing the
module tree, so its state dict is key-for-key that of
``VisionTransformer``: checkpoints load in either direction and the
parent's ``forward`` (position-embedding resizing, ``out_type``,
``out_indices``) is used unchanged.
"""
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from mmpretrain.models.backbones.vision_transformer import (
    TransformerEncoderLayer, VisionTransformer)
from mmpretrain.registry import MODELS


class _CheckpointedEncoderLayer(TransformerEncoderLayer):
    """An encoder layer that recomputes its activations in backward.

    Only ``forward`` differs from the parent; the instance's class is
    switched in place (no new parameters, no new keys).
    """

    def forward(self, x: Tensor) -> Tensor:
        """Tokens (B, N, C) -> tokens (B, N, C)."""
        if self.training and x.requires_grad:
            return checkpoint(super().forward, x, use_reentrant=False)
        return super().forward(x)


@MODELS.register_module()
class CheckpointVisionTransformer(VisionTransformer):
    """``VisionTransformer`` with ``with_cp`` (activation checkpointing).

    Args:
        with_cp (bool): Recompute each encoder layer's activations during
            backward instead of storing them (less memory, about one more
            forward pass of compute). Only active in training mode and
            when gradients flow. Defaults to False.
        **kwargs: Every argument of MMPretrain's ``VisionTransformer``.

    Input (B, 3, H, W); outputs as ``VisionTransformer`` (a tuple, one
    entry per ``out_indices``).
    """

    def __init__(self, *args, with_cp: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.with_cp = bool(with_cp)
        if not self.with_cp:
            return
        for i, layer in enumerate(self.layers):
            if type(layer) is not TransformerEncoderLayer:
                raise TypeError(
                    f'with_cp supports MMPretrain TransformerEncoderLayer '
                    f'blocks, but layer {i} is {type(layer).__name__}')
            layer.__class__ = _CheckpointedEncoderLayer
