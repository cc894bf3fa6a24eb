"""MDC: image-conditioned masked-diffusion caption head.

Training (MDLM / LLaDA style): draw t per sample, mask every caption token
independently with probability t, let a bidirectional decoder that
cross-attends to all image tokens predict the originals, and weight the
cross-entropy on masked positions by 1/t (the continuous-time ELBO of the
log-linear masking schedule).

Length: captions are padded with EOS (as LLaDA does) and the padding EOS
tokens are masked and predicted like any other token, so the model learns
where captions end without a separate length predictor; decoding stops at
the first EOS. The leading BOS stays visible and is never predicted.
"""
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor

from ..diffusion import commit_counts, merge_sampler_cfg, softmax_draw
from ..tokenizers import CaptionTokenizer
from .base_caption_head import CrossAttentionCaptionHead

LOSS_WEIGHTINGS = ('elbo', 'uniform')


@MODELS.register_module()
class MaskedDiffusionCaptionHead(CrossAttentionCaptionHead):
    """Masked-diffusion caption decoder (bidirectional, cross-attention).

    Args:
        tokenizer / max_length: see :class:`BaseCaptionHead`.
        image_dims: width C of the image tokens the decoder attends to.
        t_range: (t_min, t_max) of the masking ratio t ~ U[t_min, t_max];
            MDLM uses (1e-3, 1). Narrow ranges give the masking-ratio
            ablation.
        stratified_t: antithetic t across the batch (lower variance).
        loss_weighting: ``'elbo'`` weights masked-token cross-entropy by 1/t
            and averages over all generated positions (the ELBO);
            ``'uniform'`` is the plain mean over masked tokens (BERT-like).
        sampler: defaults for :meth:`sample`: ``steps`` (int), ``temperature``
            (0 = greedy), ``schedule`` ('uniform' or 'cosine'), ``remasking``
            ('low_confidence' or 'random').
        **kwargs: decoder shape, see :class:`CrossAttentionCaptionHead`.
    """

    def __init__(self, tokenizer: Union[dict, CaptionTokenizer],
                 max_length: int, image_dims: int,
                 t_range: Tuple[float, float] = (1e-3, 1.0),
                 stratified_t: bool = True, loss_weighting: str = 'elbo',
                 sampler: Optional[dict] = None, **kwargs) -> None:
        super().__init__(tokenizer, max_length, memory_dims=image_dims,
                         **kwargs)
        t_min, t_max = t_range
        if not 0 < t_min <= t_max <= 1:
            raise ValueError(f't_range={t_range} must satisfy '
                             '0 < t_min <= t_max <= 1')
        if loss_weighting not in LOSS_WEIGHTINGS:
            raise ValueError(f'loss_weighting={loss_weighting!r} is not one '
                             f'of {LOSS_WEIGHTINGS}')
        self.t_range = (float(t_min), float(t_max))
        self.stratified_t = stratified_t
        self.loss_weighting = loss_weighting
        self.sampler_cfg = dict(steps=8, temperature=0.0, schedule='uniform',
                                remasking='low_confidence')
        self.update_sampler_cfg(sampler, type(self).__name__)

    def check_sampler_cfg(self, cfg: dict) -> None:
        """Known remasking; steps and schedule that commit every token."""
        if cfg['remasking'] not in ('low_confidence', 'random'):
            raise ValueError(
                'MaskedDiffusionCaptionHead: sampler.remasking must be '
                "'low_confidence' or 'random', got "
                f"{cfg['remasking']!r}")
        commit_counts(self.max_length - 1, cfg['steps'],
                      cfg['schedule'])  # checks both

    # ----------------------------------------------------------------- train
    def sample_t(self, batch: int, device) -> Tensor:
        """(B,) masking ratios in ``t_range`` (antithetic if stratified)."""
        u = torch.rand(batch, device=device)
        if self.stratified_t:
            u = (u[:1] + torch.arange(batch, device=device) / batch) % 1
        t_min, t_max = self.t_range
        return t_min + (t_max - t_min) * u

    def loss(self, image_tokens: Tensor, data_samples: Sequence) -> dict:
        """image_tokens (B, N, C) -> ``dict(loss=...)`` (scalar)."""
        targets = self.targets(self.caption_ids(data_samples,
                                                image_tokens.device))
        batch, length = targets.shape
        t = self.sample_t(batch, targets.device)
        masked = torch.rand(batch, length, device=targets.device) < t[:, None]
        masked[:, 0] = False  # bos is the fixed prompt
        inputs = targets.masked_fill(masked, self.tokenizer.mask_id)
        hidden, _ = self.decoder(inputs, memory=image_tokens)
        # Project only the masked positions: the others carry no loss.
        logits = self.logits(hidden[masked])
        ce = F.cross_entropy(logits.float(), targets[masked],
                             reduction='none')
        if self.loss_weighting == 'elbo':
            weights = (1.0 / t)[:, None].expand(batch, length)[masked]
            loss = (ce * weights).sum() / (batch * (length - 1))
        else:
            loss = ce.sum() / masked.sum().clamp(min=1)
        with torch.no_grad():
            acc = (logits.argmax(-1) == targets[masked]).float().mean()
        return dict(loss=loss, mask_acc=acc, mask_ratio=masked.float().mean())

    # ---------------------------------------------------------------- sample
    @torch.no_grad()
    def sample(self, image_tokens: Tensor, steps: Optional[int] = None,
               temperature: Optional[float] = None,
               schedule: Optional[str] = None,
               remasking: Optional[str] = None,
               return_trace: bool = False):
        """Decode captions from all-mask in ``steps`` denoising steps.

        Each step predicts every masked position and commits the ``k_s``
        most confident predictions (``remasking='low_confidence'``) or
        ``k_s`` random ones; ``k_s`` follows ``schedule`` so that all L-1
        positions are committed after the last step. ``steps = L - 1`` is
        one token per step.

        Args:
            image_tokens: (B, N, C).
        Returns:
            (B, L) token ids, and with ``return_trace`` a list of (B, L)
            id tensors after each step.
        """
        cfg = merge_sampler_cfg(
            self.sampler_cfg, dict(steps=steps, temperature=temperature,
                                   schedule=schedule, remasking=remasking),
            type(self).__name__)
        if cfg['remasking'] not in ('low_confidence', 'random'):
            raise ValueError(f"unknown remasking {cfg['remasking']!r}")
        tok = self.tokenizer
        batch, length = image_tokens.shape[0], self.max_length
        device = image_tokens.device
        counts = commit_counts(length - 1, cfg['steps'], cfg['schedule'])
        ids = torch.full((batch, length), tok.mask_id, device=device)
        ids[:, 0] = tok.bos_id
        memory_kv = self.decoder.memory_kv(image_tokens)
        # Additive (V,) bias: -inf on ids that must never be emitted.
        bias = torch.zeros(self.vocab_size, device=device).masked_fill(
            self.forbidden_mask(device), float('-inf'))
        trace = []
        for count in counts:
            hidden, _ = self.decoder(ids, memory_kv=memory_kv)
            # Every row has the same number M of masked positions (each step
            # commits `count` per row): project only those (B, M) to the
            # vocabulary, which dominates the step for large vocabularies.
            positions = (ids == tok.mask_id).nonzero()[:, 1].view(batch, -1)
            hidden = hidden.gather(1, positions[..., None].expand(
                -1, -1, hidden.shape[-1]))
            logits = self.logits(hidden).float() + bias
            pred, conf = self._propose(logits, cfg['temperature'])
            if cfg['remasking'] == 'random':
                conf = torch.rand_like(conf)
            top = conf.topk(count, dim=-1).indices
            ids.scatter_(1, positions.gather(1, top), pred.gather(1, top))
            if return_trace:
                trace.append(ids.clone())
        return (ids, trace) if return_trace else ids

    @staticmethod
    def _propose(logits: Tensor, temperature: float) -> Tuple[Tensor, Tensor]:
        """(B, L, V) logits -> proposed ids and their probabilities (B, L)."""
        if temperature > 0:
            return softmax_draw(logits, temperature)
        conf, pred = F.softmax(logits, dim=-1).max(dim=-1)
        return pred, conf

    def predict(self, image_tokens: Tensor, **sampler_overrides) -> list:
        """image_tokens (B, N, C) -> list of B caption strings."""
        return self.decode(self.sample(image_tokens, **sampler_overrides))
