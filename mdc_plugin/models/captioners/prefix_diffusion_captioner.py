"""Prefix-diffusion captioner: frozen encoder -> MLP prefix -> embedding
diffusion -> n candidates reranked by image-text similarity."""
from typing import Dict, Hashable, List, Optional, Sequence, Tuple, Union

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
from .decoding import check_decode_options, fill_predictions, fold_predict_cfg
from .scoring import CaptionScoringUnsupported
from .utils import build_data_preprocessor, count_parameters


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
        predict_cfg: decoding settings merged into the head's ``sampler``
            at build time (``steps``, ``eta``, ``clamp``) and
            ``num_candidates``. Unknown keys are refused.
        cache_embeddings: during training, remember each image's frozen
            embedding by ``image_id`` and skip the encoder the next time
            (as ClipCap precomputes CLIP features). Only valid when the
            train pipeline is deterministic (no random crops / colour
            jitter); off by default.

    ``predict(inputs, data_samples, num_samples=N, **options)`` is the
    decode entry (options from :attr:`decode_keys`); it fills
    ``DataSample.pred_caption`` (and ``pred_score``, the best candidate's
    cosine, when reranked).
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
        predict_cfg = dict(predict_cfg or {})
        num_candidates = predict_cfg.pop('num_candidates', num_candidates)
        self._check_candidates(num_candidates, scorer)
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
        fold_predict_cfg(self.head, predict_cfg, type(self).__name__)
        self.cache_embeddings = cache_embeddings
        self._embedding_cache: Dict[Hashable, Tensor] = {}
        counts = count_parameters(self)
        print_log(
            f'PrefixDiffusionCaptioner: {counts["trainable"]:,} trainable of '
            f'{counts["total"]:,} parameters (encoder frozen: '
            f'{count_parameters(self.encoder)["total"]:,})',
            logger='current')

    @staticmethod
    def _check_candidates(n, scorer) -> None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f'num_candidates={n!r} must be an int >= 1')
        if n > 1 and scorer is None:
            raise ValueError(f'num_candidates={n} needs a scorer to rerank '
                             'the candidates')

    #: ``score`` refuses (see its docstring).
    score_cfg: dict = {}
    score_refusal = (
        'continuous embedding diffusion has no cheap likelihood of a given '
        'text (its bound needs a denoising error at every timestep plus '
        'the rounding to words). Score with an MDC or Cap/CapPa '
        'checkpoint, or with the CLIP-style scorer used to rerank its '
        'candidates')

    def score(self, inputs: Tensor, captions, **options) -> Tensor:
        """Refused: continuous embedding diffusion has no cheap likelihood
        of a given text (its bound integrates Gaussian denoising errors
        over every timestep and the rounding to words). Its candidate
        reranker is a separate image-text scorer: score with that (e.g.
        ``ContrastiveImageText.score``) or with an MDC / Cap checkpoint.

        Raises:
            CaptionScoringUnsupported: always.
        """
        raise CaptionScoringUnsupported(
            f'{type(self).__name__} cannot score captions: '
            f'{self.score_refusal}')

    @property
    def decode_keys(self) -> Tuple[str, ...]:
        """The decoding options :meth:`predict` accepts."""
        return tuple(sorted(self.head.decode_keys + ('num_candidates', )))

    @property
    def decode_cfg(self) -> dict:
        """The decoding defaults in force."""
        return dict(self.head.sampler_cfg, num_candidates=self.num_candidates)

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
                num_samples: int = 1, **options) -> List[DataSample]:
        """Caption images (B, 3, H, W): each of the ``num_samples`` captions
        per image is the best of ``num_candidates`` draws by the scorer.

        All B * N * n draws run as one batch (image-major). ``pred_caption``
        is the first sample, ``pred_captions`` all N when N > 1, else (with
        ``keep_candidates``) the n candidates, best first.
        """
        options = check_decode_options(options, self.decode_keys,
                                       type(self).__name__, num_samples)
        n = options.pop('num_candidates', self.num_candidates)
        self._check_candidates(n, self.scorer)
        draws_per_image = n * num_samples
        prefix = self.prefix(inputs).repeat_interleave(draws_per_image, 0)
        captions = self.head.predict(prefix, **options)
        ranked_scores = None
        if n > 1 or (self.keep_candidates and self.scorer is not None):
            images = raw_images(self.data_preprocessor, inputs)
            scores = candidate_scores(
                self.scorer, images.repeat_interleave(num_samples, 0),
                captions, n)
            best, ranked, ranked_scores = rerank(scores, captions)
        else:
            best, ranked = captions, [[c] for c in captions]
        draws = [best[k::num_samples] for k in range(num_samples)]
        data_samples = fill_predictions(data_samples, draws)
        for i, sample in enumerate(data_samples):
            first = i * num_samples
            if ranked_scores is not None:
                sample.pred_score = ranked_scores[first][0]
            if self.keep_candidates and num_samples == 1:
                sample.pred_captions = ranked[first]
                if ranked_scores is not None:
                    sample.pred_candidate_scores = ranked_scores[first]
        return data_samples
