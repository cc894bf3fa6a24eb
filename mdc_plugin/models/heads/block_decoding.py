"""The batch state of MDC's block sampler: rows still decoding, their image
keys/values and the block cache.

:class:`ActiveBatch` is what :meth:`MaskedDiffusionCaptionHead.sample`
decodes. It hands the sampler the (B', L) ids of the rows still being
decoded and a ``window(start, end)`` giving the decoder states of a block,
and it carries two speed levers:

* **retiring finished captions** (``early_stop``, exact for greedy
  low-confidence decoding): a caption that has committed its EOS and
  everything before it cannot change any more, so it leaves the batch and
  later passes run on the other rows only;
* **the block cache** (``block_cache``, approximate, Fast-dLLM's dual
  cache): every position's self-attention keys/values are kept and a pass
  recomputes only a window of positions against them. With
  ``cache_refresh='full'`` each block starts with a full pass over the
  caption; with ``'committed'`` only the first block does, and a later
  block starts with a window over the positions committed since they were
  last encoded plus the block itself (the rest, e.g. the masked suffix,
  keeps its keys/values from earlier passes); ``refresh_ahead=k`` makes
  every cached pass also recompute the k positions after the block, so
  the suffix the block reads first is never more than a step old.
"""
from typing import Callable, List, Optional

import torch
from torch import Tensor

from ..layers.caption_transformer import (CaptionTransformer, KVCache,
                                          select_rows)

CACHE_REFRESHES = ('full', 'committed')


class ActiveBatch:
    """The rows of a sampling batch still being decoded.

    Args:
        ids: (B, L) ids of every row, written in place as rows retire.
        memory_kv: per-block cross-attention keys/values of the image
            tokens, each (B, H, N, D/H).
        decoder: the head's :class:`CaptionTransformer`.
        block_cache: keep self-attention keys/values between passes.
        cache_refresh: ``'full'`` or ``'committed'`` (see the module).
        refresh_ahead: positions after the block that every cached pass
            recomputes too (see the module).
    """

    def __init__(self, ids: Tensor, memory_kv: List[KVCache],
                 decoder: CaptionTransformer, block_cache: bool = False,
                 cache_refresh: str = 'full',
                 refresh_ahead: int = 0) -> None:
        self.all_ids = ids
        self.rows = torch.arange(ids.shape[0], device=ids.device)
        self.ids = ids.clone()
        self.memory_kv = memory_kv
        self.decoder = decoder
        self.block_cache = block_cache
        self.cache_refresh = cache_refresh
        self.refresh_ahead = refresh_ahead
        self.cache: Optional[List[KVCache]] = None
        # (B', L) ids as the cache last encoded them (for 'committed').
        self.encoded: Optional[Tensor] = None
        self.block_start: Optional[int] = None

    def __len__(self) -> int:
        return self.ids.shape[0]

    # ----------------------------------------------------------- passes --
    def window(self, start: int, end: int
               ) -> Callable[[Optional[Tensor]], Tensor]:
        """A function giving the (R, end-start, D) decoder states of
        positions ``start..end-1`` for the current ids, one pass a call, of
        the R rows whose indices (R,) it is given (None: every row; a row
        left out has nothing left to commit in the block)."""
        self.block_start = None
        ahead = min(self.ids.shape[1], end + self.refresh_ahead)

        def states(rows: Optional[Tensor] = None) -> Tensor:
            first = self.block_start != start
            self.block_start = start
            pick = None if rows is None or len(rows) == len(self) else rows
            ids, memory_kv = self.ids, self.memory_kv
            if pick is not None:
                ids = ids[pick]
                memory_kv = select_rows(memory_kv, pick)
            if not self.block_cache or self.cache is None or (
                    first and self.cache_refresh == 'full'):
                if self.block_cache and self.cache is None and \
                        pick is not None:
                    raise ValueError('the first pass of the block cache '
                                     'runs every row')
                hidden, kv = self.decoder(ids, memory_kv=memory_kv)
                if self.block_cache:
                    self._store(pick, kv, ids)
                return hidden[:, start:end]
            cache, encoded = self.cache, self.encoded
            if pick is not None:
                cache = select_rows(cache, pick)
                encoded = encoded[pick]
            lo = start
            if first:  # 'committed': re-encode what changed since
                changed = (ids != encoded)[:, :start].any(0)
                if bool(changed.any()):
                    lo = int(changed.nonzero()[0])
            hidden, kv = self.decoder.forward_window(ids[:, lo:ahead], lo,
                                                     cache, memory_kv)
            self._store(pick, kv, ids)
            return hidden[:, start - lo:end - lo]
        return states

    def _store(self, pick: Optional[Tensor], kv: List[KVCache],
               ids: Tensor) -> None:
        """Keep a pass's keys/values and the ids they encode, for every row
        (``pick`` None) or the rows ``pick`` (R,)."""
        if pick is None:
            self.cache, self.encoded = kv, ids.clone()
            return
        for (k, v), (new_k, new_v) in zip(self.cache, kv):
            k[pick], v[pick] = new_k, new_v
        self.encoded[pick] = ids

    # ------------------------------------------------------------- rows --
    def sync(self) -> Tensor:
        """Write the active rows back; returns the (B, L) ids of all rows."""
        self.all_ids[self.rows] = self.ids
        return self.all_ids

    def snapshot(self) -> Tensor:
        """A copy of every row's current (B, L) ids (for traces)."""
        return self.sync().clone()

    def retire(self, done: Tensor) -> None:
        """Drop the rows where ``done`` (B',) is True: their ids are final
        (written back), and their image keys/values and cache rows go."""
        self.sync()
        keep = ~done
        self.rows, self.ids = self.rows[keep], self.ids[keep]
        self.memory_kv = select_rows(self.memory_kv, keep)
        if self.cache is not None:
            self.cache = select_rows(self.cache, keep)
            self.encoded = self.encoded[keep]
