"""The caption tokenizer contract shared by data pipelines and caption heads.

Every caption tokenizer maps text to a flat id space ``[0, vocab_size)`` that
holds the content tokens *and* four distinct special ids (``pad_id``,
``mask_id``, ``bos_id``, ``eos_id``). ``vocab_size`` is therefore the output
size of a caption head that predicts these ids.
"""
from abc import ABCMeta, abstractmethod
from typing import Any, Iterable, List, Sequence, Tuple, Union

import numpy as np

from mmpretrain.registry import TOKENIZER

IdSequence = Union[Sequence[int], Any]  # list/tuple/np.ndarray/torch.Tensor


def _to_int_list(ids: IdSequence, what: str) -> List[int]:
    """Convert a 1-D id container (list, ndarray, tensor) to ``list[int]``."""
    if hasattr(ids, 'tolist'):
        ids = ids.tolist()
    if isinstance(ids, (int, float)):
        raise TypeError(f'{what} expects a 1-D sequence of ids, got a scalar '
                        f'{ids!r}')
    out = list(ids)
    if out and isinstance(out[0], (list, tuple)):
        raise TypeError(f'{what} expects a 1-D sequence of ids, got a nested '
                        'sequence; use batch_decode for (B, L) input')
    return [int(i) for i in out]


class CaptionTokenizer(metaclass=ABCMeta):
    """Abstract caption tokenizer.

    Subclasses set :attr:`vocab_size`, :attr:`pad_id`, :attr:`mask_id`,
    :attr:`bos_id` and :attr:`eos_id` (call :meth:`_check_specials` at the end
    of ``__init__``) and implement :meth:`encode` and :meth:`_decode_content`.
    """

    vocab_size: int
    pad_id: int
    mask_id: int
    bos_id: int
    eos_id: int

    @property
    def special_ids(self) -> tuple:
        """``(pad_id, mask_id, bos_id, eos_id)``."""
        return (self.pad_id, self.mask_id, self.bos_id, self.eos_id)

    def _check_specials(self) -> None:
        """Check that the four special ids are distinct and in range."""
        specials = dict(pad_id=self.pad_id, mask_id=self.mask_id,
                        bos_id=self.bos_id, eos_id=self.eos_id)
        if len(set(specials.values())) != 4:
            raise ValueError(f'{type(self).__name__}: special ids must be '
                             f'distinct, got {specials}')
        for name, value in specials.items():
            if not 0 <= value < self.vocab_size:
                raise ValueError(
                    f'{type(self).__name__}: {name}={value} is outside '
                    f'[0, vocab_size={self.vocab_size})')

    @abstractmethod
    def encode(self, text: str) -> List[int]:
        """Encode ``text`` to content ids (no bos/eos/pad/mask)."""

    @abstractmethod
    def _decode_content(self, ids: List[int]) -> str:
        """Decode content ids (specials already removed) to a string."""

    def strip_specials(self, ids: IdSequence) -> List[int]:
        """Cut ``ids`` at the first eos and drop bos/pad/mask ids.

        Args:
            ids: 1-D sequence/array/tensor of ints.

        Returns:
            list[int]: the content ids.
        """
        out = []
        for i in _to_int_list(ids, f'{type(self).__name__}.decode'):
            if i == self.eos_id:
                break
            if not 0 <= i < self.vocab_size:
                raise ValueError(f'{type(self).__name__}.decode: id {i} is '
                                 f'outside [0, vocab_size={self.vocab_size})')
            if i in (self.bos_id, self.pad_id, self.mask_id):
                continue
            out.append(i)
        return out

    def decode(self, ids: IdSequence) -> str:
        """Decode one id sequence to text.

        Args:
            ids: 1-D list/array/tensor of ids. Decoding stops at the first
                ``eos_id``; ``bos_id``, ``pad_id`` and ``mask_id`` are dropped.

        Returns:
            str: the caption text.
        """
        return self._decode_content(self.strip_specials(ids))

    def batch_decode(self, ids: Union[Iterable[IdSequence], Any]) -> List[str]:
        """Decode a batch.

        Args:
            ids: ``(B, L)`` tensor/array or a list of id lists.

        Returns:
            list[str]: ``B`` captions.
        """
        if hasattr(ids, 'dim') and ids.dim() != 2:
            raise ValueError(f'batch_decode expects (B, L) ids, got shape '
                             f'{tuple(ids.shape)}')
        if hasattr(ids, 'ndim') and not hasattr(ids, 'dim') and ids.ndim != 2:
            raise ValueError(f'batch_decode expects (B, L) ids, got shape '
                             f'{ids.shape}')
        return [self.decode(row) for row in ids]

    def encode_padded(self, text: str,
                      max_length: int) -> Tuple[np.ndarray, int]:
        """Text -> ids of shape (max_length,) laid out
        ``[bos, t1..tn, eos, pad, ...]``, and the number of content tokens
        cut off to fit (0 when nothing was truncated)."""
        content = self.encode(text)
        budget = max_length - 2
        ids = np.full(max_length, self.pad_id, dtype=np.int64)
        kept = content[:budget]
        ids[0] = self.bos_id
        ids[1:len(kept) + 1] = kept
        ids[len(kept) + 1] = self.eos_id
        return ids, len(content) - len(kept)

    def check_vocab_size(self, num_classes: int, owner: str) -> None:
        """Raise ``ValueError`` unless ``num_classes == self.vocab_size``.

        Args:
            num_classes (int): output size of the module using the tokenizer.
            owner (str): name of that module, used in the message.
        """
        if int(num_classes) != self.vocab_size:
            raise ValueError(
                f'{owner}: num_classes={num_classes} does not match the '
                f'vocabulary size {self.vocab_size} of {type(self).__name__} '
                '(content tokens + pad/mask/bos/eos); set num_classes to '
                f'{self.vocab_size}')

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(vocab_size={self.vocab_size}, '
                f'pad_id={self.pad_id}, mask_id={self.mask_id}, '
                f'bos_id={self.bos_id}, eos_id={self.eos_id})')


def build_caption_tokenizer(
        cfg_or_tokenizer: Union[dict, CaptionTokenizer]) -> CaptionTokenizer:
    """Build a :class:`CaptionTokenizer` from a config dict, or pass one
    through.

    Args:
        cfg_or_tokenizer: ``dict(type='CLIPBPETokenizer', ...)`` (any
            ``TOKENIZER`` registry entry that builds a ``CaptionTokenizer``)
            or an already built tokenizer.

    Returns:
        CaptionTokenizer
    """
    cfg = cfg_or_tokenizer
    if isinstance(cfg, CaptionTokenizer):
        return cfg
    if not isinstance(cfg, dict) or 'type' not in cfg:
        raise TypeError('build_caption_tokenizer expects a CaptionTokenizer '
                        f"or a config dict with a 'type' key, got {cfg!r}")
    tokenizer = TOKENIZER.build(dict(cfg))
    if not isinstance(tokenizer, CaptionTokenizer):
        raise TypeError(
            f"tokenizer type {cfg['type']!r} built a "
            f'{type(tokenizer).__name__}, which is not a CaptionTokenizer; '
            'use CLIPBPETokenizer, HFCaptionTokenizer or ShapesTokenizer')
    return tokenizer
