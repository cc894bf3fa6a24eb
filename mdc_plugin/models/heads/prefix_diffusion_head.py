"""Continuous embedding diffusion head conditioned on an image prefix.

Diffusion-LM style: caption ids (B, L) are embedded into a small word space
(B, L, e); the forward process adds Gaussian noise with a configurable
schedule; a bidirectional transformer (the shared :class:`CaptionBlock`,
without cross-attention) reads ``[prefix (k) ; noisy words (L)]`` plus a
timestep embedding and predicts the clean embeddings x0 (B, L, e). Words are
read back by nearest-embedding rounding. Padding after eos is embedded and
denoised like any word, which is how caption length is learned.
"""
import math
from typing import List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..diffusion import (TimestepMLP, merge_sampler_cfg, noise_schedule,
                         sampling_timesteps)
from ..layers.caption_transformer import CaptionBlock
from ..tokenizers import CaptionTokenizer
from .base_caption_head import BaseCaptionHead


@MODELS.register_module()
class PrefixDiffusionHead(BaseCaptionHead):
    """x0-predicting denoiser over word embeddings with an image prefix.

    Args:
        tokenizer / max_length: see :class:`BaseCaptionHead` (L counts bos,
            words, eos and pad).
        prefix_length: number k of prefix vectors the mapper produces.
        word_dims: width e of the diffused word embeddings.
        embed_dims / num_layers / num_heads / mlp_ratio: transformer shape;
            the prefix vectors are ``embed_dims`` wide.
        num_timesteps: diffusion steps T of the forward process.
        noise_schedule: see :data:`..diffusion.schedules.NOISE_SCHEDULES`.
        rounding_weight: weight of the rounding (word cross-entropy) loss.
        sampler: defaults for :meth:`sample`: ``steps`` (skipped-step
            sampler when < T), ``eta`` (0 = deterministic DDIM, 1 = DDPM-like
            ancestral noise) and ``clamp`` (snap x0 to the nearest word
            embedding at every step, Diffusion-LM's clamping trick).
    """

    def __init__(self, tokenizer: Union[dict, CaptionTokenizer],
                 max_length: int, prefix_length: int = 4,
                 word_dims: int = 48, embed_dims: int = 256,
                 num_layers: int = 4, num_heads: int = 4,
                 mlp_ratio: float = 4.0, num_timesteps: int = 1000,
                 noise_schedule: str = 'trunc_linear',
                 rounding_weight: float = 1.0,
                 sampler: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(tokenizer, max_length, init_cfg=init_cfg)
        if prefix_length < 1:
            raise ValueError(f'prefix_length={prefix_length} must be >= 1')
        self.prefix_length = prefix_length
        self.embed_dims = embed_dims
        self.num_timesteps = num_timesteps
        self.noise_schedule = noise_schedule
        self.rounding_weight = rounding_weight
        self.register_buffer(
            'alpha_bar', noise_schedule_buffer(noise_schedule,
                                               num_timesteps), False)
        self.word_embed = nn.Embedding(self.vocab_size, word_dims)
        self.in_proj = nn.Linear(word_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, word_dims)
        self.pos_embed = nn.Parameter(
            torch.zeros(1, prefix_length + max_length, embed_dims))
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        self.time_mlp = TimestepMLP(embed_dims, flip_sin_to_cos=True)
        self.blocks = nn.ModuleList(
            CaptionBlock(embed_dims, num_heads, mlp_ratio, memory_dims=None)
            for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims)
        self.sampler_cfg = dict(steps=20, eta=1.0, clamp=True)
        self.update_sampler_cfg(sampler, type(self).__name__)

    # ------------------------------------------------------------ network
    def denoise(self, x_t: Tensor, t: Tensor, prefix: Tensor) -> Tensor:
        """Predict x0 (B, L, e) from noisy words x_t (B, L, e), timesteps
        t (B,) and prefix (B, k, D); every position attends to all."""
        if prefix.dim() != 3 or prefix.shape[1:] != (self.prefix_length,
                                                     self.embed_dims):
            raise ValueError(
                f'prefix must be (B, {self.prefix_length}, '
                f'{self.embed_dims}), got {tuple(prefix.shape)}')
        seq = torch.cat([prefix, self.in_proj(x_t)], dim=1)
        h = seq + self.pos_embed + self.time_mlp(t)[:, None]
        for blk in self.blocks:
            h, _ = blk(h)
        return self.out_proj(self.norm(h)[:, self.prefix_length:])

    def word_logits(self, x: Tensor) -> Tensor:
        """(..., e) -> (..., V) logits = minus squared distance to every
        word embedding (so argmax is nearest-embedding rounding)."""
        emb = self.word_embed.weight
        return 2 * x @ emb.t() - (emb * emb).sum(-1) - (x * x).sum(
            -1, keepdim=True)

    def round(self, x: Tensor) -> Tensor:
        """(B, L, e) -> (B, L) ids of the nearest word embeddings (the
        never-trained mask id excluded)."""
        logits = self.word_logits(x)
        logits[..., self.tokenizer.mask_id] = float('-inf')
        return logits.argmax(-1)

    # --------------------------------------------------------------- loss
    def q_sample(self, x0: Tensor, t: Tensor, noise: Tensor) -> Tensor:
        """Forward process: x_t = sqrt(ab_t) x0 + sqrt(1 - ab_t) noise."""
        ab = self.alpha_bar[t].float()[:, None, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise

    def loss(self, prefix: Tensor, data_samples: Sequence) -> dict:
        """prefix (B, k, D) + data samples with ``caption_ids`` -> losses.

        ``loss_mse``: x0 regression over all L positions; ``loss_round``:
        word cross-entropy of the predicted and of the clean embeddings
        (Diffusion-LM's rounding term); ``loss_prior``: mean squared norm
        left at t = T, which keeps x_T close to N(0, I).
        """
        ids = self.caption_ids(data_samples, prefix.device)
        x0 = self.word_embed(ids)
        batch = ids.shape[0]
        t = torch.randint(0, self.num_timesteps, (batch, ),
                          device=ids.device)
        x_t = self.q_sample(x0, t, torch.randn_like(x0))
        x0_hat = self.denoise(x_t, t, prefix)
        loss_mse = F.mse_loss(x0_hat, x0)
        logits_hat = self.word_logits(x0_hat)
        round_hat = F.cross_entropy(logits_hat.flatten(0, 1), ids.flatten())
        round_x0 = F.cross_entropy(
            self.word_logits(x0).flatten(0, 1), ids.flatten())
        loss_prior = (self.alpha_bar[-1].float() * x0.pow(2)).mean()
        with torch.no_grad():
            acc = (logits_hat.argmax(-1) == ids).float().mean()
        return dict(loss_mse=loss_mse,
                    loss_round=self.rounding_weight * (round_hat + round_x0),
                    loss_prior=loss_prior, word_acc=acc)

    # ------------------------------------------------------------- sample
    @torch.no_grad()
    def sample(self, prefix: Tensor, steps: Optional[int] = None,
               eta: Optional[float] = None, clamp: Optional[bool] = None,
               generator: Optional[torch.Generator] = None) -> Tensor:
        """Denoise from x_T ~ N(0, I) in ``steps`` x0-prediction steps.

        Skipped steps use the DDIM update from t to the next visited s:
        ``x_s = sqrt(ab_s) x0 + sqrt(1 - ab_s - sigma^2) eps + sigma z``
        with ``sigma = eta * sqrt((1 - ab_s) / (1 - ab_t) * (1 - ab_t /
        ab_s))``. Randomness comes from ``generator`` (else torch's global
        RNG), so a fixed seed gives identical captions.

        Args:
            prefix: (B, k, D).
        Returns:
            (B, L) token ids.
        """
        cfg = merge_sampler_cfg(
            self.sampler_cfg, dict(steps=steps, eta=eta, clamp=clamp),
            type(self).__name__)
        batch, device = prefix.shape[0], prefix.device
        shape = (batch, self.max_length, self.word_embed.embedding_dim)

        def randn() -> Tensor:
            return torch.randn(shape, generator=generator,
                               device='cpu' if generator is None else
                               generator.device).to(device)

        x = randn()
        times = sampling_timesteps(self.num_timesteps,
                                   int(cfg['steps'])).tolist()
        x0_hat = x
        for i, t in enumerate(times):
            t_batch = torch.full((batch, ), t, device=device,
                                 dtype=torch.long)
            x0_hat = self.denoise(x, t_batch, prefix)
            if cfg['clamp']:
                x0_hat = self.word_embed(self.round(x0_hat))
            if i + 1 == len(times):
                break
            ab_t = float(self.alpha_bar[t])
            ab_s = float(self.alpha_bar[times[i + 1]])
            eps = (x - math.sqrt(ab_t) * x0_hat) / math.sqrt(1 - ab_t)
            sigma = cfg['eta'] * math.sqrt(
                (1 - ab_s) / (1 - ab_t) * (1 - ab_t / ab_s))
            x = (math.sqrt(ab_s) * x0_hat +
                 math.sqrt(max(1 - ab_s - sigma**2, 0.0)) * eps)
            if sigma > 0:
                x = x + sigma * randn()
        return self.round(x0_hat)

    def predict(self, prefix: Tensor, **sampler_overrides) -> List[str]:
        """prefix (B, k, D) -> B caption strings."""
        return self.decode(self.sample(prefix, **sampler_overrides))


def noise_schedule_buffer(name: str, num_steps: int) -> Tensor:
    """``alpha_bar`` (T,) as float32 for a registered buffer."""
    return noise_schedule(name, num_steps).float()
