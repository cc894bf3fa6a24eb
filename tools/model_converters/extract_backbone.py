"""Extract the image backbone of an MDC / Cap / CLIP checkpoint.

The pretraining checkpoints of this plugin (``configs/mdc/*.py``,
``configs/baselines/*.py``) hold the whole model: ``backbone.*`` (the
MMPretrain ``VisionTransformer``) plus the caption decoder or text tower.
This tool writes only the backbone, in the layout MMPretrain, MMDetection
and MMSegmentation load with ``init_cfg=dict(type='Pretrained',
checkpoint=OUT)`` (no ``prefix``)::

    {'state_dict': {'patch_embed.projection.weight': ..., 'layers.0...'},
     'meta': {'source': ..., 'source_sha256': ..., 'config': ...,
              'arch': {...}, 'backbone_cfg': {...}, ...}}

The source is read with the plugin's weights-only loader
(``mdc_plugin.utils.load_checkpoint_safely``): a checkpoint carrying any
pickled object besides tensors and MMEngine's bookkeeping is refused
before anything in it runs. The output is written atomically.

Examples::

    python tools/model_converters/extract_backbone.py \\
        work_dirs/results/mdc/epoch_8.pth work_dirs/mdc_vit-tiny.pth \\
        --config configs/mdc/vit-tiny_shapes.py
    python tools/model_converters/extract_backbone.py \\
        work_dirs/vit-b_coco/epoch_20.pth work_dirs/mdc_vit-b16.pth \\
        --config configs/mdc/vit-b_coco.py
"""
import argparse
import os.path as osp
import re
import sys
from collections import OrderedDict
from typing import Dict, List, Optional

import mdc_plugin  # noqa: F401  (safe loading, registries)

import torch

from mdc_plugin.utils import (
    UnsafeCheckpointError, WeightsNotLoadedError, assert_state_dict_loaded,
    atomic_save_checkpoint, extract_state_dict, load_checkpoint_safely)
from mdc_plugin.utils.file_digest import sha256_file
from mdc_plugin.utils.quiet_warnings import silence_known_warnings
from mdc_plugin.utils.safe_checkpoint import (
    CHECKPOINT_ERRORS, CheckpointLayoutError)

silence_known_warnings()

#: Source-checkpoint meta entries copied into the output (plain values).
_KEPT_META = ('epoch', 'iter', 'seed', 'experiment_name', 'time',
              'mmengine_version', 'dataset_meta')


class ConversionError(ValueError):
    """The source checkpoint cannot be turned into a backbone checkpoint."""


def read_checkpoint(path: str) -> dict:
    """Load ``path`` through the plugin's safe loader, with clear errors.

    Raises:
        FileNotFoundError: no such file.
        UnsafeCheckpointError: the file pickles non-allow-listed objects.
        ConversionError: the file is not a torch checkpoint holding a dict.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'source checkpoint "{path}" does not exist')
    try:
        return load_checkpoint_safely(path, map_location='cpu')
    except CheckpointLayoutError as err:  # unpickled, but not a checkpoint
        raise ConversionError(str(err)) from None
    except UnsafeCheckpointError:
        raise
    except TypeError as err:
        raise ConversionError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - name the file and the cause
        raise ConversionError(
            f'could not read "{path}" as a torch checkpoint: '
            f'{type(err).__name__}: {err}') from None


def backbone_state_dict(checkpoint: dict, prefix: str = 'backbone.',
                        source: str = 'checkpoint'
                        ) -> 'OrderedDict[str, torch.Tensor]':
    """Backbone tensors of a full-model checkpoint, ``prefix`` removed.

    Accepts ``{'state_dict': ...}`` (MMEngine) or a bare state dict; a
    ``module.`` wrapper prefix is ignored (see :func:`extract_state_dict`).
    """
    state_dict = checkpoint.get('state_dict', checkpoint)
    if not isinstance(state_dict, dict) or not state_dict:
        raise ConversionError(f'{source} holds no state dict')
    try:
        selected = extract_state_dict(state_dict, prefix, source)
    except WeightsNotLoadedError as err:
        raise ConversionError(
            f'no "{prefix}*" weights: {err}; is it a model checkpoint of '
            'this plugin (ImageCaptioner / ContrastiveImageText)? Use '
            '--prefix for another layout') from None
    out = OrderedDict()
    for key, value in selected.items():
        if not isinstance(value, torch.Tensor):
            raise ConversionError(
                f'{source}: "{prefix}{key}" is a {type(value).__name__}, '
                'not a tensor')
        out[key] = value.detach().clone()
    return out


def infer_arch(state_dict: Dict[str, torch.Tensor]) -> dict:
    """ViT shape read off the weights (no config needed)."""
    arch = {}
    proj = state_dict.get('patch_embed.projection.weight')
    if proj is not None and proj.dim() == 4:
        arch.update(embed_dims=int(proj.shape[0]),
                    in_channels=int(proj.shape[1]),
                    patch_size=int(proj.shape[-1]))
    layer_ids = {int(m.group(1)) for k in state_dict
                 for m in [re.match(r'layers\.(\d+)\.', k)] if m}
    if layer_ids:
        arch['num_layers'] = max(layer_ids) + 1
    fc = state_dict.get('layers.0.ffn.layers.0.0.weight')
    if fc is not None:
        arch['feedforward_channels'] = int(fc.shape[0])
    pos = state_dict.get('pos_embed')
    if pos is not None:
        arch['num_tokens'] = int(pos.shape[1])
    return arch


def _plain(value):
    """Config values as plain Python (dict/list/tuple/str/number)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def config_backbone(config: str) -> dict:
    """``model.backbone`` of a plugin config, as a plain dict."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    backbone = (cfg.get('model') or {}).get('backbone')
    if backbone is None:
        raise ConversionError(f'config "{config}" has no model.backbone')
    return _plain(backbone.to_dict() if hasattr(backbone, 'to_dict')
                  else dict(backbone))


def check_against_config(state_dict: Dict[str, torch.Tensor],
                         backbone_cfg: dict, config: str) -> None:
    """Build the config's backbone; every key must match (strict)."""
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    backbone = MODELS.build(dict(backbone_cfg, init_cfg=None))
    try:
        report = assert_state_dict_loaded(
            backbone, state_dict, strict=True, owner='extract_backbone',
            source=f'backbone of the checkpoint vs "{config}"')
    except WeightsNotLoadedError as err:
        raise ConversionError(f'the checkpoint backbone does not match '
                              f'{config}: {err}') from None
    if report.unexpected:
        raise ConversionError(
            f'the checkpoint backbone has weights that the backbone of '
            f'{config} does not: {report.unexpected[:8]}')


