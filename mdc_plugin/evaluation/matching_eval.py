"""Score a matching benchmark through ``model.score`` and evaluate it: the
loop of ``tools/analysis/image_text_matching.py``."""
import time
from typing import Any, Callable, Dict, List, Optional

import torch
from mmengine.evaluator import Evaluator

from .metrics.image_text_matching import sample_field

#: The keys a matching data set gives (``PackInputs``' algorithm keys).
MATCHING_KEYS = ('caption_options', 'true_index', 'group', 'sample_id')


@torch.no_grad()
def score_and_match(model: torch.nn.Module, dataloader,
                    score_options: Optional[Dict[str, Any]] = None,
                    metric: Optional[dict] = None,
                    max_batches: Optional[int] = None,
                    on_batch: Optional[Callable[[int], None]] = None
                    ) -> Dict[str, Any]:
    """Score every case's caption options and compute matching accuracy.

    Args:
        model: anything with ``score(inputs, captions, **options)`` -> (B, K)
            and a data preprocessor.
        dataloader: batches of a matching data set (:data:`MATCHING_KEYS`).
        score_options: options of ``model.score``. A ``seed`` in them is
            the first batch's; batch i uses ``seed + i``, so Monte-Carlo
            scores are reproducible and independent across batches.
        metric: the metric config (default ``ImageTextMatchingAccuracy``
            with per-group accuracies).
        max_batches: stop after this many batches (quick checks).
        on_batch: called with each batch's number of cases (progress).

    Returns:
        ``metrics``, ``cases`` (per case: ``sample_id``, ``group``,
        ``true_index``, ``caption_options``, ``scores``), ``pairs``
        (image-caption pairs scored) and ``seconds`` (scoring time, data
        loading included).
    """
    evaluator = Evaluator(metric or dict(
        type='ImageTextMatchingAccuracy', per_group=True))
    options = dict(score_options or {})
    model.eval()
    cases: List[dict] = []
    pairs, start = 0, time.perf_counter()
    for i, batch in enumerate(dataloader):
        if max_batches is not None and i >= max_batches:
            break
        data = model.data_preprocessor(batch, False)
        samples = data['data_samples']
        captions = [list(sample_field(s, 'caption_options')) for s in samples]
        if 'seed' in options:
            options_i = dict(options, seed=options['seed'] + i)
        else:
            options_i = options
        scores = model.score(data['inputs'], captions, **options_i).float()
        outputs = []
        for sample, row in zip(samples, scores.cpu()):
            case = dict(sample_id=str(sample_field(sample, 'sample_id')),
                        group=str(sample_field(sample, 'group')),
                        true_index=int(sample_field(sample, 'true_index')),
                        caption_options=list(sample_field(sample,
                                                    'caption_options')),
                        scores=[float(v) for v in row])
            cases.append(case)
            outputs.append(dict(match_scores=case['scores'],
                                true_index=case['true_index'],
                                group=case['group']))
        evaluator.process(outputs, batch)
        pairs += scores.numel()
        if on_batch is not None:
            on_batch(len(samples))
    seconds = time.perf_counter() - start
    if not cases:
        raise ValueError('score_and_match: the dataloader gave no cases')
    return dict(metrics=evaluator.evaluate(len(cases)), cases=cases,
                pairs=pairs, seconds=seconds)
