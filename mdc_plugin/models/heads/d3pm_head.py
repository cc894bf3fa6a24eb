"""D3PM caption head with the VQ-Diffusion mask-and-replace transition.

The denoiser is the shared :class:`CaptionTransformer` (bidirectional
self-attention over the noisy caption x_t, cross-attention to the embedded
VQ condition codes, a timestep embedding added to every position); it
predicts p(x0 | x_t, y). Training minimises the variational bound
``KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t))`` (``-log p(x0 | x_1)`` at
t = 1), estimated with one uniform t per sample and scaled by T, plus an
auxiliary cross-entropy on x0 (VQ-Diffusion's weight 5e-4, optionally
adaptive: ``(1 - t / T) + 1``).

Captions are EOS-padded as in the MDC head (the model learns the length);
the leading BOS is fixed and never corrupted.
"""
import math
from typing import Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..diffusion import (LOG_ZERO, MaskedConditionGuidance,
                         MaskReplaceTransition, TimestepMLP, gumbel_draw,
                         merge_sampler_cfg, timestep_pairs)
from ..necks.vq_tokenizer_neck import VQNeckOutput
from ..tokenizers import CaptionTokenizer
from .base_caption_head import CrossAttentionCaptionHead


@MODELS.register_module()
class D3PMCaptionHead(CrossAttentionCaptionHead):
    """Discrete (mask-and-replace) diffusion caption decoder.

    Args:
        tokenizer / max_length: see :class:`BaseCaptionHead`.
        num_codes: size K of the condition codebook; index K is the
            condition [MASK] (the neck's vocabulary is K + 1).
        condition_length: number N of condition codes per image.
        condition_dims: width of the condition embeddings (cross-attention
            memory); defaults to ``embed_dims``.
        num_timesteps: T.
        alpha_bar / gamma_bar: (value at t = 1, value at t = T) of the
            cumulative schedules.
        aux_weight: weight of the auxiliary x0 cross-entropy.
        adaptive_aux: multiply it by ``(1 - t / T) + 1`` (VQ-Diffusion).
        vb_weight: weight of the variational-bound term.
        guidance: ``MaskedConditionGuidance`` config (None: no condition
            masking and no guidance).
        sampler: defaults for :meth:`sample`: ``steps`` (T, fewer skips
            steps), ``temperature`` of the intermediate draws, ``scale``
            of the guidance (None: the guidance's own ``scale``).
        **kwargs: decoder shape, see :class:`CrossAttentionCaptionHead`
            (its ``memory_dims`` is ``condition_dims``).
    """

    #: Why ``model.score`` refuses this head (image-text matching).
    score_refusal = (
        "D3PM's variational bound sums a KL term over every one of its "
        'num_timesteps steps (100 in the shipped configs), one decoder pass '
        'each, per caption: not a cheap score, and a few-step estimate of '
        'it has not been validated. Score with an MDC or Cap/CapPa '
        'checkpoint, or with a CLIP-style model (ContrastiveImageText)')

    def __init__(self, tokenizer: Union[dict, CaptionTokenizer],
                 max_length: int, *, num_codes: int, condition_length: int,
                 condition_dims: Optional[int] = None,
                 num_timesteps: int = 100,
                 alpha_bar: Tuple[float, float] = (0.99999, 0.000009),
                 gamma_bar: Tuple[float, float] = (0.000009, 0.99999),
                 aux_weight: float = 5e-4, adaptive_aux: bool = True,
                 vb_weight: float = 1.0,
                 guidance: Union[dict, MaskedConditionGuidance, None] = None,
                 sampler: Optional[dict] = None, **kwargs) -> None:
        if 'image_dims' in kwargs:
            raise ValueError('D3PMCaptionHead attends to embedded condition '
                             'codes: set condition_dims, not image_dims')
        super().__init__(tokenizer, max_length, memory_dims=condition_dims,
                         **kwargs)
        condition_dims = self.memory_dims
        if num_codes < 2 or condition_length < 1:
            raise ValueError(f'num_codes={num_codes} and condition_length='
                             f'{condition_length} must be >= 2 and >= 1')
        if aux_weight < 0 or vb_weight < 0:
            raise ValueError('aux_weight and vb_weight must be >= 0')
        self.num_codes = num_codes
        self.condition_mask = num_codes
        self.condition_length = condition_length
        self.transition = MaskReplaceTransition(
            self.vocab_size, self.tokenizer.mask_id, num_timesteps,
            tuple(alpha_bar), tuple(gamma_bar))
        self.num_timesteps = num_timesteps
        self.aux_weight = aux_weight
        self.adaptive_aux = adaptive_aux
        self.vb_weight = vb_weight
        if isinstance(guidance, dict):
            guidance = MODELS.build(guidance)
        if guidance is not None and not isinstance(
                guidance, MaskedConditionGuidance):
            raise TypeError('guidance must build a MaskedConditionGuidance, '
                            f'got {type(guidance).__name__}')
        self.guidance = guidance
        self.sampler_cfg = dict(steps=num_timesteps, temperature=1.0,
                                scale=None)
        self.update_sampler_cfg(sampler, type(self).__name__)
        self.condition_embed = nn.Embedding(num_codes + 1, condition_dims)
        self.condition_pos = nn.Parameter(
            torch.zeros(1, condition_length, condition_dims))
        self.time_mlp = TimestepMLP(self.embed_dims)
        nn.init.trunc_normal_(self.condition_pos, std=0.02)
        nn.init.trunc_normal_(self.condition_embed.weight, std=0.02)

    # ------------------------------------------------------------ inputs
    def condition_codes(self, feats: Union[VQNeckOutput, Tensor]) -> Tensor:
        """Neck output or (B, N) code ids -> validated (B, N) codes."""
        codes = feats.codes if isinstance(feats, VQNeckOutput) else feats
        if not isinstance(codes, Tensor) or codes.dim() != 2 or \
                codes.dtype not in (torch.long, torch.int32, torch.int64):
            shape = tuple(getattr(codes, 'shape', ())) or type(codes).__name__
            raise TypeError(
                f'D3PMCaptionHead needs discrete condition codes (B, N) '
                f'from a VQTokenizerNeck, got {shape}')
        if codes.shape[1] != self.condition_length:
            raise ValueError(
                f'{codes.shape[1]} condition codes per image but the head '
                f'has condition_length={self.condition_length}')
        if codes.numel() and (int(codes.min()) < 0 or
                              int(codes.max()) > self.num_codes):
            raise ValueError(
                f'condition codes span [{int(codes.min())}, '
                f'{int(codes.max())}] but the head has num_codes='
                f'{self.num_codes} (+1 mask)')
        return codes.long()

    # ---------------------------------------------------------- denoiser
    def denoise(self, x_t: Tensor, t: Tensor, codes: Tensor) -> Tensor:
        """x0 logits (B, L, V) from x_t (B, L), t (B,), codes (B, N).

        ``codes`` may hold a multiple of B rows (guidance batches): x_t and
        t are then repeated to match.
        """
        reps = codes.shape[0] // x_t.shape[0]
        if reps > 1:
            x_t, t = x_t.repeat(reps, 1), t.repeat(reps)
        memory = self.condition_embed(codes) + self.condition_pos
        hidden, _ = self.decoder(x_t, memory=memory,
                                 extra_embed=self.time_mlp(t))
        return self.logits(hidden)

    def log_x0(self, logits: Tensor) -> Tensor:
        """Logits (..., V) -> log p(x0) with forbidden ids at LOG_ZERO."""
        logits = logits.float().masked_fill(
            self.forbidden_mask(logits.device), float('-inf'))
        return F.log_softmax(logits, -1).clamp(min=LOG_ZERO)

    # ------------------------------------------------------------- train
    def loss(self, feats: Union[VQNeckOutput, Tensor],
             data_samples: Sequence) -> dict:
        """Neck output (codes (B, N)) -> dict of losses."""
        codes = self.condition_codes(feats)
        x0 = self.targets(self.caption_ids(data_samples, codes.device))
        batch = x0.shape[0]
        t = torch.randint(1, self.num_timesteps + 1, (batch, ),
                          device=x0.device)
        x_t = self.transition.q_sample(x0, t)
        x_t[:, 0] = self.tokenizer.bos_id
        if self.guidance is not None:
            codes = self.guidance.train_condition(codes, self.condition_mask)
        log_x0 = self.log_x0(self.denoise(x_t, t, codes))[:, 1:]
        x0, x_t = x0[:, 1:], x_t[:, 1:]
        nll = -log_x0.gather(-1, x0[..., None])[..., 0]  # (B, L - 1)
        true_x0 = F.one_hot(x0, self.vocab_size).float().clamp(
            min=math.exp(LOG_ZERO)).log()
        log_q = self.transition.posterior(true_x0, x_t, t, t - 1)
        log_p = self.transition.posterior(log_x0, x_t, t, t - 1)
        kl = (log_q.exp() * (log_q - log_p)).sum(-1)
        vb = torch.where((t == 1)[:, None], nll, kl).mean(-1)
        aux_w = self.aux_weight * ((1 - t.float() / self.num_timesteps) + 1
                                   if self.adaptive_aux else 1.0)
        with torch.no_grad():
            acc = (log_x0.argmax(-1) == x0).float().mean()
        return dict(
            loss_vb=self.vb_weight * self.num_timesteps * vb.mean(),
            loss_aux=(aux_w * nll.mean(-1)).mean(), x0_acc=acc)

    # ------------------------------------------------------------ sample
    @torch.no_grad()
    def sample(self, feats: Union[VQNeckOutput, Tensor],
               steps: Optional[int] = None,
               temperature: Optional[float] = None,
               scale: Optional[float] = None,
               generator: Optional[torch.Generator] = None) -> Tensor:
        """Ancestral sampling from all-[MASK] at t = T.

        Args:
            feats: neck output or (B, N) condition codes.
            steps: number of denoising jumps (T = every step; fewer skips
                steps with the s -> t posterior).
            temperature: temperature of the intermediate draws (0 = argmax);
                the last jump takes the argmax of p(x0 | x_t).
            scale: guidance scale (needs ``guidance``; 1 = conditional).
            generator: torch generator for reproducible draws.
        Returns:
            (B, L) token ids.
        """
        cfg = merge_sampler_cfg(
            self.sampler_cfg, dict(steps=steps, temperature=temperature,
                                   scale=scale), type(self).__name__)
        codes = self.condition_codes(feats)
        scale = self._check_scale(cfg['scale'])
        batch, device = codes.shape[0], codes.device
        ids = torch.full((batch, self.max_length), self.tokenizer.mask_id,
                         device=device)
        ids[:, 0] = self.tokenizer.bos_id
        weak = None
        if self.guidance is not None:
            weak = self.guidance.weaken(codes, self.condition_mask,
                                        generator=generator)
        for t_val, s_val in timestep_pairs(self.num_timesteps, cfg['steps']):
            t = torch.full((batch, ), t_val, device=device)
            s = torch.full((batch, ), s_val, device=device)
            if self.guidance is None:
                log_x0 = F.log_softmax(self.denoise(ids, t, codes).float(), -1)
            else:
                log_x0 = self.guidance.guided_log_probs(
                    lambda c, x=ids, t=t: self.denoise(x, t, c), codes,
                    self.condition_mask, scale, weak_codes=weak)
            log_x0 = self.log_x0(log_x0)
            if s_val == 0:
                new = log_x0.argmax(-1)
            else:
                log_post = self.transition.posterior(log_x0, ids, t, s)
                new = gumbel_draw(log_post, cfg['temperature'], generator)
            ids = torch.cat([ids[:, :1], new[:, 1:]], dim=1)
        return ids

    def check_sampler_cfg(self, cfg: dict) -> None:
        """Steps within T; a usable guidance scale."""
        timestep_pairs(self.num_timesteps, cfg['steps'])
        self._check_scale(cfg['scale'])

    def _check_scale(self, scale: Optional[float]) -> Optional[float]:
        """A guidance scale as a float (None: the guidance's default)."""
        if scale is None:
            return None
        scale = MaskedConditionGuidance.check_scale(scale)
        if self.guidance is None and scale != 1:
            raise ValueError(f'guidance scale={scale} given but the head has '
                             'no guidance (its condition was never masked '
                             'in training)')
        return scale

    def predict(self, feats: Union[VQNeckOutput, Tensor],
                **sampler_overrides) -> list:
        """Neck output -> list of B caption strings."""
        return self.decode(self.sample(feats, **sampler_overrides))
