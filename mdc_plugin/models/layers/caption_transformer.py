"""Pre-LN transformer blocks shared by every caption head.

One block = self-attention over caption tokens (bidirectional or causal) ->
optional cross-attention to image tokens -> MLP, each with a residual and a
pre-LayerNorm (CapPa / ViT style). Attention is torch's fused
``scaled_dot_product_attention``.

Shapes: text ``x`` is (B, L, D); image ``memory`` is (B, N, C) and is
projected to D inside the cross-attention, so the backbone width C may
differ from the decoder width D.
"""
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

KVCache = Tuple[Tensor, Tensor]


def select_rows(kv: List[KVCache], rows: Tensor) -> List[KVCache]:
    """The batch rows ``rows`` (an index or bool (B,) tensor) of every
    block's keys/values, each (B, H, S, D/H)."""
    return [(k[rows], v[rows]) for k, v in kv]


class Attention(nn.Module):
    """Multi-head attention with separate query and key/value sources.

    Args:
        dims: model width D (queries and output).
        num_heads: number of heads; must divide ``dims``.
        kv_dims: width of the key/value source (defaults to ``dims``).
    """

    def __init__(self, dims: int, num_heads: int,
                 kv_dims: Optional[int] = None) -> None:
        super().__init__()
        if dims % num_heads:
            raise ValueError(f'embed_dims={dims} is not divisible by '
                             f'num_heads={num_heads}')
        self.num_heads = num_heads
        self.q = nn.Linear(dims, dims)
        self.kv = nn.Linear(kv_dims or dims, 2 * dims)
        self.proj = nn.Linear(dims, dims)

    def _split(self, t: Tensor) -> Tensor:
        """(B, S, D) -> (B, H, S, D/H)."""
        b, s, _ = t.shape
        return t.view(b, s, self.num_heads, -1).transpose(1, 2)

    def project_kv(self, source: Tensor) -> KVCache:
        """(B, S, C) -> key and value, each (B, H, S, D/H)."""
        k, v = self.kv(source).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def forward(self, x: Tensor, kv: KVCache,
                attn_mask: Optional[Tensor] = None,
                is_causal: bool = False) -> Tensor:
        """Attend from ``x`` (B, L, D) to ``kv``; returns (B, L, D).

        ``attn_mask`` is a boolean mask broadcastable to (B, H, L, S) where
        True marks keys that may be attended to.
        """
        q = self._split(self.q(x))
        out = F.scaled_dot_product_attention(
            q, kv[0], kv[1], attn_mask=attn_mask, is_causal=is_causal)
        b, h, length, d = out.shape
        return self.proj(out.transpose(1, 2).reshape(b, length, h * d))


class CaptionBlock(nn.Module):
    """Pre-LN block: self-attn -> (cross-attn) -> MLP.

    Args:
        dims: width D of the caption stream.
        num_heads: attention heads.
        mlp_ratio: hidden width of the MLP as a multiple of D.
        memory_dims: width C of the image tokens; ``None`` builds a text-only
            block without cross-attention (the contrastive text tower).
    """

    def __init__(self, dims: int, num_heads: int, mlp_ratio: float = 4.0,
                 memory_dims: Optional[int] = None) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dims)
        self.self_attn = Attention(dims, num_heads)
        self.has_cross = memory_dims is not None
        if self.has_cross:
            self.norm_cross = nn.LayerNorm(dims)
            self.cross_attn = Attention(dims, num_heads, kv_dims=memory_dims)
        self.norm_mlp = nn.LayerNorm(dims)
        hidden = int(dims * mlp_ratio)
        self.mlp = nn.Sequential(
            nn.Linear(dims, hidden), nn.GELU(), nn.Linear(hidden, dims))

    def forward(self, x: Tensor, memory_kv: Optional[KVCache] = None,
                self_mask: Optional[Tensor] = None, causal: bool = False,
                past_kv: Optional[KVCache] = None
                ) -> Tuple[Tensor, KVCache]:
        """x (B, L, D) -> (B, L, D) and this step's self-attention key/value.

        With ``past_kv`` (incremental decoding) the new keys/values are
        appended to the cached ones and ``x`` holds only the new positions.
        """
        if past_kv is not None and causal and x.shape[1] > 1:
            raise ValueError('incremental decoding takes one new token a step')
        h = self.norm_self(x)
        k, v = self.self_attn.project_kv(h)
        if past_kv is not None:
            k = torch.cat([past_kv[0], k], dim=2)
            v = torch.cat([past_kv[1], v], dim=2)
        # A causal mask is only needed when several queries are processed at
        # once; a single new query may see the whole cache.
        use_causal = causal and x.shape[1] > 1
        x = x + self.self_attn(h, (k, v), attn_mask=self_mask,
                               is_causal=use_causal and self_mask is None)
        if self.has_cross:
            x = x + self.cross_attn(self.norm_cross(x), memory_kv)
        x = x + self.mlp(self.norm_mlp(x))
        return x, (k, v)

    def forward_window(self, x: Tensor, memory_kv: Optional[KVCache],
                       cache: KVCache, start: int) -> Tuple[Tensor, KVCache]:
        """Recompute positions ``start..start+S-1`` only: x (B, S, D) attends
        to ``cache`` (B, H, L, D/H) keys/values of every position, with its
        own replacing the window's. Returns (B, S, D) and the updated cache.
        The other positions' keys and values are as cached (an
        approximation when they would change; see the MDC sampler's
        ``block_cache``)."""
        end = start + x.shape[1]
        if start < 0 or end > cache[0].shape[2]:
            raise ValueError(f'window {start}..{end - 1} is outside the '
                             f'{cache[0].shape[2]} cached positions')
        h = self.norm_self(x)
        k_new, v_new = self.self_attn.project_kv(h)
        k = torch.cat([cache[0][:, :, :start], k_new, cache[0][:, :, end:]],
                      dim=2)
        v = torch.cat([cache[1][:, :, :start], v_new, cache[1][:, :, end:]],
                      dim=2)
        x = x + self.self_attn(h, (k, v))
        if self.has_cross:
            x = x + self.cross_attn(self.norm_cross(x), memory_kv)
        x = x + self.mlp(self.norm_mlp(x))
        return x, (k, v)


