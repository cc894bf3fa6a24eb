"""CLIP-style contrastive baseline, also the plugin's offline image-text
scorer (CLIPScore-style) for the embedded data."""
import math
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor, nn

from ..layers import CaptionTransformer
from ..tokenizers import build_caption_tokenizer
from .scoring import (CaptionGrid, caption_grid, check_score_options,
                      encode_candidates, evaluating)
from .utils import build_data_preprocessor, image_tokens_from_backbone


@MODELS.register_module()
class ContrastiveImageText(BaseModel):
    """Image tower (an MMPretrain backbone) + text transformer trained with
    the symmetric InfoNCE loss.

    Args:
        backbone: backbone returning tokens (B, 1+N, C); the class token
            (index 0) is the image embedding (``pool='cls'``) or the mean of
            all tokens (``pool='mean'``).
        tokenizer / max_length: as for the caption heads.
        image_dims: width C of the backbone tokens.
        embed_dims: joint embedding width.
        text_dims / text_layers / text_heads: the text transformer.
        pool: 'cls' or 'mean' image pooling ('mean' for backbones without
            a class token: ResNet, ConvNeXt, Swin, featmap ViTs).
        backbone_stage: which entry of a multi-stage backbone output.

    ``encode_image`` / ``encode_text`` return L2-normalised (B, D) features
    (the interface CaptionMetric's ``PluginModelScorer`` uses). ``predict``
    fills ``pred_caption`` with the best-matching caption of the other
    images in the batch (retrieval as captioning), so the same evaluator
    runs.
    """

    def __init__(self, backbone: dict, tokenizer: dict, max_length: int,
                 image_dims: int, embed_dims: int = 256,
                 text_dims: int = 256, text_layers: int = 4,
                 text_heads: int = 4, pool: str = 'cls',
                 backbone_stage: int = -1,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=build_data_preprocessor(
                             data_preprocessor),
                         init_cfg=init_cfg)
        if pool not in ('cls', 'mean'):
            raise ValueError(f"pool={pool!r} must be 'cls' or 'mean'")
        self.backbone = MODELS.build(backbone)
        self.tokenizer = build_caption_tokenizer(tokenizer)
        self.max_length = max_length
        self.pool = pool
        self.backbone_stage = backbone_stage
        # references of the last multi-image predict batch (see predict)
        self._previous_pool: List[str] = []
        self.text = CaptionTransformer(self.tokenizer.vocab_size, max_length,
                                       text_dims, text_layers, text_heads)
        self.image_proj = nn.Linear(image_dims, embed_dims, bias=False)
        self.text_proj = nn.Linear(text_dims, embed_dims, bias=False)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    # -------------------------------------------------------------- features
    def encode_image(self, inputs: Tensor) -> Tensor:
        """Preprocessed images (B, 3, H, W) -> unit vectors (B, D)."""
        tokens = image_tokens_from_backbone(self.backbone(inputs),
                                            type(self.backbone).__name__,
                                            self.backbone_stage)
        pooled = tokens[:, 0] if self.pool == 'cls' else tokens.mean(1)
        return F.normalize(self.image_proj(pooled), dim=-1)

    def encode_ids(self, ids: Tensor) -> Tensor:
        """Tokenized captions (B, L) -> unit vectors (B, D), pooled at the
        first eos with padding masked out of attention."""
        tok = self.tokenizer
        keep = ids != tok.pad_id
        hidden, _ = self.text(ids, self_mask=keep[:, None, None, :])
        is_eos = ids == tok.eos_id
        eos_pos = torch.where(is_eos.any(1), is_eos.float().argmax(1),
                              keep.sum(1) - 1)
        pooled = hidden[torch.arange(ids.shape[0]), eos_pos]
        return F.normalize(self.text_proj(pooled), dim=-1)

    def tokenize(self, texts: Sequence[str]) -> Tensor:
        """Captions -> (N, L) ids laid out [bos, words, eos, pad...]."""
        rows = np.stack([self.tokenizer.encode_padded(t, self.max_length)[0]
                         for t in texts])
        return torch.from_numpy(rows).to(self.logit_scale.device)

    def encode_text(self, texts: Sequence[str]) -> Tensor:
        """Captions -> unit vectors (N, D)."""
        return self.encode_ids(self.tokenize(texts))

    #: ``score`` takes no options: the cosine has nothing to tune.
    score_cfg: dict = {}

    @torch.no_grad()
    def score(self, inputs: Tensor, captions: CaptionGrid,
              **options) -> Tensor:
        """Cosine similarity of each image with its candidate captions.

        inputs (B, 3, H, W) preprocessed images; captions: B lists of K (or
        one list of K for all) -> (B, K) cosines in [-1, 1]. Captions are
        checked as the captioners' ``score`` checks them (empty, longer
        than ``max_length``, unknown words: refused).
        """
        owner = type(self).__name__
        check_score_options(options, self.score_cfg, owner)
        rows = caption_grid(captions, inputs.shape[0], owner)
        ids = encode_candidates(self.tokenizer, rows, self.max_length,
                                owner).to(inputs.device)
        with evaluating(self):
            text = self.encode_ids(ids).view(len(rows), len(rows[0]), -1)
            return torch.einsum('bd,bkd->bk', self.encode_image(inputs),
                                text)

    # ---------------------------------------------------------------- modes
    def forward(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'loss'``: InfoNCE; ``'predict'``: retrieval captions;
        ``'tensor'``: image features (B, D)."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.encode_image(inputs)
        raise RuntimeError(f'Invalid mode "{mode}".')

    def loss(self, inputs: Tensor, data_samples: List[DataSample]) -> dict:
        """Symmetric InfoNCE over the batch (negatives are the other pairs
        on this rank)."""
        ids = torch.stack([
            torch.as_tensor(np.asarray(s.caption_ids), dtype=torch.long)
            for s in data_samples
        ]).to(inputs.device)
        img = self.encode_image(inputs)
        txt = self.encode_ids(ids)
        scale = self.logit_scale.clamp(max=math.log(100)).exp()
        logits = scale * img @ txt.t()
        labels = torch.arange(len(img), device=img.device)
        loss = (F.cross_entropy(logits, labels) +
                F.cross_entropy(logits.t(), labels)) / 2
        acc = (logits.argmax(1) == labels).float().mean()
        return dict(loss=loss, i2t_acc=acc)

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None
                ) -> List[DataSample]:
        """Caption each image with the best-matching caption of the OTHER
        images in the batch (its own references are left out, so the score
        says whether retrieval found a caption that fits, not a copy)."""
        if not data_samples or 'gt_caption' not in data_samples[0]:
            raise ValueError('ContrastiveImageText.predict needs data samples '
                             'with gt_caption to retrieve from')
        pool, owner = [], []
        for i, sample in enumerate(data_samples):
            refs = sample.gt_caption
            refs = [refs] if isinstance(refs, str) else list(refs)
            pool.extend(refs)
            owner.extend([i] * len(refs))
        alone = len(data_samples) == 1
        if alone:
            # No other image in the batch (e.g. a tail batch of one):
            # retrieve from the previous batch's references instead.
            if not self._previous_pool:
                raise ValueError(
                    'ContrastiveImageText.predict: a batch of one image has '
                    'no other captions to retrieve from; use batch_size >= 2')
            pool = self._previous_pool
        sims = self.encode_image(inputs) @ self.encode_text(pool).t()
        if not alone:
            owner = torch.tensor(owner, device=sims.device)
            own = owner[None, :] == torch.arange(
                len(sims), device=sims.device)[:, None]
            sims = sims.masked_fill(own, float('-inf'))
            self._previous_pool = pool
        best = sims.argmax(1)
        for sample, idx, row in zip(data_samples, best.tolist(), sims):
            sample.pred_caption = pool[idx]
            sample.image_text_score = float(row[idx])
        return data_samples
