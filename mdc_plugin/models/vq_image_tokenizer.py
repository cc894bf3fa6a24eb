"""The VQ stage: train the learned codebook of a VQTokenizerNeck.

backbone -> VQTokenizerNeck('learned') -> small transformer decoder ->
pixels of every patch; loss = MSE to the (normalised) input patches +
the neck's commitment loss. Its checkpoint's ``backbone.`` and ``neck.``
weights are what the MC-Diffusion captioner loads.
"""
from typing import List, Optional

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from .captioners.utils import build_data_preprocessor, \
    image_tokens_from_backbone


@MODELS.register_module()
class VQImageTokenizer(BaseModel):
    """VQ-VAE-style image tokenizer over an MMPretrain backbone.

    Args:
        backbone: token backbone (``VisionTransformer``, ``out_type='raw'``).
        neck: ``VQTokenizerNeck`` with ``source='learned'``.
        patch_size: pixel patch p reconstructed per code (the backbone's).
        decoder_layers / decoder_heads: size of the pixel decoder.
        data_preprocessor: MMPretrain ``ClsDataPreprocessor`` config.
    """

    def __init__(self, backbone: dict, neck: dict, patch_size: int,
                 decoder_layers: int = 2, decoder_heads: int = 4,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=build_data_preprocessor(
                             data_preprocessor), init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck)
        if self.neck.source != 'learned' or self.neck.frozen:
            raise ValueError('VQImageTokenizer trains a codebook: use '
                             "VQTokenizerNeck(source='learned', "
                             'frozen=False)')
        dims = self.neck.code_dims
        self.patch_size = patch_size
        self.pos = nn.Parameter(torch.zeros(1, self.neck.num_tokens or 1,
                                            dims))
        layer = nn.TransformerEncoderLayer(
            dims, decoder_heads, 4 * dims, dropout=0.0, batch_first=True,
            norm_first=True)
        self.decoder = nn.TransformerEncoder(layer, decoder_layers,
                                             enable_nested_tensor=False)
        self.to_pixels = nn.Linear(dims, 3 * patch_size * patch_size)
        nn.init.trunc_normal_(self.pos, std=0.02)

    def encode(self, inputs: Tensor):
        """Images (B, 3, H, W) -> :class:`VQNeckOutput` (codes (B, N))."""
        tokens = image_tokens_from_backbone(self.backbone(inputs),
                                            type(self.backbone).__name__)
        return self.neck(tokens)

    def reconstruct(self, embeddings: Tensor) -> Tensor:
        """Code vectors (B, N, D) -> patches (B, N, 3 p^2)."""
        if embeddings.shape[1] != self.pos.shape[1]:
            raise ValueError(f'{embeddings.shape[1]} codes per image, the '
                             f'decoder expects {self.pos.shape[1]} (set the '
                             "neck's num_tokens)")
        return self.to_pixels(self.decoder(embeddings + self.pos))

    def patches(self, inputs: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> row-major patches (B, N, 3 p^2)."""
        p = self.patch_size
        x = F.unfold(inputs, kernel_size=p, stride=p)  # (B, 3 p^2, N)
        return x.transpose(1, 2)

    def forward(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'loss'`` -> losses; ``'predict'`` -> DataSamples with
        ``pred_codes`` and ``recon_mse``; ``'tensor'`` -> codes (B, N)."""
        out = self.encode(inputs)
        if mode == 'tensor':
            return out.codes
        recon = self.reconstruct(out.embeddings)
        target = self.patches(inputs)
        if mode == 'loss':
            return dict(loss_recon=F.mse_loss(recon, target), **out.losses)
        if mode == 'predict':
            mse = (recon - target).pow(2).mean(dim=(1, 2))
            samples = data_samples or [DataSample() for _ in range(len(mse))]
            for sample, codes, err in zip(samples, out.codes, mse):
                sample.set_field(codes, 'pred_codes')
                sample.set_field(float(err), 'recon_mse',
                                 field_type='metainfo')
            return samples
        raise RuntimeError(f'Invalid mode "{mode}".')
