"""Candidate reranking by image-text similarity."""
from typing import List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from ..tokenizers import CaptionTokenizer
from .base import ImageTextScorer


def build_scorer(cfg: Union[dict, ImageTextScorer, None]
                 ) -> Optional[ImageTextScorer]:
    """Build an ``ImageTextScorer`` (``OpenCLIPScorer`` /
    ``PluginModelScorer``) from a config, or pass one through."""
    if cfg is None or isinstance(cfg, ImageTextScorer):
        return cfg
    scorer = MODELS.build(cfg)
    if not isinstance(scorer, ImageTextScorer):
        raise TypeError('rerank scorer must build an ImageTextScorer, got '
                        f'{type(scorer).__name__}')
    return scorer


def check_scorer_tokenizer(scorer: ImageTextScorer,
                           tokenizer: CaptionTokenizer) -> None:
    """Raise unless ``scorer`` reads the captioner's vocabulary.

    A scorer built on a plugin model (``PluginModelScorer``) tokenizes with
    that model's ``CaptionTokenizer``: it must be the same tokenizer (class,
    vocabulary size, special ids, files), otherwise words the captioner
    emits would reach the scorer as unknown or different tokens. open_clip
    scorers use CLIP's byte-level BPE, which encodes any text.
    """
    model = getattr(scorer, 'model', None)
    theirs = getattr(model, 'tokenizer', None)
    if not isinstance(theirs, CaptionTokenizer):
        return
    if repr(theirs) != repr(tokenizer):
        raise ValueError(
            f'rerank scorer {type(scorer).__name__} tokenizes with '
            f'{theirs!r} but the captioner emits {tokenizer!r}; give a '
            'scorer trained with the same tokenizer')


def raw_images(preprocessor: nn.Module, inputs: Tensor) -> Tensor:
    """Undo ``ClsDataPreprocessor``: normalised (B, 3, H, W) -> 0..255
    images in the loader's channel order (BGR when ``to_rgb``), as
    ``data_batch['inputs']`` holds them and the scorers expect."""
    out = inputs.float()
    if getattr(preprocessor, '_enable_normalize', False):
        out = out * preprocessor.std + preprocessor.mean
    if getattr(preprocessor, 'to_rgb', False) and out.shape[1] == 3:
        out = out.flip(1)
    return out.clamp(0, 255)


def rerank(scores: Tensor, captions: Sequence[str]
           ) -> Tuple[List[str], List[List[str]], List[List[float]]]:
    """Pick the best of n candidates per image.

    Args:
        scores: (B, n) similarity of each candidate to its image.
        captions: B * n captions, image-major (candidate j of image i at
            ``i * n + j``).

    Returns:
        best caption per image; all candidates per image sorted by score
        (best first); and their scores, in the same order.
    """
    batch, n = scores.shape
    if len(captions) != batch * n:
        raise ValueError(f'{len(captions)} captions for scores of shape '
                         f'{tuple(scores.shape)}')
    order = scores.argsort(dim=1, descending=True, stable=True)
    best, ranked, ranked_scores = [], [], []
    for i in range(batch):
        row = [captions[i * n + j] for j in order[i].tolist()]
        best.append(row[0])
        ranked.append(row)
        ranked_scores.append(scores[i, order[i]].tolist())
    return best, ranked, ranked_scores


@torch.no_grad()
def candidate_scores(scorer: ImageTextScorer, images: Tensor,
                     captions: Sequence[str], n: int) -> Tensor:
    """Cosine similarity of each of ``n`` candidates to its image.

    Args:
        images: (B, 3, H, W) raw images.
        captions: B * n captions, image-major.
    Returns:
        (B, n) float tensor.
    """
    img = scorer.encode_images(images).float()
    txt = scorer.encode_texts(scorer._texts(list(captions))).float()
    txt = txt.view(len(img), n, -1)
    return (txt * img[:, None]).sum(-1)
