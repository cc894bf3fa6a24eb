"""Sparse n-gram count tables (numpy) and corpus BLEU / CIDEr-D on them.

The COCO caption toolkit counts n-grams in Python dictionaries, one sentence
at a time; here every distinct n-gram of the corpus gets an integer id and
the counts of all sentences sit in flat arrays, so BLEU's clipped counts and
CIDEr-D's tf-idf cosines are a handful of vectorised joins. The definitions
are pycocoevalcap's (``bleu/bleu_scorer.py``, ``cider/cider_scorer.py``):

* BLEU (``Bleu(4)``, ``option='closest'``): modified n-gram precision
  clipped by the largest count in any reference, brevity penalty against
  the closest reference length (ties go to the shorter one),
  ``tiny=1e-15`` / ``small=1e-9`` smoothing, corpus score from summed
  counts, per-image scores from each image's own counts. Bit-identical
  (integer counts).
* CIDEr-D (``Cider()``): tf-idf over the references' document frequency,
  clipped cosine per n-gram order, Gaussian length penalty (``sigma=6``),
  x10. Within ~1e-15 (summation order).

This is the only BLEU of the package: ``CaptionMetric``'s BLEU-1..4 and
the diversity scores' Self-BLEU-4 both come from :func:`bleu_from_table`.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

_TINY = 1e-15
_SMALL = 1e-9


def _unique(keys: np.ndarray, inverse: bool = False, counts: bool = False):
    """Sorted unique int64 keys (+ inverse / counts), by sorting.

    (numpy >= 2.3 may pick a hash-based ``np.unique``, far slower here.)
    """
    order = np.argsort(keys, kind='stable')
    ordered = keys[order]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    out = [ordered[first]]
    if inverse:
        inv = np.empty(len(keys), dtype=np.int64)
        inv[order] = np.cumsum(first) - 1
        out.append(inv)
    if counts:
        starts = np.nonzero(first)[0]
        out.append(np.diff(np.append(starts, len(ordered))))
    return out[0] if len(out) == 1 else tuple(out)


@dataclass
class NgramTable:
    """n-gram counts of S tokenized sentences, one entry per distinct pair.

    Attributes:
        n (int): Largest order.
        lengths (np.ndarray): int64 [S], tokens per sentence.
        sent (np.ndarray): int64 [E], sentence of each entry.
        gram (np.ndarray): int64 [E], n-gram id (ids of order k are a
            contiguous range).
        order (np.ndarray): int64 [E], n-gram order, 1..n.
        count (np.ndarray): int64 [E], occurrences in the sentence.
        num_grams (int): Number of distinct n-grams (ids are < this).
    """
    n: int
    lengths: np.ndarray
    sent: np.ndarray
    gram: np.ndarray
    order: np.ndarray
    count: np.ndarray
    num_grams: int

    @classmethod
    def build(cls, sentences: Sequence[str], n: int = 4) -> 'NgramTable':
        """Count the 1..n-grams of tokenized sentences (``str.split()``)."""
        vocab: dict = {}
        words: List[int] = []
        lengths = np.empty(len(sentences), dtype=np.int64)
        for s, sentence in enumerate(sentences):
            toks = sentence.split()
            lengths[s] = len(toks)
            words.extend([vocab.setdefault(t, len(vocab)) for t in toks])
        wid = np.asarray(words, dtype=np.int64)
        sid = np.repeat(np.arange(len(sentences), dtype=np.int64), lengths)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(
            np.int64) if len(sentences) else np.zeros(0, np.int64)
        pos = np.arange(len(wid), dtype=np.int64) - np.repeat(starts, lengths)
        remaining = lengths[sid] - pos  # tokens from here to sentence end
        num_words = max(len(vocab), 1)

        sents, grams, orders, counts = [], [], [], []
        offset = 0
        prev = wid  # ids of the (k-1)-gram starting at each position
        for k in range(1, n + 1):
            valid = np.nonzero(remaining >= k)[0]
            if k == 1:
                ids, num = wid, len(vocab)
            else:
                key = prev[valid] * num_words + wid[valid + k - 1]
                uniq, inv = _unique(key, inverse=True)
                ids = np.full(len(wid), -1, dtype=np.int64)
                ids[valid] = inv
                num = len(uniq)
            # distinct (sentence, gram) pairs and their counts
            pair = sid[valid] * max(num, 1) + ids[valid]
            upair, cnt = _unique(pair, counts=True)
            sents.append(upair // max(num, 1))
            grams.append(upair % max(num, 1) + offset)
            orders.append(np.full(len(upair), k, dtype=np.int64))
            counts.append(cnt.astype(np.int64))
            offset += num
            prev = ids
        return cls(n=n, lengths=lengths, sent=np.concatenate(sents),
                   gram=np.concatenate(grams), order=np.concatenate(orders),
                   count=np.concatenate(counts), num_grams=offset)


def _layout(hyp_index: Sequence[int], ref_index: Sequence[Sequence[int]]
            ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hyp sentence per image, references per image, flat ref sentences).

    Each sentence may be used once, as one image's prediction or reference.
    """
    if len(hyp_index) != len(ref_index):
        raise ValueError(f'{len(hyp_index)} predictions but '
                         f'{len(ref_index)} reference lists')
    hyp = np.asarray(hyp_index, dtype=np.int64)
    num_refs = np.array([len(r) for r in ref_index], dtype=np.int64)
    if np.any(num_refs == 0):
        raise ValueError('every image needs at least one reference')
    refs = np.asarray([i for r in ref_index for i in r], dtype=np.int64)
    return hyp, num_refs, refs


