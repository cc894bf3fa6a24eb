"""The attention-pooling probe (``LinearProbeHook(pooling='attn')``)."""
import json
import os.path as osp
import subprocess
import sys

import pytest
import torch
from fixtures_data import load_tool, write_tiny_shapes_config
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS

from mdc_plugin.engine.hooks import LinearProbeHook
from mdc_plugin.engine.hooks.attention_probe import (AttentionPoolProbe,
                                                     attention_probe_accuracy,
                                                     train_attention_probe)
from mdc_plugin.engine.hooks.linear_probe_hook import (pool_tokens,
                                                       probe_accuracy,
                                                       probe_hook_from_config)
from mdc_plugin.utils.weights import (WeightsNotLoadedError,
                                      load_backbone_weights)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SMALL_GRID = dict(lrs=(3e-3, ), weight_decays=(1e-4, 0.1), epochs=(10, 40))


def one_position_task(n: int, seed: int, tokens: int = 9, dims: int = 16,
                      classes: int = 4):
    """Tokens (n, T, C) whose label is carried by token 3 (+m_y) while
    token 6 carries -m_y, so the mean over tokens holds no label
    information; every position has a fixed embedding (as a ViT's tokens
    do), so a query can find token 3."""
    fixed = torch.Generator().manual_seed(123)
    pos = 2 * torch.randn(tokens, dims, generator=fixed)
    means = 2 * torch.randn(classes, dims, generator=fixed)
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n, ), generator=gen)
    x = torch.randn(n, tokens, dims, generator=gen) + pos
    x[:, 3] += means[y]
    x[:, 6] -= means[y]
    return x, y


def test_attention_probe_learns_what_mean_pooling_cannot():
    train, val = one_position_task(400, 0), one_position_task(200, 1)
    mean = probe_accuracy(
        (pool_tokens(train[0], 'mean'), train[1]),
        (pool_tokens(val[0], 'mean'), val[1]), 4)
    attn = attention_probe_accuracy(train, val, 4, **SMALL_GRID)
    assert mean['accuracy'] < 40  # chance is 25
    assert attn['accuracy'] > 90
    assert attn['lr'] == 3e-3 and attn['epochs'] in (10, 40)
    assert attn['weight_decay'] in (1e-4, 0.1)


def test_attention_probe_is_deterministic_under_a_seed():
    x, y = one_position_task(128, 0)

    def weights(seed):
        model, _ = train_attention_probe(x, y, 4, 3e-3, 0.1, 3, seed=seed)
        return torch.cat([p.flatten() for p in model.parameters()])

    assert torch.equal(weights(0), weights(0))
    assert not torch.equal(weights(0), weights(1))
    train, val = (x, y), one_position_task(64, 1)
    assert attention_probe_accuracy(train, val, 4, **SMALL_GRID) == \
        attention_probe_accuracy(train, val, 4, **SMALL_GRID)


def test_attention_probe_bad_input_is_named():
    with pytest.raises(ValueError, match='num_heads=5 does not divide'):
        AttentionPoolProbe(16, 4, num_heads=5)
    x, y = one_position_task(16, 0)
    with pytest.raises(ValueError, match=r'\(N, T, C\) token features'):
        attention_probe_accuracy((x.mean(1), y), (x.mean(1), y), 4)
    with pytest.raises(ValueError, match='pooling=.attn2. not one of'):
        LinearProbeHook(pooling='attn2')


def tiny_shapes_cfg(root: str) -> Config:
    cfg = Config.fromfile(osp.join(REPO, 'configs/mdc/vit-tiny_shapes.py'))
    for split in ('train', 'val'):
        dataset = cfg[f'{split}_dataloader'].dataset
        dataset.data_root = root
        dataset.num_images = dict(train=24, val=8, test=8)
    return cfg


def test_hook_attention_probe_on_a_real_backbone(tiny_shapes_root):
    cfg = tiny_shapes_cfg(tiny_shapes_root)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    hook = LinearProbeHook(
        train_dataset=cfg.train_dataloader.dataset,
        val_dataset=cfg.val_dataloader.dataset,
        pipeline=[dict(type='LoadCaptionImage'), dict(type='PackInputs')],
        pooling='attn')
    tokens, labels = hook.extract(model, 'val')
    assert tokens.shape == (8, 1 + 64, 192) and labels.shape == (8, )
    result = hook.probe(model)
    assert 0 <= result['probe/accuracy'] <= 100
    assert {'probe/lr', 'probe/weight_decay', 'probe/epochs'} <= set(result)
    assert model.training  # restored after the probe


