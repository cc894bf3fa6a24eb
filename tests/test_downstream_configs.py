"""configs/downstream/: MMDetection Mask R-CNN and MMSegmentation UperNet
configs around an MDC-pretrained MMPretrain ViT-B/16.

MMDetection and MMSegmentation are not installed here, so what is tested is
everything on this side of them: the configs parse (self-contained, with
their custom imports), their backbone dicts build with MMPretrain's
registry, load a backbone converted by extract_backbone.py through the
plugin's strict ``Pretrained`` init, and return the feature maps their
necks and heads are configured for; the ViTDet-style pyramid neck gives the
strides the RPN anchors and RoI extractors use; the layer-wise lr keys
reach MMEngine's optimizer constructor.
"""
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import init_default_scope
from torch import nn

import mdc_plugin  # noqa: F401  (registers every component)
from mdc_plugin.utils import hardened_checkpoints  # noqa: E402
from mdc_plugin.utils import WeightsNotLoadedError

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))

from extract_backbone import convert  # noqa: E402

DOWNSTREAM = osp.join(ROOT, 'configs', 'downstream')
MASK_RCNN = osp.join(DOWNSTREAM,
                     'mask-rcnn_vit-b16-mdc_simple-pyramid_lsj-100e_coco.py')
UPERNET = osp.join(DOWNSTREAM,
                   'upernet_vit-b16-mdc_mln_8xb2-160k_ade20k-512x512.py')
MDC_COCO = osp.join(ROOT, 'configs', 'mdc', 'vit-b_coco.py')


def _models():
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    return MODELS


@pytest.fixture(scope='module')
def converted_vit_b(tmp_path_factory):
    """(converted path, source backbone) of a fresh ViT-B/16 with the
    architecture of configs/mdc/vit-b_coco.py, saved as a captioner
    checkpoint (``backbone.*`` + decoder keys) and converted."""
    torch.manual_seed(0)
    backbone = _models().build(Config.fromfile(MDC_COCO).model.backbone)
    with hardened_checkpoints():  # as SafeCheckpointLoadingHook does
        backbone.init_weights()
    backbone.eval()
    root = tmp_path_factory.mktemp('vit_b')
    state = {f'backbone.{k}': v for k, v in backbone.state_dict().items()}
    state['head.decoder.norm.weight'] = torch.ones(768)
    src = str(root / 'mdc_vit-b.pth')
    torch.save({'state_dict': state, 'meta': dict(epoch=20)}, src)
    dst = str(root / 'mdc_vit-b16_backbone.pth')
    convert(src, dst)
    return dst, backbone


def test_configs_parse_self_contained():
    for path, scope in ((MASK_RCNN, 'mmdet'), (UPERNET, 'mmseg')):
        cfg = Config.fromfile(path)
        assert cfg.default_scope == scope
        assert '_base_' not in cfg
        assert cfg.custom_imports.imports == ['mmpretrain.models',
                                              'mdc_plugin']
        backbone = cfg.model.backbone
        assert backbone.type == 'mmpretrain.VisionTransformer'
        assert backbone.arch == 'b' and backbone.patch_size == 16
        assert backbone.out_type == 'featmap'
        init = backbone.init_cfg
        assert init.type == 'Pretrained' and init.strict is True
        assert init.get('prefix') is None  # converted keys have none
        for key in ('train_dataloader', 'val_dataloader', 'val_evaluator',
                    'optim_wrapper', 'param_scheduler', 'train_cfg'):
            assert cfg.get(key) is not None, (path, key)


def _loaded_backbone(cfg, checkpoint):
    bcfg = cfg.model.backbone.copy()
    bcfg.init_cfg.checkpoint = checkpoint
    backbone = _models().build(bcfg)
    with hardened_checkpoints():  # as SafeCheckpointLoadingHook does
        backbone.init_weights()
    backbone.eval()
    return backbone


def _assert_same_weights(backbone, source):
    got, want = backbone.state_dict(), source.state_dict()
    for key in ('patch_embed.projection.weight', 'layers.0.attn.qkv.weight',
                'layers.11.ffn.layers.1.weight', 'ln1.weight', 'cls_token'):
        assert torch.equal(got[key], want[key]), key
    # pos_embed: 14x14 (+cls) at 224 px, resized to the detector's grid
    assert got['pos_embed'].shape[1] == backbone.pos_embed.shape[1]
    assert torch.equal(got['pos_embed'][:, 0], want['pos_embed'][:, 0])


