"""FSDP / DeepSpeed / AMP variants of configs/mdc/vit-b_coco.py.

Every variant parses and keeps the model of vit-b_coco.py (built once);
FSDP trains for real on two CPU processes (gloo) through
tools/dist_train.sh and FlexibleRunner. DeepSpeed is not installed here
and AmpOptimWrapper needs a GPU, so those are checked as configs only.
"""
import glob
import os
import os.path as osp
import socket
import subprocess

import pytest
import torch
from fixtures_data import write_tiny_shapes_config
from mmengine.config import Config
from mmengine.registry import FUNCTIONS, init_default_scope
from mmpretrain.registry import MODELS, OPTIM_WRAPPERS

from mdc_plugin.apis import caption_images, init_captioner
from mdc_plugin.engine.fsdp import (ShardedClipOptimWrapper,
                                    clip_sharded_grad_norm_)

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MDC = osp.join(REPO, 'configs', 'mdc')
VARIANTS = ['fsdp', 'deepspeed', 'amp-bf16', 'amp-fp16']


def _cfg(name: str) -> Config:
    return Config.fromfile(osp.join(MDC, f'vit-b_coco_{name}.py'))


def test_variants_parse_and_keep_the_model():
    base = Config.fromfile(osp.join(MDC, 'vit-b_coco.py'))
    found = sorted(osp.basename(p) for p in glob.glob(
        osp.join(MDC, 'vit-b_coco_*.py')))
    assert found == sorted(f'vit-b_coco_{v}.py' for v in VARIANTS)
    cfgs = {v: _cfg(v) for v in VARIANTS}
    for name, cfg in cfgs.items():
        assert cfg.model == base.model, name
        assert cfg.train_dataloader.batch_size == 128
        assert OPTIM_WRAPPERS.get(cfg.optim_wrapper.type) is not None, name

    fsdp = cfgs['fsdp']
    assert fsdp.runner_type == 'FlexibleRunner'
    assert fsdp.strategy.type == 'FSDPStrategy'
    policy = fsdp.strategy.model_wrapper.auto_wrap_policy
    assert FUNCTIONS.get(policy.type) is not None
    assert fsdp.optim_wrapper.type == 'ShardedClipOptimWrapper'
    assert fsdp.optim_wrapper.clip_grad == dict(max_norm=1.0)

    ds = cfgs['deepspeed']
    assert ds.runner_type == 'FlexibleRunner'
    assert ds.strategy.type == 'DeepSpeedStrategy'
    assert ds.optim_wrapper.type == 'DeepSpeedOptimWrapper'
    assert 'clip_grad' not in ds.optim_wrapper  # moved into the strategy
    assert ds.strategy.gradient_clipping == 1.0
    assert ds.strategy.train_micro_batch_size_per_gpu == 128
    assert ds.optim_wrapper.optimizer == base.optim_wrapper.optimizer

    assert cfgs['amp-bf16'].optim_wrapper.dtype == 'bfloat16'
    assert cfgs['amp-fp16'].optim_wrapper.dtype == 'float16'
    assert cfgs['amp-fp16'].optim_wrapper.loss_scale == 'dynamic'

    # the model they share builds, and the wrap policy picks the ViT layers
    init_default_scope('mmpretrain')
    model = MODELS.build(fsdp.model)
    wrap = FUNCTIONS.get(policy.type)
    wrapped = [n for n, m in model.named_modules()
               if wrap(m, False, 0, layer_names=policy.layer_names)]
    assert wrapped == [f'backbone.layers.{i}' for i in range(12)]


def test_deepspeed_strategy_says_it_is_missing():
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        pass
    else:  # pragma: no cover
        pytest.skip('deepspeed is installed')
    from mmengine.registry import STRATEGIES
    strategy = dict(_cfg('deepspeed').strategy)
    with pytest.raises(AssertionError, match='DeepSpeed is not installed'):
        STRATEGIES.build(strategy)


def test_sharded_clip_matches_torch_in_one_process():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(3)]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for p, r in zip(params, ref):
        p.grad = torch.randn_like(p) * 4
        r.grad = p.grad.clone()
    ours = clip_sharded_grad_norm_(params, max_norm=1.0)
    theirs = torch.nn.utils.clip_grad_norm_(ref, max_norm=1.0)
    torch.testing.assert_close(ours, theirs)
    for p, r in zip(params, ref):
        torch.testing.assert_close(p.grad, r.grad)
    with pytest.raises(ValueError, match='norm_type=2'):
        clip_sharded_grad_norm_(params, 1.0, norm_type=1)
    optimizer = torch.optim.SGD(params, lr=0.1)
    with pytest.raises(ValueError, match='by norm only'):
        ShardedClipOptimWrapper(optimizer,
                                clip_grad=dict(type='value', clip_value=1))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_fsdp_trains_on_two_cpu_processes(tmp_path, tiny_shapes_root):
    """FSDP (FULL_SHARD, the config's wrap policy and clipping) on CPU with
    gloo; the saved checkpoint is a full state dict any tool can read."""
    fsdp = _cfg('fsdp')
    strategy = fsdp.strategy.to_dict()
    strategy['model_wrapper'].pop('mixed_precision')  # fp32 on CPU
    config = write_tiny_shapes_config(
        tmp_path / 'tiny_fsdp.py', osp.join(MDC, 'vit-tiny_shapes.py'),
        tiny_shapes_root, epochs=1, batch_size=4, extra=f'''
custom_hooks = []
runner_type = {fsdp.runner_type!r}
strategy = {strategy!r}
optim_wrapper = dict(type={fsdp.optim_wrapper.type!r})
''')
    work = tmp_path / 'work'
    env = dict(os.environ, OMP_NUM_THREADS='1', PORT=str(_free_port()))
    proc = subprocess.run(
        ['bash', osp.join(REPO, 'tools', 'dist_train.sh'), str(config), '2',
         '--work-dir', str(work), '--cfg-options',
         'model.head.sampler.steps=2'],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert 'backbone.layers.0._fsdp_wrapped_module' in out  # really FSDP
    assert 'decoder._fsdp_wrapped_module' not in out
    assert 'Epoch(train) [1][3/3]' in out  # 24 images / (2 ranks x 4)
    assert 'caption/CIDEr' in out
    assert sorted(p for p in os.listdir(work) if p.endswith('.pth')) == \
        ['epoch_1.pth']

    model = init_captioner(str(config), str(work / 'epoch_1.pth'),
                           device='cpu')  # strict: every weight present
    image = sorted(glob.glob(
        osp.join(tiny_shapes_root, '*', 'images', 'test_*.png')))[0]
    assert isinstance(caption_images(model, [image])[0]['caption'], str)
