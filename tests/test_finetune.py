"""Full fine-tuning with layer-wise lr decay (configs/finetune/).

The tiny shapes config runs through ``tools/train.py`` (the real runner)
from a freshly saved MDC checkpoint: the backbone starts from exactly those
weights, every backbone block trains at its own decayed lr, and a missing,
empty or wrong checkpoint stops the run instead of fine-tuning a random
network.
"""
import os
import os.path as osp
import subprocess
import sys
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mdc_plugin  # noqa: F401  (registers every component)
from mdc_plugin.utils import WeightsNotLoadedError, load_checkpoint_safely


# Models are initialised as a run of these configs initialises them.
pytestmark = pytest.mark.usefixtures('initialised_as_in_a_run')
TESTS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TESTS)
sys.path.insert(0, TESTS)

from conftest import TINY_SHAPES  # noqa: E402

FT_TINY = osp.join(ROOT, 'configs', 'finetune', 'vit-tiny_shapes_ft.py')
FT_B16 = osp.join(ROOT, 'configs', 'finetune',
                  'vit-b16_imagenet-folder_ft.py')
MDC_TINY = osp.join(ROOT, 'configs', 'mdc', 'vit-tiny_shapes.py')


def _models():
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    return MODELS


@pytest.fixture(scope='module')
def mdc_checkpoint(tmp_path_factory):
    """(path, state_dict) of a fresh MDC vit-tiny_shapes captioner saved as
    MMEngine does."""
    torch.manual_seed(3)
    model = _models().build(Config.fromfile(MDC_TINY).model)
    model.init_weights()
    path = str(tmp_path_factory.mktemp('mdc') / 'mdc_tiny.pth')
    state = {k: v.clone() for k, v in model.state_dict().items()}
    torch.save({'state_dict': state, 'meta': dict(epoch=8)}, path)
    return path, state


def _classifier(checkpoint, **init_cfg):
    cfg = Config.fromfile(FT_TINY)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    cfg.model.backbone.init_cfg.update(init_cfg)
    return _models().build(cfg.model)


@pytest.mark.slow
def test_finetune_trains_with_layer_decay(tmp_path, tiny_shapes_root,
                                          mdc_checkpoint):
    """tools/train.py, 1 epoch (3 iterations of 8 images) + validation."""
    ckpt, pretrained = mdc_checkpoint
    work_dir = tmp_path / 'work'
    options = [
        f'model.backbone.init_cfg.checkpoint={ckpt}',
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'default_hooks.logger.interval=1'
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={tiny_shapes_root}',
            f'{loader}.dataset.num_images.train={TINY_SHAPES["train"]}',
            f'{loader}.dataset.num_images.val={TINY_SHAPES["val"]}',
            f'{loader}.dataset.num_images.test={TINY_SHAPES["test"]}',
            f'{loader}.batch_size=8', f'{loader}.num_workers=0'
        ]
    cmd = [
        sys.executable, osp.join(ROOT, 'tools', 'train.py'), FT_TINY,
        '--work-dir', str(work_dir), '--no-persistent-workers',
        '--cfg-options', *options
    ]
    env = dict(os.environ,
               OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '1'))
    start = time.time()
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    print(f'fine-tune, 3 iterations + val: {time.time() - start:.1f} s')
    assert f'load backbone. from {ckpt}' in out
    assert '[1][3/3]' in out and 'accuracy/top1' in out, out[-3000:]

    saved = load_checkpoint_safely(str(work_dir / 'epoch_1.pth'))
    groups = saved['optimizer']['param_groups']
    rate, base_lr, depth = 0.75, 5e-4, 6 + 2
    by_name = {g['param_name']: g for g in groups}
    # every trainable weight has its own group with MMPretrain's depth
    assert set(by_name) == {
        k for k, v in saved['state_dict'].items()
        if k.startswith(('backbone.', 'head.')) and v.is_floating_point()}
    for name, group in by_name.items():
        if name.startswith('backbone.layers.'):
            expected_id = int(name.split('.')[2]) + 1
        elif name.startswith(('backbone.patch_embed', 'backbone.pos_embed',
                              'backbone.cls_token')):
            expected_id = 0
        else:  # final norms and the classifier
            expected_id = depth - 1
        assert group['layer_id'] == expected_id, name
        scale = rate**(depth - expected_id - 1)
        assert group['lr_scale'] == pytest.approx(scale), name
        assert group['initial_lr'] == pytest.approx(base_lr * scale), name
    initial = sorted({round(g['initial_lr'], 12) for g in groups})
    assert len(initial) == depth  # stem, 6 blocks, top: 8 distinct lrs
    assert initial[0] == pytest.approx(base_lr * rate**7)
    assert initial[-1] == pytest.approx(base_lr)
    # no weight decay on norms, biases, pos_embed and cls_token
    for name in ('backbone.pos_embed', 'backbone.cls_token',
                 'backbone.layers.0.ln1.weight', 'backbone.ln1.bias',
                 'backbone.layers.3.attn.qkv.bias'):
        assert by_name[name]['weight_decay'] == 0.0, name
    assert by_name['backbone.layers.3.attn.qkv.weight'][
        'weight_decay'] == pytest.approx(0.05)

    # the backbone started from the MDC weights and was fine-tuned: every
    # weight moved a little, and (AdamW steps ~ lr) the first block by
    # about 0.75 ** 5 of what the last block moved
    tuned = saved['state_dict']
    moved = {}
    for key in ('backbone.layers.0.attn.qkv.weight',
                'backbone.layers.5.attn.qkv.weight',
                'backbone.patch_embed.projection.weight'):
        assert not torch.equal(tuned[key], pretrained[key]), key
        step = (tuned[key] - pretrained[key]).abs()
        assert step.max() < 2e-3, (key, step.max())
        moved[key] = step.mean().item()
    first = moved['backbone.layers.0.attn.qkv.weight']
    last = moved['backbone.layers.5.attn.qkv.weight']
    assert 0.1 < first / last < 0.5, moved