def convert(src: str, dst: str, config: Optional[str] = None,
            prefix: str = 'backbone.') -> dict:
    """Write the backbone of ``src`` to ``dst``; return the written dict."""
    checkpoint = read_checkpoint(src)
    state_dict = backbone_state_dict(checkpoint, prefix, f'"{src}"')
    meta = dict(
        source=osp.abspath(src),
        source_sha256=sha256_file(src),
        source_prefix=prefix,
        converter='mdc_plugin tools/model_converters/extract_backbone.py',
        mdc_plugin_version=getattr(mdc_plugin, '__version__', 'unknown'),
        arch=infer_arch(state_dict),
        config=osp.abspath(config) if config else None,
        backbone_cfg=None)
    src_meta = checkpoint.get('meta')
    if isinstance(src_meta, dict):
        meta['source_meta'] = {
            k: _plain(src_meta[k]) for k in _KEPT_META if k in src_meta}
    if config:
        backbone_cfg = config_backbone(config)
        check_against_config(state_dict, backbone_cfg, config)
        backbone_cfg.pop('init_cfg', None)
        meta['backbone_cfg'] = backbone_cfg
    out = dict(state_dict=state_dict, meta=meta)
    atomic_save_checkpoint(out, dst)
    return out


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Extract the image backbone of an MDC / Cap / CLIP '
        'checkpoint into an MMPretrain backbone checkpoint (keys without '
        'prefix, for init_cfg=dict(type="Pretrained", checkpoint=DST) in '
        'MMPretrain, MMDetection and MMSegmentation configs).',
        epilog='The source is loaded weights-only with an allow-list: a '
        'checkpoint pickling anything else is refused before it runs.')
    parser.add_argument('src', help='pretraining checkpoint (.pth) written '
                        'by tools/train.py with a configs/mdc or '
                        'configs/baselines config')
    parser.add_argument('dst', help='output backbone checkpoint (.pth)')
    parser.add_argument(
        '--config',
        help='the config the checkpoint was trained with (recommended): '
        'its model.backbone is built and must match the weights key for '
        'key and shape for shape, and is stored in meta["backbone_cfg"]')
    parser.add_argument(
        '--prefix', default='backbone.',
        help='key prefix of the backbone in the source (default: '
        '"backbone.")')
    parser.add_argument(
        '--force', action='store_true', help='overwrite an existing dst')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    if osp.abspath(args.src) == osp.abspath(args.dst):
        print('error: dst must differ from src', file=sys.stderr)
        return 2
    if osp.exists(args.dst) and not args.force:
        print(f'error: "{args.dst}" exists (use --force to overwrite)',
              file=sys.stderr)
        return 2
    prefix = args.prefix if args.prefix.endswith('.') else args.prefix + '.'
    try:
        out = convert(args.src, args.dst, args.config, prefix)
    except CHECKPOINT_ERRORS + (ConversionError, ) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    n_params = sum(v.numel() for v in out['state_dict'].values())
    print(f'wrote {args.dst}: {len(out["state_dict"])} tensors, '
          f'{n_params / 1e6:.2f} M values, arch {out["meta"]["arch"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
