"""Common base of the image-text scorers behind CLIPScore / RefCLIPScore.

CLIPScore and RefCLIPScore follow Hessel et al., "CLIPScore: A
Reference-free Evaluation Metric for Image Captioning" (EMNLP 2021):

* ``CLIP-S(c, v) = w * max(cos(E_c, E_v), 0)`` with ``w = 2.5``;
* ``RefCLIP-S(c, R, v) = H-Mean(CLIP-S(c, v), max(max_{r in R} cos(E_c,
  E_r), 0))``, the harmonic mean ``2ab / (a + b)`` (0 when ``a + b = 0``)
  of CLIP-S and the best candidate-reference text cosine. The text term
  carries no ``w`` (as in the paper and its code); the paper's ``max(., 0)``
  is kept (the released code omits it; the two differ only when every
  reference cosine is negative).

Captions and references are prefixed with ``'A photo depicts '`` as in the
paper's code (``prompt``).
"""
from typing import List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

Images = Union[torch.Tensor, Sequence[torch.Tensor]]

#: CLIPScore's rescaling weight.
CLIP_SCORE_W = 2.5


def clip_score_from_cosine(cos: torch.Tensor,
                           w: float = CLIP_SCORE_W) -> torch.Tensor:
    """``w * max(cos, 0)`` elementwise (Tensor[N] -> Tensor[N])."""
    return w * cos.clamp(min=0)


def ref_clip_score_from(clip_s: torch.Tensor,
                        ref_cos_max: torch.Tensor) -> torch.Tensor:
    """Harmonic mean of CLIP-S and ``max(max_r cos(c, r), 0)`` (Tensor[N])."""
    text = ref_cos_max.clamp(min=0)
    total = clip_s + text
    safe = torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, 2 * clip_s * text / safe,
                       torch.zeros_like(total))


def images_to_uint8_hwc(images: Images,
                        channel_order: str = 'bgr') -> List[np.ndarray]:
    """Raw images -> list of uint8 RGB ``H x W x 3`` arrays.

    Args:
        images: Tensor[B, 3, H, W] or a sequence of Tensor[3, H, W] with
            values in 0..255 (uint8 or float), as ``data_batch['inputs']``
            holds them before the data preprocessor.
        channel_order (str): ``'bgr'`` (mmcv loading) or ``'rgb'``.
    """
    if channel_order not in ('bgr', 'rgb'):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got "
                         f'{channel_order!r}')
    out = []
    for img in images:
        if not isinstance(img, torch.Tensor) or img.ndim != 3 or \
                img.shape[0] != 3:
            raise ValueError('expected image tensors of shape [3, H, W], got '
                             f'{getattr(img, "shape", type(img))}')
        arr = img.detach().cpu()
        if arr.dtype != torch.uint8:
            arr = arr.float().round().clamp(0, 255).to(torch.uint8)
        arr = arr.permute(1, 2, 0).numpy()
        if channel_order == 'bgr':
            arr = arr[..., ::-1]
        out.append(np.ascontiguousarray(arr))
    return out


class ImageTextScorer:
    """Base class: embed images and texts, derive CLIPScore/RefCLIPScore.

    Subclasses implement :meth:`encode_images` and :meth:`encode_texts`
    (both return L2-normalised float Tensor[N, D]).

    Args:
        prompt (str): Prefix put before every caption and reference.
        w (float): CLIPScore weight.
    """

    def __init__(self, prompt: str = 'A photo depicts ',
                 w: float = CLIP_SCORE_W) -> None:
        if prompt and not prompt.endswith(' '):
            prompt += ' '
        self.prompt = prompt
        self.w = w

    def encode_images(self, images: Images) -> torch.Tensor:
        """Raw images (see :func:`images_to_uint8_hwc`) -> Tensor[N, D]."""
        raise NotImplementedError

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Texts (prompt already added) -> Tensor[N, D]."""
        raise NotImplementedError

    def _texts(self, texts: Sequence[str]) -> List[str]:
        return [self.prompt + t for t in texts]

    @torch.no_grad()
    def image_text_similarity(self, images: Images,
                              texts: Sequence[str]) -> torch.Tensor:
        """Cosine between image i and text i (Tensor[N], float)."""
        if len(images) != len(texts):
            raise ValueError(f'{len(images)} images but {len(texts)} texts')
        if len(texts) == 0:
            return torch.zeros(0)
        img = self.encode_images(images).float()
        txt = self.encode_texts(self._texts(texts)).float()
        return (img * txt).sum(-1)

    @torch.no_grad()
    def clip_score(self, images: Images,
                   candidates: Sequence[str]) -> torch.Tensor:
        """CLIP-S of each candidate for its image (Tensor[N])."""
        return clip_score_from_cosine(
            self.image_text_similarity(images, candidates), self.w)

    @torch.no_grad()
    def score(
        self,
        images: Images,
        candidates: Sequence[str],
        references: Optional[Sequence[Optional[Sequence[str]]]] = None
    ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        """CLIP-S and RefCLIP-S of a batch, encoding each text once.

        Args:
            images: N raw images.
            candidates (Sequence[str]): N captions.
            references (Sequence[Sequence[str] | None], optional): N
                reference lists; an empty list or None gives NaN.

        Returns:
            tuple: ``(clip_s, ref_clip_s)``, Tensor[N] each; ``ref_clip_s``
            is None when ``references`` is None.
        """
        if len(images) != len(candidates):
            raise ValueError(f'{len(images)} images but {len(candidates)} '
                             'captions')
        if len(candidates) == 0:
            empty = torch.zeros(0)
            return empty, (None if references is None else empty)
        img = self.encode_images(images).float()
        cand = self.encode_texts(self._texts(candidates)).float()
        clip_s = clip_score_from_cosine((img * cand).sum(-1), self.w)
        if references is None:
            return clip_s, None
        flat, owner = [], []
        for i, refs in enumerate(references):
            for r in refs or []:
                flat.append(r)
                owner.append(i)
        ref_max = torch.full((len(candidates), ), float('nan'))
        if flat:
            ref_emb = self.encode_texts(self._texts(flat)).float()
            owner_t = torch.tensor(owner)
            cos = (ref_emb * cand[owner_t]).sum(-1)
            ref_max = ref_max.scatter_reduce(
                0, owner_t, cos, reduce='amax', include_self=False)
        ref_clip = ref_clip_score_from(clip_s, torch.nan_to_num(ref_max))
        ref_clip = torch.where(torch.isnan(ref_max), ref_max, ref_clip)
        return clip_s, ref_clip
