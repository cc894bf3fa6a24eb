"""Helpers shared by the image-text models."""
from typing import Optional, Sequence, Union

from mmpretrain.registry import MODELS
from torch import Tensor, nn


def build_data_preprocessor(cfg: Optional[Union[dict, nn.Module]]
                            ) -> nn.Module:
    """Build a data preprocessor; ``None`` gives MMPretrain's
    ``ClsDataPreprocessor`` (mean/std normalisation, batching)."""
    if cfg is None:
        cfg = dict(type='ClsDataPreprocessor')
    return MODELS.build(cfg) if isinstance(cfg, dict) else cfg


def image_tokens_from_backbone(outputs: Union[Tensor, Sequence[Tensor]],
                               backbone_name: str) -> Tensor:
    """Take the last stage of a backbone's outputs as (B, N, C) tokens.

    Raises a clear error when the backbone returns feature maps or pooled
    vectors instead of a token sequence (set ``out_type='raw'`` on
    MMPretrain's ``VisionTransformer``).
    """
    tokens = outputs[-1] if isinstance(outputs, (tuple, list)) else outputs
    if not isinstance(tokens, Tensor) or tokens.dim() != 3:
        shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else \
            type(tokens).__name__
        raise ValueError(
            f'{backbone_name} returned {shape}, but a caption decoder needs a '
            'token sequence (B, N, C); for VisionTransformer set '
            "out_type='raw'")
    return tokens
