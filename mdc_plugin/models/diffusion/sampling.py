"""Sampler settings and the random draws of the caption samplers."""
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor


def merge_sampler_cfg(defaults: Mapping[str, Any],
                      overrides: Optional[Mapping[str, Any]], owner: str,
                      hint: str = '') -> Dict[str, Any]:
    """``defaults`` updated by the non-None ``overrides``.

    Used for a head's ``sampler`` config and for per-call overrides alike;
    ``None`` keeps the default.

    Raises:
        ValueError: an override key that ``defaults`` lacks, naming it,
            ``owner`` and the allowed keys (then ``hint``).
    """
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise ValueError(f'{owner}: unknown sampler keys {unknown}; allowed: '
                         f'{sorted(defaults)}{hint}')
    merged = dict(defaults)
    merged.update((k, v) for k, v in overrides.items() if v is not None)
    return merged


def softmax_draw(logits: Tensor, temperature: float) -> Tuple[Tensor, Tensor]:
    """Draw from ``softmax(logits / temperature)`` (temperature > 0).

    (..., V) logits -> ids (...) and their probabilities (...).
    """
    probs = F.softmax(logits / temperature, dim=-1)
    ids = torch.multinomial(probs.flatten(0, -2), 1).view(probs.shape[:-1])
    return ids, probs.gather(-1, ids[..., None])[..., 0]


def gumbel_draw(log_probs: Tensor, temperature: float,
                generator: Optional[torch.Generator] = None) -> Tensor:
    """Categorical draw by the Gumbel-max trick: (..., V) log-probabilities
    -> (...) ids; ``temperature`` 0 is the argmax."""
    if temperature == 0:
        return log_probs.argmax(-1)
    u = torch.rand(log_probs.shape, device=log_probs.device,
                   generator=generator).clamp(1e-10, 1 - 1e-10)
    gumbel = -(-u.log()).log()
    return (log_probs / temperature + gumbel).argmax(-1)
