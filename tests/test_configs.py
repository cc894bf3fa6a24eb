"""Every config under configs/ with the real components (no mocks).

* each top-level config loads and its model builds; caption models agree
  with their data pipelines on vocabulary and caption length;
* ``configs/mdc/vit-b_coco.py`` trains end to end through tools/train.py on
  a tiny COCO fixture (slow);
* the CUB data config feeds a real batch to the MDC model;
* the ImageClassifier linear-probe config loads a pretraining checkpoint's
  backbone and refuses checkpoints of another architecture.
"""
import functools
import glob
import json
import math
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
from mdc_plugin.models.tokenizers import build_caption_tokenizer
from mdc_plugin.utils.weights import (WeightsNotLoadedError,
                                      assert_state_dict_loaded)


# Models are initialised as a run of these configs initialises them.
pytestmark = pytest.mark.usefixtures('initialised_as_in_a_run')
TESTS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TESTS)
CONFIG_DIR = osp.join(ROOT, 'configs')
sys.path.insert(0, TESTS)

from conftest import TINY_SHAPES  # noqa: E402
from fixtures_data import make_coco_karpathy, make_cub  # noqa: E402

CONFIGS = sorted(
    osp.relpath(p, ROOT)
    for p in glob.glob(osp.join(CONFIG_DIR, '**', '*.py'), recursive=True)
    if '_base_' not in osp.relpath(p, CONFIG_DIR).split(os.sep)
    # MMDetection / MMSegmentation configs: tests/test_downstream_configs.py
    and osp.relpath(p, CONFIG_DIR).split(os.sep)[0] != 'downstream')

MDC_TINY = 'configs/mdc/vit-tiny_shapes.py'
MDC_COCO = 'configs/mdc/vit-b_coco.py'
PROBE_TINY = 'configs/benchmarks/linear-probe_vit-tiny_shapes.py'
PROBE_B16 = 'configs/benchmarks/linear-probe_vit-b16_imagenet-folder.py'
CUB_DATA = 'configs/_base_/datasets/cub_caption.py'

#: the pretraining config whose backbone each linear-probe config loads
PROBED = {PROBE_TINY: MDC_TINY, PROBE_B16: MDC_COCO}


def _cfg(rel_path: str) -> Config:
    return Config.fromfile(osp.join(ROOT, rel_path))


@functools.lru_cache(maxsize=None)
def _built(rel_path: str):
    """(config, model) of a config file, built once per session."""
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    cfg = _cfg(rel_path)
    return cfg, MODELS.build(cfg.model)


def _tokenize_transforms(cfg: Config):
    """(where, cfg) of every TokenizeCaption in the config's dataloaders."""
    found = []
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = (cfg.get(loader) or {}).get('dataset') or {}
        for i, step in enumerate(dataset.get('pipeline') or []):
            if step.get('type') == 'TokenizeCaption':
                found.append((f'{loader}.dataset.pipeline[{i}]', step))
    return found


def _caption_side(model):
    """(tokenizer, max_length, vocab size) of a caption model, else None."""
    head = getattr(model, 'head', None)
    if head is not None and hasattr(head, 'tokenizer'):
        return head.tokenizer, head.max_length, head.vocab_size
    if hasattr(model, 'tokenizer') and hasattr(model, 'max_length'):
        # ContrastiveImageText: the text tower's embedding is the vocabulary
        return (model.tokenizer, model.max_length,
                model.text.token_embed.num_embeddings)
    return None


def test_configs_found():
    assert MDC_TINY in CONFIGS and MDC_COCO in CONFIGS
    assert PROBE_TINY in CONFIGS
    assert not any('_base_' in c for c in CONFIGS)


