"""ImageTextMatchingAccuracy: how often the true caption scores highest."""
import logging
import math
from collections import OrderedDict
from numbers import Integral
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmpretrain.registry import METRICS

#: ``group`` of the cases that name none.
DEFAULT_GROUP = 'all'


def match_scores_array(scores: Any, where: str) -> np.ndarray:
    """``match_scores`` as a ``(K,)`` float64 array, ``K >= 2``.

    Args:
        scores: ``(K,)`` or ``(1, K)`` tensor, ndarray or list of floats.
        where (str): names the case in error messages.

    Raises:
        ValueError: fewer than 2 options, another shape, or a NaN.
    """
    if isinstance(scores, torch.Tensor):
        scores = scores.detach().cpu().double().numpy()
    try:
        array = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f'ImageTextMatchingAccuracy: {where}: match_scores '
                         f'must be numbers, got {scores!r:.200}') from e
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.shape[0] < 2:
        raise ValueError(f'ImageTextMatchingAccuracy: {where}: match_scores '
                         'must hold one score per caption option, K >= 2, '
                         f'shape (K,) or (1, K); got shape {array.shape}')
    if np.isnan(array).any():
        raise ValueError(f'ImageTextMatchingAccuracy: {where}: match_scores '
                         f'hold NaN: {array.tolist()}')
    return array


def match_credit(scores: np.ndarray, true_index: int) -> Tuple[float, bool]:
    """Credit of one case and whether its top score is tied.

    Args:
        scores: ``(K,)`` floats, higher = better match, no NaN.
        true_index: index of the true option.

    Returns:
        tuple: ``(credit, tied)``. ``credit`` is 1 when the true option
        scores strictly higher than every other, ``1/n`` when it is one of
        ``n >= 2`` options sharing the top score (the expected accuracy of
        breaking the tie at random), else 0. ``tied``: ``n >= 2``.
    """
    top = scores.max()
    num_top = int((scores == top).sum())
    credit = 1.0 / num_top if scores[true_index] == top else 0.0
    return credit, num_top > 1


def sample_field(sample: Any, key: str) -> Any:
    """``sample[key]`` of a dict or a ``DataSample`` (None if absent)."""
    if isinstance(sample, dict):
        return sample.get(key)
    return getattr(sample, key, None)


