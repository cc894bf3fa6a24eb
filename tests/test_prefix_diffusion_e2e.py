"""Prefix-diffusion end to end: configs/prefix_diffusion/clip-tiny_shapes.py
through tools/train.py and tools/test.py on the tiny generated shapes set,
with a freshly initialised contrastive checkpoint as the frozen encoder."""
import glob
import json
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch
from fixtures_data import write_tiny_shapes_config
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

import mdc_plugin  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CLIP_CFG = osp.join(REPO, 'configs/baselines/clip_vit-tiny_shapes.py')


def run_tool(tool: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', tool), *args], cwd=REPO,
        capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


@pytest.mark.slow
def test_embedded_config_trains_and_captions(tmp_path, tiny_shapes_root):
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    clip = MODELS.build(Config.fromfile(CLIP_CFG).model)
    ckpt = str(tmp_path / 'clip.pth')
    torch.save({'state_dict': clip.state_dict()}, ckpt)
    cfg = write_tiny_shapes_config(
        tmp_path / 'tiny.py', 'configs/prefix_diffusion/clip-tiny_shapes.py',
        tiny_shapes_root, epochs=2, val_interval=2, extra=f'''
model = dict(encoder=dict(checkpoint={ckpt!r}),
             scorer=dict(checkpoint={ckpt!r}),
             head=dict(sampler=dict(steps=4)))
''')
    work = str(tmp_path / 'work')
    out = run_tool('train.py', cfg, '--work-dir', work)
    assert 'trainable of' in out

    # The frozen encoder is bit-identical to its source checkpoint after
    # 6 optimiser steps, and only trainable parameters were optimised.
    source = torch.load(ckpt)['state_dict']
    trained = torch.load(osp.join(work, 'epoch_2.pth'), weights_only=False)
    state = trained['state_dict']
    encoder = {k[len('encoder.'):]: v for k, v in state.items()
               if k.startswith('encoder.')}
    assert encoder and all(torch.equal(v, source[k])
                           for k, v in encoder.items())
    first = torch.load(osp.join(work, 'epoch_1.pth'),
                       weights_only=False)['state_dict']
    assert not torch.equal(first['head.in_proj.weight'],
                           state['head.in_proj.weight'])
    num_opt = sum(len(g['params'])
                  for g in trained['optimizer']['param_groups'])
    num_trainable = sum(1 for k in state
                        if k.startswith(('mapper.', 'head.'))
                        and 'alpha_bar' not in k)
    assert num_opt == num_trainable

    scalars = glob.glob(osp.join(work, '*', 'vis_data', 'scalars.json'))
    rows = [json.loads(line) for line in open(sorted(scalars)[-1])]
    assert len([r for r in rows if 'loss_mse' in r]) == 6
    val = [r for r in rows if 'caption/CIDEr' in r]
    assert val and 'caption/Self-BLEU-4' in val[0]

    result = tmp_path / 'test.json'
    run_tool('test.py', str(cfg), osp.join(work, 'epoch_2.pth'),
             '--work-dir', work, '--out', str(result))
    metrics = json.loads(result.read_text())['metrics']
    assert 0 <= metrics['caption/BLEU-4'] <= 1
    with open(str(result).replace('.json', '.predictions.pkl'), 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 8
    for pred in preds:
        assert isinstance(pred['pred_caption'], str)
        assert len(pred['pred_captions']) == 5
        assert pred['pred_caption'] == pred['pred_captions'][0]
