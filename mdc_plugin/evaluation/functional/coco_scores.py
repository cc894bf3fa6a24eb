"""The reference-based COCO caption scores in one call.

:func:`coco_caption_scores` reproduces ``COCOEvalCap.evaluate`` (BLEU-1..4,
METEOR, ROUGE-L, CIDEr and optionally SPICE) on plain lists. The work is
ordered around the slowest part, the METEOR JVM:

1. captions are tokenized in Python where possible (see
   :mod:`.ptb_tokenizer`); images whose captions are all done go to METEOR
   at once;
2. the remaining captions go through the PTB jar (one call) while METEOR
   works, then their images follow into METEOR;
3. BLEU, ROUGE-L and CIDEr run meanwhile, BLEU and CIDEr on one numpy
   n-gram table (:mod:`.ngram_table`); SPICE, if asked for, runs in its
   own JVM.
"""
import threading
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .ngram_table import NgramTable, bleu_from_table, cider_from_table
from .meteor import MeteorScorer, meteor_score_line
from .ptb_tokenizer import fast_tokenize, java_tokenize, ptb_tokenize
from .rouge import rouge_l
from .spice import compute_spice

#: Score names (as given in ``CaptionMetric(scores=...)``) handled here.
REFERENCE_SCORES = ('BLEU', 'METEOR', 'ROUGE-L', 'CIDEr', 'SPICE')


def tokenize_pairs(
        preds: Sequence[str], refs: Sequence[Sequence[str]]
) -> Tuple[List[str], List[List[str]]]:
    """PTB-tokenize predictions and references in one JVM call."""
    flat = list(preds) + [r for rs in refs for r in rs]
    tokens = ptb_tokenize(flat)
    tok_preds = tokens[:len(preds)]
    tok_refs, pos = [], len(preds)
    for rs in refs:
        tok_refs.append(tokens[pos:pos + len(rs)])
        pos += len(rs)
    return tok_preds, tok_refs


class _Background:
    """Run ``fn()`` in a thread; ``result()`` returns or re-raises."""

    def __init__(self, fn: Callable) -> None:
        self._value = None
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(fn, ),
                                        daemon=True)
        self._thread.start()

    def _run(self, fn: Callable) -> None:
        try:
            self._value = fn()
        except BaseException as e:  # re-raised in result()
            self._error = e

    def result(self):
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value


