"""CLIPScore with any image-text model registered in the plugin."""
import os
from typing import Optional, Sequence, Union

import torch
from mmpretrain.registry import MODELS

from .base import Images, ImageTextScorer


@MODELS.register_module()
class PluginModelScorer(ImageTextScorer):
    """Image-text scorer on a model built from an MMEngine config.

    The model (e.g. the plugin's ``ContrastiveImageText`` baseline) is built
    with ``mmpretrain.registry.MODELS`` from ``config``'s ``model`` field
    and loaded from ``checkpoint``. It must provide

    * ``encode_image(inputs: Tensor[B, 3, H, W]) -> Tensor[B, D]``, taking
      images already passed through ``model.data_preprocessor``;
    * ``encode_text(texts: list[str]) -> Tensor[N, D]``;

    both L2-normalised. Raw images (``data_batch['inputs']``: uint8 CHW in
    the channel order the dataset loads, BGR for mmcv) go through
    ``model.data_preprocessor({'inputs': images}, False)`` first, so the
    model's own normalisation and channel swap apply.

    Args:
        config (str | dict | mmengine.Config): Config file path or config
            with a ``model`` field (or the model dict itself).
        checkpoint (str, optional): Weights to load (None keeps the
            initialisation, useful only for tests).
        device (str): Torch device.
        prompt (str): Caption prefix (see :class:`ImageTextScorer`); the
            default is none, as the baseline is not trained with one.
        batch_size (int): Images / texts per forward pass.
    """

    def __init__(self,
                 config: Union[str, dict],
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 prompt: str = '',
                 batch_size: int = 64) -> None:
        super().__init__(prompt=prompt)
        from mmengine.config import Config
        if isinstance(config, str):
            if not os.path.isfile(config):
                raise FileNotFoundError(
                    f'PluginModelScorer: config {config!r} is not a file')
            config = Config.fromfile(config)
        model_cfg = config.get('model', config)
        if checkpoint is not None and not os.path.isfile(str(checkpoint)):
            raise FileNotFoundError(
                f'PluginModelScorer: checkpoint {checkpoint!r} is not a '
                'file; give the local path of the trained weights')
        model = MODELS.build(model_cfg)
        for name in ('encode_image', 'encode_text', 'data_preprocessor'):
            if not hasattr(model, name):
                raise TypeError(
                    f'PluginModelScorer: {type(model).__name__} has no '
                    f'`{name}`; it needs encode_image, encode_text and a '
                    'data_preprocessor')
        if checkpoint is not None:
            from mmengine.runner import load_checkpoint

            from ...utils.safe_checkpoint import hardened_checkpoints
            with hardened_checkpoints():
                load_checkpoint(model, checkpoint, map_location='cpu',
                                strict=True)
        self.model = model.to(device).eval()
        self.device = device
        self.batch_size = batch_size

    @torch.no_grad()
    def encode_images(self, images: Images) -> torch.Tensor:
        images = list(images)
        feats = []
        for i in range(0, len(images), self.batch_size):
            batch = [img.to(self.device)
                     for img in images[i:i + self.batch_size]]
            inputs = self.model.data_preprocessor({'inputs': batch},
                                                  False)['inputs']
            feats.append(self.model.encode_image(inputs))
        return torch.cat(feats).float().cpu()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        feats = []
        for i in range(0, len(texts), self.batch_size):
            feats.append(
                self.model.encode_text(list(texts[i:i + self.batch_size])))
        return torch.cat(feats).float().cpu()