def test_finetune_refuses_missing_checkpoint(tmp_path):
    with pytest.raises(WeightsNotLoadedError, match='no checkpoint given'):
        _classifier('').init_weights()
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _classifier(missing).init_weights()


def test_finetune_refuses_wrong_checkpoint(tmp_path, mdc_checkpoint):
    _, state = mdc_checkpoint
    # the decoder only: no backbone weights at all
    head_only = str(tmp_path / 'head_only.pth')
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if k.startswith('head.')}}, head_only)
    with pytest.raises(WeightsNotLoadedError, match='backbone'):
        _classifier(head_only).init_weights()
    # a backbone with one block fewer: strict loading names the gap
    shallow = str(tmp_path / 'five_blocks.pth')
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if not k.startswith('backbone.layers.5.')}},
               shallow)
    with pytest.raises(WeightsNotLoadedError, match=r'layers\.5\.'):
        _classifier(shallow).init_weights()


def test_finetune_loads_converted_backbone(tmp_path, mdc_checkpoint):
    """A backbone written by extract_backbone.py loads with prefix=None."""
    sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))
    from extract_backbone import convert
    ckpt, state = mdc_checkpoint
    out = str(tmp_path / 'backbone.pth')
    convert(ckpt, out)
    clf = _classifier(out, prefix=None)
    clf.init_weights()
    got = clf.backbone.state_dict()
    assert torch.equal(got['layers.2.attn.proj.weight'],
                       state['backbone.layers.2.attn.proj.weight'])
    # the same file with the default prefix says what to change
    with pytest.raises(WeightsNotLoadedError, match='prefix'):
        _classifier(out).init_weights()


def test_vit_b16_finetune_config_matches_pretraining():
    """The ImageNet-folder fine-tune backbone has the architecture of
    configs/mdc/vit-b_coco.py, so its checkpoints load strictly."""
    from mdc_plugin.utils import assert_state_dict_loaded
    cfg = Config.fromfile(FT_B16)
    pre = Config.fromfile(osp.join(ROOT, 'configs', 'mdc', 'vit-b_coco.py'))
    for key in ('arch', 'img_size', 'patch_size'):
        assert cfg.model.backbone[key] == pre.model.backbone[key], key
    assert cfg.optim_wrapper.constructor == \
        'LearningRateDecayOptimWrapperConstructor'
    assert cfg.optim_wrapper.paramwise_cfg.layer_decay_rate == 0.65
    assert cfg.model.backbone.init_cfg.strict is True
    models = _models()
    clf = models.build(cfg.model)
    source = models.build(pre.model.backbone)
    ckpt = {f'backbone.{k}': v for k, v in source.state_dict().items()}
    report = assert_state_dict_loaded(clf.backbone, ckpt, prefix='backbone.',
                                      strict=True, ignore_keys=[r'^ln2\.'])
    assert report.loaded and not report.unexpected
