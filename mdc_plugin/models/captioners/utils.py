"""Helpers shared by the image-text models."""
import math
from typing import Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS
from torch import Tensor, nn

#: How feature-map tokens learn where they are (see ``image_tokens``).
FEATMAP_POS_EMBEDS = ('sincos', None)


def build_data_preprocessor(cfg: Optional[Union[dict, nn.Module]]
                            ) -> nn.Module:
    """Build a data preprocessor; ``None`` gives MMPretrain's
    ``ClsDataPreprocessor`` (mean/std normalisation, batching)."""
    if cfg is None:
        cfg = dict(type='ClsDataPreprocessor')
    return MODELS.build(cfg) if isinstance(cfg, dict) else cfg


def sincos_pos_embed_2d(height: int, width: int, dims: int,
                        device=None, dtype=None) -> Tensor:
    """Fixed 2-D sine-cosine position codes, (height * width, dims), rows
    first: a quarter of the channels each for sin(y), cos(y), sin(x), cos(x)
    at geometric frequencies (channels beyond a multiple of 4 stay zero)."""
    quarter = dims // 4
    out = torch.zeros(height * width, dims, device=device, dtype=dtype)
    if quarter == 0:
        return out
    freqs = torch.exp(-math.log(10000.0) * torch.arange(
        quarter, device=device, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(torch.arange(height, device=device),
                            torch.arange(width, device=device), indexing='ij')
    parts = []
    for coord in (ys.reshape(-1), xs.reshape(-1)):
        angles = coord.float()[:, None] * freqs[None]
        parts += [angles.sin(), angles.cos()]
    out[:, :4 * quarter] = torch.cat(parts, dim=1).to(out.dtype)
    return out


def select_stage(outputs: Union[Tensor, Sequence[Tensor]],
                 stage: int, backbone_name: str) -> Tensor:
    """One entry of a backbone's outputs (MMPretrain backbones return a
    tuple, one entry per ``out_indices`` stage); ``stage`` indexes it."""
    if not isinstance(outputs, (tuple, list)):
        outputs = (outputs, )
    try:
        return outputs[stage]
    except IndexError:
        raise ValueError(
            f'{backbone_name} returned {len(outputs)} output(s) but the '
            f'model asks for backbone_stage={stage}: set the backbone\'s '
            'out_indices or the model\'s backbone_stage') from None


def image_tokens_from_backbone(outputs: Union[Tensor, Sequence[Tensor]],
                               backbone_name: str, stage: int = -1,
                               pos_embed: Optional[str] = None) -> Tensor:
    """A backbone's output as a (B, N, C) token sequence.

    Accepts token sequences (B, N, C) as they are (ViT ``out_type='raw'``),
    feature maps (B, C, H, W) flattened row-major to (B, H*W, C) (ResNet,
    ConvNeXt, Swin, ViT ``out_type='featmap'``) and pooled vectors (B, C)
    as one token (B, 1, C).

    Args:
        outputs: the backbone's return value (a tensor or a tuple of them).
        backbone_name: names the backbone in error messages.
        stage: which output of a multi-stage tuple (default: the last).
        pos_embed: ``'sincos'`` adds fixed 2-D position codes to flattened
            feature maps, so a decoder knows where each token sits; ``None``
            leaves the features as they are (linear probes).
    """
    if pos_embed not in FEATMAP_POS_EMBEDS:
        raise ValueError(f'pos_embed={pos_embed!r} not one of '
                         f'{FEATMAP_POS_EMBEDS}')
    tokens = select_stage(outputs, stage, backbone_name)
    if not isinstance(tokens, Tensor) or tokens.dim() not in (2, 3, 4):
        shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else \
            type(tokens).__name__
        raise ValueError(
            f'{backbone_name} returned {shape}; a caption decoder needs a '
            'token sequence (B, N, C), a feature map (B, C, H, W) or a '
            'pooled vector (B, C)')
    if tokens.dim() == 2:
        return tokens[:, None]
    if tokens.dim() == 4:
        _, dims, height, width = tokens.shape
        tokens = tokens.flatten(2).transpose(1, 2)
        if pos_embed == 'sincos':
            tokens = tokens + sincos_pos_embed_2d(
                height, width, dims, tokens.device, tokens.dtype)
    return tokens


def count_parameters(module: nn.Module) -> dict:
    """``dict(trainable=..., total=...)`` parameter counts of ``module``."""
    params = list(module.parameters())
    return dict(trainable=sum(p.numel() for p in params if p.requires_grad),
                total=sum(p.numel() for p in params))
