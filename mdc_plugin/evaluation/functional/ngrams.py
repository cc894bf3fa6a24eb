"""n-gram counting shared by BLEU, CIDEr and the diversity scores."""
from collections import Counter
from typing import Sequence, Tuple

Ngram = Tuple[str, ...]


def count_ngrams(words: Sequence[str], n: int = 4) -> Counter:
    """Count the 1..n-grams of a token list.

    Same result as pycocoevalcap's ``precook`` (BLEU and CIDEr).

    Args:
        words (Sequence[str]): Tokens, e.g. ``caption.split()``.
        n (int): Largest n-gram order.

    Returns:
        Counter: n-gram (tuple of str, length 1..n) -> count (int).
    """
    words = list(words)
    counts = Counter(zip(words))
    for k in range(2, n + 1):
        if len(words) < k:
            break
        counts.update(zip(*[words[i:] for i in range(k)]))
    return counts