# ------------------------------------------------------------ load and build
@pytest.mark.parametrize('config', CONFIGS)
def test_config_builds(config):
    weights = _cfg(config).model.get('encoder', {}).get('checkpoint')
    if weights and not osp.isfile(osp.join(ROOT, weights)):
        pytest.skip(f'{config} needs local encoder weights {weights}; '
                    'tests/test_prefix_diffusion*.py build it on fresh ones')
    cfg, model = _built(config)
    assert cfg.get('default_scope') == 'mmpretrain'
    assert 'mdc_plugin' in cfg.custom_imports['imports']
    for key in ('train_dataloader', 'optim_wrapper', 'train_cfg'):
        assert cfg.get(key) is not None, f'{config} has no {key}'
    caption = _caption_side(model)
    if caption is None:
        # VQImageTokenizer: the MC-Diffusion VQ stage (no captions)
        assert type(model).__name__ in ('ImageClassifier',
                                        'VQImageTokenizer'), config
        return
    tokenizer, max_length, vocab = caption
    # the head's vocabulary is the config's tokenizer vocabulary
    config_tok = build_caption_tokenizer(cfg.caption_tokenizer)
    assert type(tokenizer) is type(config_tok), config
    assert vocab == tokenizer.vocab_size == config_tok.vocab_size, config
    assert tokenizer.special_ids == config_tok.special_ids, config
    assert max_length == cfg.max_caption_length, config
    # ... and every TokenizeCaption of the data pipelines agrees with it
    steps = _tokenize_transforms(cfg)
    assert steps, f'{config}: no TokenizeCaption in the data pipelines'
    for where, step in steps:
        pipe_tok = build_caption_tokenizer(step['tokenizer'])
        assert type(pipe_tok) is type(tokenizer), f'{config} {where}'
        assert pipe_tok.vocab_size == vocab, f'{config} {where}'
        assert pipe_tok.special_ids == tokenizer.special_ids, \
            f'{config} {where}'
        assert step['max_length'] == max_length, (
            f'{config} {where}: TokenizeCaption.max_length='
            f'{step["max_length"]} but the model has max_length={max_length}')


@pytest.mark.parametrize('probe', sorted(PROBED))
def test_probe_backbone_matches_pretraining(probe):
    """The frozen backbone of a linear-probe config has the architecture of
    the pretraining config it is meant to load (static, no file I/O)."""
    _, pretrain = _built(PROBED[probe])
    _, clf = _built(probe)
    ckpt = {f'backbone.{k}': v for k, v in pretrain.backbone.state_dict()
            .items()}
    # ln2 is the final norm of out_type='avg_featmap' only (not pretrained)
    report = assert_state_dict_loaded(clf.backbone, ckpt, prefix='backbone.',
                                      strict=True, ignore_keys=[r'^ln2\.'])
    assert report.loaded and not report.unexpected, report


# -------------------------------------------------- COCO config, end to end
def _read_scalars(work_dir):
    paths = glob.glob(osp.join(str(work_dir), '*', 'vis_data',
                               'scalars.json'))
    assert len(paths) == 1, paths
    with open(paths[0]) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.slow
def test_vit_b_coco_trains_end_to_end(tmp_path):
    """tools/train.py configs/mdc/vit-b_coco.py: 2 iterations (4 train
    images incl. restval, batch 2), validation on 2 images with 2 sampling
    steps, one checkpoint."""
    info = make_coco_karpathy(
        tmp_path / 'coco', images_per_split=dict(train=3, restval=1, val=2,
                                                 test=2))
    work_dir = tmp_path / 'work'
    options = [
        'train_cfg.max_epochs=1', 'train_cfg.val_interval=1',
        'model.head.sampler.steps=2', 'default_hooks.logger.interval=1'
    ]
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        options += [
            f'{loader}.dataset.data_root={info["data_root"]}',
            f'{loader}.dataset.ann_file={info["ann_file"]}',
            f'{loader}.batch_size=2', f'{loader}.num_workers=0'
        ]
    cmd = [
        sys.executable,
        osp.join(ROOT, 'tools', 'train.py'),
        osp.join(ROOT, MDC_COCO), '--work-dir',
        str(work_dir), '--no-persistent-workers', '--cfg-options', *options
    ]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get(
        'OMP_NUM_THREADS', '2'))
    start = time.time()
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env,
                          capture_output=True, text=True, timeout=600)
    took = time.time() - start
    try:
        out = proc.stdout + proc.stderr
        assert proc.returncode == 0, out[-6000:]
        train_lines = [line for line in out.splitlines()
                       if 'Epoch(train)' in line]
        assert any('[1][2/2]' in line for line in train_lines), \
            '\n'.join(train_lines)
        assert all(' loss: ' in line for line in train_lines), train_lines
        assert any('Epoch(val)' in line for line in out.splitlines()), \
            out[-3000:]
        # the log file holds the same records
        logs = glob.glob(osp.join(str(work_dir), '*', '*.log'))
        assert len(logs) == 1, logs
        with open(logs[0]) as f:
            assert ' loss: ' in f.read()
        scalars = _read_scalars(work_dir)
        losses = [s['loss'] for s in scalars if 'loss' in s]
        assert len(losses) == 2 and all(map(math.isfinite, losses)), losses
        val = [s for s in scalars if 'loss' not in s]
        assert val and any('cider' in k.lower() for k in val[-1]), val
        ckpt = work_dir / 'epoch_1.pth'
        assert ckpt.is_file() and ckpt.stat().st_size > 0
        with open(work_dir / 'last_checkpoint') as f:
            assert f.read().strip().endswith('epoch_1.pth')
        print(f'vit-b_coco end to end: {took:.1f} s')
    finally:
        # ~2 GB of weights and AdamW state: do not leave it in pytest's
        # kept tmp dirs
        for pth in glob.glob(osp.join(str(work_dir), '*.pth')):
            os.remove(pth)


