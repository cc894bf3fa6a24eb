"""Attention-pooling (MAP) probe of frozen token features.

The probe CapPa evaluates with: one learned query attends over every frozen
token of an image (multi-head), the pooled vector goes through a LayerNorm
and a linear classifier. Only the probe trains (AdamW on features extracted
once), so a backbone that encodes the label in a few patches is credited
even when the mean of its tokens is uninformative.
"""
import itertools
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from torch import Tensor, nn
from torch.nn.attention import SDPBackend, sdpa_kernel


class AttentionPoolProbe(nn.Module):
    """Single-query multi-head attention pooling + LayerNorm + linear.

    Equivalent to ``nn.MultiheadAttention`` with one learned query, computed
    with the key projection folded into the query: with a single query the
    per-head score ``(W_q q)^T (W_k x + b_k)`` is ``u_h^T x`` plus a constant
    that softmax ignores, so the probe learns ``u_h`` directly and attends
    over the raw tokens with SDPA (C / H times fewer flops than projecting
    every token).

    With ``mlp_ratio > 0`` the pooled vector also passes a residual MLP
    block, ``h + MLP(LayerNorm(h))`` with hidden width ``mlp_ratio * C``,
    before the classifier: the full MAP head of CapPa / big_vision.

    Args:
        embed_dims: token width C.
        num_classes: K.
        num_heads: H; must divide C.
        mlp_ratio: hidden width of the MAP MLP over C; 0 leaves it out.
    """

    def __init__(self, embed_dims: int, num_classes: int,
                 num_heads: int = 4, mlp_ratio: float = 0.0) -> None:
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'attention probe: num_heads={num_heads} does '
                             f'not divide the token width {embed_dims}')
        head_dims = embed_dims // num_heads
        self.num_heads = num_heads
        self.query = nn.Parameter(torch.randn(num_heads, embed_dims) * 0.02)
        self.value = nn.Parameter(
            torch.randn(num_heads, embed_dims, head_dims) * embed_dims**-0.5)
        self.value_bias = nn.Parameter(torch.zeros(embed_dims))
        self.out_proj = nn.Linear(embed_dims, embed_dims)
        if mlp_ratio < 0:
            raise ValueError(f'attention probe: mlp_ratio={mlp_ratio} must '
                             'be >= 0')
        self.mlp = None
        if mlp_ratio > 0:
            hidden = int(round(mlp_ratio * embed_dims))
            self.mlp = nn.Sequential(
                nn.LayerNorm(embed_dims), nn.Linear(embed_dims, hidden),
                nn.GELU(), nn.Linear(hidden, embed_dims))
        self.norm = nn.LayerNorm(embed_dims)
        self.fc = nn.Linear(embed_dims, num_classes)
        self.scale = head_dims**-0.5

    def pool(self, tokens: Tensor) -> Tensor:
        """(B, N, C) tokens -> (B, C) attention-pooled vectors."""
        b, _, c = tokens.shape
        # Every head attends over the same raw tokens, so the H head
        # queries go in as H query positions of one SDPA head.
        kv = tokens.unsqueeze(1)  # (B, 1, N, C)
        q = self.query.expand(b, 1, -1, -1)  # (B, 1, H, C)
        # The math kernel skips the key/value gradients that the frozen
        # tokens do not need (the fused CPU kernel computes them anyway).
        with sdpa_kernel(SDPBackend.MATH):
            pooled = F.scaled_dot_product_attention(
                q, kv, kv, scale=self.scale)
        per_head = torch.einsum('bhc,hcd->bhd', pooled[:, 0], self.value)
        return self.out_proj(per_head.reshape(b, c) + self.value_bias)

    def forward(self, tokens: Tensor) -> Tensor:
        """(B, N, C) tokens -> (B, K) logits."""
        pooled = self.pool(tokens)
        if self.mlp is not None:
            pooled = pooled + self.mlp(pooled)
        return self.fc(self.norm(pooled))


def _accuracy(model: nn.Module, x: Tensor, y: Tensor,
              batch_size: int = 512) -> float:
    model.eval()
    with torch.no_grad():
        correct = sum((model(x[i:i + batch_size]).argmax(1) ==
                       y[i:i + batch_size]).sum().item()
                      for i in range(0, len(x), batch_size))
    model.train()
    return correct / max(1, len(x))


