"""CLIPScore with an open_clip model whose weights come from a local file."""
import os
from typing import Dict, Optional, Sequence

import torch
from mmpretrain.registry import MODELS

from mdc_plugin.utils import extract_state_dict, load_checkpoint_safely

from .base import Images, ImageTextScorer, images_to_uint8_hwc


def load_open_clip_state_dict(path: str, owner: str) -> Dict[str, object]:
    """An open_clip state dict read from a local file with the safe loader
    (optionally under ``'state_dict'``; ``'module.'`` prefixes stripped).

    Raises:
        ValueError: the file holds no state dict (names ``owner``).
    """
    try:
        state = load_checkpoint_safely(path)
    except TypeError:  # not a dict
        state = None
    if isinstance(state, dict) and 'state_dict' in state:
        state = state['state_dict']
    if not isinstance(state, dict):
        raise ValueError(
            f'{owner}: {path} does not hold a state dict (got something '
            'else); TorchScript archives such as OpenAI\'s original '
            'ViT-B-32.pt must first be converted to an open_clip state dict')
    return extract_state_dict(state, None, path)


@MODELS.register_module()
class OpenCLIPScorer(ImageTextScorer):
    """Image-text scorer on an open_clip model (ViT-B/32 is the paper's).

    The model is built with ``pretrained=None`` (nothing is downloaded) and
    its weights are read from ``checkpoint`` with the plugin's one safe
    loader (``load_checkpoint_safely``): an open_clip / OpenCLIP state
    dict (optionally under ``'state_dict'``, ``'module.'`` prefixes are
    stripped). Images go through open_clip's own eval preprocessing, texts
    through its own tokenizer.

    Args:
        model_name (str): open_clip architecture, e.g. ``'ViT-B-32'``.
        checkpoint (str): Local path of the weights.
        device (str): Torch device.
        channel_order (str): Order of the raw input images (``'bgr'`` as
            mmcv loads them, or ``'rgb'``).
        prompt (str): Caption prefix (see :class:`ImageTextScorer`).
        batch_size (int): Images / texts per forward pass.
    """

    def __init__(self,
                 model_name: str = 'ViT-B-32',
                 checkpoint: Optional[str] = None,
                 device: str = 'cpu',
                 channel_order: str = 'bgr',
                 prompt: str = 'A photo depicts ',
                 batch_size: int = 64) -> None:
        super().__init__(prompt=prompt)
        if checkpoint is None or not os.path.isfile(str(checkpoint)):
            raise FileNotFoundError(
                f'OpenCLIPScorer: checkpoint {checkpoint!r} is not a file. '
                'Give the local path of the open_clip weights for '
                f'{model_name!r} (they are never downloaded), e.g. '
                "clip_scorer=dict(type='OpenCLIPScorer', "
                "model_name='ViT-B-32', checkpoint='/path/ViT-B-32.pt')")
        if ':' in model_name and not model_name.startswith('local-dir:'):
            raise ValueError(
                f'OpenCLIPScorer: model_name {model_name!r} would be fetched '
                'from a hub; use a built-in architecture name (e.g. '
                "'ViT-B-32') and a local checkpoint")
        import open_clip
        model, _, preprocess = open_clip.create_model_and_transforms(
            model_name, pretrained=None)
        model.load_state_dict(
            load_open_clip_state_dict(checkpoint, 'OpenCLIPScorer'))
        self.model = model.to(device).eval()
        self.preprocess = preprocess
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.device = device
        self.channel_order = channel_order
        self.batch_size = batch_size

    @torch.no_grad()
    def encode_images(self, images: Images) -> torch.Tensor:
        from PIL import Image
        arrays = images_to_uint8_hwc(images, self.channel_order)
        feats = []
        for i in range(0, len(arrays), self.batch_size):
            batch = torch.stack([
                self.preprocess(Image.fromarray(a))
                for a in arrays[i:i + self.batch_size]
            ]).to(self.device)
            feats.append(self.model.encode_image(batch, normalize=True))
        return torch.cat(feats).float().cpu()

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        feats = []
        for i in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(list(texts[i:i + self.batch_size]))
            feats.append(
                self.model.encode_text(tokens.to(self.device),
                                       normalize=True))
        return torch.cat(feats).float().cpu()
