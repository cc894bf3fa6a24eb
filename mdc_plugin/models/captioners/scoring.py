"""The scoring entry every image-text model shares: candidate captions in,
(B, K) match scores out (``model.score(inputs, captions, **options)``).

Captions are checked before any model work: an empty caption, one longer
than the model's caption length, or one with words the tokenizer does not
know is refused with the image and option it came from, because a
truncated or ``[UNK]``-filled caption would be scored as a different text.
"""
from contextlib import contextmanager
from typing import (Any, Dict, Iterator, List, Mapping, Optional, Sequence,
                    Union)

import numpy as np
import torch
from torch import Tensor

from ..tokenizers.base import CaptionTokenizer

#: How per-token log-likelihoods become one score per caption.
NORMALIZATIONS = ('sum', 'mean')

CaptionGrid = Union[Sequence[str], Sequence[Sequence[str]]]


class CaptionScoringUnsupported(TypeError):
    """This model cannot score captions (the message says why and what
    scores instead)."""


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Run the block in eval mode and give ``model`` its mode back."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def scoring_refusal(model) -> Optional[str]:
    """Why ``model.score`` refuses to score, or None when it can.

    A model says why with a ``score_refusal`` attribute; a captioner whose
    head has no ``log_likelihood`` refuses with the head's
    ``score_refusal`` (or a generic reason).
    """
    name = type(model).__name__
    if not hasattr(model, 'score'):
        return f'{name} has no score entry'
    if getattr(model, 'score_refusal', None):
        return f'{name} cannot score captions: {model.score_refusal}'
    head = getattr(model, 'head', None)
    if head is not None and not hasattr(head, 'log_likelihood'):
        reason = getattr(head, 'score_refusal', None) or (
            'it defines no log_likelihood')
        return (f'{name} with head {type(head).__name__} cannot score '
                f'captions: {reason}')
    return None


def caption_grid(captions: CaptionGrid, batch: int,
                 owner: str) -> List[List[str]]:
    """Candidate captions as B lists of K strings.

    ``captions`` is either B sequences of K captions (one row per image) or
    one flat sequence of K captions scored against every image.

    Raises:
        ValueError: a row count that is not B, rows of different K, K = 0,
            or a caption that is not a non-empty string (naming it).
    """
    if isinstance(captions, str) or not isinstance(captions, Sequence):
        raise ValueError(f'{owner}.score: captions must be a list of K '
                         'strings or B lists of K strings, got '
                         f'{type(captions).__name__}')
    if captions and all(isinstance(c, str) for c in captions):
        rows = [list(captions) for _ in range(batch)]
    else:
        rows = [[c] if isinstance(c, str) else list(c) for c in captions]
        if len(rows) != batch:
            raise ValueError(f'{owner}.score: {len(rows)} rows of captions '
                             f'for {batch} images; give one row per image '
                             'or one flat list for all of them')
    widths = {len(row) for row in rows}
    if len(widths) != 1 or 0 in widths:
        raise ValueError(f'{owner}.score: every image needs the same number '
                         f'K >= 1 of candidate captions, got {sorted(widths)}')
    for i, row in enumerate(rows):
        for k, caption in enumerate(row):
            if not isinstance(caption, str) or not caption.strip():
                raise ValueError(f'{owner}.score: caption {k} of image {i} '
                                 f'is empty or not a string: {caption!r}')
    return rows


def encode_candidates(tokenizer: CaptionTokenizer, rows: List[List[str]],
                      max_length: int, owner: str) -> Tensor:
    """B x K captions -> (B*K, L) ids ``[bos, words, eos, pad...]``, image
    by image (row b*K + k is caption k of image b).

    Raises:
        ValueError: a caption with no token, more than ``max_length - 2``
            tokens, or words the tokenizer maps to its unknown token.
    """
    from mdc_plugin.datasets.transforms.tokenize_caption import \
        unknown_token_id
    unk = unknown_token_id(tokenizer)
    out = []
    for i, row in enumerate(rows):
        for k, caption in enumerate(row):
            where = f'caption {k} of image {i} ({caption!r:.80})'
            content = tokenizer.encode(caption)
            if not content:
                raise ValueError(f'{owner}.score: {where} encodes to no '
                                 'tokens')
            if len(content) > max_length - 2:
                raise ValueError(
                    f'{owner}.score: {where} is {len(content)} tokens long; '
                    f'the model scores at most {max_length - 2} (max_length='
                    f'{max_length} with bos and eos). Shorten it: a '
                    'truncated caption would be scored as another text')
            if unk is not None and unk in content:
                words = unknown_words(tokenizer, caption)
                raise ValueError(
                    f'{owner}.score: {where} has words the tokenizer does '
                    f'not know: {words}; they would be scored as [UNK]')
            ids, _ = tokenizer.encode_padded(caption, max_length)
            out.append(ids)
    return torch.from_numpy(np.stack(out))


def unknown_words(tokenizer: CaptionTokenizer, caption: str) -> List[str]:
    """The words of ``caption`` that encode to the unknown token (for
    word-level tokenizers with a ``split``; else the whole caption)."""
    from mdc_plugin.datasets.transforms.tokenize_caption import \
        unknown_token_id
    split = getattr(tokenizer, 'split', None)
    if split is None:
        return [caption]
    unk = unknown_token_id(tokenizer)
    return [w for w in split(caption) if tokenizer.encode(w) == [unk]]


def check_score_options(options: Mapping[str, Any],
                        defaults: Mapping[str, Any],
                        owner: str) -> Dict[str, Any]:
    """``defaults`` updated by ``options``; unknown keys and a
    ``normalize`` outside :data:`NORMALIZATIONS` are refused."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f'{owner}.score: unknown options {unknown}; '
                         f'allowed: {sorted(defaults)}')
    cfg = dict(defaults, **options)
    if 'normalize' in cfg and cfg['normalize'] not in NORMALIZATIONS:
        raise ValueError(f"{owner}.score: normalize={cfg['normalize']!r} "
                         f'must be one of {NORMALIZATIONS}')
    return cfg


def normalize_log_likelihood(total: Tensor, real: Tensor,
                             normalize: str) -> Tensor:
    """(R,) summed log-likelihoods -> (R,) ``'sum'`` or per real token
    (``'mean'``; ``real`` is the (R, L) mask of counted tokens)."""
    if normalize == 'mean':
        return total / real.sum(1).clamp(min=1)
    return total
