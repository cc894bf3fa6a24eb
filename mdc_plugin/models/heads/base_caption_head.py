"""What every caption head shares: the tokenizer and the caption ids in and
strings out; and the cross-attention decoder of the MDC, Cap and D3PM
heads."""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torch import Tensor, nn

from ..diffusion import merge_sampler_cfg
from ..layers import CaptionTransformer
from ..tokenizers import CaptionTokenizer, build_caption_tokenizer


class BaseCaptionHead(BaseModule):
    """A caption head over the vocabulary its tokenizer defines.

    Args:
        tokenizer: tokenizer config or instance; its ``vocab_size`` sets the
            output size and its special ids (pad, mask, bos, eos) are used.
        max_length: caption length L in tokens, bos and eos included; must
            equal the ``max_length`` of the pipeline's ``TokenizeCaption``.
    """

    #: Decoding defaults of ``predict`` / ``sample`` (the head's ``sampler``
    #: config merged over its built-in defaults). Its keys are the head's
    #: decode keys: the only options ``predict`` accepts.
    sampler_cfg: Dict[str, Any] = {}

    def __init__(self, tokenizer: Union[dict, CaptionTokenizer],
                 max_length: int, init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.tokenizer = build_caption_tokenizer(tokenizer)
        if max_length < 3:
            raise ValueError(f'max_length={max_length} leaves no room for a '
                             'word between bos and eos')
        self.max_length = max_length
        self.vocab_size = self.tokenizer.vocab_size

    def caption_ids(self, data_samples: Sequence, device) -> Tensor:
        """Stack ``data_sample.caption_ids`` into a (B, L) long tensor."""
        rows = []
        for i, sample in enumerate(data_samples):
            ids = sample.get('caption_ids', None) if hasattr(
                sample, 'get') else getattr(sample, 'caption_ids', None)
            if ids is None:
                raise KeyError(
                    f'data sample {i} has no `caption_ids`: add '
                    '`TokenizeCaption` to the pipeline and pack its output '
                    "with PackInputs(algorithm_keys=[..., 'caption_ids'])")
            rows.append(torch.as_tensor(np.asarray(ids), dtype=torch.long))
        ids = torch.stack(rows).to(device)
        if ids.shape[1] != self.max_length:
            raise ValueError(
                f'captions are {ids.shape[1]} tokens long but the head has '
                f'max_length={self.max_length}: set the same max_length in '
                'TokenizeCaption and the head')
        if int(ids.max()) >= self.vocab_size or int(ids.min()) < 0:
            raise ValueError(
                f'caption ids span [{int(ids.min())}, {int(ids.max())}] but '
                f'the head vocabulary has {self.vocab_size} entries: the '
                "pipeline's tokenizer differs from the head's")
        return ids

    def targets(self, caption_ids: Tensor) -> Tensor:
        """(B, L) tokenized captions -> (B, L) with pad replaced by eos (the
        diffusion heads learn the caption length from eos padding)."""
        tok = self.tokenizer
        return caption_ids.masked_fill(caption_ids == tok.pad_id, tok.eos_id)

    def real_token_mask(self, caption_ids: Tensor) -> Tensor:
        """(B, L) caption ids -> (B, L) bool: the words and the first eos
        (the tokens a caption's likelihood is counted over; bos and the
        padding after the first eos are False)."""
        eos = self.targets(caption_ids) == self.tokenizer.eos_id
        before_or_at_first_eos = (eos.long().cumsum(1) - eos.long()) == 0
        mask = before_or_at_first_eos.clone()
        mask[:, 0] = False
        return mask

    def forbidden_mask(self, device) -> Tensor:
        """(V,) bool: ids a sampler must never emit (pad, mask, bos)."""
        mask = torch.zeros(self.vocab_size, dtype=torch.bool, device=device)
        tok = self.tokenizer
        mask[[tok.pad_id, tok.mask_id, tok.bos_id]] = True
        return mask

    def update_sampler_cfg(self, overrides: Optional[Dict[str, Any]],
                           owner: str) -> None:
        """Merge ``overrides`` into :attr:`sampler_cfg` (unknown keys and
        values the sampler cannot use are refused, naming ``owner``)."""
        cfg = merge_sampler_cfg(self.sampler_cfg, overrides, owner,
                                hint=' (the decode keys of the head)')
        self.check_sampler_cfg(cfg)
        self.sampler_cfg = cfg

    def check_sampler_cfg(self, cfg: Dict[str, Any]) -> None:
        """Raise ValueError on sampler values this head cannot use."""

    @property
    def decode_keys(self) -> Tuple[str, ...]:
        """Options ``predict(feats, **options)`` accepts, sorted."""
        return tuple(sorted(self.sampler_cfg))

    def decode(self, ids: Tensor) -> List[str]:
        """(B, L) ids -> captions, stopping at the first eos."""
        return self.tokenizer.batch_decode(ids.tolist())


class CrossAttentionCaptionHead(BaseCaptionHead):
    """Caption head whose decoder (:class:`CaptionTransformer`) cross-attends
    to a memory of tokens (image tokens, or embedded condition codes).

    Args:
        tokenizer / max_length: see :class:`BaseCaptionHead`.
        memory_dims: width C of the memory tokens (None: ``embed_dims``).
        embed_dims / num_layers / num_heads / mlp_ratio: decoder shape.
        tie_embeddings: share the input embedding with the output projection.
        with_cp: activation checkpointing of the decoder blocks.
    """

    def __init__(self, tokenizer: Union[dict, CaptionTokenizer],
                 max_length: int, memory_dims: Optional[int] = None,
                 embed_dims: int = 512, num_layers: int = 6,
                 num_heads: int = 8, mlp_ratio: float = 4.0,
                 tie_embeddings: bool = True, with_cp: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tokenizer, max_length, init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.memory_dims = memory_dims or embed_dims
        self.decoder = CaptionTransformer(
            self.vocab_size, max_length, embed_dims, num_layers, num_heads,
            mlp_ratio, memory_dims=self.memory_dims, with_cp=with_cp)
        # Tied weights are read from the embedding at call time rather than
        # shared as one Parameter in two modules, which MMEngine's
        # paramwise optimizer constructor would count twice.
        self.tie_embeddings = tie_embeddings
        self.output_proj = None if tie_embeddings else nn.Linear(
            embed_dims, self.vocab_size, bias=False)

    def output_layer(self, vocab_ids: Optional[Tensor] = None) -> Tensor:
        """The (V, D) output weights, or their (V', D) rows ``vocab_ids``
        (a caption vocabulary, :mod:`.caption_vocabulary`)."""
        weight = (self.output_proj.weight if self.output_proj is not None
                  else self.decoder.token_embed.weight)
        return weight if vocab_ids is None else weight.index_select(
            0, vocab_ids)

    def output_subset(self, vocabulary, device
                      ) -> Tuple[Optional[Tensor], Tensor, Tensor]:
        """A sampler's output layer for a ``vocabulary`` decode key:
        ``(vocab_ids or None, (V', D) weight, (V',) forbidden mask)``, the
        caption vocabulary (:mod:`.caption_vocabulary`) resolved with eos."""
        from .caption_vocabulary import resolve_vocabulary
        vocab = resolve_vocabulary(vocabulary, self.vocab_size,
                                   self.tokenizer.eos_id, device,
                                   type(self).__name__)
        forbidden = self.forbidden_mask(device)
        if vocab is not None:
            forbidden = forbidden[vocab]
        return vocab, self.output_layer(vocab), forbidden

    def logits(self, hidden: Tensor,
               weight: Optional[Tensor] = None) -> Tensor:
        """Hidden states (..., D) -> logits (..., V), or (..., V') with the
        ``weight`` rows of :meth:`output_layer`."""
        return F.linear(hidden,
                        self.output_layer() if weight is None else weight)
