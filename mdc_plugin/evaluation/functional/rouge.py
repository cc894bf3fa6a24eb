"""ROUGE-L as the COCO caption toolkit computes it.

Same numbers as pycocoevalcap's ``Rouge``: tokens from ``str.split(' ')``
(so an empty caption is one empty token), LCS-based precision and recall
against each reference, the *maximum* precision and the *maximum* recall
over references (possibly from different references), F-measure with
``beta=1.2``. The LCS length comes from a bit-parallel algorithm on Python
integers instead of the toolkit's O(m*n) table; lengths are identical.
"""
from typing import List, Sequence, Tuple

import numpy as np

BETA = 1.2


def _match_masks(tokens: Sequence[str]) -> dict:
    """token -> int bit mask of the positions where it occurs."""
    masks: dict = {}
    for i, tok in enumerate(tokens):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    return masks


def lcs_length(masks: dict, length: int, other: Sequence[str]) -> int:
    """LCS length of a sequence (given by ``_match_masks``) and ``other``.

    Bit-parallel LCS (Allison-Dix / Hyyroe): one add, subtract, and, or per
    token of ``other``.
    """
    full = (1 << length) - 1
    v = full
    for tok in other:
        m = masks.get(tok)
        if m:
            u = v & m
            v = ((v + u) | (v - u)) & full
    return length - v.bit_count()


def rouge_l_image(candidate: str, refs: Sequence[str],
                  beta: float = BETA) -> float:
    """ROUGE-L (float) of one tokenized candidate against its references."""
    if not refs:
        raise ValueError('ROUGE-L needs at least one reference')
    token_c = candidate.split(' ')
    masks = _match_masks(token_c)
    prec_max = rec_max = 0.0
    for ref in refs:
        token_r = ref.split(' ')
        lcs = lcs_length(masks, len(token_c), token_r)
        prec_max = max(prec_max, lcs / float(len(token_c)))
        rec_max = max(rec_max, lcs / float(len(token_r)))
    if prec_max != 0 and rec_max != 0:
        return ((1 + beta**2) * prec_max * rec_max) / float(
            rec_max + beta**2 * prec_max)
    return 0.0


def rouge_l(candidates: Sequence[str],
            refs: Sequence[Sequence[str]]) -> Tuple[float, np.ndarray]:
    """Mean and per-image ROUGE-L of tokenized candidates (list of str)."""
    if len(candidates) != len(refs):
        raise ValueError(f'{len(candidates)} predictions but {len(refs)} '
                         'reference lists')
    scores: List[float] = [
        rouge_l_image(c, r) for c, r in zip(candidates, refs)
    ]
    arr = np.asarray(scores, dtype=np.float64)
    return (float(np.mean(arr)) if len(arr) else float('nan')), arr
