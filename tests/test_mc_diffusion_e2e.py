"""MC-Diffusion end to end on a tiny generated shapes set: the VQ stage and
the MCS caption config through tools/train.py (the real runner, frozen
stage-1 weights, guided sampling at validation), then the guidance sweep
tool on the trained checkpoint."""
import json
import os.path as osp
import sys

import pytest
import torch

from test_mdc_e2e import REPO, run_tool, scalars, tiny_config

from mdc_plugin.utils.safe_checkpoint import load_checkpoint_safely


def vq_tiny_config(tmp_path, root: str) -> str:
    text = f'''
_base_ = [{osp.join(REPO, 'configs/mc_diffusion/vq-vit-tiny_shapes.py')!r}]
train_dataloader = dict(
    batch_size=8, num_workers=0, persistent_workers=False,
    dataset=dict(data_root={root!r},
                 num_images=dict(train=24, val=8, test=8)))
train_cfg = dict(max_epochs=1)
default_hooks = dict(logger=dict(interval=1))
'''
    path = tmp_path / 'tiny_vq.py'
    path.write_text(text)
    return str(path)


@pytest.mark.slow
def test_vq_stage_then_mcs_captioner_train_test_and_sweep(
        tmp_path, tiny_shapes_root):
    # stage 1: the VQ tokenizer trains and logs codebook usage
    vq_dir = str(tmp_path / 'vq')
    run_tool('train.py', vq_tiny_config(tmp_path, tiny_shapes_root),
             '--work-dir', vq_dir)
    rows = [r for r in scalars(vq_dir) if 'loss' in r]
    assert len(rows) == 3
    assert all(k in rows[0] for k in ('loss_recon', 'loss_vq_commit',
                                      'vq_perplexity', 'vq_dead_codes'))
    vq_ckpt = osp.join(vq_dir, 'epoch_1.pth')

    # stage 2: the caption model loads the frozen VQ weights, trains with
    # MCS, validates by sampling captions with guidance
    cfg = tiny_config(tmp_path,
                      'configs/mc_diffusion/mcs_vit-tiny-vq_shapes.py',
                      tiny_shapes_root, epochs=1)
    work_dir = str(tmp_path / 'mcs')
    opts = ['--cfg-options', f'model.backbone.init_cfg.checkpoint={vq_ckpt}',
            f'model.neck.init_cfg.checkpoint={vq_ckpt}',
            'model.head.sampler.steps=4', 'model.predict_cfg.scale=2.0']
    out = run_tool('train.py', cfg, '--work-dir', work_dir, *opts)
    assert 'load backbone. from' in out and 'load neck. from' in out
    rows = scalars(work_dir)
    train = [r for r in rows if 'loss' in r]
    # the neck's usage statistics reach the log through the captioner
    assert train and all(k in train[0] for k in ('loss_vb', 'loss_aux',
                                                'vq_perplexity'))
    val = [r for r in rows if 'caption/CIDEr' in r]
    assert val and 0 <= val[0]['caption/BLEU-4'] <= 1
    ckpt = osp.join(work_dir, 'epoch_1.pth')
    # the frozen encoder and codebook did not move during training
    vq_state = load_checkpoint_safely(vq_ckpt)['state_dict']
    cap_state = load_checkpoint_safely(ckpt)['state_dict']
    for key in ('neck.codebook', 'backbone.layers.0.ffn.layers.1.weight'):
        assert torch.equal(vq_state[key], cap_state[key]), key

    # the guidance sweep, scored by a (randomly initialised) contrastive
    # model saved as a checkpoint
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    init_default_scope('mmpretrain')
    clip_cfg = osp.join(REPO, 'configs/baselines/clip_vit-tiny_shapes.py')
    clip = MODELS.build(Config.fromfile(clip_cfg).model)
    clip_ckpt = str(tmp_path / 'clip.pth')
    torch.save(dict(state_dict=clip.state_dict()), clip_ckpt)
    sweep = tmp_path / 'sweep.json'
    plot = tmp_path / 'sweep.png'
    run_tool(osp.join('analysis', 'guidance_sweep.py'),
             '--run', 'mcs', cfg, ckpt, '--scales', '0', '2',
             '--scorer-config', clip_cfg, '--scorer-checkpoint', clip_ckpt,
             '--data-root', tiny_shapes_root, '--num-images', '8',
             '--steps', '3', '--out', str(sweep), '--plot', str(plot),
             '--table', str(tmp_path / 'sweep.md'))
    data = json.loads(sweep.read_text())
    assert [r['scale'] for r in data['runs']['mcs']['rows']] == [0, 2]
    for row in data['runs']['mcs']['rows']:
        assert row['images'] == 8 and 0 <= row['BLEU-4'] <= 1
        assert row['CLIPScore'] >= 0
    assert plot.stat().st_size > 0



def test_sweep_tool_refuses_negative_scale(monkeypatch, capsys):
    sys.path.insert(0, osp.join(REPO, 'tools', 'analysis'))
    import guidance_sweep
    monkeypatch.setattr(sys, 'argv', [
        'guidance_sweep.py', '--run', 'mcs', 'a.py', 'a.pth', '--scales',
        '1', '-1', '--scorer-config', 'c.py', '--scorer-checkpoint', 'c.pth',
        '--out', 'o.json'])
    with pytest.raises(SystemExit):
        guidance_sweep.parse_args()
    assert 'guidance scale -1.0 must be >= 0' in capsys.readouterr().err
