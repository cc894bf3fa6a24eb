"""ViTDet-style simple feature pyramid for plain (single-stride) ViTs.

A plain ViT with patch size 16 yields feature maps at stride 16 only.
ViTDet (Li et al., 2022) builds the pyramid a detector needs from the
last map alone: two stride-2 deconvolutions (stride 4), one (stride 8),
identity (stride 16) and a 2x2 max-pool (stride 32), each followed by a
1x1 and a 3x3 convolution with channel LayerNorm; extra coarser levels
are max-pooled from the last one.

MMDetection's ViTDet project ships such a neck (``SimpleFPN``), but it
takes a single tensor and lives outside the MMDetection package;
:class:`ViTSimplePyramid` takes the tuple that MMPretrain backbones
return and is registered in MMPretrain's registry, so an MMDetection
config reaches it as ``type='mmpretrain.ViTSimplePyramid'``.
"""
from typing import Sequence, Tuple

import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from mmpretrain.models.utils import LayerNorm2d
from mmpretrain.registry import MODELS

_SCALES = (4.0, 2.0, 1.0, 0.5)


def _rescale(channels: int, scale: float) -> Tuple[nn.Module, int]:
    """The resampling branch for one pyramid level and its out width."""
    if scale == 4.0:
        return nn.Sequential(
            nn.ConvTranspose2d(channels, channels // 2, 2, stride=2),
            LayerNorm2d(channels // 2), nn.GELU(),
            nn.ConvTranspose2d(channels // 2, channels // 4, 2,
                               stride=2)), channels // 4
    if scale == 2.0:
        return nn.ConvTranspose2d(channels, channels // 2, 2,
                                  stride=2), channels // 2
    if scale == 1.0:
        return nn.Identity(), channels
    return nn.MaxPool2d(kernel_size=2, stride=2), channels


def _conv_ln(in_channels: int, out_channels: int,
             kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size,
                  padding=kernel_size // 2, bias=False),
        LayerNorm2d(out_channels))


@MODELS.register_module()
class ViTSimplePyramid(BaseModule):
    """Multi-scale pyramid from one ViT feature map (ViTDet's design).

    Args:
        in_channels (int): Width C of the backbone feature map.
        out_channels (int): Width of every pyramid level. Defaults to 256.
        scales (Sequence[float]): Resampling factor of each level relative
            to the input, from fine to coarse; each one of 4, 2, 1, 0.5.
            Defaults to (4, 2, 1, 0.5) (strides 4/8/16/32 for patch 16).
        num_outs (int): Number of outputs; levels beyond ``len(scales)``
            are stride-2 subsamplings of the last one. Defaults to 5.
        init_cfg (dict, optional): MMEngine init config.

    Input: the backbone's outputs, a tuple whose last entry is
    (B, C, H, W) (``VisionTransformer(out_type='featmap')``). Output: a
    tuple of ``num_outs`` maps (B, out_channels, H * s, W * s).
    """

    def __init__(self, in_channels: int, out_channels: int = 256,
                 scales: Sequence[float] = _SCALES, num_outs: int = 5,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        scales = tuple(float(s) for s in scales)
        bad = [s for s in scales if s not in _SCALES]
        if bad or not scales:
            raise ValueError(f'ViTSimplePyramid: scales must be taken from '
                             f'{_SCALES}, got {scales}')
        if num_outs < len(scales):
            raise ValueError(f'ViTSimplePyramid: num_outs={num_outs} is '
                             f'fewer than the {len(scales)} scales')
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.scales = scales
        self.num_outs = num_outs
        self.rescales = nn.ModuleList()
        self.laterals = nn.ModuleList()
        self.outputs = nn.ModuleList()
        for scale in scales:
            branch, width = _rescale(in_channels, scale)
            self.rescales.append(branch)
            self.laterals.append(_conv_ln(width, out_channels, 1))
            self.outputs.append(_conv_ln(out_channels, out_channels, 3))

    def forward(self, inputs) -> Tuple[Tensor, ...]:
        """(..., (B, C, H, W)) -> ``num_outs`` maps, fine to coarse."""
        x = inputs[-1] if isinstance(inputs, (tuple, list)) else inputs
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(
                f'ViTSimplePyramid expects a (B, {self.in_channels}, H, W) '
                f'feature map, got {tuple(x.shape)}; use '
                "VisionTransformer(out_type='featmap')")
        outs = [
            out(lat(branch(x))) for branch, lat, out in zip(
                self.rescales, self.laterals, self.outputs)
        ]
        while len(outs) < self.num_outs:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2))
        return tuple(outs)
