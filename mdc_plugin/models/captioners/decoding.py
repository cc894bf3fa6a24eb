"""The decode entry every captioner shares: checked options, N samples."""
from typing import Any, Dict, List, Mapping, Optional, Sequence

from mmpretrain.structures import DataSample



def fold_predict_cfg(head, predict_cfg: Optional[Mapping[str, Any]],
                     owner: str) -> None:
    """Merge a model's ``predict_cfg`` into ``head.sampler_cfg``, so the
    decoding settings live in one place (unknown keys are refused)."""
    if predict_cfg:
        head.update_sampler_cfg(predict_cfg, f'{owner}.predict_cfg')


def check_decode_options(options: Mapping[str, Any],
                         allowed: Sequence[str], owner: str,
                         num_samples: int) -> Dict[str, Any]:
    """``options`` as a dict, or ValueError naming an unknown key or a bad
    ``num_samples``."""
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f'{owner}.predict: unknown decode options '
                         f'{unknown}; allowed: {sorted(allowed)} and '
                         'num_samples')
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) \
            or num_samples < 1:
        raise ValueError(f'{owner}.predict: num_samples={num_samples!r} must '
                         'be an int >= 1')
    return dict(options)


def fill_predictions(data_samples: Optional[List[DataSample]],
                     draws: Sequence[Sequence[str]]) -> List[DataSample]:
    """Write ``draws`` (num_samples lists of B captions) into B samples:
    ``pred_caption`` is the first draw, ``pred_captions`` all of them when
    there are several (the diversity metrics read it)."""
    batch = len(draws[0])
    if data_samples is None:
        data_samples = [DataSample() for _ in range(batch)]
    for i, sample in enumerate(data_samples):
        sample.pred_caption = draws[0][i]
        if len(draws) > 1:
            sample.pred_captions = [draw[i] for draw in draws]
    return data_samples
