"""Activation checkpointing as a config switch: the backbone
(``CheckpointVisionTransformer(with_cp=True)``) and the caption decoder
(``head.with_cp=True``) give the same loss and gradients as without it."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mdc_plugin  # noqa: F401  (registers every component)
from mdc_plugin.models.backbones import CheckpointVisionTransformer

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MDC_TINY = osp.join(ROOT, 'configs', 'mdc', 'vit-tiny_shapes.py')


def _models():
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    return MODELS


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters()
            if p.grad is not None}


def _backbone_cfg(with_cp, **kwargs):
    cfg = Config.fromfile(MDC_TINY).model.backbone
    cfg.update(type='CheckpointVisionTransformer', with_cp=with_cp, **kwargs)
    return cfg


def test_backbone_with_cp_same_gradients():
    # drop path on: checkpointing must replay the same random masks
    plain = _models().build(_backbone_cfg(False, drop_path_rate=0.2))
    ckpt = _models().build(_backbone_cfg(True, drop_path_rate=0.2))
    ckpt.load_state_dict(plain.state_dict(), strict=True)
    plain.train()
    ckpt.train()
    x = torch.randn(2, 3, 64, 64)
    grads, outs = [], []
    for model in (plain, ckpt):
        torch.manual_seed(0)
        out = model(x)[-1]
        out.pow(2).mean().backward()
        outs.append(out.detach())
        grads.append(_grads(model))
    assert torch.equal(outs[0], outs[1])
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6,
                              rtol=1e-5), name
    assert all(type(layer).__name__ == '_CheckpointedEncoderLayer'
               for layer in ckpt.layers)


def test_checkpointing_keeps_vit_state_dict_and_outputs():
    vit = _models().build(dict(Config.fromfile(MDC_TINY).model.backbone))
    cp = _models().build(_backbone_cfg(True))
    assert isinstance(cp, CheckpointVisionTransformer)
    assert list(cp.state_dict()) == list(vit.state_dict())
    cp.load_state_dict(vit.state_dict(), strict=True)
    vit.eval()
    cp.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(vit(x)[-1], cp(x)[-1])


def test_full_captioner_with_cp_same_gradients():
    """MDC model of configs/mdc/vit-tiny_shapes.py with both switches on."""
    from mmpretrain.structures import DataSample
    cfg = Config.fromfile(MDC_TINY).model
    torch.manual_seed(0)
    plain = _models().build(cfg)
    cfg.backbone.update(type='CheckpointVisionTransformer', with_cp=True)
    cfg.head.with_cp = True
    ckpt = _models().build(cfg)
    ckpt.load_state_dict(plain.state_dict(), strict=True)
    assert ckpt.head.decoder.with_cp and ckpt.backbone.with_cp
    images = torch.randn(2, 3, 64, 64)
    samples = []
    for caption in ('a red circle left of a blue square',
                    'a small green triangle above a big red circle'):
        sample = DataSample()
        ids, _ = plain.head.tokenizer.encode_padded(caption,
                                                    plain.head.max_length)
        sample.set_field(torch.as_tensor(ids), 'caption_ids')
        samples.append(sample)
    losses, grads = [], []
    for model in (plain, ckpt):
        model.train()
        torch.manual_seed(1)  # same masking ratios and masked positions
        loss = model(images, samples, mode='loss')['loss']
        loss.backward()
        losses.append(loss.detach())
        grads.append(_grads(model))
    assert torch.equal(losses[0], losses[1])
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-6,
                              rtol=1e-5), name



def _saved_bytes(model, x):
    """Bytes autograd keeps for backward during one training forward."""
    total = [0]

    def pack(t):
        total[0] += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(x)
    return total[0]


def test_with_cp_saves_activation_memory():
    plain = _models().build(_backbone_cfg(False))
    ckpt = _models().build(_backbone_cfg(True))
    plain.train()
    ckpt.train()
    x = torch.randn(4, 3, 64, 64)
    full, reduced = _saved_bytes(plain, x), _saved_bytes(ckpt, x)
    # only each block's input is kept (measured: 5.5% of the bytes here)
    assert reduced < full / 4, (reduced, full)


def test_documented_switch_for_vit_b_coco():
    """The --cfg-options written in configs/mdc/vit-b_coco.py's header,
    parsed and merged the way tools/train.py does, switch both on."""
    import importlib.util
    import re
    from mdc_plugin.utils.cli import merge_cfg_options
    config = osp.join(ROOT, 'configs', 'mdc', 'vit-b_coco.py')
    with open(config) as f:
        header = f.read().split('_base_')[0]
    options = re.search(r'--cfg-options (.+?)\n#\s+(.+?)\n', header)
    argv = [config, '--cfg-options', *options.group(1).strip(' \\').split(),
            *options.group(2).split()]
    spec = importlib.util.spec_from_file_location(
        'mdc_train_tool', osp.join(ROOT, 'tools', 'train.py'))
    train_tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(train_tool)
    args = train_tool.parse_args(argv)
    cfg = merge_cfg_options(Config.fromfile(config), args.cfg_options)
    assert cfg.model.head.with_cp is True
    backbone = _models().build(cfg.model.backbone)
    assert isinstance(backbone, CheckpointVisionTransformer)
    assert backbone.with_cp