# ------------------------------------------------ CUB data + the MDC model
@pytest.mark.slow
def test_cub_config_feeds_mdc_model(tmp_path):
    """The CUB data config (CLIP BPE, 40 tokens) with the MDC ViT-B model of
    configs/mdc/vit-b_coco.py whose head takes the CUB config's shared
    ``caption_tokenizer`` / ``max_caption_length``: one real batch through
    the data_preprocessor and ``mode='loss'``."""
    from mmengine.runner import Runner
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    info = make_cub(tmp_path / 'cub')
    data_cfg = _cfg(CUB_DATA)
    loader_cfg = data_cfg.train_dataloader
    loader_cfg.dataset.data_root = info['data_root']
    loader_cfg.update(batch_size=2, num_workers=0, persistent_workers=False)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    batch = next(iter(loader))

    model_cfg = _cfg(MDC_COCO).model
    model_cfg.head.update(tokenizer=data_cfg.caption_tokenizer,
                          max_length=data_cfg.max_caption_length)
    # a shallower decoder keeps this CPU test cheap; the interface is the same
    model_cfg.head.update(num_layers=1)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg)
    model.init_weights()
    model.train()
    data = model.data_preprocessor(batch, training=True)
    assert data['inputs'].shape == (2, 3, 224, 224)
    assert data['inputs'].dtype == torch.float32
    ids = model.head.caption_ids(data['data_samples'], 'cpu')
    assert ids.shape == (2, data_cfg.max_caption_length)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss']) and losses['loss'] > 0
    losses['loss'].backward()
    grad = model.backbone.patch_embed.projection.weight.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert grad.abs().sum() > 0

    # the COCO model as is (max_length=32) does not fit CUB's 40-token
    # captions and says so instead of training on cut captions
    _, coco_model = _built(MDC_COCO)
    with pytest.raises(ValueError, match='max_length'):
        coco_model.head.caption_ids(data['data_samples'], 'cpu')


# ----------------------------------------- linear probe: Pretrained loading
def _probe_classifier(checkpoint: str):
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    cfg = _cfg(PROBE_TINY)
    cfg.model.backbone.init_cfg.checkpoint = checkpoint
    return MODELS.build(cfg.model)


def _tiny_captioner(**backbone_arch):
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    cfg = _cfg(MDC_TINY)
    if backbone_arch:
        cfg.model.backbone.arch.update(backbone_arch)
        cfg.model.head.image_dims = cfg.model.backbone.arch.embed_dims
    model = MODELS.build(cfg.model)
    model.init_weights()
    return model


@pytest.fixture(scope='module')
def tiny_mdc_checkpoint(tmp_path_factory):
    """(path, state_dict) of a freshly built vit-tiny_shapes captioner, saved
    as MMEngine does (``{'state_dict': ...}``)."""
    torch.manual_seed(1)
    model = _tiny_captioner()
    path = str(tmp_path_factory.mktemp('ckpt') / 'mdc_tiny.pth')
    state = model.state_dict()
    torch.save({'state_dict': state, 'meta': dict(epoch=1)}, path)
    return path, state


def test_probe_config_loads_backbone(tiny_mdc_checkpoint):
    path, state = tiny_mdc_checkpoint
    clf = _probe_classifier(path)
    before = clf.backbone.layers[0].attn.qkv.weight.detach().clone()
    clf.init_weights()
    loaded = clf.backbone.state_dict()
    for key in ('layers.0.attn.qkv.weight', 'layers.5.ffn.layers.1.weight',
                'patch_embed.projection.weight', 'pos_embed', 'cls_token',
                'ln1.weight'):
        assert torch.equal(loaded[key], state[f'backbone.{key}']), key
    assert not torch.equal(before, loaded['layers.0.attn.qkv.weight'])
    # every pretrained backbone weight arrived (ln2 is the probe's own norm)
    missing = [k for k in loaded
               if f'backbone.{k}' not in state and not k.startswith('ln2.')]
    assert missing == []
    # the backbone is frozen, the classifier head is not
    assert not any(p.requires_grad for p in clf.backbone.parameters())
    assert all(p.requires_grad for p in clf.head.parameters())


