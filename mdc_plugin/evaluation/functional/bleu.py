"""BLEU-1..n with the COCO caption toolkit's definition.

Same numbers as pycocoevalcap's ``Bleu(4)`` (``BleuScorer`` with
``option='closest'``): modified n-gram precision clipped by the largest
count in any reference, brevity penalty against the closest reference
length (ties go to the shorter one), ``tiny=1e-15``/``small=1e-9``
smoothing, corpus score from summed counts, per-image scores from each
image's own counts.
"""
import math
from collections import Counter
from typing import List, Sequence, Tuple

from .ngrams import count_ngrams

_TINY = 1e-15
_SMALL = 1e-9

#: (number of tokens, n-gram counts) of one tokenized sentence.
Cooked = Tuple[int, Counter]


def cook(sentence: str, n: int = 4) -> Cooked:
    """Return ``(len(tokens), count_ngrams(tokens, n))`` of a tokenized str."""
    words = sentence.split()
    return len(words), count_ngrams(words, n)


def image_bleu_stats(hyp: Cooked, refs: Sequence[Cooked],
                     n: int = 4) -> Tuple[int, int, List[int], List[int]]:
    """Return ``(testlen, reflen, guess, correct)`` for one image.

    Args:
        hyp (Cooked): The cooked prediction.
        refs (Sequence[Cooked]): The cooked references (at least one).
        n (int): Largest n-gram order.

    Returns:
        tuple: hypothesis length (int), closest reference length (int),
        candidate n-gram totals per order (list of n int) and clipped
        matches per order (list of n int).
    """
    testlen, counts = hyp
    reflen = min((abs(length - testlen), length) for length, _ in refs)[1]
    guess = [max(0, testlen - k) for k in range(n)]
    correct = [0] * n
    ref_counts = [c for _, c in refs]
    if len(ref_counts) == 1:
        only = ref_counts[0]
        for ngram, count in counts.items():
            match = only.get(ngram, 0)
            if match:
                correct[len(ngram) - 1] += min(count, match)
    else:
        for ngram, count in counts.items():
            match = max(c.get(ngram, 0) for c in ref_counts)
            if match:
                correct[len(ngram) - 1] += min(count, match)
    return testlen, reflen, guess, correct


def _bleu(testlen: float, reflen: float, guess: Sequence[float],
          correct: Sequence[float], n: int) -> List[float]:
    """BLEU-1..n from (summed) counts, smoothed as the toolkit does."""
    scores = []
    bleu = 1.
    for k in range(n):
        bleu *= (float(correct[k]) + _TINY) / (float(guess[k]) + _SMALL)
        scores.append(bleu**(1. / (k + 1)))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    if ratio < 1:
        penalty = math.exp(1 - 1 / ratio)
        scores = [s * penalty for s in scores]
    return scores


def bleu_from_cooked(hyps: Sequence[Cooked],
                     refs: Sequence[Sequence[Cooked]],
                     n: int = 4) -> Tuple[List[float], List[List[float]]]:
    """Corpus and per-image BLEU-1..n from cooked sentences.

    Args:
        hyps (Sequence[Cooked]): One cooked prediction per image.
        refs (Sequence[Sequence[Cooked]]): Cooked references per image.
        n (int): Largest n-gram order.

    Returns:
        tuple: ``(corpus, per_image)``: ``corpus`` is a list of n float
        (BLEU-1..n); ``per_image[k]`` is a list with one BLEU-(k+1) float
        per image.
    """
    if len(hyps) != len(refs):
        raise ValueError(f'{len(hyps)} predictions but {len(refs)} '
                         'reference lists')
    per_image: List[List[float]] = [[] for _ in range(n)]
    total_test = total_ref = 0
    total_guess = [0] * n
    total_correct = [0] * n
    for hyp, image_refs in zip(hyps, refs):
        testlen, reflen, guess, correct = image_bleu_stats(hyp, image_refs, n)
        total_test += testlen
        total_ref += reflen
        for k in range(n):
            total_guess[k] += guess[k]
            total_correct[k] += correct[k]
        for k, score in enumerate(_bleu(testlen, reflen, guess, correct, n)):
            per_image[k].append(score)
    corpus = _bleu(total_test, total_ref, total_guess, total_correct, n)
    return corpus, per_image


def corpus_bleu(hyps: Sequence[str], refs: Sequence[Sequence[str]],
                n: int = 4) -> Tuple[List[float], List[List[float]]]:
    """BLEU-1..n of tokenized predictions (str) against tokenized refs."""
    return bleu_from_cooked([cook(h, n) for h in hyps],
                            [[cook(r, n) for r in rs] for rs in refs], n)
