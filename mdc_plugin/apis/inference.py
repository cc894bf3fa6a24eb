"""Caption images with a trained captioner: build, load, sample.

``init_captioner`` builds a model from a config and loads a checkpoint
through the plugin's safe loader (weights-only, allow-listed globals, every
weight must load). ``caption_images`` runs the config's test pipeline on
image files or arrays and returns the greedy caption of each image plus
optional stochastic alternatives. The model returned by ``init_captioner``
also works with MMPretrain's ``inference_model`` and
``ImageCaptionInferencer``.
"""
import os
import os.path as osp
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS, TRANSFORMS
from torch import nn

from ..utils.cli import merge_cfg_options
from ..utils.safe_checkpoint import load_checkpoint_safely
from ..utils.weights import assert_state_dict_loaded, extract_state_dict

__all__ = ['init_captioner', 'caption_images', 'sampling_options']

ImageInput = Union[str, os.PathLike, np.ndarray]


def _device(device: Optional[str]) -> str:
    if device is not None:
        return device
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def init_captioner(config: Union[str, Config],
                   checkpoint: Optional[str] = None,
                   device: Optional[str] = None,
                   cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a captioner from ``config`` and load ``checkpoint`` safely.

    Args:
        config: config file or loaded :class:`Config`; its ``model`` and
            ``test_dataloader.dataset.pipeline`` are used.
        checkpoint: MMEngine checkpoint or bare state dict. ``None`` keeps
            the random initialisation (for smoke tests).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; default: cuda if
            available.
        cfg_options: ``--cfg-options``-style overrides (unknown keys are
            refused; prefix a new key with ``+``).

    Returns:
        The model in eval mode, with ``_config`` set as MMPretrain's
        ``get_model`` does, so ``ImageCaptionInferencer(model)`` and
        ``inference_model(model, image)`` accept it.

    Raises:
        FileNotFoundError: the config or checkpoint does not exist.
        UnsafeCheckpointError: the checkpoint holds non-allow-listed objects.
        WeightsNotLoadedError: weights are missing or have other shapes.
    """
    if isinstance(config, (str, os.PathLike)):
        if not osp.isfile(config):
            raise FileNotFoundError(f'config file not found: {config}')
        config = Config.fromfile(str(config))
    else:
        config = config.copy()
    merge_cfg_options(config, cfg_options)
    init_default_scope(config.get('default_scope', 'mmpretrain'))
    model = MODELS.build(config.model)
    meta: Dict[str, Any] = {}
    if checkpoint is not None:
        ckpt = load_checkpoint_safely(str(checkpoint), map_location='cpu')
        state_dict = extract_state_dict(ckpt, source=str(checkpoint))
        assert_state_dict_loaded(
            model, state_dict, owner=type(model).__name__,
            source=str(checkpoint))
        model.load_state_dict(state_dict, strict=False)
        meta = ckpt.get('meta', {}) or {}
    model._config = config
    model._dataset_meta = dict(meta.get('dataset_meta', {}) or {})
    model.to(_device(device))
    model.eval()
    return model


def _test_pipeline(cfg: Config) -> Compose:
    try:
        steps = cfg.test_dataloader.dataset.pipeline
    except AttributeError as err:
        raise KeyError('the config has no test_dataloader.dataset.pipeline '
                       'to prepare images with') from err
    return Compose([TRANSFORMS.build(step) for step in steps])


def _as_input(image: ImageInput) -> dict:
    if isinstance(image, np.ndarray):
        return dict(img=image)
    path = os.fspath(image)
    if not osp.isfile(path):
        raise FileNotFoundError(f'image file not found: {path}')
    return dict(img_path=path)


def sampling_options(model: nn.Module) -> List[str]:
    """Decode options of a captioner's ``predict`` (its ``decode_keys``,
    e.g. ``['block_length', 'remasking', 'schedule', 'steps',
    'temperature']``); a head gives its own. Empty for models that cannot
    caption bare images."""
    return list(getattr(model, 'decode_keys', ()))


def _check_captioner(model: nn.Module) -> None:
    if not hasattr(model, 'decode_keys'):
        if type(model).__name__ == 'ContrastiveImageText':
            why = 'it only retrieves reference captions'
        else:
            why = 'it has no decode entry (predict with decode_keys)'
        raise TypeError(
            f'{type(model).__name__} cannot caption bare images: {why}')


@torch.no_grad()
def caption_images(model: nn.Module,
                   images: Sequence[ImageInput],
                   num_alternatives: int = 0,
                   steps: Optional[int] = None,
                   temperature: float = 1.0,
                   seed: Optional[int] = 0,
                   batch_size: int = 8) -> List[dict]:
    """Caption images with a model from :func:`init_captioner`.

    Each image goes through the config's test pipeline (image files are
    read by it, so a missing or corrupt file raises naming the file).
    The caption is the model's default decoding (greedy for MDC and Cap,
    sampled for MC-Diffusion, whose configs decode at temperature 1);
    alternatives are further draws, at ``temperature`` where the model
    has one (Prefix-diffusion draws fresh noise instead). Both go through
    ``model.predict``, the decode entry.

    Args:
        model: captioner with ``_config`` (``init_captioner``).
        images: image paths or (H, W, 3) uint8 BGR arrays.
        num_alternatives: stochastic samples per image, besides the caption.
        steps: denoising steps (models with a ``steps`` decode option).
        temperature: sampling temperature of the alternatives (> 0).
        seed: seed of the caption and the alternatives (None: not
            reseeded); the global RNG state is restored afterwards.
        batch_size: images per forward pass.

    Returns:
        One ``dict(image, caption, alternatives)`` per image, in order;
        ``image`` is the path (or the index of an array).
    """
    _check_captioner(model)
    options = sampling_options(model)
    name = type(model).__name__
    overrides: Dict[str, Any] = {}
    if steps is not None:
        if 'steps' not in options:
            raise ValueError(f'{name} has no denoising steps to set (its '
                             f'decoding options: {options})')
        if int(steps) < 1:
            raise ValueError(f'steps must be >= 1, got {steps}')
        overrides['steps'] = int(steps)
    if num_alternatives < 0:
        raise ValueError(
            f'num_alternatives must be >= 0, got {num_alternatives}')
    sampled = dict(overrides)
    if num_alternatives and 'temperature' in options:
        if not temperature > 0:
            raise ValueError('temperature must be > 0 to sample '
                             f'alternatives, got {temperature}')
        sampled['temperature'] = temperature
    elif num_alternatives and 'eta' not in options:
        raise ValueError(f'{name} has no stochastic sampling (no '
                         'temperature option); use num_alternatives=0')
    if batch_size < 1:
        raise ValueError(f'batch_size must be >= 1, got {batch_size}')
    if not hasattr(model, '_config'):
        raise AttributeError('the model has no _config: build it with '
                             'init_captioner (or mmpretrain get_model)')
    pipeline = _test_pipeline(model._config)
    results = []
    for start in range(0, len(images), batch_size):
        chunk = list(images[start:start + batch_size])
        data = pseudo_collate(
            [pipeline(_as_input(image)) for image in chunk])
        inputs = model.data_preprocessor(data, False)['inputs']
        alternatives: List[List[str]] = [[] for _ in chunk]
        # Seeded before the caption too: heads whose default decoding
        # samples (MC-Diffusion, temperature 1) repeat under a seed.
        with torch.random.fork_rng(devices=_rng_devices(model),
                                   enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed + start)
            captions = [s.pred_caption
                        for s in model.predict(inputs, **overrides)]
            if num_alternatives:
                drawn = model.predict(inputs, num_samples=num_alternatives,
                                      **sampled)
                alternatives = [s.pred_captions if num_alternatives > 1
                                else [s.pred_caption] for s in drawn]
        for i, (image, caption) in enumerate(zip(chunk, captions)):
            label = start + i if isinstance(image, np.ndarray) else \
                os.fspath(image)
            results.append(
                dict(image=label, caption=caption,
                     alternatives=list(alternatives[i])))
    return results


def _rng_devices(model: torch.nn.Module) -> List[int]:
    """CUDA devices whose RNG ``fork_rng`` must save (the model's)."""
    device = next(model.parameters()).device
    return [device.index or 0] if device.type == 'cuda' else []