def test_probe_config_loads_trained_checkpoint(tiny_shapes_root, tmp_path):
    """A real (1-iteration) vit-tiny_shapes run writes a checkpoint that the
    probe config loads."""
    from mmengine.runner import Runner
    cfg = _cfg(MDC_TINY)
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[loader].dataset.data_root = tiny_shapes_root
        cfg[loader].dataset.num_images = dict(TINY_SHAPES)
        cfg[loader].update(batch_size=8, num_workers=0,
                           persistent_workers=False)
    cfg.train_cfg = dict(by_epoch=False, max_iters=1, val_interval=1000)
    cfg.param_scheduler = []
    cfg.custom_hooks = []
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=1,
                                        by_epoch=False)
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.log_processor = dict(by_epoch=False)
    cfg.work_dir = str(tmp_path / 'work')
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = tmp_path / 'work' / 'iter_1.pth'
    assert ckpt.is_file()
    trained = runner.model.backbone.state_dict()
    clf = _probe_classifier(str(ckpt))
    clf.init_weights()
    got = clf.backbone.state_dict()
    for key in ('layers.0.attn.qkv.weight', 'pos_embed', 'ln1.bias'):
        assert torch.equal(got[key], trained[key]), key


def test_probe_refuses_checkpoint_without_backbone(tmp_path,
                                                   tiny_mdc_checkpoint):
    _, state = tiny_mdc_checkpoint
    path = str(tmp_path / 'bare_backbone.pth')
    # backbone weights saved without the 'backbone.' prefix
    torch.save({'state_dict': {k[len('backbone.'):]: v
                               for k, v in state.items()
                               if k.startswith('backbone.')}}, path)
    clf = _probe_classifier(path)
    with pytest.raises(WeightsNotLoadedError,
                       match=r'prefix "backbone\." matches no key'):
        clf.init_weights()


def test_probe_refuses_head_only_checkpoint(tmp_path, tiny_mdc_checkpoint):
    _, state = tiny_mdc_checkpoint
    path = str(tmp_path / 'head_only.pth')
    torch.save({'state_dict': {k: v for k, v in state.items()
                               if k.startswith('head.')}}, path)
    clf = _probe_classifier(path)
    with pytest.raises(WeightsNotLoadedError, match='backbone'):
        clf.init_weights()


def test_probe_refuses_other_width(tmp_path):
    model = _tiny_captioner(embed_dims=96, feedforward_channels=384)
    path = str(tmp_path / 'vit_96.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    clf = _probe_classifier(path)
    with pytest.raises(WeightsNotLoadedError) as err:
        clf.init_weights()
    msg = str(err.value)
    assert 'did not load: 0 key(s) loaded' in msg
    assert 'mismatched' in msg and 'layers.0.attn.qkv.weight' in msg
    assert path in msg


def test_probe_refuses_other_depth(tmp_path):
    model = _tiny_captioner(num_layers=4)
    path = str(tmp_path / 'vit_4_layers.pth')
    torch.save({'state_dict': model.state_dict()}, path)
    clf = _probe_classifier(path)
    with pytest.raises(WeightsNotLoadedError):
        clf.init_weights()


SHAPES_CONFIGS = [
    c for c in CONFIGS if 'shapes' in c
    # needs local encoder weights; tests/test_prefix_diffusion_e2e.py
    and not c.startswith('configs/prefix_diffusion/')
]


@pytest.mark.parametrize('config', SHAPES_CONFIGS)
def test_every_trainable_parameter_gets_a_gradient(config, tiny_shapes_root):
    """What DDP needs (it does not look for unused parameters): one loss
    step on a real batch gives every trainable parameter a gradient."""
    from mmengine.dataset import pseudo_collate
    from mmpretrain.registry import DATASETS, MODELS
    init_default_scope('mmpretrain')
    cfg = _cfg(config)
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = tiny_shapes_root
    dataset_cfg.num_images = dict(TINY_SHAPES)
    dataset = DATASETS.build(dataset_cfg)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.train()
    data = model.data_preprocessor(
        pseudo_collate([dataset[i] for i in range(4)]), True)
    loss, _ = model.parse_losses(model(**data, mode='loss'))
    loss.backward()
    trainable = {n: p for n, p in model.named_parameters()
                 if p.requires_grad}
    assert trainable, config
    unused = sorted(n for n, p in trainable.items() if p.grad is None)
    assert not unused, f'{config}: parameters without gradient {unused}'
