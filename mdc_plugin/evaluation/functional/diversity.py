"""Diversity of generated captions (Prefix-diffusion-style evaluation).

All functions take *tokenized* captions (space-separated str, as
:func:`ptb_tokenize` returns them).

* ``Dist-n`` (corpus level): distinct n-grams / total n-grams over all
  predictions (one per image).
* ``Vocab``: number of distinct words over all predictions.
* ``MeanLength``: mean number of tokens per prediction.
* ``Self-BLEU-4`` (several samples per image): for every sample, the
  toolkit's sentence BLEU-4 (:func:`.ngram_table.bleu_from_table`, the
  one used for ``BLEU-4``) against the *other* samples
  of the same image; mean over samples, then over images. Lower is more
  diverse.
* ``Div-n`` (several samples per image): distinct n-grams among an image's
  samples / total words in those samples; mean over images (Shetty et al.,
  2017; Aneja et al., 2019).

Images with fewer than two samples are left out of Self-BLEU / Div-n.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .ngram_table import NgramTable, bleu_from_table


def _ngrams(words: Sequence[str], n: int) -> List[Tuple[str, ...]]:
    """The n-grams (tuples of n tokens) of a token list, in order."""
    return list(zip(*[words[i:] for i in range(n)]))


def distinct_n(captions: Sequence[str], n: int) -> float:
    """Distinct n-grams / total n-grams over ``captions`` (0 if none)."""
    total = 0
    seen = set()
    for caption in captions:
        grams = _ngrams(caption.split(), n)
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


def leave_one_out_bleu(groups: Sequence[Sequence[str]],
                       n: int = 4) -> List[List[float]]:
    """BLEU-n of every sample against the other samples of its group.

    Args:
        groups (Sequence[Sequence[str]]): Tokenized samples per image, at
            least two each.
        n (int): BLEU order.

    Returns:
        list[list[float]]: one sentence BLEU-n per sample, per group.
    """
    sentences: List[str] = []
    hyp_index: List[int] = []
    ref_index: List[List[int]] = []
    for samples in groups:
        if len(samples) < 2:
            raise ValueError('Self-BLEU needs at least two samples per image')
        for i, hyp in enumerate(samples):
            hyp_index.append(len(sentences))
            sentences.append(hyp)
            others = list(samples[:i]) + list(samples[i + 1:])
            ref_index.append(list(range(len(sentences),
                                        len(sentences) + len(others))))
            sentences.extend(others)
    _, per_sample = bleu_from_table(
        NgramTable.build(sentences, n), hyp_index, ref_index)
    scores, start = [], 0
    for samples in groups:
        scores.append(per_sample[n - 1][start:start + len(samples)])
        start += len(samples)
    return scores


def self_bleu(samples: Sequence[str], n: int = 4) -> float:
    """Mean BLEU-n of each sample against the other samples of one image."""
    return float(np.mean(leave_one_out_bleu([samples], n)[0]))


def div_n(samples: Sequence[str], n: int) -> float:
    """Distinct n-grams among ``samples`` / total words in ``samples``."""
    words_total = 0
    seen = set()
    for sample in samples:
        words = sample.split()
        words_total += len(words)
        seen.update(_ngrams(words, n))
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
        'Self-BLEU-4': float(np.mean([
            float(np.mean(scores)) for scores in leave_one_out_bleu(groups)
        ])),
        'Div-1': float(np.mean([div_n(g, 1) for g in groups])),
        'Div-2': float(np.mean([div_n(g, 2) for g in groups])),
    }
