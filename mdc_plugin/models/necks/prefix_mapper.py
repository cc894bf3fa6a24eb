"""MLP mapping network: image embedding -> k prefix embeddings."""
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class PrefixMapper(BaseModule):
    """Two-layer MLP (ClipCap-style) from one image embedding to
    ``prefix_length`` vectors in the denoiser's input space.

    Args:
        in_dims: image-embedding width C (must equal the encoder's).
        out_dims: prefix width D (must equal the diffusion head's
            ``embed_dims``).
        prefix_length: number k of prefix vectors.
        hidden_dims: MLP hidden width (default ``k * D // 2``).
    """

    def __init__(self, in_dims: int, out_dims: int, prefix_length: int = 4,
                 hidden_dims: int = None) -> None:
        super().__init__()
        if min(in_dims, out_dims, prefix_length) < 1:
            raise ValueError(
                f'PrefixMapper: in_dims={in_dims}, out_dims={out_dims} and '
                f'prefix_length={prefix_length} must all be >= 1')
        self.in_dims = in_dims
        self.out_dims = out_dims
        self.prefix_length = prefix_length
        hidden = hidden_dims or max(prefix_length * out_dims // 2, 1)
        self.mlp = nn.Sequential(
            nn.Linear(in_dims, hidden), nn.GELU(),
            nn.Linear(hidden, prefix_length * out_dims))

    def forward(self, feats: Tensor) -> Tensor:
        """(B, C) image embeddings -> (B, k, D) prefix embeddings."""
        if feats.dim() != 2 or feats.shape[1] != self.in_dims:
            raise ValueError(f'PrefixMapper expects (B, {self.in_dims}) '
                             f'image embeddings, got {tuple(feats.shape)}')
        return self.mlp(feats).view(len(feats), self.prefix_length,
                                    self.out_dims)
