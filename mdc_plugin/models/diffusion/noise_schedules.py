"""Gaussian noise schedules for continuous embedding diffusion.

Each schedule gives ``alpha_bar[t]`` for ``t = 0..T-1``, the fraction of
signal variance left after ``t + 1`` forward steps
(``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``).

* ``linear``: DDPM betas, linear from 1e-4 to 0.02 (scaled by 1000 / T).
* ``trunc_linear``: the same betas shifted up by 0.01 (Diffusion-LM's
  ``trunc_lin``; Prefix-diffusion's best). The first step already removes
  about 1% of the signal, so low-t training samples are not trivially
  close to the clean embeddings.
* ``cosine``: Nichol & Dhariwal, ``cos((t/T + s) / (1 + s) * pi / 2) ** 2``.
* ``trunc_cosine``: ``cos((t/T + 0.1) / 1.1 * pi / 2) ** 2`` (``trunc_cos``),
  not renormalised, so the first step already keeps only 0.979 of the
  signal (``cosine`` and ``sqrt`` are divided by their value at t = 0).
* ``sqrt``: Diffusion-LM's ``1 - sqrt(t/T + 1e-4)``.

Betas derived from an ``alpha_bar`` curve are clipped at 0.999.
"""
import math
from typing import Callable

import torch
from torch import Tensor

NOISE_SCHEDULES = ('linear', 'trunc_linear', 'cosine', 'trunc_cosine',
                   'sqrt')
MAX_BETA = 0.999


def linear_betas(num_steps: int, shift: float = 0.0) -> Tensor:
    """DDPM linear betas (T,), float64, plus ``shift``."""
    scale = 1000.0 / num_steps
    return torch.linspace(scale * 1e-4 + shift, scale * 0.02 + shift,
                          num_steps, dtype=torch.float64)


def betas_from_alpha_bar(num_steps: int, alpha_bar: Callable[[float], float],
                         truncated: bool = False) -> Tensor:
    """Betas (T,) with ``prod(1 - beta[:t+1]) == alpha_bar((t+1)/T) /
    alpha_bar(0)``, each clipped at :data:`MAX_BETA`.

    With ``truncated`` the curve is taken as it is, not renormalised by
    ``alpha_bar(0)``: ``prod(1 - beta[:t+1]) == alpha_bar((t+1)/T)``, so a
    curve starting below 1 removes signal from the first step on (the point
    of Diffusion-LM's truncated schedules).
    """
    def previous(i: int) -> float:
        return 1.0 if truncated and i == 0 else alpha_bar(i / num_steps)

    betas = [
        min(1 - alpha_bar((i + 1) / num_steps) / previous(i), MAX_BETA)
        for i in range(num_steps)
    ]
    return torch.tensor(betas, dtype=torch.float64)


def noise_schedule(name: str, num_steps: int) -> Tensor:
    """``alpha_bar`` (T,), float64, strictly decreasing in (0, 1).

    Args:
        name: one of :data:`NOISE_SCHEDULES`.
        num_steps: number of diffusion steps T (>= 2).
    """
    if num_steps < 2:
        raise ValueError(f'num_steps={num_steps} must be >= 2')
    if name == 'linear':
        betas = linear_betas(num_steps)
    elif name == 'trunc_linear':
        betas = linear_betas(num_steps, shift=0.01)
    elif name == 'cosine':
        s = 0.008
        betas = betas_from_alpha_bar(
            num_steps, lambda t: math.cos((t + s) / (1 + s) * math.pi / 2)**2)
    elif name == 'trunc_cosine':
        betas = betas_from_alpha_bar(
            num_steps, lambda t: math.cos((t + 0.1) / 1.1 * math.pi / 2)**2,
            truncated=True)
    elif name == 'sqrt':
        betas = betas_from_alpha_bar(num_steps,
                                     lambda t: 1 - math.sqrt(t + 1e-4))
    else:
        raise ValueError(f'noise schedule {name!r} is not one of '
                         f'{NOISE_SCHEDULES}')
    if float(betas.max()) >= 1 or float(betas.min()) <= 0:
        raise ValueError(f'{name} schedule with {num_steps} steps has betas '
                         f'outside (0, 1): use more steps')
    return torch.cumprod(1 - betas, dim=0)


def sampling_timesteps(num_steps: int, steps: int) -> Tensor:
    """Descending timesteps (S,) from T-1 to 0 for an S-step sampler
    (``steps >= T`` visits every step; fewer skips evenly)."""
    if steps < 1:
        raise ValueError(f'sampling steps={steps} must be >= 1')
    steps = min(steps, num_steps)
    return torch.linspace(num_steps - 1, 0, steps).round().long()
