"""Helpers shared by the image-text models."""
from typing import Sequence, Union

from torch import Tensor


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
