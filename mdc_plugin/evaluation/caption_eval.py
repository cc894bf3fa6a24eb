"""Caption a dataloader through the decode entry and score it: the one
evaluation loop of the sweeps and benchmarks (``tools/test.py`` runs the
same ``model.predict`` through MMEngine's ``TestLoop``)."""
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

import torch
from mmengine.evaluator import Evaluator


@torch.no_grad()
def caption_and_score(model: torch.nn.Module, dataloader,
                      metrics: Union[dict, Sequence[dict], Evaluator],
                      decode: Optional[Dict[str, Any]] = None,
                      num_samples: int = 0,
                      sample_decode: Optional[Dict[str, Any]] = None,
                      seed: Optional[int] = 0,
                      max_batches: Optional[int] = None,
                      on_batch: Optional[Callable[[int], None]] = None,
                      num_examples: int = 0) -> Dict[str, Any]:
    """Caption every batch with ``model.predict`` and evaluate.

    Args:
        model: a captioner with the decode entry (``decode_keys``).
        dataloader: yields MMEngine data batches (``inputs``,
            ``data_samples`` with the references).
        metrics: metric config(s) (e.g. ``dict(type='CaptionMetric')``) or
            an :class:`Evaluator`.
        decode: decode options of the caption (``pred_caption``).
        num_samples: if > 0, also draw this many captions per image with
            ``sample_decode`` into ``pred_captions`` (diversity metrics).
        seed: torch seed set once before the first batch (None: not set).
        max_batches: stop after this many batches (quick checks).
        on_batch: called with the number of images of each batch (progress).
        num_examples: also return the first metric's first k processed
            results (e.g. CaptionMetric's pred / samples / refs) as
            ``examples``.

    Returns:
        ``dict(metrics=..., images=N, seconds=..., examples=[...])``.
    """
    evaluator = metrics if isinstance(metrics, Evaluator) else \
        Evaluator(metrics)
    model.eval()
    if seed is not None:
        torch.manual_seed(seed)
    images, start = 0, time.perf_counter()
    for i, batch in enumerate(dataloader):
        if max_batches is not None and i >= max_batches:
            break
        data = model.data_preprocessor(batch, False)
        samples: List = model.predict(data['inputs'], data['data_samples'],
                                      **(decode or {}))
        if num_samples:
            drawn = model.predict(data['inputs'], num_samples=num_samples,
                                  **(sample_decode or {}))
            for sample, draw in zip(samples, drawn):
                sample.pred_captions = (draw.pred_captions if num_samples > 1
                                        else [draw.pred_caption])
        evaluator.process(samples, batch)
        images += len(samples)
        if on_batch is not None:
            on_batch(len(samples))
    seconds = time.perf_counter() - start
    if not images:
        raise ValueError('caption_and_score: the dataloader gave no images')
    examples = list(evaluator.metrics[0].results[:num_examples])
    return dict(metrics=evaluator.evaluate(images), images=images,
                seconds=seconds, examples=examples)
