"""Masked Condition Strategy (MCS) and classifier-free guidance (CFG).

Training: a fraction ``p_cond`` of the samples get a weakened condition;
MCS replaces each of their condition tokens by the condition [MASK] id with
probability ``p_mask``, CFG replaces all of them (the null condition).

Sampling combines the full-condition prediction with the weak-condition
one (masked for MCS, null for CFG) as

    log p~ = (1 - s) * log p(x | y_weak) + s * log p(x | y),

renormalised over the vocabulary. ``s = 1`` is the plain conditional model,
``s = 0`` the weak one, ``s > 1`` pushes away from the weak prediction.
This is the paper's classifier-free guidance definition with the weak
prediction in place of the unconditional one. (The paper prints its MCS
definition with ``s`` and ``1 - s`` swapped, which contradicts its own
statement that a higher scale puts more weight on the condition; we use
the form consistent with it.)
"""
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

MODES = ('mcs', 'cfg')


@MODELS.register_module()
class MaskedConditionGuidance:
    """Condition masking at train time and guided predictions at sample time.

    Args:
        mode: ``'mcs'`` (mask condition tokens) or ``'cfg'`` (drop the whole
            condition).
        p_cond: fraction of training samples whose condition is weakened.
        p_mask: per-token mask probability of MCS at training time.
        scale: default guidance scale at sampling time (>= 0).
        sample_p_mask: per-token mask probability of the weak condition at
            sampling time (default: ``p_mask``, as in the paper).
    """

    def __init__(self, mode: str = 'mcs', p_cond: float = 0.1,
                 p_mask: float = 0.1, scale: float = 1.0,
                 sample_p_mask: Optional[float] = None) -> None:
        if mode not in MODES:
            raise ValueError(f'MaskedConditionGuidance: mode={mode!r} is not '
                             f'one of {MODES}')
        if sample_p_mask is None:
            sample_p_mask = p_mask
        for name, value in (('p_cond', p_cond), ('p_mask', p_mask),
                            ('sample_p_mask', sample_p_mask)):
            if not 0 <= value <= 1:
                raise ValueError(f'MaskedConditionGuidance: {name}={value} '
                                 'must be in [0, 1]')
        self.mode = mode
        self.p_cond = float(p_cond)
        self.p_mask = float(p_mask)
        self.sample_p_mask = float(sample_p_mask)
        self.scale = self.check_scale(scale)

    @staticmethod
    def check_scale(scale: float) -> float:
        """Return ``scale`` as a float; a negative scale is an error."""
        scale = float(scale)
        if not scale >= 0:  # also refuses NaN
            raise ValueError(f'guidance scale={scale} must be >= 0')
        return scale

    def weaken(self, codes: Tensor, mask_index: int,
               generator: Optional[torch.Generator] = None,
               sampling: bool = True) -> Tensor:
        """Weak condition of every sample: (B, N) -> (B, N) code ids
        (MCS masks with ``sample_p_mask`` when ``sampling``, else
        ``p_mask``)."""
        if self.mode == 'cfg':
            return torch.full_like(codes, mask_index)
        p = self.sample_p_mask if sampling else self.p_mask
        u = torch.rand(codes.shape, device=codes.device, generator=generator)
        return codes.masked_fill(u < p, mask_index)

    def train_condition(self, codes: Tensor, mask_index: int) -> Tensor:
        """Training-time condition: a ``p_cond`` fraction of the samples
        weakened. (B, N) -> (B, N)."""
        chosen = torch.rand(codes.shape[0], device=codes.device) < self.p_cond
        weak = self.weaken(codes, mask_index, sampling=False)
        return torch.where(chosen[:, None], weak, codes)

    def combine(self, logits_full: Tensor, logits_weak: Tensor,
                scale: float) -> Tensor:
        """Guided log-probabilities (..., V) from two sets of logits."""
        full = F.log_softmax(logits_full.float(), -1)
        if scale == 1:
            return full
        weak = F.log_softmax(logits_weak.float(), -1)
        return F.log_softmax((1 - scale) * weak + scale * full, -1)

    def guided_log_probs(self, predict: Callable[[Tensor], Tensor],
                         codes: Tensor, mask_index: int,
                         scale: Optional[float] = None,
                         weak_codes: Optional[Tensor] = None) -> Tensor:
        """Guided log p(x0 | ...) with one forward pass of a doubled batch.

        Args:
            predict: condition codes (B', N) -> logits (B', L, V).
            codes: (B, N) full condition.
            mask_index: the condition [MASK] id.
            scale: guidance scale (default ``self.scale``).
            weak_codes: (B, N) weak condition (default: :meth:`weaken`).
        Returns:
            (B, L, V) log-probabilities.
        """
        scale = self.scale if scale is None else self.check_scale(scale)
        if scale == 1:
            return F.log_softmax(predict(codes).float(), -1)
        if weak_codes is None:
            weak_codes = self.weaken(codes, mask_index)
        logits = predict(torch.cat([codes, weak_codes]))
        full, weak = logits.chunk(2)
        return self.combine(full, weak, scale)
