"""Prefix-diffusion captioner: frozen encoder -> MLP prefix -> embedding
diffusion -> n candidates reranked by image-text similarity."""
from typing import Dict, Hashable, List, Optional, Sequence, Union

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ..image_encoders import FrozenImageEncoder
from ..scorers import ImageTextScorer
from ..scorers.rerank import (build_scorer, candidate_scores,
                              check_scorer_tokenizer, raw_images, rerank)
from .utils import build_data_preprocessor


def count_parameters(module: torch.nn.Module) -> dict:
    """``dict(trainable=..., total=...)`` parameter counts of ``module``."""
    params = list(module.parameters())
    return dict(trainable=sum(p.numel() for p in params if p.requires_grad),
                total=sum(p.numel() for p in params))


@MODELS.register_module()
class PrefixDiffusionCaptioner(BaseModel):
    """Prefix-diffusion (arXiv 2309.04965) as an MMEngine model.

    Args:
        encoder: a frozen image encoder config (``OpenCLIPImageEncoder``,
            ``BackboneImageEncoder`` or ``ContrastiveImageEncoder``).
        mapper: ``PrefixMapper`` config; ``in_dims`` must equal the
            encoder's ``embed_dims``, ``out_dims`` / ``prefix_length`` the
            head's ``embed_dims`` / ``prefix_length``.
        head: ``PrefixDiffusionHead`` config.
        num_candidates: n samples per image at test time (>= 1), each from
            its own noise draw.
        scorer: image-text scorer config (``OpenCLIPScorer`` or
            ``PluginModelScorer``) that reranks the n candidates; required
            when n > 1.
        keep_candidates: also store all n candidates (best first) in
            ``DataSample.pred_captions`` and their scores in
            ``pred_candidate_scores`` (CaptionMetric's Self-BLEU / Div-n).
        data_preprocessor: defaults to ``ClsDataPreprocessor``.
        predict_cfg: overrides for ``head.sample`` (``steps``, ``eta``,
            ``clamp``).
        cache_embeddings: during training, remember each image's frozen
            embedding by ``image_id`` and skip the encoder the next time
            (as ClipCap precomputes CLIP features). Only valid when the
            train pipeline is deterministic (no random crops / colour
            jitter); off by default.

    ``predict`` fills ``DataSample.pred_caption`` (and ``pred_score``, the
    best candidate's cosine, when reranked).
    """

    def __init__(self, encoder: dict, mapper: dict, head: dict,
                 num_candidates: int = 1,
                 scorer: Union[dict, ImageTextScorer, None] = None,
                 keep_candidates: bool = False,
                 data_preprocessor: Optional[dict] = None,
                 predict_cfg: Optional[dict] = None,
                 cache_embeddings: bool = False,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=build_data_preprocessor(
                             data_preprocessor),
                         init_cfg=init_cfg)
        if not isinstance(num_candidates, int) or num_candidates < 1:
            raise ValueError(f'num_candidates={num_candidates!r} must be an '
                             'int >= 1')
        if num_candidates > 1 and scorer is None:
            raise ValueError(f'num_candidates={num_candidates} needs a '
                             'scorer to rerank the candidates')
        self.encoder = MODELS.build(encoder)
        if not isinstance(self.encoder, FrozenImageEncoder):
            raise TypeError('encoder must build a FrozenImageEncoder, got '
                            f'{type(self.encoder).__name__}')
        self.mapper = MODELS.build(mapper)
        self.head = MODELS.build(head)
        if self.mapper.in_dims != self.encoder.embed_dims:
            raise ValueError(
                f'mapper in_dims={self.mapper.in_dims} does not match the '
                f'{type(self.encoder).__name__} embedding width '
                f'{self.encoder.embed_dims}')
        if (self.mapper.out_dims != self.head.embed_dims
                or self.mapper.prefix_length != self.head.prefix_length):
            raise ValueError(
                f'the mapper makes {self.mapper.prefix_length} prefix '
                f'vectors of width {self.mapper.out_dims} but the head '
                f'expects {self.head.prefix_length} of width '
                f'{self.head.embed_dims} (prefix_length / embed_dims)')
        self.scorer = build_scorer(scorer)
        if self.scorer is not None:
            check_scorer_tokenizer(self.scorer, self.head.tokenizer)
        self.num_candidates = num_candidates
        self.keep_candidates = keep_candidates
        self.predict_cfg = dict(predict_cfg or {})
        self.cache_embeddings = cache_embeddings
        self._embedding_cache: Dict[Hashable, Tensor] = {}
        counts = count_parameters(self)
        print_log(
            f'PrefixDiffusionCaptioner: {counts["trainable"]:,} trainable of '
            f'{counts["total"]:,} parameters (encoder frozen: '
            f'{count_parameters(self.encoder)["total"]:,})',
            logger='current')

    def prefix(self, inputs: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> prefix embeddings (B, k, D)."""
        return self.mapper(self.encoder(inputs))

    def cached_embeddings(self, inputs: Tensor,
                          data_samples: Sequence) -> Tensor:
        """Frozen embeddings (B, C), computed only for images whose
        ``image_id`` has not been seen yet."""
        keys = [s.get('image_id', None) for s in data_samples]
        if any(k is None for k in keys):
            raise KeyError('cache_embeddings needs image_id in every data '
                           'sample (PackInputs algorithm_keys)')
        keys = [k.item() if hasattr(k, 'item') else k for k in keys]
        todo = [i for i, k in enumerate(keys)
                if k not in self._embedding_cache]
        if todo:
            feats = self.encoder(inputs[todo])
            for i, feat in zip(todo, feats):
                self._embedding_cache[keys[i]] = feat.detach()
        return torch.stack([self._embedding_cache[k] for k in keys])

    def forward(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'loss'`` -> losses, ``'predict'`` -> DataSamples,
        ``'tensor'`` -> prefix embeddings (B, k, D)."""
        if mode == 'loss':
            feats = (self.cached_embeddings(inputs, data_samples)
                     if self.cache_embeddings else self.encoder(inputs))
            return self.head.loss(self.mapper(feats), data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.prefix(inputs)
        raise RuntimeError(f'Invalid mode "{mode}".')

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                num_candidates: Optional[int] = None,
                **sampler_overrides) -> List[DataSample]:
        """Sample n candidates per image, keep the best by the scorer."""
        n = self.num_candidates if num_candidates is None else num_candidates
        if n < 1 or (n > 1 and self.scorer is None):
            raise ValueError(f'num_candidates={n} must be >= 1 (> 1 needs a '
                             'scorer)')
        prefix = self.prefix(inputs).repeat_interleave(n, dim=0)
        captions = self.head.predict(
            prefix, **{**self.predict_cfg, **sampler_overrides})
        batch = len(inputs)
        if n > 1 or (self.keep_candidates and self.scorer is not None):
            scores = candidate_scores(
                self.scorer, raw_images(self.data_preprocessor, inputs),
                captions, n)
            best, ranked, ranked_scores = rerank(scores, captions)
        else:
            best = captions
            ranked = [[c] for c in captions]
            ranked_scores = None
        if data_samples is None:
            data_samples = [DataSample() for _ in range(batch)]
        for i, sample in enumerate(data_samples):
            sample.pred_caption = best[i]
            if ranked_scores is not None:
                sample.pred_score = ranked_scores[i][0]
            if self.keep_candidates:
                sample.pred_captions = ranked[i]
                if ranked_scores is not None:
                    sample.pred_candidate_scores = ranked_scores[i]
        return data_samples