def train_attention_probe(x: Tensor, y: Tensor, num_classes: int, lr: float,
                          weight_decay: float, epochs: int, seed: int = 0,
                          batch_size: int = 256, num_heads: int = 4,
                          mlp_ratio: float = 0.0, eval_at: Sequence[int] = (),
                          eval_set: Optional[Tuple[Tensor, Tensor]] = None
                          ) -> Tuple[AttentionPoolProbe, Dict[int, float]]:
    """Train a probe with AdamW (constant lr) on (N, T, C) tokens ``x`` and
    (N,) labels ``y``.

    Returns the probe and, for each epoch in ``eval_at``, its accuracy on
    ``eval_set`` after that epoch. Deterministic for a given ``seed``.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AttentionPoolProbe(x.shape[-1], num_classes, num_heads,
                                   mlp_ratio)
    # weight decay on matrices only (not biases, LayerNorms or vectors)
    decay = [p for p in model.parameters() if p.dim() > 1]
    no_decay = [p for p in model.parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([
        dict(params=decay, weight_decay=weight_decay),
        dict(params=no_decay, weight_decay=0.0)
    ], lr=lr)
    scores = {}
    for epoch in range(1, epochs + 1):
        for idx in torch.randperm(len(x), generator=gen).split(batch_size):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch in eval_at:
            scores[epoch] = _accuracy(model, *eval_set)
    return model, scores


def attention_probe_accuracy(
        train: Tuple[Tensor, Tensor], val: Tuple[Tensor, Tensor],
        num_classes: int, lrs: Sequence[float] = (3e-3, 1e-2),
        weight_decays: Sequence[float] = (1e-4, 0.1),
        epochs: Sequence[int] = (20, 40, 60), seed: int = 0,
        num_heads: int = 4, mlp_ratio: float = 0.0) -> Dict[str, float]:
    """Fit the attention probe on ``train`` (tokens (N, T, C), labels
    (N,)), score on ``val``.

    Tokens are standardised per channel with train statistics. lr, weight
    decay and the number of epochs are picked on a held-out fifth of the
    train split (the same split as ``probe_accuracy``'s), then the probe is
    refit on all of train with the picked values and scored on val.
    """
    tx, vx = train[0].float(), val[0].float()
    if tx.dim() != 3 or vx.dim() != 3 or tx.shape[1:] != vx.shape[1:]:
        raise ValueError('attention probe needs (N, T, C) token features '
                         f'of one shape, got {tuple(tx.shape)} and '
                         f'{tuple(vx.shape)}')
    mean = tx.mean((0, 1))
    std = tx.std((0, 1)) + 1e-6
    tx, vx = (tx - mean) / std, (vx - mean) / std
    ty, vy = train[1], val[1]
    n_hold = max(1, len(tx) // 5)
    perm = torch.randperm(len(tx), generator=torch.Generator().manual_seed(0))
    hold, fit = perm[:n_hold], perm[n_hold:]
    scores = {}
    for lr, wd in itertools.product(lrs, weight_decays):
        _, by_epoch = train_attention_probe(
            tx[fit], ty[fit], num_classes, lr, wd, max(epochs), seed,
            num_heads=num_heads, mlp_ratio=mlp_ratio, eval_at=epochs,
            eval_set=(tx[hold], ty[hold]))
        scores.update({(lr, wd, e): acc for e, acc in by_epoch.items()})
    lr, wd, n_epochs = max(scores, key=scores.get)
    print_log('attention probe hold-out accuracy (lr, weight decay, '
              'epochs): ' + ', '.join(f'{k}: {100 * v:.1f}'
                                      for k, v in scores.items()),
              logger='current')
    model, _ = train_attention_probe(tx, ty, num_classes, lr, wd, n_epochs,
                                     seed, num_heads=num_heads,
                                     mlp_ratio=mlp_ratio)
    return dict(accuracy=100 * _accuracy(model, vx, vy),
                train_accuracy=100 * _accuracy(model, tx, ty),
                holdout_accuracy=100 * scores[(lr, wd, n_epochs)],
                weight_decay=wd, lr=lr, epochs=n_epochs,
                mlp_ratio=mlp_ratio)
