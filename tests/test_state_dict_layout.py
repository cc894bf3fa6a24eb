"""Existing checkpoints keep loading: every shipped model config builds a
model whose state-dict keys and shapes are those recorded before the
issue-15 consolidation moved the modules (commit 20ab74c).

``tests/data/state_dict_layout_20ab74c.json`` was RECORDED by running this
file's :func:`record` with the package of commit 20ab74c on the import path
(``PYTHONPATH=<checkout of 20ab74c> python tests/test_state_dict_layout.py
--record OUT``); none of it was written by hand. A module move or rename that
changes a parameter name fails here, and then needs a key mapping for the
checkpoints users already have. (Values are pinned separately, in
``test_pinned_outputs.py``.)
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List

import pytest
import torch

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RECORD = osp.join(ROOT, 'tests', 'data', 'state_dict_layout_20ab74c.json')
CLIP_CFG = 'configs/baselines/clip_vit-tiny_shapes.py'
CONFIGS = [
    'configs/mdc/vit-tiny_shapes.py',
    'configs/mdc/resnet18-w32_fashion.py',
    'configs/mdc/vit-tiny_coco_cpu-smoke.py',
    'configs/mdc/vit-b_coco.py',
    'configs/baselines/cap_vit-tiny_shapes.py',
    'configs/baselines/cap_resnet18-w32_fashion.py',
    CLIP_CFG,
    'configs/baselines/clip_resnet18-w32_fashion.py',
    'configs/mc_diffusion/vq-vit-tiny_shapes.py',
    'configs/mc_diffusion/mcs_vit-tiny-vq_shapes.py',
    'configs/mc_diffusion/cfg_vit-tiny-vq_shapes.py',
    'configs/prefix_diffusion/clip-tiny_shapes.py',
]


def _build(rel_path: str, clip_checkpoint: str) -> torch.nn.Module:
    """The config's model (no weights loaded but the prefix config's frozen
    contrastive encoder, which reads ``clip_checkpoint`` when built)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    import mdc_plugin  # noqa: F401
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(ROOT, rel_path))
    if 'prefix_diffusion' in rel_path:
        cfg.merge_from_dict({'model.encoder.checkpoint': clip_checkpoint,
                             'model.scorer.checkpoint': clip_checkpoint})
    return MODELS.build(cfg.model)


def layout(model: torch.nn.Module) -> List[str]:
    """``'key (d0, d1, ...)'`` for every state-dict entry, sorted."""
    return sorted(f'{k} {tuple(v.shape)}'
                  for k, v in model.state_dict().items())


def save_clip_checkpoint(path: str) -> str:
    """A fresh contrastive model's weights, for the prefix config's frozen
    encoder and scorer."""
    torch.save({'state_dict': _build(CLIP_CFG, '').state_dict()}, path)
    return path


def record(out: str, workdir: str) -> Dict[str, List[str]]:
    """Every config's layout, written to ``out``."""
    clip = save_clip_checkpoint(osp.join(workdir, 'clip.pth'))
    result = {c: layout(_build(c, clip)) for c in CONFIGS}
    with open(out, 'w') as f:
        json.dump(result, f, indent=0, sort_keys=True)
    return result


@pytest.fixture(scope='module')
def clip_checkpoint(tmp_path_factory) -> str:
    return save_clip_checkpoint(
        str(tmp_path_factory.mktemp('clip') / 'clip.pth'))


@pytest.mark.parametrize('config', CONFIGS)
def test_state_dict_layout_unchanged(config, clip_checkpoint, one_thread):
    with open(RECORD) as f:
        expected = json.load(f)[config]
    got = layout(_build(config, clip_checkpoint))
    missing = sorted(set(expected) - set(got))
    new = sorted(set(got) - set(expected))
    assert not missing and not new, (
        f'{config}: the state dict changed since 20ab74c; checkpoints '
        f'written then no longer load strictly. Gone or reshaped: '
        f'{missing[:10]}; new: {new[:10]}')


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description='record the layouts')
    parser.add_argument('--record', required=True, help='output JSON')
    parser.add_argument('--workdir', default='/tmp')
    args = parser.parse_args()
    sys.exit(0 if record(args.record, args.workdir) else 1)
