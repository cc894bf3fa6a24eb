"""Vector quantisation of backbone tokens into discrete image codes.

``VQTokenizerNeck`` turns backbone tokens (B, N + P, C) (P prefix tokens
such as cls are dropped) into code ids (B, N) in ``[0, K)`` and their
codebook vectors (B, N, D). Index ``K`` is the condition mask token, so the
condition vocabulary has ``K + 1`` entries.

Two sources:

* ``'learned'``: a VQ-VAE codebook trained in the plugin (nearest code,
  straight-through gradients, EMA codebook updates, commitment loss,
  restart of dead codes from the current batch);
* ``'frozen'``: MMPretrain's VQKD tokenizer head (BEiT v2: the
  ``encode_task_layer`` MLP and the l2-normalised codebook of
  ``mmpretrain.models.selfsup.VQKD``) read from a local checkpoint; its
  encoder is the captioner's backbone (``BEiTViT``, ``out_type='raw'``).
"""
from dataclasses import dataclass, field
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.dist import all_reduce
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor, nn

SOURCES = ('learned', 'frozen')
#: Frozen VQ image models a ``source='frozen'`` neck can read.
FROZEN_VQ_MODELS = ('vqkd', )


@dataclass
class VQNeckOutput:
    """What the neck hands to a head.

    Attributes:
        codes: (B, N) long code ids in ``[0, K)``.
        embeddings: (B, N, D) codebook vectors (straight-through when the
            codebook is trained).
        losses: auxiliary losses and usage statistics for the log
            (keys with ``loss`` are summed by MMEngine, the rest logged).
        mask_index: the condition mask id ``K``.
    """
    codes: Tensor
    embeddings: Tensor
    losses: Dict[str, Tensor] = field(default_factory=dict)
    mask_index: int = 0


def _read_state_dict(path: str) -> dict:
    """Load a checkpoint's state dict with ``weights_only=True``."""
    from mdc_plugin.utils.safe_checkpoint import load_checkpoint_safely
    ckpt = load_checkpoint_safely(path)
    return ckpt.get('state_dict', ckpt)