class CaptionTransformer(BaseModule):
    """Token embedding + positions + a stack of :class:`CaptionBlock`.

    Args:
        vocab_size: number of token ids (including specials).
        max_length: longest caption L (learned positions).
        embed_dims: width D.
        num_layers: number of blocks.
        num_heads: attention heads.
        mlp_ratio: MLP width multiple.
        memory_dims: image-token width C, or ``None`` for a text-only tower.
        with_cp: activation checkpointing of every block (saves memory at
            the cost of a second forward in backward).
    """

    def __init__(self, vocab_size: int, max_length: int, embed_dims: int,
                 num_layers: int, num_heads: int, mlp_ratio: float = 4.0,
                 memory_dims: Optional[int] = None, with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.max_length = max_length
        self.token_embed = nn.Embedding(vocab_size, embed_dims)
        self.pos_embed = nn.Parameter(torch.zeros(1, max_length, embed_dims))
        self.blocks = nn.ModuleList(
            CaptionBlock(embed_dims, num_heads, mlp_ratio, memory_dims)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims)
        self.with_cp = with_cp
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.token_embed.weight, std=0.02)

    def memory_kv(self, memory: Tensor) -> List[KVCache]:
        """Project image tokens (B, N, C) to per-block cross-attention K/V.

        Computed once per image and reused at every sampling step.
        """
        return [blk.cross_attn.project_kv(memory) for blk in self.blocks]

    def forward(self, tokens: Tensor, memory: Optional[Tensor] = None,
                memory_kv: Optional[List[KVCache]] = None,
                self_mask: Optional[Tensor] = None, causal: bool = False,
                past_kv: Optional[List[KVCache]] = None, start: int = 0,
                extra_embed: Optional[Tensor] = None
                ) -> Tuple[Tensor, List[KVCache]]:
        """Token ids (B, L) -> hidden states (B, L, D) and the new KV cache.

        ``memory`` (B, N, C) or precomputed ``memory_kv`` feed the
        cross-attention. ``start`` is the position of ``tokens[:, 0]`` (for
        incremental decoding with ``past_kv``). ``extra_embed`` (B, D) or
        (B, L, D), e.g. a diffusion timestep embedding, is added to the
        input embeddings.
        """
        length = tokens.shape[1]
        if start + length > self.max_length:
            raise ValueError(f'caption of {start + length} tokens exceeds '
                             f'max_length={self.max_length}')
        x = self.token_embed(tokens) + self.pos_embed[:, start:start + length]
        if extra_embed is not None:
            x = x + (extra_embed[:, None] if extra_embed.dim() == 2
                     else extra_embed)
        if memory_kv is None and memory is not None:
            memory_kv = self.memory_kv(memory)
        new_cache = []
        for i, blk in enumerate(self.blocks):
            kv_i = memory_kv[i] if memory_kv is not None else None
            past_i = past_kv[i] if past_kv is not None else None
            if self.with_cp and self.training and x.requires_grad:
                x, cache = checkpoint(blk, x, kv_i, self_mask, causal, past_i,
                                      use_reentrant=False)
            else:
                x, cache = blk(x, kv_i, self_mask, causal, past_i)
            new_cache.append(cache)
        return self.norm(x), new_cache

    def forward_window(self, tokens: Tensor, start: int,
                       cache: List[KVCache],
                       memory_kv: Optional[List[KVCache]] = None
                       ) -> Tuple[Tensor, List[KVCache]]:
        """Token ids (B, S) at positions ``start..start+S-1`` -> their hidden
        states (B, S, D), every other position read from ``cache`` (the
        per-block self-attention keys/values a full :meth:`forward` or an
        earlier window returned), and the updated cache. Bidirectional
        attention only."""
        length = tokens.shape[1]
        x = self.token_embed(tokens) + self.pos_embed[:, start:start + length]
        new_cache = []
        for i, blk in enumerate(self.blocks):
            kv_i = memory_kv[i] if memory_kv is not None else None
            x, kv = blk.forward_window(x, kv_i, cache[i], start)
            new_cache.append(kv)
        return self.norm(x), new_cache