@METRICS.register_module()
class ImageTextMatchingAccuracy(BaseMetric):
    """Image-text matching accuracy (%), as ARO scores its benchmarks.

    Each case is one image with K caption options, one of them true (see
    ``mdc_plugin.datasets.aro``). Each data sample (a dict or a
    ``DataSample``) holds:

    * ``match_scores``: K floats (tensor, ndarray or list), higher = better;
    * ``true_index`` (int): the true option;
    * ``group`` (str, optional): what ``macro_accuracy`` averages over
      (missing: one group, ``'all'``);
    * ``sample_id`` (str, optional): names the case in errors.

    A case counts 1 when the true option scores strictly higher than every
    other option. When ``n`` options share the top score and the true one
    is among them it counts ``1/n``: a scorer that cannot tell the options
    apart (e.g. one that ignores the image and sees options made of the
    same words) then gets chance, not 0 or 1 depending on where the true
    option sits (ARO's ``argmax`` takes the first: VG puts the true caption
    second, Order first). Scores are compared exactly. NaN scores raise.

    Results (``prefix/key``, default prefix ``'matching'``):

    * ``accuracy``: mean credit over all cases x 100;
    * ``macro_accuracy``: mean over groups of each group's accuracy (ARO's
      VG-Relation / VG-Attribution number); groups with fewer than
      ``min_group_size`` cases or in ``exclude_groups`` are left out (NaN if
      none is left);
    * ``num_cases``, ``num_groups`` (all groups seen),
      ``groups_left_out`` (groups not in the macro mean), ``ties`` (cases
      whose top score is shared by two or more options);
    * ``accuracy/<group>`` for every group, with ``per_group=True``.

    Args:
        per_group (bool): also report each group's accuracy.
        min_group_size (int): smallest group in the macro mean (ARO's
            VG-Attribution: 25). Defaults to 1.
        exclude_groups (Sequence[str]): groups left out of the macro mean
            (ARO's notebook leaves symmetric relations out of VG-Relation's).
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str, optional): result key prefix.
    """
    default_prefix: Optional[str] = 'matching'

    def __init__(self, per_group: bool = False, min_group_size: int = 1,
                 exclude_groups: Sequence[str] = (),
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        if (isinstance(min_group_size, bool)
                or not isinstance(min_group_size, Integral)
                or min_group_size < 1):
            raise ValueError('ImageTextMatchingAccuracy: min_group_size must '
                             f'be an int >= 1, got {min_group_size!r}')
        if isinstance(exclude_groups, str):
            exclude_groups = (exclude_groups, )
        self.per_group = bool(per_group)
        self.min_group_size = int(min_group_size)
        self.exclude_groups = frozenset(exclude_groups)

    def process(self, data_batch: Any, data_samples: Sequence) -> None:
        """Score each case; keeps ``(group, credit, tied)`` (plain Python,
        so that results can be gathered across processes).

        Args:
            data_batch: not read.
            data_samples (Sequence): dicts or ``DataSample`` with
                ``match_scores``, ``true_index`` and optionally ``group``
                and ``sample_id``.
        """
        for sample in data_samples:
            where = sample_field(sample, 'sample_id')
            where = str(where) if where is not None else \
                f'case {len(self.results)}'
            scores = sample_field(sample, 'match_scores')
            if scores is None:
                raise KeyError(f'ImageTextMatchingAccuracy: {where}: no '
                               'match_scores in the data sample')
            scores = match_scores_array(scores, where)
            true_index = self._true_index(sample_field(sample, 'true_index'),
                                          len(scores), where)
            group = sample_field(sample, 'group')
            if group is None:
                group = DEFAULT_GROUP
            elif not isinstance(group, str):
                raise TypeError(f'ImageTextMatchingAccuracy: {where}: group '
                                f'must be a str, got {group!r:.100}')
            credit, tied = match_credit(scores, true_index)
            self.results.append((group, credit, tied))

    @staticmethod
    def _true_index(value: Any, num_options: int, where: str) -> int:
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        elif isinstance(value, np.ndarray) and value.size == 1:
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, Integral):
            raise ValueError(f'ImageTextMatchingAccuracy: {where}: '
                             f'true_index must be an int, got {value!r:.100}')
        if not 0 <= value < num_options:
            raise ValueError(f'ImageTextMatchingAccuracy: {where}: '
                             f'true_index {value} is not one of the '
                             f'{num_options} options')
        return int(value)

    def compute_metrics(self, results: List[Tuple[str, float, bool]]
                        ) -> Dict[str, float]:
        """Accuracies over ``(group, credit, tied)`` results, see the class
        docstring."""
        if not results:
            return {}
        groups: 'OrderedDict[str, List[float]]' = OrderedDict()
        for group, credit, _ in results:
            groups.setdefault(group, []).append(credit)
        per_group = {g: 100.0 * math.fsum(c) / len(c)
                     for g, c in groups.items()}
        kept = [g for g, c in groups.items()
                if len(c) >= self.min_group_size
                and g not in self.exclude_groups]
        if kept:
            macro = math.fsum(per_group[g] for g in kept) / len(kept)
        else:
            macro = float('nan')
            print_log('ImageTextMatchingAccuracy: every group is left out '
                      f'of the macro mean (min_group_size='
                      f'{self.min_group_size}, {len(groups)} groups): '
                      'macro_accuracy is NaN', logger='current',
                      level=logging.WARNING)
        metrics: Dict[str, float] = dict(
            accuracy=100.0 * math.fsum(r[1] for r in results) / len(results),
            macro_accuracy=macro,
            num_cases=len(results),
            num_groups=len(groups),
            groups_left_out=len(groups) - len(kept),
            ties=sum(1 for r in results if r[2]))
        if self.per_group:
            for group, acc in per_group.items():
                metrics[f'accuracy/{group}'] = acc
        return metrics


# MMEngine's registry too, as for CaptionMetric (bare ``Evaluator``).
if 'ImageTextMatchingAccuracy' not in MMENGINE_METRICS.module_dict:
    MMENGINE_METRICS.register_module(name='ImageTextMatchingAccuracy',
                                     module=ImageTextMatchingAccuracy)
