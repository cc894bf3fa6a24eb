"""VQ-Diffusion's mask-and-replace transition, in log space.

States are the V ids of a caption vocabulary; one of them (``mask_id``) is
the absorbing [MASK] state and the other K = V - 1 are "real" tokens. One
forward step from s to t (s < t) keeps a real token with probability
``alpha``, replaces it by a uniformly drawn real token with ``beta`` each
(K of them) or masks it with ``gamma`` (``alpha + K beta + gamma = 1``);
[MASK] stays [MASK]. The cumulative schedules follow VQ-Diffusion: over
t = 1..T, alpha-bar falls linearly from 0.99999 to 9e-6 and gamma-bar rises
linearly from 9e-6 to 0.99999 (t = 0 is the identity; see
:func:`.schedules.mask_replace_schedule`). Any s -> t jump is
again mask-and-replace with ``alpha = abar_t / abar_s`` and
``1 - gamma = (1 - gbar_t) / (1 - gbar_s)``, which gives step skipping.

Every function works on (..., V) log-probabilities and never forms a
V x V matrix.
"""
from typing import Tuple

import torch
from torch import Tensor, nn

from .schedules import mask_replace_schedule

#: log of "zero probability" (finite so that sums and KLs stay finite)
LOG_ZERO = -70.0


def _log(x: Tensor) -> Tensor:
    return x.clamp(min=1e-30).log().clamp(min=LOG_ZERO)


class MaskReplaceTransition(nn.Module):
    """Cumulative mask-and-replace schedule over ``num_timesteps`` steps.

    Args:
        vocab_size: V, the number of states including [MASK].
        mask_id: index of the [MASK] state.
        num_timesteps: T.
        alpha_bar: (abar_1, abar_T).
        gamma_bar: (gbar_1, gbar_T).
    """

    def __init__(self, vocab_size: int, mask_id: int,
                 num_timesteps: int = 100,
                 alpha_bar: Tuple[float, float] = (0.99999, 0.000009),
                 gamma_bar: Tuple[float, float] = (0.000009, 0.99999)
                 ) -> None:
        super().__init__()
        if not 0 <= mask_id < vocab_size or vocab_size < 3:
            raise ValueError(f'mask_id={mask_id} must index a vocabulary of '
                             f'>= 3 states (vocab_size={vocab_size})')
        abar, gbar = mask_replace_schedule(num_timesteps, alpha_bar,
                                           gamma_bar)
        self.num_states = vocab_size
        self.num_real = vocab_size - 1
        self.mask_id = mask_id
        self.num_timesteps = num_timesteps
        # (T + 1,) cumulative alpha-bar and gamma-bar, index 0 = identity
        self.register_buffer('abar', abar, persistent=False)
        self.register_buffer('gbar', gbar, persistent=False)
        is_mask = torch.zeros(vocab_size, dtype=torch.bool)
        is_mask[mask_id] = True
        self.register_buffer('is_mask', is_mask, persistent=False)

    # ------------------------------------------------------------ schedule
    def cumulative(self, t: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(alpha-bar, beta-bar, gamma-bar) of q(x_t | x_0); t (B,) long."""
        a, g = self.abar[t], self.gbar[t]
        return a.float(), ((1 - a - g) / self.num_real).float(), g.float()

    def jump(self, s: Tensor, t: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """(alpha, beta, gamma) of q(x_t | x_s) for s <= t; (B,) each."""
        a = self.abar[t] / self.abar[s]
        g = 1 - (1 - self.gbar[t]) / (1 - self.gbar[s])
        return a.float(), ((1 - a - g) / self.num_real).float(), g.float()

    # -------------------------------------------------------- log-space ops
    def _bcast(self, x: Tensor, like: Tensor) -> Tensor:
        """(B,) -> (B, 1, ..., 1) broadcastable against ``like``."""
        return x.view(-1, *([1] * (like.dim() - 1)))

    def propagate(self, log_p: Tensor, abg: Tuple[Tensor, Tensor, Tensor]
              ) -> Tensor:
        """Push a distribution over x_s through a mask-and-replace jump.

        log_p (B, ..., V) (may be unnormalised: mass is preserved) ->
        log of the x_t marginal (B, ..., V).
        """
        a, b, g = (self._bcast(v, log_p) for v in abg)
        log_mask_p = log_p[..., self.mask_id:self.mask_id + 1]
        log_real = log_p.masked_fill(self.is_mask, LOG_ZERO)
        log_real_mass = torch.logsumexp(log_real, -1, keepdim=True)
        real = torch.logaddexp(log_real + _log(a),
                               log_real_mass + _log(b))
        mask = torch.logaddexp(log_real_mass + _log(g), log_mask_p)
        return torch.where(self.is_mask, mask, real)

    def likelihood(self, x_t: Tensor,
                   abg: Tuple[Tensor, Tensor, Tensor]) -> Tensor:
        """log q(x_t | x_s = i) for every i: x_t (B, L) -> (B, L, V)."""
        a, b, g = (self._bcast(v, x_t)[..., None] for v in abg)
        shape = (*x_t.shape, self.num_states)
        hit = torch.zeros(shape, device=x_t.device).scatter_(
            -1, x_t[..., None], 1.0).bool()
        t_masked = (x_t == self.mask_id)[..., None]
        # x_t real: alpha [i == x_t] + beta for real i, 0 for i = mask
        real = torch.where(hit, _log(a + b), _log(b).expand(shape))
        real = real.masked_fill(self.is_mask, LOG_ZERO)
        # x_t mask: gamma for real i, 1 for i = mask
        masked = torch.where(self.is_mask, torch.zeros_like(real),
                             _log(g).expand(shape))
        return torch.where(t_masked, masked, real)

    def q_sample(self, x0: Tensor, t: Tensor) -> Tensor:
        """Corrupt x0 (B, L) to x_t ~ q(x_t | x_0) (B, L); t (B,)."""
        a, b, g = (self._bcast(v, x0) for v in self.cumulative(t))
        u = torch.rand(x0.shape, device=x0.device)
        replace = torch.randint(0, self.num_real, x0.shape,
                                device=x0.device)
        replace = replace + (replace >= self.mask_id).long()  # skip mask
        # u in [0, a): keep; [a, a + K b): uniform real; else mask
        keep = u < a
        uniform = (u >= a) & (u < a + self.num_real * b)
        out = torch.where(keep, x0, replace)
        out = torch.where(keep | uniform, out,
                          torch.full_like(x0, self.mask_id))
        return out

    def posterior(self, log_x0: Tensor, x_t: Tensor, t: Tensor,
                  s: Tensor) -> Tensor:
        """log q(x_s | x_t, x0_hat), s < t, marginalised over x0_hat.

        ``sum_x0 p(x0) q(x_t | x_s) q(x_s | x0) / q(x_t | x0)``: each term
        is a normalised posterior, so the sum is a distribution.

        Args:
            log_x0: (B, L, V) log p(x0) (no mass on [MASK]).
            x_t: (B, L) current ids.
            t, s: (B,) long time steps, 0 <= s < t.
        Returns:
            (B, L, V) normalised log-probabilities of x_s.
        """
        # q(x_t | x0) as a function of x0 (same form as q(x_t | x_s = i))
        log_qt_x0 = self.likelihood(x_t, self.cumulative(t))
        weights = (log_x0 - log_qt_x0).masked_fill(self.is_mask, LOG_ZERO)
        log_qs = self.propagate(weights, self.cumulative(s))
        log_post = self.likelihood(x_t, self.jump(s, t)) + log_qs
        return log_post - torch.logsumexp(log_post, -1, keepdim=True)
