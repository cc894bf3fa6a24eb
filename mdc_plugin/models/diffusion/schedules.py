"""Schedules for masked-diffusion decoding."""
import math
from typing import List

COMMIT_SCHEDULES = ('uniform', 'cosine')


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
