"""Image -> backbone -> (neck) -> caption head, as an MMEngine BaseModel."""
from typing import List, Optional, Tuple

import torch
from mmengine.model import BaseModel
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from .decoding import check_decode_options, fill_predictions, fold_predict_cfg
from .scoring import (CaptionGrid, CaptionScoringUnsupported, caption_grid,
                      check_score_options, encode_candidates, evaluating,
                      scoring_refusal)
from .utils import build_data_preprocessor, image_tokens_from_backbone


@MODELS.register_module()
class ImageCaptioner(BaseModel):
    """Captioner shared by MDC, Cap/CapPa and the discrete-diffusion heads.

    Args:
        backbone: any MMPretrain backbone: token sequences (B, N, C) (e.g.
            ``VisionTransformer`` with ``out_type='raw'``) are used as they
            are, feature maps (B, C, H, W) (ResNet, ConvNeXt, Swin, ViT
            ``out_type='featmap'``) are flattened to (B, H*W, C).
        head: a caption head with ``loss(tokens, data_samples)``,
            ``predict(tokens, **options)`` and ``decode_keys``.
        neck: optional module mapping image tokens (B, N, C) -> (B, N', C').
        data_preprocessor: defaults to MMPretrain's ``ClsDataPreprocessor``.
        predict_cfg: decoding settings (e.g. ``dict(steps=4)``), merged
            into the head's ``sampler`` at build time: the same keys, the
            same place (``model.predict_cfg.KEY=V`` on the command line is
            ``model.head.sampler.KEY=V``). Unknown keys are refused.
        backbone_stage: which entry of a multi-stage backbone output the
            head reads (an index into the backbone's ``out_indices``).
        featmap_pos_embed: ``'sincos'`` (default) adds fixed 2-D position
            codes to flattened feature maps; ``None`` adds none.

    ``predict`` fills ``DataSample.pred_caption`` as MMPretrain's BLIP
    captioner does, so its ``COCOCaption`` metric and visualizer work too.
    It is the one decode entry: ``predict(inputs, data_samples,
    num_samples=N, **options)`` with ``options`` from :attr:`decode_keys`.
    ``score(inputs, captions, **options)`` is the one scoring entry (image-
    text matching): (B, K) log-likelihood scores, options from
    :attr:`score_cfg`.
    """

    def __init__(self, backbone: dict, head: dict,
                 neck: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 predict_cfg: Optional[dict] = None,
                 backbone_stage: int = -1,
                 featmap_pos_embed: Optional[str] = 'sincos',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=build_data_preprocessor(
                             data_preprocessor),
                         init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)
        fold_predict_cfg(self.head, predict_cfg, type(self).__name__)
        self.backbone_stage = backbone_stage
        self.featmap_pos_embed = featmap_pos_embed

    @property
    def _metainfo(self):
        """Model-index entry read by ``mmpretrain.apis.inference_model``.

        MMPretrain picks the inferencer from ``model._metainfo.results[i]
        .task``; ``get_model`` sets ``_metainfo = None`` for models built
        from a config, which made ``inference_model`` raise 'No available
        inferencer'. Unless a real entry was set, this reports the
        'Image Caption' task, so ``ImageCaptionInferencer`` is chosen.
        """
        meta = self.__dict__.get('_mdc_metainfo')
        if meta is None:
            from modelindex.models.Model import Model
            from modelindex.models.Result import Result
            meta = Model(name=type(self).__name__, results=[
                Result(task='Image Caption', dataset='', metrics={})])
        return meta

    @_metainfo.setter
    def _metainfo(self, value) -> None:
        self.__dict__['_mdc_metainfo'] = value

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Images (B, 3, H, W) -> image tokens (B, N, C) for the head."""
        tokens = image_tokens_from_backbone(
            self.backbone(inputs), type(self.backbone).__name__,
            self.backbone_stage, self.featmap_pos_embed)
        return self.neck(tokens) if self.neck is not None else tokens

    def forward(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                mode: str = 'tensor'):
        """``'loss'`` -> dict of losses, ``'predict'`` -> DataSamples with
        ``pred_caption``, ``'tensor'`` -> image tokens (B, N, C)."""
        if mode == 'loss':
            feats = self.extract_feat(inputs)
            losses = self.head.loss(feats, data_samples)
            # a neck may carry its own losses / log entries (VQ necks)
            losses.update(getattr(feats, 'losses', None) or {})
            return losses
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.extract_feat(inputs)
        raise RuntimeError(f'Invalid mode "{mode}".')

    @property
    def decode_keys(self) -> Tuple[str, ...]:
        """The decoding options :meth:`predict` accepts (the head's)."""
        return self.head.decode_keys

    @property
    def decode_cfg(self) -> dict:
        """The decoding defaults in force (the head's sampler config)."""
        return dict(self.head.sampler_cfg)

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[List[DataSample]] = None,
                num_samples: int = 1, **options) -> List[DataSample]:
        """Caption a batch of images (B, 3, H, W) -> B DataSamples.

        ``options`` override :attr:`decode_cfg` for this call (unknown keys
        are refused). ``num_samples`` draws run one after another on the
        same image tokens; the first is ``pred_caption``, all of them
        ``pred_captions`` when N > 1.
        """
        options = check_decode_options(options, self.decode_keys,
                                       type(self).__name__, num_samples)
        feats = self.extract_feat(inputs)
        draws = [self.head.predict(feats, **options)
                 for _ in range(num_samples)]
        return fill_predictions(data_samples, draws)

    @property
    def score_cfg(self) -> dict:
        """The scoring defaults of :meth:`score` (the head's; empty when the
        head cannot score captions)."""
        return dict(getattr(self.head, 'score_cfg', {}))

    @torch.no_grad()
    def score(self, inputs: Tensor, captions: CaptionGrid,
              **options) -> Tensor:
        """Score candidate captions against images.

        Args:
            inputs: preprocessed images (B, 3, H, W).
            captions: B lists of K captions, or one list of K for all.
            **options: the head's scoring options (:attr:`score_cfg`:
                Cap/CapPa ``normalize``; MDC ``method``, ``draws``, ``seed``,
                ``normalize``); unknown keys are refused.

        Returns:
            (B, K) log-likelihood scores in nats (higher = better match).

        Raises:
            CaptionScoringUnsupported: the head has no likelihood to score.
            ValueError: a bad option or caption (empty, too long, unknown
                words), naming it.
        """
        owner = type(self).__name__
        refusal = scoring_refusal(self)
        if refusal:
            raise CaptionScoringUnsupported(refusal)
        head = self.head
        cfg = check_score_options(options, head.score_cfg, owner)
        rows = caption_grid(captions, inputs.shape[0], owner)
        width = len(rows[0])
        ids = encode_candidates(head.tokenizer, rows, head.max_length,
                                owner).to(inputs.device)
        with evaluating(self):
            feats = self.extract_feat(inputs).repeat_interleave(width, 0)
            scores = head.log_likelihood(feats, ids, group_size=width,
                                         **cfg)
        return scores.view(len(rows), width)
