"""Frozen image encoders: images (B, 3, H, W) -> embeddings (B, C).

Three sources, all frozen at construction (``requires_grad=False``, kept in
eval mode by :meth:`FrozenImageEncoder.train`, skipped by MMEngine's
``init_weights`` so loaded weights are never re-initialised):

* :class:`OpenCLIPImageEncoder`: the image tower of an open_clip model read
  from a local checkpoint (nothing is downloaded);
* :class:`BackboneImageEncoder`: any MMPretrain backbone, pooled, with
  optional weights from a checkpoint;
* :class:`ContrastiveImageEncoder`: the plugin's ``ContrastiveImageText``
  baseline (its ``encode_image``) loaded through the safe loader.
"""
import os.path as osp
from typing import Optional, Union

import torch
from mmengine.config import Config
from mmengine.model import BaseModule
from mmpretrain.registry import MODELS
from torch import Tensor, nn

from mdc_plugin.utils import (assert_state_dict_loaded, extract_state_dict,
                              load_checkpoint_safely)

from .scorers.open_clip_scorer import load_open_clip_state_dict


def _require_file(path: Optional[str], owner: str, what: str) -> str:
    """Return ``path`` if it is a file, else raise naming ``owner``."""
    if path is None or not osp.isfile(str(path)):
        raise FileNotFoundError(
            f'{owner}: {what} {path!r} is not a file; give a local path '
            '(nothing is downloaded)')
    return str(path)


class FrozenImageEncoder(BaseModule):
    """Base class; subclasses set ``embed_dims`` and call :meth:`freeze`.

    ``forward`` runs under ``torch.no_grad`` and returns (B, embed_dims).
    """

    embed_dims: int

    def freeze(self) -> None:
        """Stop gradients, switch to eval mode and mark as initialised."""
        for param in self.parameters():
            param.requires_grad_(False)
        self._is_init = True
        super().train(False)

    def init_weights(self) -> None:
        """Weights come from the checkpoint at construction: keep them."""

    def train(self, mode: bool = True) -> 'FrozenImageEncoder':
        """Stay in eval mode (no dropout / batch-norm updates)."""
        return super().train(False)

    def encode(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) -> (B, embed_dims)."""
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, inputs: Tensor) -> Tensor:
        """(B, 3, H, W) preprocessed images -> (B, embed_dims) floats."""
        return self.encode(inputs).float()


@MODELS.register_module()
class OpenCLIPImageEncoder(FrozenImageEncoder):
    """open_clip image tower from a local state dict.

    Args:
        model_name: open_clip architecture, e.g. ``'ViT-B-32'``.
        checkpoint: local path of an open_clip state dict (optionally under
            ``'state_dict'``; ``'module.'`` prefixes are stripped).
        normalize: L2-normalise the embeddings (as CLIP's similarity).

    Inputs must be preprocessed as CLIP expects (224 px, CLIP mean/std,
    RGB): set the captioner's ``data_preprocessor`` accordingly.
    """

    def __init__(self, model_name: str = 'ViT-B-32',
                 checkpoint: Optional[str] = None,
                 normalize: bool = True) -> None:
        super().__init__()
        path = _require_file(checkpoint, 'OpenCLIPImageEncoder',
                             'checkpoint')
        import open_clip
        model = open_clip.create_model(model_name, pretrained=None)
        model.load_state_dict(
            load_open_clip_state_dict(path, 'OpenCLIPImageEncoder'))
        self.visual = model.visual
        self.normalize = normalize
        self.embed_dims = int(model.visual.output_dim)
        self.freeze()

    def encode(self, inputs: Tensor) -> Tensor:
        feats = self.visual(inputs)
        return nn.functional.normalize(feats, dim=-1) if self.normalize \
            else feats


@MODELS.register_module()
class BackboneImageEncoder(FrozenImageEncoder):
    """Any MMPretrain backbone, pooled to one vector per image.

    Args:
        backbone: backbone config.
        embed_dims: width of its last output (checked on the first batch).
        pool: ``'cls'`` (first token of a (B, N, C) sequence) or ``'mean'``;
            feature maps (B, C, H, W) are averaged, vectors (B, C) kept.
        checkpoint / prefix: optional weights (safe loader, strict).
    """

    def __init__(self, backbone: dict, embed_dims: int, pool: str = 'mean',
                 checkpoint: Optional[str] = None,
                 prefix: Optional[str] = 'backbone.') -> None:
        super().__init__()
        if pool not in ('cls', 'mean'):
            raise ValueError(f"pool={pool!r} must be 'cls' or 'mean'")
        self.backbone = MODELS.build(backbone)
        if checkpoint is not None:
            path = _require_file(checkpoint, 'BackboneImageEncoder',
                                 'checkpoint')
            state = extract_state_dict(load_checkpoint_safely(path), prefix,
                                       path)
            assert_state_dict_loaded(self.backbone, state, source=path)
            self.backbone.load_state_dict(state, strict=True)
        self.embed_dims = embed_dims
        self.pool = pool
        self.freeze()

    def encode(self, inputs: Tensor) -> Tensor:
        out = self.backbone(inputs)
        out = out[-1] if isinstance(out, (tuple, list)) else out
        if out.dim() == 4:
            out = out.mean((2, 3))
        elif out.dim() == 3:
            out = out[:, 0] if self.pool == 'cls' else out.mean(1)
        if out.dim() != 2 or out.shape[1] != self.embed_dims:
            raise ValueError(
                f'BackboneImageEncoder: the backbone gives '
                f'{tuple(out.shape)} after pooling, expected (B, '
                f'{self.embed_dims}); set embed_dims to its width')
        return out


@MODELS.register_module()
class ContrastiveImageEncoder(FrozenImageEncoder):
    """The plugin's ``ContrastiveImageText`` image tower + projection.

    Args:
        config: config file (or Config / dict) whose ``model`` is the
            contrastive model, e.g. ``configs/baselines/clip_vit-tiny_
            shapes.py``.
        checkpoint: its trained weights (loaded with the safe loader,
            strictly: every key must load).
    """

    def __init__(self, config: Union[str, dict, Config],
                 checkpoint: Optional[str] = None) -> None:
        super().__init__()
        if isinstance(config, str):
            config = Config.fromfile(
                _require_file(config, 'ContrastiveImageEncoder', 'config'))
        model_cfg = config.get('model', config)
        path = _require_file(checkpoint, 'ContrastiveImageEncoder',
                             'checkpoint')
        model = MODELS.build(model_cfg)
        if not hasattr(model, 'encode_image'):
            raise TypeError(f'ContrastiveImageEncoder: {type(model).__name__}'
                            ' has no encode_image')
        state = extract_state_dict(load_checkpoint_safely(path), None, path)
        assert_state_dict_loaded(model, state, source=path)
        model.load_state_dict(state, strict=True)
        # Only the image side is needed; the text tower is dropped.
        self.backbone = model.backbone
        self.image_proj = model.image_proj
        self.pool = model.pool
        self.backbone_stage = model.backbone_stage
        self.embed_dims = int(model.image_proj.out_features)
        self._encode_image = type(model).encode_image
        self.freeze()

    def encode(self, inputs: Tensor) -> Tensor:
        return self._encode_image(self, inputs)
