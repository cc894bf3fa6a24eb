"""Probe the frozen output of every ViT block, not only the last one.

    python tools/analysis/layerwise_probe.py CONFIG [--checkpoint CKPT]
        [--pooling mean] [--layers 0 2 5] [--seed 0] [--out layers.json]

Shows where in the backbone the probed information lives or is lost: the
features of all requested blocks come out of one forward pass (the ViT's
``out_indices`` set to those blocks; intermediate blocks are the residual
stream before any final norm), then the same probe as
``tools/linear_probe.py`` is fitted on each block separately. Without
``--checkpoint`` the backbone keeps its random initialisation (``--seed``).
"""
import argparse
import json
import time
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.config import DictAction

import mdc_plugin  # noqa: F401
from mdc_plugin.engine.hooks.linear_probe_hook import (
    LinearProbeHook, build_model_for_probe, probe_hook_from_config)
from mdc_plugin.utils.atomic_io import atomic_dump_json


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('--checkpoint',
                        help='pretraining checkpoint; omit for random init')
    parser.add_argument('--pooling', default='mean',
                        choices=['cls', 'mean', 'cls+mean', 'attn'])
    parser.add_argument('--layers', type=int, nargs='+',
                        help='block indices (0-based); default: every block')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the random initialisation')
    parser.add_argument('--probe-seed', type=int, default=0)
    parser.add_argument(
        '--attn-mlp-ratio', type=float, default=0.0,
        help='with --pooling attn: add the MAP head MLP (hidden width = '
        'ratio x token width); 0 = attention + LayerNorm + linear only')
    parser.add_argument('--out', help='write the result as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args(argv)


def select_blocks(backbone: torch.nn.Module,
                  layers: Optional[Sequence[int]]) -> List[int]:
    """Make ``backbone`` return the outputs of ``layers`` (all blocks when
    None); returns the sorted block indices."""
    blocks = getattr(backbone, 'layers', None)
    if not hasattr(backbone, 'out_indices') or blocks is None:
        raise TypeError(
            f'{type(backbone).__name__} has no out_indices / layers; '
            'layer-wise probing needs a ViT-style backbone such as '
            "MMPretrain's VisionTransformer")
    num_blocks = len(blocks)
    layers = list(range(num_blocks)) if layers is None else sorted(
        set(layers))
    bad = [i for i in layers if not 0 <= i < num_blocks]
    if bad:
        raise ValueError(f'--layers {bad} out of range: the backbone has '
                         f'{num_blocks} blocks (0..{num_blocks - 1})')
    backbone.out_indices = layers
    return layers


def probe_layers(model: torch.nn.Module, hook: LinearProbeHook,
                 layers: Sequence[int]) -> List[Dict[str, float]]:
    """Extract every selected block's features once and fit one probe per
    block; returns one result dict per block."""
    model.eval()
    train_feats, train_y = hook.extract_per_output(model, 'train')
    val_feats, val_y = hook.extract_per_output(model, 'val')
    if len(train_feats) != len(layers):
        raise RuntimeError(f'backbone returned {len(train_feats)} outputs for '
                           f'{len(layers)} requested blocks')
    results = []
    for layer, train_x, val_x in zip(layers, train_feats, val_feats):
        result = hook.fit((train_x, train_y), (val_x, val_y),
                          hook.num_classes())
        print(f'block {layer}: probe accuracy {result["accuracy"]:.1f}%',
              flush=True)
        results.append(dict(layer=layer, **result))
    return results


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    cfg, model, source, _ = build_model_for_probe(
        args.config, args.cfg_options, args.seed, args.checkpoint)
    layers = select_blocks(model.backbone, args.layers)
    hook = probe_hook_from_config(cfg, args.pooling, args.probe_seed,
                                  args.attn_mlp_ratio)
    start = time.time()
    per_layer = probe_layers(model, hook, layers)
    result = dict(config=args.config, checkpoint=source,
                  pooling=hook.pooling,
                  seconds=round(time.time() - start, 1), layers=per_layer)
    print(json.dumps(result, indent=2))
    if args.out:
        atomic_dump_json(result, args.out, indent=2)
    return result


if __name__ == '__main__':
    main()
