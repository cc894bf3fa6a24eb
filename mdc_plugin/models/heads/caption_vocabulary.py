"""A caption vocabulary: the output layer restricted to the ids a corpus uses.

A sampler given ``vocabulary`` projects its hidden states onto those rows of
the output layer only (``V'`` of ``V`` ids). This is *exactly* the sampler
that forbids every other id (the same logits, normalised over the same set),
so every caption the corpus can produce is still reachable; with CLIP's
49,410-id BPE the projection, which dominates a decoding step, shrinks by
``V / V'``. The end-of-caption id is always kept.

``vocabulary`` (a decode key of the MDC and AR heads) is ``None`` (all ids),
a list of ids, or the path of a JSON file holding such a list (or
``{"ids": [...]}``), as ``tools/misc/caption_vocabulary.py`` writes it.
"""
import functools
import json
import os.path as osp
from typing import Optional, Sequence, Union

import torch
from torch import Tensor

__all__ = ['VocabularySpec', 'resolve_vocabulary', 'check_vocabulary']

VocabularySpec = Union[None, str, Sequence[int]]


@functools.lru_cache(maxsize=8)
def _read_file(path: str, mtime: float) -> tuple:
    """The ids of a vocabulary file (cached per path and modification
    time: a sampler reads it on every call)."""
    with open(path) as f:
        data = json.load(f)
    return tuple(data.get('ids') if isinstance(data, dict) else data)


def _read_ids(spec: VocabularySpec, owner: str) -> Optional[list]:
    if spec is None:
        return None
    if isinstance(spec, str):
        if not osp.isfile(spec):
            raise ValueError(f'{owner}: sampler.vocabulary file {spec!r} not '
                             'found (write one with '
                             'tools/misc/caption_vocabulary.py)')
        spec = _read_file(osp.abspath(spec), osp.getmtime(spec))
    try:
        ids = [int(i) for i in spec]
    except (TypeError, ValueError):
        raise ValueError(f'{owner}: sampler.vocabulary must be None, a list '
                         'of token ids or the path of a JSON list of ids, got '
                         f'{type(spec).__name__}') from None
    if any(isinstance(i, bool) for i in spec):
        raise ValueError(f'{owner}: sampler.vocabulary holds booleans')
    return ids


def _checked_ids(spec: VocabularySpec, vocab_size: int,
                 owner: str) -> Optional[list]:
    ids = _read_ids(spec, owner)
    if ids is None:
        return None
    if not ids:
        raise ValueError(f'{owner}: sampler.vocabulary is empty')
    bad = [i for i in ids if not 0 <= i < vocab_size]
    if bad:
        raise ValueError(f'{owner}: sampler.vocabulary ids {bad[:5]} are '
                         f'outside [0, {vocab_size}): a vocabulary of another '
                         'tokenizer?')
    return ids


def check_vocabulary(spec: VocabularySpec, vocab_size: int,
                     owner: str) -> None:
    """Raise ValueError for a vocabulary the head cannot use."""
    _checked_ids(spec, vocab_size, owner)


def resolve_vocabulary(spec: VocabularySpec, vocab_size: int, eos_id: int,
                       device, owner: str) -> Optional[Tensor]:
    """Sorted unique (V',) long ids with ``eos_id``, or None for all."""
    ids = _checked_ids(spec, vocab_size, owner)
    if ids is None:
        return None
    return torch.tensor(sorted(set(ids) | {eos_id}), dtype=torch.long,
                        device=device)