def coco_caption_scores(
    preds: Sequence[str],
    refs: Sequence[Sequence[str]],
    scores: Sequence[str] = ('BLEU', 'METEOR', 'ROUGE-L', 'CIDEr'),
    meteor: Optional[MeteorScorer] = None,
    tokenized: bool = False,
) -> Tuple[Dict[str, float], Dict[str, List[float]]]:
    """COCOEvalCap's reference-based scores of predictions.

    Args:
        preds (Sequence[str]): One prediction per image.
        refs (Sequence[Sequence[str]]): References per image (each list
            non-empty).
        scores (Sequence[str]): Subset of :data:`REFERENCE_SCORES`.
        meteor (MeteorScorer, optional): JVM pool for METEOR; a new one
            (closed afterwards) when None and METEOR is asked for.
        tokenized (bool): Inputs are already PTB-tokenized.

    Returns:
        tuple: ``(corpus, per_image)``: ``corpus`` maps ``'BLEU-1'`` ..
        ``'BLEU-4'``, ``'METEOR'``, ``'ROUGE-L'``, ``'CIDEr'``, ``'SPICE'``
        (those asked for) to float on the 0-1 scale of the toolkit (CIDEr
        is 0-10); ``per_image`` maps the same keys to lists of float.
    """
    unknown = set(scores) - set(REFERENCE_SCORES)
    if unknown:
        raise ValueError(f'unknown reference-based scores {sorted(unknown)}; '
                         f'valid: {list(REFERENCE_SCORES)}')
    if len(preds) != len(refs):
        raise ValueError(f'{len(preds)} predictions but {len(refs)} '
                         'reference lists')
    empty = [i for i, rs in enumerate(refs) if len(rs) == 0]
    if empty:
        raise ValueError(f'{len(empty)} images have no references '
                         f'(first at position {empty[0]})')
    corpus: Dict[str, float] = {}
    per_image: Dict[str, List[float]] = {}
    if not preds or not scores:
        return corpus, per_image
    flat = list(preds) + [r for rs in refs for r in rs]
    if tokenized:
        tokens: List[Optional[str]] = list(flat)
    else:
        tokens = [fast_tokenize(c) for c in flat]
    # position of each image's captions in ``flat``: pred, then its refs
    spans, pos = [], len(preds)
    for i, rs in enumerate(refs):
        spans.append((i, range(pos, pos + len(rs))))
        pos += len(rs)

    def image_done(i: int, ref_span: range) -> bool:
        return tokens[i] is not None and all(tokens[j] is not None
                                             for j in ref_span)

    def meteor_lines(images: List[Tuple[int, range]]) -> List[str]:
        return [meteor_score_line(tokens[i], [tokens[j] for j in span])
                for i, span in images]

    ready = [(i, span) for i, span in spans if image_done(i, span)]
    pending = [(i, span) for i, span in spans if not image_done(i, span)]
    all_tokenized = threading.Event()
    jobs: Dict[str, _Background] = {}
    own_meteor = None
    if 'METEOR' in scores:
        if meteor is None:
            meteor = own_meteor = MeteorScorer(workers=1, warmup=0)

        def run_meteor() -> Tuple[float, List[float]]:
            stats = dict(zip((i for i, _ in ready),
                             meteor.stats(meteor_lines(ready))))
            all_tokenized.wait()
            stats.update(zip((i for i, _ in pending),
                             meteor.stats(meteor_lines(pending))))
            return meteor.evaluate([stats[i] for i in range(len(preds))])

        jobs['METEOR'] = _Background(run_meteor)
    try:
        todo = [j for j, tok in enumerate(tokens) if tok is None]
        if todo:
            for j, tok in zip(todo, java_tokenize([flat[j] for j in todo])):
                tokens[j] = tok
        all_tokenized.set()
        tok_preds = tokens[:len(preds)]
        tok_refs = [[tokens[j] for j in span] for _, span in spans]
        if 'SPICE' in scores:
            jobs['SPICE'] = _Background(
                lambda: compute_spice(tok_preds, tok_refs))
        hyp_index = list(range(len(preds)))
        ref_index = [list(span) for _, span in spans]
        if 'BLEU' in scores or 'CIDEr' in scores:
            table = NgramTable.build(tokens)
        if 'BLEU' in scores:
            bleu, bleu_per_image = bleu_from_table(table, hyp_index,
                                                   ref_index)
            for k in range(4):
                corpus[f'BLEU-{k + 1}'] = bleu[k]
                per_image[f'BLEU-{k + 1}'] = bleu_per_image[k]
        if 'ROUGE-L' in scores:
            score, per = rouge_l(tok_preds, tok_refs)
            corpus['ROUGE-L'], per_image['ROUGE-L'] = score, per.tolist()
        if 'CIDEr' in scores:
            score, per = cider_from_table(table, hyp_index, ref_index)
            corpus['CIDEr'], per_image['CIDEr'] = score, per.tolist()
        for name in ('METEOR', 'SPICE'):
            if name in jobs:
                score, per = jobs[name].result()
                corpus[name], per_image[name] = float(score), list(per)
    finally:
        all_tokenized.set()
        for job in jobs.values():
            try:
                job.result()
            except BaseException:
                pass
        if own_meteor is not None:
            own_meteor.close()
    ordered = [k for k in ('BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'METEOR',
                           'ROUGE-L', 'CIDEr', 'SPICE') if k in corpus]
    return ({k: corpus[k] for k in ordered},
            {k: per_image[k] for k in ordered})
