"""ShapeWordAccuracy: does a captioner read the shape off the image?"""
import logging
from typing import Any, Dict, List, Optional, Sequence

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmpretrain.registry import METRICS
from torch import Tensor, nn

from mdc_plugin.datasets.shapes import SHAPES

#: How a head's decoder reads a reference caption (see
#: :func:`caption_reading`): ``'masked'``, the caption with the hidden words
#: replaced by the tokenizer's mask id, attended to in both directions (a
#: masked-diffusion head); ``'causal'``, teacher forcing, position i
#: predicted from the positions before it (an autoregressive head).
READINGS = ('masked', 'causal')


def caption_reading(head: nn.Module, reading: Optional[str] = None) -> str:
    """How ``head`` reads a caption: one of :data:`READINGS`.

    The metric knows no head class; it takes, in order:

    1. ``reading`` (the metric's ``reading`` argument) if given;
    2. else the head's ``caption_reading`` attribute (``'masked'`` on the
       MDC head, ``'causal'`` on the Cap / CapPa head).

    Either way the head must have a token ``decoder`` (``decoder(ids,
    memory=image_tokens, causal=...) -> (hidden, cache)``) and ``logits``
    (hidden -> vocabulary logits), as the cross-attention caption heads do.

    Raises:
        TypeError: the head has no such decoder, or its reading cannot be
            told (e.g. D3PM's time-conditioned or Prefix's embedding
            denoisers).
        ValueError: ``reading`` is not one of :data:`READINGS`.
    """
    name = type(head).__name__
    if not (callable(getattr(head, 'decoder', None))
            and callable(getattr(head, 'logits', None))):
        raise TypeError(f'ShapeWordAccuracy: {name} has no token decoder '
                        '(`decoder` and `logits`) to read captions with')
    if reading is None:
        reading = getattr(head, 'caption_reading', None)
    if reading is None:
        raise TypeError(
            f'ShapeWordAccuracy: cannot tell how {name} reads a caption (no '
            '`caption_reading`): needs a masked-diffusion or an '
            'autoregressive head, or '
            f'ShapeWordAccuracy(reading=...) of {READINGS}')
    if reading not in READINGS:
        raise ValueError(f'ShapeWordAccuracy: reading={reading!r} is not '
                         f'one of {READINGS}')
    return reading


@torch.no_grad()
def shape_word_hits(model: nn.Module, inputs: Tensor, data_samples: Sequence,
                    reading: Optional[str] = None) -> List[List[bool]]:
    """Per caption, whether each shape word is predicted right.

    The reference caption (``caption_ids``) is fed with only its shape
    words hidden: a ``'masked'`` head sees them as ``[MASK]`` and
    everything else, a ``'causal'`` head is teacher-forced (see
    :func:`caption_reading`).

    Args:
        model (nn.Module): An ``ImageCaptioner`` whose head reads captions
            (:func:`caption_reading`).
        inputs (Tensor): Preprocessed images (B, 3, H, W).
        data_samples (Sequence): Samples with ``caption_ids``.
        reading (str, optional): ``'masked'`` or ``'causal'``; None: ask
            the head (:func:`caption_reading`).

    Returns:
        list[list[bool]]: one flag per shape word, in caption order.
    """
    head = model.head
    reading = caption_reading(head, reading)
    tok = head.tokenizer
    image = model.extract_feat(inputs)
    if not isinstance(image, Tensor) or image.dim() != 3:
        raise TypeError('ShapeWordAccuracy: needs (B, N, C) image tokens '
                        'from model.extract_feat, got '
                        f'{type(image).__name__}')
    ids = head.caption_ids(data_samples, image.device)
    shape_ids = torch.tensor([i for s in SHAPES for i in tok.encode(s)],
                             device=ids.device)
    is_shape = torch.isin(ids, shape_ids)
    if reading == 'masked':
        targets = head.targets(ids)
        hidden, _ = head.decoder(targets.masked_fill(is_shape, tok.mask_id),
                                 memory=image)
        wanted = is_shape
    else:
        hidden, _ = head.decoder(ids[:, :-1], memory=image, causal=True)
        targets, wanted = ids[:, 1:], is_shape[:, 1:]
    hit = (head.logits(hidden).argmax(-1) == targets).cpu()
    return [row[keep].tolist() for row, keep in zip(hit, wanted.cpu())]


@METRICS.register_module()
class ShapeWordAccuracy(BaseMetric):
    """Shape-word accuracy (%) on the embedded shapes captions.

    The text around a shape word says nothing about which of the 4 shapes
    it is, so 25% is chance and anything above comes from the image (see
    :func:`shape_word_hits`). Unlike other metrics it runs the model
    itself, on ``data_batch``; the runner's model is handed over by
    ``BindModelToMetricsHook`` (or :meth:`bind_model` outside a runner)::

        test_evaluator = [dict(type='CaptionMetric'),
                          dict(type='ShapeWordAccuracy')]
        custom_hooks = [dict(type='BindModelToMetricsHook')]

    Result: ``shape_word/accuracy``, hits / shape words x 100 (float32
    mean, as ``tools/analysis/shape_token_accuracy.py`` always reported).

    Args:
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str): Result key prefix.
        reading (str, optional): How the head reads a caption, ``'masked'``
            or ``'causal'`` (:data:`READINGS`); None (default): from the
            head, see :func:`caption_reading`.
    """
    default_prefix: Optional[str] = 'shape_word'

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 reading: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if reading is not None and reading not in READINGS:
            raise ValueError(f'ShapeWordAccuracy: reading={reading!r} is '
                             f'not one of {READINGS}')
        self.reading = reading
        self.model: Optional[nn.Module] = None

    def bind_model(self, model: nn.Module) -> None:
        """Use ``model`` (a wrapper is unwrapped) in :meth:`process`."""
        self.model = model.module if is_model_wrapper(model) else model

    def process(self, data_batch: Any, data_samples: Sequence) -> None:
        """Score the shape words of the batch's reference captions.

        Args:
            data_batch (dict): The raw batch (``inputs``, ``data_samples``
                with ``caption_ids``), preprocessed here by the model.
            data_samples (Sequence): Model outputs (not read).
        """
        if self.model is None:
            raise RuntimeError(
                'ShapeWordAccuracy runs the model: add '
                "dict(type='BindModelToMetricsHook') to custom_hooks (or "
                'call metric.bind_model(model))')
        data = self.model.data_preprocessor(data_batch, False)
        self.results.extend(shape_word_hits(self.model, data['inputs'],
                                            data['data_samples'],
                                            self.reading))

    def compute_metrics(self, results: List[List[bool]]) -> Dict[str, float]:
        """``accuracy``: percent of shape words predicted right."""
        flags = [flag for caption in results for flag in caption]
        if not flags:
            print_log('ShapeWordAccuracy: no shape words in the captions',
                      logger='current', level=logging.WARNING)
            return {}
        return dict(accuracy=100 * torch.tensor(flags).float().mean().item())


# MMEngine's registry too, as for CaptionMetric (bare ``Evaluator``).
if 'ShapeWordAccuracy' not in MMENGINE_METRICS.module_dict:
    MMENGINE_METRICS.register_module(name='ShapeWordAccuracy',
                                     module=ShapeWordAccuracy)
