"""Cap / CapPa baseline: autoregressive caption head on the same decoder."""
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..captioners.scoring import normalize_log_likelihood
from ..diffusion import merge_sampler_cfg, softmax_draw
from ..layers.caption_transformer import select_rows
from ..tokenizers import CaptionTokenizer
from .base_caption_head import CrossAttentionCaptionHead
from .caption_vocabulary import check_vocabulary


@MODELS.register_module()
class AutoregressiveCaptionHead(CrossAttentionCaptionHead):
    """Causal decoder trained with teacher forcing (Cap).

    Args:
        tokenizer / max_length: see :class:`BaseCaptionHead`.
        image_dims: width C of the image tokens the decoder attends to.
        parallel_prob: CapPa's mix: the fraction of samples whose decoder
            input is all mask tokens with bidirectional attention, so every
            token is predicted from the image alone. 0 gives plain Cap.
        temperature: decoding default (0 = greedy); shorthand for
            ``sampler=dict(temperature=...)``.
        sampler: defaults for :meth:`sample`: ``temperature``, ``vocabulary``
            (a caption vocabulary, :mod:`.caption_vocabulary`).
        **kwargs: decoder shape, see :class:`CrossAttentionCaptionHead`.
    """

    #: How the decoder reads a caption (metrics probing it use this).
    caption_reading = 'causal'

    def __init__(self, tokenizer: Union[dict, CaptionTokenizer],
                 max_length: int, image_dims: int,
                 parallel_prob: float = 0.0, temperature: float = 0.0,
                 sampler: Optional[dict] = None, **kwargs) -> None:
        super().__init__(tokenizer, max_length, memory_dims=image_dims,
                         **kwargs)
        if not 0 <= parallel_prob <= 1:
            raise ValueError(f'parallel_prob={parallel_prob} not in [0, 1]')
        self.parallel_prob = parallel_prob
        self.sampler_cfg = dict(temperature=temperature, vocabulary=None)
        #: Defaults of ``model.score`` (see :meth:`log_likelihood`).
        self.score_cfg = dict(normalize='sum')
        self.update_sampler_cfg(sampler, type(self).__name__)

    def check_sampler_cfg(self, cfg: dict) -> None:
        """A caption vocabulary of this head's tokenizer."""
        check_vocabulary(cfg['vocabulary'], self.vocab_size,
                         type(self).__name__)

    def loss(self, image_tokens: Tensor, data_samples: Sequence) -> dict:
        """image_tokens (B, N, C) -> ``dict(loss=...)``; pads are ignored,
        the first eos is a target."""
        ids = self.caption_ids(data_samples, image_tokens.device)
        inputs, targets = ids[:, :-1], ids[:, 1:]
        targets = targets.masked_fill(targets == self.tokenizer.pad_id, -100)
        batch, length = inputs.shape
        self_mask, causal = None, True
        if self.parallel_prob > 0:
            draw = torch.rand(batch, device=ids.device)
            parallel = draw < self.parallel_prob
            inputs = torch.where(parallel[:, None],
                                 torch.full_like(inputs,
                                                 self.tokenizer.mask_id),
                                 inputs)
            tri = torch.ones(length, length, dtype=torch.bool,
                             device=ids.device).tril()
            self_mask = (tri[None] | parallel[:, None, None])[:, None]
            causal = False
        hidden, _ = self.decoder(inputs, memory=image_tokens,
                                 self_mask=self_mask, causal=causal)
        logits = self.logits(hidden).float()
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(),
                               ignore_index=-100)
        with torch.no_grad():
            valid = targets != -100
            acc = (logits.argmax(-1)[valid] == targets[valid]).float().mean()
        return dict(loss=loss, token_acc=acc)

    @torch.no_grad()
    def token_nll(self, image_tokens: Tensor, caption_ids: Tensor) -> Tensor:
        """Exact per-token negative log-likelihood under teacher forcing.

        image_tokens (B, N, C), caption_ids (B, L) -> (B, L) nats, position
        i holding -log p(x_i | x_<i, image) (0 at bos). Sum it over
        :meth:`real_token_mask` for the caption's log-likelihood.
        """
        ids = caption_ids
        hidden, _ = self.decoder(ids[:, :-1], memory=image_tokens,
                                 causal=True)
        logits = self.logits(hidden).float()
        nll = F.cross_entropy(logits.transpose(1, 2), ids[:, 1:],
                              reduction='none')
        return F.pad(nll, (1, 0))

    @torch.no_grad()
    def log_likelihood(self, image_tokens: Tensor, caption_ids: Tensor,
                       normalize: str = 'sum', group_size: int = 1
                       ) -> Tensor:
        """Exact log-likelihood of each caption, summed over its words and
        first eos (``normalize='mean'``: per such token). One decoder pass.

        image_tokens (R, N, C), caption_ids (R, L) -> (R,) nats (<= 0).
        ``group_size`` is accepted for the shared scoring signature (the
        score is exact, so rows need no common randomness).
        """
        real = self.real_token_mask(caption_ids)
        total = -(self.token_nll(image_tokens, caption_ids) * real).sum(1)
        return normalize_log_likelihood(total, real, normalize)

    @torch.no_grad()
    def sample(self, image_tokens: Tensor,
               temperature: Optional[float] = None,
               vocabulary=None) -> Tensor:
        """Greedy (or temperature) decoding with a key/value cache; a
        caption that has emitted eos leaves the batch (exact for greedy
        decoding; with temperature > 0 the draws are for fewer rows), and
        decoding stops when none is left. ``vocabulary``: the output layer
        restricted to a caption vocabulary (exact for the captions it can
        spell, :mod:`.caption_vocabulary`).

        image_tokens (B, N, C) -> (B, L) ids starting with bos.
        """
        cfg = merge_sampler_cfg(
            self.sampler_cfg, dict(temperature=temperature,
                                   vocabulary=vocabulary),
            type(self).__name__)
        self.check_sampler_cfg(cfg)
        temperature = cfg['temperature']
        tok = self.tokenizer
        batch, device = image_tokens.shape[0], image_tokens.device
        ids = torch.full((batch, self.max_length), tok.pad_id, device=device)
        ids[:, 0] = tok.bos_id
        if not batch:
            return ids
        memory_kv = self.decoder.memory_kv(image_tokens)
        vocab, weight, forbidden = self.output_subset(cfg['vocabulary'],
                                                      device)
        rows = torch.arange(batch, device=device)  # still decoding
        cache = None
        for pos in range(1, self.max_length):
            hidden, cache = self.decoder(
                ids[rows, pos - 1:pos], memory_kv=memory_kv, causal=True,
                past_kv=cache, start=pos - 1)
            logits = self.logits(hidden[:, -1], weight).float()
            logits[:, forbidden] = float('-inf')
            if temperature > 0:
                nxt, _ = softmax_draw(logits, temperature)
            else:
                nxt = logits.argmax(-1)
            if vocab is not None:
                nxt = vocab[nxt]
            ids[rows, pos] = nxt
            ended = nxt == tok.eos_id
            if bool(ended.any()):
                # A caption that emitted eos leaves the batch (exact: its
                # padding stays pad) with its image and cache rows.
                keep = ~ended
                rows = rows[keep]
                memory_kv = select_rows(memory_kv, keep)
                cache = select_rows(cache, keep)
                if not len(rows):
                    break
        return ids

    def predict(self, image_tokens: Tensor, **kwargs) -> list:
        """image_tokens (B, N, C) -> list of B caption strings."""
        return self.decode(self.sample(image_tokens, **kwargs))
