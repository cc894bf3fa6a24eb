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
from mdc_plugin.models.heads import (AutoregressiveCaptionHead,
                                     MaskedDiffusionCaptionHead)


@torch.no_grad()
def shape_word_hits(model: nn.Module, inputs: Tensor,
                    data_samples: Sequence) -> List[List[bool]]:
    """Per caption, whether each shape word is predicted right.

    The reference caption (``caption_ids``) is fed with only its shape
    words hidden: a masked-diffusion head sees them as ``[MASK]`` and
    everything else, an autoregressive head is teacher-forced.

    Args:
        model (nn.Module): An ``ImageCaptioner`` with one of those heads.
        inputs (Tensor): Preprocessed images (B, 3, H, W).
        data_samples (Sequence): Samples with ``caption_ids``.

    Returns:
        list[list[bool]]: one flag per shape word, in caption order.
    """
    head = model.head
    tok = head.tokenizer
    image = model.extract_feat(inputs)
    ids = head.caption_ids(data_samples, image.device)
    shape_ids = torch.tensor([i for s in SHAPES for i in tok.encode(s)],
                             device=ids.device)
    is_shape = torch.isin(ids, shape_ids)
    if isinstance(head, MaskedDiffusionCaptionHead):
        targets = head.targets(ids)
        hidden, _ = head.decoder(targets.masked_fill(is_shape, tok.mask_id),
                                 memory=image)
        wanted = is_shape
    elif isinstance(head, AutoregressiveCaptionHead):
        hidden, _ = head.decoder(ids[:, :-1], memory=image, causal=True)
        targets, wanted = ids[:, 1:], is_shape[:, 1:]
    else:
        raise TypeError('ShapeWordAccuracy: needs a MaskedDiffusionCaptionHead'
                        ' or an AutoregressiveCaptionHead, got '
                        f'{type(head).__name__}')
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
    """
    default_prefix: Optional[str] = 'shape_word'

    def __init__(self, collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
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
                                            data['data_samples']))

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