def test_mask_rcnn_backbone_and_pyramid(converted_vit_b):
    ckpt, source = converted_vit_b
    cfg = Config.fromfile(MASK_RCNN)
    backbone = _loaded_backbone(cfg, ckpt)
    _assert_same_weights(backbone, source)
    assert backbone.pos_embed.shape[1] == (1024 // 16)**2 + 1

    neck = _models().build(cfg.model.neck)
    x = torch.randn(1, 3, 128, 64)  # padded to /64, as mmdet pads
    with torch.no_grad():
        feats = backbone(x)
        pyramid = neck(feats)
    assert [tuple(f.shape) for f in feats] == [(1, 768, 8, 4)]
    assert len(pyramid) == cfg.model.neck.num_outs
    strides = [128 // p.shape[2] for p in pyramid]
    assert all(p.shape[1] == cfg.model.rpn_head.in_channels
               for p in pyramid)
    assert strides == cfg.model.rpn_head.anchor_generator.strides
    for extractor in ('bbox_roi_extractor', 'mask_roi_extractor'):
        roi = cfg.model.roi_head[extractor]
        assert roi.featmap_strides == strides[:len(roi.featmap_strides)]
        assert roi.out_channels == cfg.model.neck.out_channels
    assert [64 // p.shape[3] for p in pyramid] == strides

    # the heads' LN2d norm resolves through MMCV with the scoped name
    from mmcv.cnn import build_norm_layer
    _, norm = build_norm_layer(cfg.norm_cfg, 256)
    assert type(norm).__name__ == 'LayerNorm2d'


def test_upernet_backbone_feeds_multilevel_neck(converted_vit_b):
    ckpt, source = converted_vit_b
    cfg = Config.fromfile(UPERNET)
    backbone = _loaded_backbone(cfg, ckpt)
    _assert_same_weights(backbone, source)
    x = torch.randn(1, 3, 64, 80)
    with torch.no_grad():
        feats = backbone(x)
    neck = cfg.model.neck
    # MultiLevelNeck takes one map per in_channels entry
    assert len(feats) == len(neck.in_channels) == len(neck.scales)
    assert [f.shape[1] for f in feats] == neck.in_channels
    assert all(f.shape[2:] == (4, 5) for f in feats)  # stride 16
    head = cfg.model.decode_head
    assert head.in_channels == [neck.out_channels] * len(neck.scales)
    assert cfg.model.auxiliary_head.in_channels == neck.out_channels
    # blocks 3, 6, 9 and 12 (the last one after the final norm)
    assert list(backbone.out_indices) == [2, 5, 8, 11]


def test_wrong_backbone_refused(tmp_path):
    """A converted tiny ViT is not silently loaded into the ViT-B."""
    tiny = _models().build(Config.fromfile(
        osp.join(ROOT, 'configs', 'mdc', 'vit-tiny_shapes.py')).model.backbone)
    path = str(tmp_path / 'tiny.pth')
    torch.save({'state_dict': tiny.state_dict()}, path)
    bcfg = Config.fromfile(UPERNET).model.backbone
    bcfg.init_cfg.checkpoint = path
    with pytest.raises(WeightsNotLoadedError, match='mismatched'):
        with hardened_checkpoints():  # as SafeCheckpointLoadingHook does
            _models().build(bcfg).init_weights()


@pytest.mark.parametrize('path,rate', [(MASK_RCNN, 0.7), (UPERNET, 0.65)],
                         ids=['mask-rcnn', 'upernet'])
def test_layer_wise_lr(path, rate):
    """MMEngine's default constructor applies the configs' custom_keys:
    block i at lr * rate ** (12 - i), the stem at rate ** 13."""
    cfg = Config.fromfile(path)
    # a light stand-in for the detector/segmentor: the real backbone under
    # the attribute name the keys refer to, plus a neck
    model = nn.Module()
    backbone_cfg = cfg.model.backbone.copy()
    backbone_cfg.pop('init_cfg')
    backbone_cfg['arch'] = dict(embed_dims=32, num_layers=12, num_heads=2,
                                feedforward_channels=64)
    backbone_cfg['img_size'] = 64
    model.backbone = _models().build(backbone_cfg)
    model.neck = nn.Conv2d(32, 8, 1)
    optim_cfg = cfg.optim_wrapper.copy()
    optim_cfg['type'] = 'OptimWrapper'  # AmpOptimWrapper needs a GPU
    wrapper = build_optim_wrapper(model, optim_cfg)
    lr = cfg.optim_wrapper.optimizer.lr
    names = {id(p): n for n, p in model.named_parameters()}
    seen = {}
    for group in wrapper.optimizer.param_groups:
        (param, ) = group['params']
        name = names[id(param)]
        if name.startswith('backbone.layers.'):
            expected = rate**(12 - int(name.split('.')[2]))
        elif name.startswith(('backbone.patch_embed', 'backbone.pos_embed',
                              'backbone.cls_token')):
            expected = rate**13
        else:
            expected = 1.0
        assert group['lr'] == pytest.approx(lr * expected), name
        seen[name] = group
    assert len({round(g['lr'], 15) for g in seen.values()}) == 14
    assert seen['backbone.pos_embed']['weight_decay'] == 0.0
    assert seen['backbone.layers.11.attn.qkv.weight']['weight_decay'] > 0


FASHION_DET = osp.join(DOWNSTREAM,
                       'mask-rcnn_resnet18-w32-mdc_fpn_fashion-128px.py')
FASHION_SEG = osp.join(DOWNSTREAM, 'upernet_resnet18-w32-mdc_fashion-128px.py')
MDC_FASHION = osp.join(ROOT, 'configs', 'mdc', 'resnet18-w32_fashion.py')


def test_fashion_configs_load_the_mdc_resnet_and_feed_their_heads(tmp_path):
    """The CPU-sized Fashion configs: the MDC Fashion checkpoint converts,
    loads strictly into their ``mmpretrain.ResNet`` and yields the four
    stride-4..32 maps whose channels their FPN / UPerHead expect; the raw
    (unconverted) checkpoint is refused."""
    torch.manual_seed(0)
    captioner = _models().build(Config.fromfile(MDC_FASHION).model)
    with hardened_checkpoints():  # as SafeCheckpointLoadingHook does
        captioner.init_weights()
    src = str(tmp_path / 'mdc_fashion.pth')
    torch.save({'state_dict': captioner.state_dict(), 'meta': {}}, src)
    dst = str(tmp_path / 'backbone.pth')
    convert(src, dst, config=MDC_FASHION)
    want = captioner.backbone.state_dict()
    for path, scope in ((FASHION_DET, 'mmdet'), (FASHION_SEG, 'mmseg')):
        cfg = Config.fromfile(path)
        assert cfg.default_scope == scope and '_base_' not in cfg
        assert cfg.model.backbone.init_cfg.strict is True
        backbone = _loaded_backbone(cfg, dst)
        got = backbone.state_dict()
        for key in ('conv1.weight', 'layer4.1.conv2.weight',
                    'layer1.0.bn1.running_mean'):
            assert torch.equal(got[key], want[key]), (path, key)
        feats = backbone(torch.randn(2, 3, 128, 128))
        channels = (cfg.model.neck.in_channels if scope == 'mmdet' else
                    cfg.model.decode_head.in_channels)
        assert [f.shape[1] for f in feats] == channels
        assert [f.shape[-1] for f in feats] == [32, 16, 8, 4]
        with pytest.raises(WeightsNotLoadedError):
            _loaded_backbone(cfg, src)


@pytest.mark.parametrize('name', sorted(
    f for f in os.listdir(DOWNSTREAM) if f.endswith('.py')))
def test_downstream_configs_choose_the_checkpoint_hardening(name):
    """The MMDetection / MMSegmentation configs keep every guarantee of
    docs/reliability.md through registered components, found from their own
    scope by the 'mmpretrain.' prefix (no patch applied on import)."""
    from mmengine.registry import HOOKS, LOOPS, Registry
    cfg = Config.fromfile(osp.join(DOWNSTREAM, name))
    hooks = cfg.default_hooks
    assert hooks.checkpoint.type == 'mmpretrain.AtomicCheckpointHook'
    assert hooks.safe_checkpoint_loading.type == \
        'mmpretrain.SafeCheckpointLoadingHook'
    assert cfg.train_cfg.type == 'mmpretrain.ExactResumeIterBasedTrainLoop'
    foreign = f'{cfg.default_scope}_like_{name[:-3]}'  # unique per test
    hook_child = Registry('hook', parent=HOOKS, scope=foreign)
    loop_child = Registry('loop', parent=LOOPS, scope=foreign)
    for child, key in ((hook_child, hooks.checkpoint.type),
                       (hook_child, hooks.safe_checkpoint_loading.type),
                       (loop_child, cfg.train_cfg.type)):
        assert child.get(key) is not None, key