def _hyp_lookup(table: NgramTable, hyp: np.ndarray, sent_image: np.ndarray,
                keys: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For (image * G + gram) ``keys``: index of the hyp entry and found."""
    is_hyp = sent_image[table.sent] >= 0
    hyp_entries = np.nonzero(is_hyp)[0]
    hkeys = sent_image[table.sent[hyp_entries]] * table.num_grams + \
        table.gram[hyp_entries]
    order = np.argsort(hkeys, kind='stable')
    hkeys, hyp_entries = hkeys[order], hyp_entries[order]
    at = np.searchsorted(hkeys, keys)
    at_c = np.minimum(at, max(len(hkeys) - 1, 0))
    found = (at < len(hkeys)) & (hkeys[at_c] == keys) if len(hkeys) else \
        np.zeros(len(keys), bool)
    return hyp_entries[at_c] if len(hkeys) else at_c, found


def bleu_from_table(table: NgramTable, hyp_index: Sequence[int],
                    ref_index: Sequence[Sequence[int]]
                    ) -> Tuple[List[float], List[List[float]]]:
    """Corpus and per-image BLEU-1..n (toolkit definition, ``closest``).

    Args:
        table (NgramTable): Counts of all sentences.
        hyp_index (Sequence[int]): Sentence index of each image's
            prediction.
        ref_index (Sequence[Sequence[int]]): Sentence indices of each
            image's references (non-empty).

    Returns:
        tuple: ``(corpus, per_image)``: ``corpus`` is a list of n float
        (BLEU-1..n); ``per_image[k]`` is a list with one BLEU-(k+1) float
        per image.
    """
    n, num_images = table.n, len(hyp_index)
    hyp, num_refs, refs = _layout(hyp_index, ref_index)
    if num_images == 0:
        return [float('nan')] * n, [[] for _ in range(n)]
    ref_image = np.repeat(np.arange(num_images, dtype=np.int64), num_refs)

    # max count of each n-gram over an image's references
    ref_of_sent = np.full(len(table.lengths), -1, dtype=np.int64)
    ref_of_sent[refs] = np.arange(len(refs))
    in_ref = np.nonzero(ref_of_sent[table.sent] >= 0)[0]
    rkeys = ref_image[ref_of_sent[table.sent[in_ref]]] * table.num_grams + \
        table.gram[in_ref]
    order = np.argsort(rkeys, kind='stable')
    rkeys, rcounts = rkeys[order], table.count[in_ref][order]
    starts = np.nonzero(np.r_[True, rkeys[1:] != rkeys[:-1]])[0] \
        if len(rkeys) else np.zeros(0, np.int64)
    ukeys = rkeys[starts]
    umax = np.maximum.reduceat(rcounts, starts) if len(rkeys) else rcounts

    # clipped matches of each prediction
    hyp_image = np.full(len(table.lengths), -1, dtype=np.int64)
    hyp_image[hyp] = np.arange(num_images)
    h_entries = np.nonzero(hyp_image[table.sent] >= 0)[0]
    hkeys = hyp_image[table.sent[h_entries]] * table.num_grams + \
        table.gram[h_entries]
    at = np.searchsorted(ukeys, hkeys)
    at_c = np.minimum(at, max(len(ukeys) - 1, 0))
    found = (at < len(ukeys)) & (ukeys[at_c] == hkeys) if len(ukeys) else \
        np.zeros(len(hkeys), bool)
    clipped = np.where(found, np.minimum(table.count[h_entries],
                                         umax[at_c] if len(ukeys) else 0), 0)
    correct = np.bincount(
        hyp_image[table.sent[h_entries]] * n + table.order[h_entries] - 1,
        weights=clipped, minlength=num_images * n).reshape(num_images, n)

    testlen = table.lengths[hyp]
    guess = np.maximum(0, testlen[:, None] - np.arange(n)[None, :])
    # closest reference length, ties to the shorter one
    ref_len = table.lengths[refs]
    dist = np.abs(ref_len - testlen[ref_image])
    big = int(ref_len.max(initial=0)) + 1
    ref_starts = np.concatenate([[0], np.cumsum(num_refs)[:-1]])
    best = np.minimum.reduceat(dist * big + ref_len, ref_starts)
    reflen = best % big

    def score(tl, rl, g, c) -> np.ndarray:
        ratio_terms = (c.astype(np.float64) + _TINY) / (g + _SMALL)
        cum = np.cumprod(ratio_terms, axis=-1)
        out = cum**(1. / np.arange(1, n + 1))
        ratio = (tl + _TINY) / (rl + _SMALL)
        penalty = np.where(ratio < 1, np.exp(1 - 1 / np.maximum(ratio,
                                                                 _TINY)), 1.)
        return out * np.asarray(penalty)[..., None]

    per = score(testlen.astype(np.float64), reflen.astype(np.float64),
                guess.astype(np.float64), correct)
    corpus = score(float(testlen.sum()), float(reflen.sum()),
                   guess.sum(0).astype(np.float64), correct.sum(0))
    return [float(x) for x in corpus.reshape(-1)], \
        [per[:, k].tolist() for k in range(n)]


def cider_from_table(table: NgramTable, hyp_index: Sequence[int],
                     ref_index: Sequence[Sequence[int]],
                     sigma: float = 6.0) -> Tuple[float, np.ndarray]:
    """Corpus and per-image CIDEr-D (toolkit definition, see above).

    Args:
        table (NgramTable): Counts of all sentences.
        hyp_index (Sequence[int]): Sentence index of each image's
            prediction.
        ref_index (Sequence[Sequence[int]]): Sentence indices of each
            image's references (non-empty).
        sigma (float): Width of the Gaussian length penalty.

    Returns:
        tuple: ``(score, per_image)``: mean (float) and float64 array.
    """
    n, num_images = table.n, len(hyp_index)
    hyp, num_refs, refs = _layout(hyp_index, ref_index)
    if num_images == 0:
        return float('nan'), np.zeros(0)
    ref_image = np.repeat(np.arange(num_images, dtype=np.int64), num_refs)
    num_sent = len(table.lengths)

    # document frequency: images whose references contain the n-gram
    ref_of_sent = np.full(num_sent, -1, dtype=np.int64)
    ref_of_sent[refs] = np.arange(len(refs))
    in_ref = np.nonzero(ref_of_sent[table.sent] >= 0)[0]
    img_gram = _unique(ref_image[ref_of_sent[table.sent[in_ref]]] *
                         table.num_grams + table.gram[in_ref])
    df = np.bincount(img_gram % table.num_grams, minlength=table.num_grams)
    log_num = np.log(float(num_images))
    idf = log_num - np.log(np.maximum(1.0, df))

    weight = table.count * idf[table.gram]
    norm = np.sqrt(np.bincount(table.sent * n + table.order - 1,
                               weights=weight * weight,
                               minlength=num_sent * n)).reshape(num_sent, n)
    bigrams = np.maximum(table.lengths - 1, 0).astype(np.float64)

    # clipped dot products of each reference with its image's prediction
    hyp_image = np.full(num_sent, -1, dtype=np.int64)
    hyp_image[hyp] = np.arange(num_images)
    r_entries = in_ref
    r_img = ref_image[ref_of_sent[table.sent[r_entries]]]
    keys = r_img * table.num_grams + table.gram[r_entries]
    h_at, found = _hyp_lookup(table, hyp, hyp_image, keys)
    w_ref = weight[r_entries]
    w_hyp = np.where(found, weight[h_at] if len(h_at) else 0., 0.)
    contrib = np.where(found, np.minimum(w_hyp, w_ref) * w_ref, 0.)
    ref_pos = ref_of_sent[table.sent[r_entries]]
    val = np.bincount(ref_pos * n + table.order[r_entries] - 1,
                      weights=contrib,
                      minlength=len(refs) * n).reshape(len(refs), n)
    denom = norm[hyp][ref_image] * norm[refs]
    val = np.where(denom != 0, val / np.where(denom != 0, denom, 1.), val)
    delta = bigrams[hyp][ref_image] - bigrams[refs]
    val = val * np.exp(-(delta**2) / (2 * sigma**2))[:, None]
    per_ref = val.mean(axis=1)
    scores = np.bincount(ref_image, weights=per_ref,
                         minlength=num_images) / num_refs * 10.0
    return float(np.mean(scores)), scores
