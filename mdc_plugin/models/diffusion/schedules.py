"""Every diffusion schedule and timestep grid of the caption heads.

* :func:`commit_counts`: how many positions each masked-diffusion (MDC)
  decoding step commits.
* :func:`mask_replace_schedule`: the cumulative alpha-bar / gamma-bar of
  VQ-Diffusion's mask-and-replace transition (D3PM head).
* :func:`noise_schedule`: Gaussian ``alpha_bar`` curves for continuous
  embedding diffusion (Prefix-diffusion head):

  * ``linear``: DDPM betas, linear from 1e-4 to 0.02 (scaled by 1000 / T).
  * ``trunc_linear``: the same betas shifted up by 0.01 (Diffusion-LM's
    ``trunc_lin``; Prefix-diffusion's best). The first step already removes
    about 1% of the signal, so low-t training samples are not trivially
    close to the clean embeddings.
  * ``cosine``: Nichol & Dhariwal, ``cos((t/T + s) / (1 + s) * pi / 2) ** 2``.
  * ``trunc_cosine``: ``cos((t/T + 0.1) / 1.1 * pi / 2) ** 2``
    (``trunc_cos``), not renormalised, so the first step already keeps only
    0.979 of the signal (``cosine`` and ``sqrt`` are divided by their value
    at t = 0).
  * ``sqrt``: Diffusion-LM's ``1 - sqrt(t/T + 1e-4)``.

  Betas derived from an ``alpha_bar`` curve are clipped at 0.999.
* :func:`timestep_pairs` (discrete, t = T..0) and :func:`sampling_timesteps`
  (Gaussian, t = T-1..0): the step-skipping grids of the samplers, both on
  :func:`descending_grid`.
"""
import math
from typing import Callable, List, Tuple

import torch
from torch import Tensor

COMMIT_SCHEDULES = ('uniform', 'cosine')
NOISE_SCHEDULES = ('linear', 'trunc_linear', 'cosine', 'trunc_cosine',
                   'sqrt')
MAX_BETA = 0.999


# ------------------------------------------------------ masked diffusion
def commit_counts(num_tokens: int, steps: int,
                  schedule: str = 'uniform') -> List[int]:
    """How many masked positions each decoding step commits.

    ``uniform`` spreads ``num_tokens`` evenly over the steps (LLaDA);
    ``cosine`` keeps a fraction cos(pi/2 * s/steps) masked after step s
    (MaskGIT), committing few tokens early and many late. ``steps`` larger
    than ``num_tokens`` is clamped to one token per step.

    Returns:
        ``min(steps, num_tokens)`` positive ints that sum to ``num_tokens``.
    """
    if steps < 1:
        raise ValueError(f'steps={steps} must be >= 1')
    if schedule not in COMMIT_SCHEDULES:
        raise ValueError(f'schedule={schedule!r} is not one of '
                         f'{COMMIT_SCHEDULES}')
    steps = min(steps, num_tokens)
    if schedule == 'uniform':
        base, extra = divmod(num_tokens, steps)
        return [base + (1 if s < extra else 0) for s in range(steps)]
    remaining = [math.floor(num_tokens * math.cos(math.pi / 2 * s / steps))
                 for s in range(steps + 1)]
    counts = [remaining[s] - remaining[s + 1] for s in range(steps)]
    # Every step commits at least one token; take the surplus from the
    # largest (last) steps so the total stays num_tokens.
    for s in range(steps):
        if counts[s] < 1:
            deficit = 1 - counts[s]
            counts[s] = 1
            for j in range(steps - 1, -1, -1):
                take = min(deficit, counts[j] - 1)
                if j != s and take > 0:
                    counts[j] -= take
                    deficit -= take
                if deficit == 0:
                    break
    return counts


# ------------------------------------------------------- mask and replace
def mask_replace_schedule(num_timesteps: int,
                          alpha_bar: Tuple[float, float],
                          gamma_bar: Tuple[float, float]
                          ) -> Tuple[Tensor, Tensor]:
    """Cumulative alpha-bar and gamma-bar, linear over t = 1..T.

    Args:
        alpha_bar: (abar_1, abar_T), falling.
        gamma_bar: (gbar_1, gbar_T), rising.
    Returns:
        two (T + 1,) float64 tensors; index 0 is the identity (1 and 0).
    """
    if num_timesteps < 1:
        raise ValueError(f'num_timesteps={num_timesteps} must be >= 1')
    a1, a_end = alpha_bar
    g1, g_end = gamma_bar
    if not (0 < a_end <= a1 <= 1 and 0 <= g1 <= g_end < 1
            and a1 + g1 <= 1 and a_end + g_end <= 1):
        raise ValueError(f'alpha_bar={alpha_bar}, gamma_bar={gamma_bar} '
                         'are not a valid decreasing/increasing schedule')
    frac = torch.linspace(0, 1, num_timesteps, dtype=torch.float64)
    abar = torch.cat([torch.ones(1, dtype=torch.float64),
                      a1 + frac * (a_end - a1)])
    gbar = torch.cat([torch.zeros(1, dtype=torch.float64),
                      g1 + frac * (g_end - g1)])
    return abar, gbar


# --------------------------------------------------------------- Gaussian
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
    """``alpha_bar`` (T,), float64, strictly decreasing in (0, 1): the
    signal variance left after ``t + 1`` forward steps
    (``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``).

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


# --------------------------------------------------------- timestep grids
def descending_grid(start: int, num: int) -> Tensor:
    """``num`` evenly spaced integers from ``start`` down to 0, rounded:
    (num,) long."""
    return torch.linspace(start, 0, num).round().long()


def timestep_pairs(num_timesteps: int, steps: int) -> List[Tuple[int, int]]:
    """(t, s) jumps from T down to 0 in ``steps`` (<= T) near-equal strides
    (discrete diffusion: t = T..1 are noisy, 0 is clean)."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f'sampling steps={steps} must be in [1, '
                         f'{num_timesteps}]')
    grid = descending_grid(num_timesteps, steps + 1)
    return list(zip(grid[:-1].tolist(), grid[1:].tolist()))


def sampling_timesteps(num_steps: int, steps: int) -> Tensor:
    """Descending timesteps (S,) from T-1 to 0 for an S-step sampler
    (Gaussian diffusion: t = 0..T-1 are all noisy; ``steps >= T`` visits
    every step, fewer skips evenly)."""
    if steps < 1:
        raise ValueError(f'sampling steps={steps} must be >= 1')
    return descending_grid(num_steps - 1, min(steps, num_steps))
