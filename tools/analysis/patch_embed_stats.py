"""How much of a ViT's patch embedding looks at spatial structure.

    python tools/analysis/patch_embed_stats.py NAME=CKPT [NAME=CKPT ...]
        [--random-config CONFIG] [--out stats.json]

Each filter w (C, P, P) of ``backbone.patch_embed.projection.weight`` is
split into its colour part (the per-channel mean over the P x P positions,
which responds only to a patch's average colour) and its spatial part (the
rest, which responds to edges, corners and texture). Reported per
checkpoint: the share of the filters' energy in the spatial part, the
effective rank of the (D, C*P*P) projection (exp of the entropy of its
normalised squared singular values) and the share of the top-3 singular
values. ``--random-config`` adds the config's random initialisation
(seed 0) as a reference row. Reads weights only (safe loader).
"""
import argparse
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from mdc_plugin.utils.atomic_io import atomic_dump_json
from mdc_plugin.utils.safe_checkpoint import load_checkpoint_safely

KEY = 'backbone.patch_embed.projection.weight'


def patch_embed_stats(weight: Tensor) -> Dict[str, float]:
    """Statistics of a (D, C, P, P) patch-embedding weight (see module
    docstring); percentages in [0, 100]."""
    if weight.dim() != 4:
        raise ValueError(f'expected a (D, C, P, P) conv weight, got shape '
                         f'{tuple(weight.shape)}')
    w = weight.detach().double()
    colour = w.mean((2, 3), keepdim=True)
    spatial = w - colour
    energy = w.pow(2).sum()
    sv2 = torch.linalg.svdvals(w.flatten(1)).pow(2)
    p = sv2 / sv2.sum()
    entropy = -(p * p.clamp_min(1e-30).log()).sum()
    return dict(spatial_energy=float(100 * spatial.pow(2).sum() / energy),
                effective_rank=float(entropy.exp()),
                top3_singular_energy=float(100 * p[:3].sum()),
                norm=float(energy.sqrt()))


def checkpoint_weight(path: str) -> Tensor:
    state = load_checkpoint_safely(path)
    state = state.get('state_dict', state)
    if KEY not in state:
        raise KeyError(f'{path} has no {KEY} (not a ViT pretraining '
                       'checkpoint?)')
    return state[KEY]


def random_weight(config: str) -> Tensor:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mdc_plugin  # noqa: F401
    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model.backbone.patch_embed.projection.weight


def markdown(rows: List[dict]) -> str:
    lines = ['| backbone | spatial share of filter energy (%) | effective '
             'rank | top-3 singular values (%) |', '| --- | --- | --- | --- |']
    for row in rows:
        lines.append(f"| {row['name']} | {row['spatial_energy']:.1f} | "
                     f"{row['effective_rank']:.1f} | "
                     f"{row['top3_singular_energy']:.1f} |")
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> List[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('checkpoints', nargs='*', metavar='NAME=CKPT')
    parser.add_argument('--random-config',
                        help='add this config\'s random init (seed 0)')
    parser.add_argument('--out', help='write the rows as JSON here')
    args = parser.parse_args(argv)
    rows = []
    if args.random_config:
        rows.append(dict(name='random init', source=args.random_config,
                         **patch_embed_stats(random_weight(
                             args.random_config))))
    for item in args.checkpoints:
        if '=' not in item:
            parser.error(f'{item!r}: give NAME=CKPT')
        name, path = item.split('=', 1)
        rows.append(dict(name=name, source=path,
                         **patch_embed_stats(checkpoint_weight(path))))
    if not rows:
        parser.error('nothing to measure: give NAME=CKPT or --random-config')
    print(markdown(rows))
    if args.out:
        atomic_dump_json(rows, args.out, indent=2)
    return rows


if __name__ == '__main__':
    main()
