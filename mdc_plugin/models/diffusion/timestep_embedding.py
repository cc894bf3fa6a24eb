"""Sinusoidal timestep embedding and the time MLP of the diffusion heads."""
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def timestep_embedding(t: Tensor, dims: int,
                       flip_sin_to_cos: bool = False) -> Tensor:
    """Sinusoidal embedding of integer timesteps: (B,) -> (B, dims) float32.

    ``half = dims // 2`` frequencies ``10000 ** (-i / half)``; the first
    half of the channels holds their sines and the second their cosines, or
    the other way round with ``flip_sin_to_cos``. An odd ``dims`` ends in a
    zero channel.
    """
    half = dims // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(
        half, device=t.device, dtype=torch.float32) / half)
    angles = t.float()[:, None] * freqs[None]
    waves = (angles.cos(), angles.sin()) if flip_sin_to_cos else (
        angles.sin(), angles.cos())
    return F.pad(torch.cat(waves, dim=-1), (0, dims % 2))


class TimestepMLP(nn.Sequential):
    """Timesteps (B,) -> :func:`timestep_embedding` -> Linear -> SiLU ->
    Linear -> (B, dims).

    A ``Sequential`` of exactly those layers, so its parameters are named
    ``0.weight``, ``0.bias``, ``2.weight``, ``2.bias`` as in the heads'
    checkpoints.

    Args:
        dims: embedding and output width.
        flip_sin_to_cos: cosines first (the Prefix-diffusion head's order);
            the D3PM head puts sines first.
    """

    def __init__(self, dims: int, flip_sin_to_cos: bool = False) -> None:
        super().__init__(nn.Linear(dims, dims), nn.SiLU(),
                         nn.Linear(dims, dims))
        self.flip_sin_to_cos = flip_sin_to_cos

    def forward(self, t: Tensor) -> Tensor:
        """(B,) integer timesteps -> (B, dims)."""
        return super().forward(timestep_embedding(
            t, self[0].in_features, self.flip_sin_to_cos))