@MODELS.register_module()
class VQTokenizerNeck(BaseModule):
    """Backbone tokens -> discrete codes and their embeddings.

    Args:
        in_dims: width C of the backbone tokens.
        num_codes: codebook size K (the mask token is index K).
        code_dims: codebook vector width D.
        source: ``'learned'`` or ``'frozen'``.
        num_prefix_tokens: leading tokens to drop (1 for a ViT's cls token).
        num_tokens: expected number N of code positions per image (checked
            at run time; captioners compare it with the head at build time).
        frozen: keep a learned codebook fixed (no EMA, no commitment loss,
            no gradients); always true for ``source='frozen'``.
        ema_decay: EMA decay of the learned codebook.
        commitment_weight: weight of ``||z - sg(e)||^2``.
        dead_threshold: a code whose EMA usage falls below this count is
            dead; dead codes are restarted from batch vectors when
            ``restart_dead``.
        vq_model: which frozen VQ image model (``'vqkd'``); ``tokenizer``
            is its former name, still accepted.
        checkpoint: local checkpoint of the frozen VQ model (an MMPretrain
            VQKD / BEiT v2 target-generator file). Checked and loaded at
            build time when it exists, otherwise at ``init_weights``.
        checkpoint_prefix: prefix of the VQKD keys in the checkpoint (e.g.
            ``'target_generator.'`` in a BEiT v2 pretraining checkpoint).
    """

    def __init__(self, in_dims: int, num_codes: int, code_dims: int = 64,
                 source: str = 'learned', num_prefix_tokens: int = 1,
                 num_tokens: Optional[int] = None, frozen: bool = False,
                 ema_decay: float = 0.99, commitment_weight: float = 0.25,
                 dead_threshold: float = 0.03, restart_dead: bool = True,
                 vq_model: str = 'vqkd', checkpoint: Optional[str] = None,
                 checkpoint_prefix: str = '',
                 init_cfg: Optional[dict] = None,
                 tokenizer: Optional[str] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if tokenizer is not None:  # the option's name before issue 15
            vq_model = tokenizer
        if source not in SOURCES:
            raise ValueError(f'VQTokenizerNeck: source={source!r} is not one '
                             f'of {SOURCES}')
        if num_codes < 2 or code_dims < 1 or in_dims < 1:
            raise ValueError(
                f'VQTokenizerNeck: num_codes={num_codes}, code_dims='
                f'{code_dims}, in_dims={in_dims} must be positive (K >= 2)')
        if not 0 < ema_decay < 1:
            raise ValueError(f'ema_decay={ema_decay} must be in (0, 1)')
        self.source = source
        self.in_dims = in_dims
        self.num_codes = num_codes
        self.mask_index = num_codes
        self.vocab_size = num_codes + 1
        self.code_dims = code_dims
        self.num_prefix_tokens = num_prefix_tokens
        self.num_tokens = num_tokens
        self.frozen = frozen or source == 'frozen'
        self.ema_decay = ema_decay
        self.commitment_weight = commitment_weight
        self.dead_threshold = dead_threshold
        self.restart_dead = restart_dead
        self.checkpoint = checkpoint
        self.checkpoint_prefix = checkpoint_prefix
        self._loaded = False
        if source == 'learned':
            self.proj = nn.Linear(in_dims, code_dims)
            self.register_buffer('codebook',
                                 torch.randn(num_codes, code_dims) * 0.1)
        else:
            if vq_model not in FROZEN_VQ_MODELS:
                raise ValueError(
                    f'VQTokenizerNeck: frozen vq_model={vq_model!r} is not '
                    f'supported; use one of {FROZEN_VQ_MODELS}')
            if checkpoint is None:
                raise ValueError("VQTokenizerNeck(source='frozen') needs "
                                 'checkpoint=PATH of a local VQKD checkpoint')
            # VQKD's encode_task_layer: Linear(C, C) -> Tanh -> Linear(C, D)
            self.proj = nn.Sequential(nn.Linear(in_dims, in_dims), nn.Tanh(),
                                      nn.Linear(in_dims, code_dims))
            self.register_buffer('codebook', torch.zeros(num_codes,
                                                         code_dims))
        self.register_buffer('cluster_size', torch.ones(num_codes))
        self.register_buffer('embed_sum', self.codebook.clone())
        if self.frozen:
            for p in self.parameters():
                p.requires_grad_(False)
        if source == 'frozen' and _exists(checkpoint):
            self.load_frozen(checkpoint)

    # ----------------------------------------------------------- frozen
    def load_frozen(self, path: str) -> None:
        """Load VQKD's task layer and codebook, refusing a mismatch."""
        state = _read_state_dict(path)
        pre = self.checkpoint_prefix
        names = {'proj.0.weight': 'encode_task_layer.0.weight',
                 'proj.0.bias': 'encode_task_layer.0.bias',
                 'proj.2.weight': 'encode_task_layer.2.weight',
                 'proj.2.bias': 'encode_task_layer.2.bias',
                 'codebook': 'quantize.embedding.weight'}
        own = dict(self.named_parameters(), **dict(self.named_buffers()))
        problems = []
        for mine, theirs in names.items():
            value = state.get(pre + theirs)
            if value is None:
                problems.append(f'missing {pre + theirs}')
            elif tuple(value.shape) != tuple(own[mine].shape):
                problems.append(f'{pre + theirs} has shape '
                                f'{tuple(value.shape)}, expected '
                                f'{tuple(own[mine].shape)}')
        if problems:
            raise ValueError(
                f'VQTokenizerNeck: {path!r} is not a VQKD checkpoint for '
                f'in_dims={self.in_dims}, num_codes={self.num_codes}, '
                f'code_dims={self.code_dims}: ' + '; '.join(problems[:4]) +
                '; set checkpoint_prefix if its keys are nested')
        with torch.no_grad():
            for mine, theirs in names.items():
                own[mine].copy_(state[pre + theirs])
            self.codebook.copy_(F.normalize(self.codebook, dim=-1))
        self._loaded = True

    def init_weights(self) -> None:
        super().init_weights()
        if self.source == 'frozen' and not self._loaded:
            if not _exists(self.checkpoint):
                from mdc_plugin.utils.preflight import VQKD_HINT
                raise FileNotFoundError(
                    f'VQTokenizerNeck: frozen VQ model checkpoint '
                    f'{self.checkpoint!r} (model.neck.checkpoint) is not a '
                    f'file. {VQKD_HINT}')
            self.load_frozen(self.checkpoint)

    def train(self, mode: bool = True) -> 'VQTokenizerNeck':
        """A frozen neck stays in eval mode."""
        return super().train(mode and not self.frozen)

    # ------------------------------------------------------------ codes
    def quantize(self, z: Tensor) -> Tensor:
        """Vectors (M, D) -> nearest code ids (M,)."""
        book = self.codebook
        if self.source == 'frozen':
            z = F.normalize(z, dim=-1)
        dist = (z.pow(2).sum(-1, keepdim=True) - 2 * z @ book.t() +
                book.pow(2).sum(-1))
        return dist.argmin(-1)

    def forward(self, tokens: Tensor) -> VQNeckOutput:
        """tokens (B, P + N, C) -> :class:`VQNeckOutput` (codes (B, N))."""
        if tokens.dim() != 3 or tokens.shape[-1] != self.in_dims:
            raise ValueError(
                f'VQTokenizerNeck expects tokens (B, N, {self.in_dims}), got '
                f'{tuple(tokens.shape)}')
        tokens = tokens[:, self.num_prefix_tokens:]
        if self.num_tokens is not None and tokens.shape[1] != self.num_tokens:
            raise ValueError(
                f'VQTokenizerNeck: the backbone gives {tokens.shape[1]} '
                f'tokens after dropping {self.num_prefix_tokens} prefix '
                f'tokens, but num_tokens={self.num_tokens}')
        z = self.proj(tokens.float())
        if self.source == 'frozen':
            z = F.normalize(z, dim=-1)
        flat = z.reshape(-1, self.code_dims)
        codes = self.quantize(flat.detach())
        quant = F.embedding(codes, self.codebook)
        # usage before this step's EMA update and dead-code restarts
        losses = self.usage(codes)
        if self.training and not self.frozen:
            losses['loss_vq_commit'] = self.commitment_weight * F.mse_loss(
                flat, quant)
            self._ema_update(flat.detach(), codes)
        quant = flat + (quant - flat).detach()  # straight-through
        batch, num = tokens.shape[:2]
        return VQNeckOutput(codes=codes.view(batch, num),
                            embeddings=quant.view(batch, num, -1),
                            losses=losses, mask_index=self.mask_index)

    @torch.no_grad()
    def usage(self, codes: Tensor) -> Dict[str, Tensor]:
        """Log entries: batch code perplexity, codes used in the batch and
        dead codes (EMA usage below ``dead_threshold``; with
        ``restart_dead`` they are restarted right after)."""
        counts = torch.bincount(codes.flatten(), minlength=self.num_codes)
        probs = counts.float() / counts.sum().clamp(min=1)
        entropy = -(probs * probs.clamp(min=1e-12).log()).sum()
        dead = (self.cluster_size < self.dead_threshold).sum()
        return dict(vq_perplexity=entropy.exp(),
                    vq_used_codes=(counts > 0).sum().float(),
                    vq_dead_codes=dead.float())

    @torch.no_grad()
    def _ema_update(self, z: Tensor, codes: Tensor) -> None:
        """EMA codebook update (van den Oord et al. 2017, appendix) and
        restart of dead codes from random batch vectors."""
        onehot = F.one_hot(codes, self.num_codes).type_as(z)
        counts = onehot.sum(0)
        sums = onehot.t() @ z
        all_reduce(counts)
        all_reduce(sums)
        decay = self.ema_decay
        self.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        self.embed_sum.mul_(decay).add_(sums, alpha=1 - decay)
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (
            total + self.num_codes * 1e-5) * total
        self.codebook.copy_(self.embed_sum / smoothed[:, None])
        if self.restart_dead:
            dead = self.cluster_size < self.dead_threshold
            num_dead = int(dead.sum())
            if num_dead:
                # averaged over ranks so that replicas stay in sync
                pick = torch.randint(0, z.shape[0], (num_dead, ),
                                     device=z.device)
                fresh = z[pick]
                all_reduce(fresh, op='mean')
                self.codebook[dead] = fresh
                self.embed_sum[dead] = fresh
                self.cluster_size[dead] = 1.0


def _exists(path: Optional[str]) -> bool:
    import os.path as osp
    return path is not None and osp.isfile(str(path))
