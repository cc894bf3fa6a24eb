"""Diversity of generated captions (Prefix-diffusion-style evaluation).

All functions take *tokenized* captions (space-separated str, as
:func:`ptb_tokenize` returns them).

* ``Dist-n`` (corpus level): distinct n-grams / total n-grams over all
  predictions (one per image).
* ``Vocab``: number of distinct words over all predictions.
* ``MeanLength``: mean number of tokens per prediction.
* ``Self-BLEU-4`` (several samples per image): for every sample, the
  toolkit's sentence BLEU-4 (see :mod:`.bleu`) against the *other* samples
  of the same image; mean over samples, then over images. Lower is more
  diverse.
* ``Div-n`` (several samples per image): distinct n-grams among an image's
  samples / total words in those samples; mean over images (Shetty et al.,
  2017; Aneja et al., 2019).

Images with fewer than two samples are left out of Self-BLEU / Div-n.
"""
from typing import Dict, List, Sequence

import numpy as np

from .bleu import _bleu, cook, image_bleu_stats
from .ngrams import count_ngrams


def distinct_n(captions: Sequence[str], n: int) -> float:
    """Distinct n-grams / total n-grams over ``captions`` (0 if none)."""
    total = 0
    seen = set()
    for caption in captions:
        words = caption.split()
        grams = list(zip(*[words[i:] for i in range(n)]))
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def vocabulary_size(captions: Sequence[str]) -> int:
    """Number of distinct tokens over ``captions``."""
    return len({w for caption in captions for w in caption.split()})


def mean_length(captions: Sequence[str]) -> float:
    """Mean number of tokens per caption (0 if no captions)."""
    if not captions:
        return 0.0
    return float(np.mean([len(c.split()) for c in captions]))


def self_bleu(samples: Sequence[str], n: int = 4) -> float:
    """Mean BLEU-n of each sample against the other samples of one image."""
    if len(samples) < 2:
        raise ValueError('Self-BLEU needs at least two samples per image')
    cooked = [cook(s, n) for s in samples]
    scores = []
    for i, hyp in enumerate(cooked):
        others = cooked[:i] + cooked[i + 1:]
        testlen, reflen, guess, correct = image_bleu_stats(hyp, others, n)
        scores.append(_bleu(testlen, reflen, guess, correct, n)[n - 1])
    return float(np.mean(scores))


def div_n(samples: Sequence[str], n: int) -> float:
    """Distinct n-grams among ``samples`` / total words in ``samples``."""
    words_total = 0
    seen = set()
    for sample in samples:
        words = sample.split()
        words_total += len(words)
        seen.update(g for g in count_ngrams(words, n) if len(g) == n)
    return len(seen) / words_total if words_total else 0.0


def corpus_diversity(predictions: Sequence[str]) -> Dict[str, float]:
    """Dist-1/2/3, Vocab and MeanLength of one prediction per image."""
    out = {f'Dist-{n}': distinct_n(predictions, n) for n in (1, 2, 3)}
    out['Vocab'] = float(vocabulary_size(predictions))
    out['MeanLength'] = mean_length(predictions)
    return out


def sample_diversity(samples: Sequence[Sequence[str]]) -> Dict[str, float]:
    """Self-BLEU-4 and Div-1/2 over images with >= 2 samples.

    Returns an empty dict when no image has two samples.
    """
    groups: List[Sequence[str]] = [s for s in samples if len(s) >= 2]
    if not groups:
        return {}
    return {
        'Self-BLEU-4': float(np.mean([self_bleu(g) for g in groups])),
        'Div-1': float(np.mean([div_n(g, 1) for g in groups])),
        'Div-2': float(np.mean([div_n(g, 2) for g in groups])),
    }