@pytest.mark.slow
def test_linear_probe_tool_attn(tmp_path, tiny_shapes_root):
    cfg = tiny_child_config(tmp_path, tiny_shapes_root)
    out = tmp_path / 'probe_attn.json'
    proc = subprocess.run(
        [sys.executable, 'tools/linear_probe.py', str(cfg), '--pooling',
         'attn', '--out', str(out)], cwd=REPO, capture_output=True,
        text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result['pooling'] == 'attn'
    assert result['checkpoint'] == 'random init (seed 0)'
    assert 0 <= result['probe/accuracy'] <= 100


def tiny_child_config(tmp_path, root: str) -> str:
    return write_tiny_shapes_config(tmp_path / 'tiny.py',
                                    'configs/mdc/vit-tiny_shapes.py', root)


def build_model(cfg_path: str, seed: int):
    init_default_scope('mmpretrain')
    torch.manual_seed(seed)
    model = MODELS.build(Config.fromfile(cfg_path).model)
    model.init_weights()
    return model


def test_load_backbone_weights_is_strict_and_complete(tmp_path,
                                                      tiny_shapes_root):
    cfg = tiny_child_config(tmp_path, tiny_shapes_root)
    trained = build_model(cfg, seed=1)
    ckpt = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': trained.state_dict()}, ckpt)
    model = build_model(cfg, seed=0)
    report = load_backbone_weights(model, ckpt)
    assert report.complete
    for key, value in trained.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    # The head is not touched.
    assert not torch.equal(
        next(model.head.parameters()), next(trained.head.parameters()))
    # A checkpoint without backbone weights names the problem.
    torch.save({'state_dict': trained.head.state_dict()}, ckpt)
    with pytest.raises(WeightsNotLoadedError, match='prefix "backbone."'):
        load_backbone_weights(model, ckpt)


def test_layerwise_probe_last_block_matches_the_probe(tmp_path,
                                                      tiny_shapes_root):
    layerwise = load_tool('tools/analysis/layerwise_probe.py')
    cfg = tiny_child_config(tmp_path, tiny_shapes_root)
    trained = build_model(cfg, seed=1)
    ckpt = str(tmp_path / 'ckpt.pth')
    torch.save({'state_dict': trained.state_dict()}, ckpt)
    out = tmp_path / 'layers.json'
    result = layerwise.main([cfg, '--checkpoint', ckpt, '--out', str(out)])
    assert json.loads(out.read_text()) == result
    assert [r['layer'] for r in result['layers']] == list(range(6))
    # The last block (after the ViT's final norm) is what the ordinary
    # probe sees: same features, same fit, same numbers.
    hook = probe_hook_from_config(Config.fromfile(cfg))
    direct = hook.probe(trained)
    last = result['layers'][-1]
    for key in ('accuracy', 'train_accuracy', 'weight_decay'):
        assert last[key] == direct[f'probe/{key}'], key
    # The blocks' features really are different outputs.
    trained.backbone.out_indices = [0, 5]
    feats, _ = hook.extract_per_output(trained, 'val')
    assert len(feats) == 2 and not torch.allclose(feats[0], feats[1])


def test_layerwise_probe_bad_blocks_are_named(tmp_path, tiny_shapes_root):
    layerwise = load_tool('tools/analysis/layerwise_probe.py')
    model = build_model(tiny_child_config(tmp_path, tiny_shapes_root), 0)
    with pytest.raises(ValueError, match=r'\[6\] out of range.*6 blocks'):
        layerwise.select_blocks(model.backbone, [0, 6])
    with pytest.raises(TypeError, match='no out_indices'):
        layerwise.select_blocks(torch.nn.Linear(2, 2), None)
    assert layerwise.select_blocks(model.backbone, [3, 1, 3]) == [1, 3]
    assert model.backbone.out_indices == [1, 3]


def test_map_mlp_probe_trains_its_mlp_and_learns():
    x, y = one_position_task(400, 0)
    val = one_position_task(200, 1)
    model, _ = train_attention_probe(x, y, 4, 3e-3, 1e-4, 1, seed=0,
                                     mlp_ratio=2)
    assert model.mlp is not None and model.mlp[1].out_features == 32
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model, _ = train_attention_probe(x, y, 4, 3e-3, 1e-4, 20, seed=0,
                                     mlp_ratio=2)
    assert not torch.equal(model.mlp[1].weight, before['mlp.1.weight'])
    result = attention_probe_accuracy((x, y), val, 4, mlp_ratio=2,
                                      **SMALL_GRID)
    assert result['accuracy'] > 90 and result['mlp_ratio'] == 2
    # without the MLP the probe is exactly the plain attention probe
    plain, _ = train_attention_probe(x, y, 4, 3e-3, 1e-4, 1, seed=0)
    assert plain.mlp is None
    with pytest.raises(ValueError, match='mlp_ratio=-1'):
        AttentionPoolProbe(16, 2, mlp_ratio=-1)
    with pytest.raises(ValueError, match="needs pooling='attn'"):
        LinearProbeHook(pooling='mean', attn_mlp_ratio=4)


def test_bare_backbone_export_loads_and_bad_files_get_one_line(
        tmp_path, tiny_shapes_root):
    """extract_backbone.py writes a bare backbone state dict: the probe
    loads it as it loads a whole checkpoint; anything else is refused."""
    cfg = tiny_child_config(tmp_path, tiny_shapes_root)
    trained = build_model(cfg, seed=1)
    bare = str(tmp_path / 'backbone.pth')
    torch.save({'state_dict': trained.backbone.state_dict()}, bare)
    model = build_model(cfg, seed=0)
    assert load_backbone_weights(model, bare).complete
    for key, value in trained.backbone.state_dict().items():
        assert torch.equal(model.backbone.state_dict()[key], value), key
    head_only = str(tmp_path / 'head.pth')
    torch.save({'state_dict': trained.head.state_dict()}, head_only)
    proc = subprocess.run(
        [sys.executable, 'tools/linear_probe.py', str(cfg), '--checkpoint',
         head_only], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'Traceback' not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f'linear_probe.py: {head_only}: prefix "backbone."')


@pytest.mark.slow
def test_linear_probe_tool_output_is_short(tmp_path, tiny_shapes_root):
    """No per-parameter init log and no progress bar when not on a tty."""
    cfg = tiny_child_config(tmp_path, tiny_shapes_root)
    proc = subprocess.run(
        [sys.executable, 'tools/linear_probe.py', str(cfg)], cwd=REPO,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    assert 'The value is the same before and after' not in output
    assert max(len(line) for line in output.splitlines()) < 2000
    assert len(output.splitlines()) < 60, output[:3000]
