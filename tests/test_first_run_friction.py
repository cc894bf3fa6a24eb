"""Friction a new user met on a fresh clone (issue 23), each fixed where the
user meets it:

1. ``tools/misc/check_dataset.py`` on the Fashion config (scenes composed in
   memory, no image files) checks what can be checked and exits 0;
2. ``LinearProbeHook`` says what it does before training and shows progress
   while it extracts features;
3. ``train_cfg.max_iters=N`` carries the budget to every entry derived from
   the same ``max_iters`` (warm-up, cosine end, val and checkpoint
   intervals), and says so;
4. the Fashion data sets log which IDX files they read and how many items.

Tiny IDX folders are written by ``fixtures_fashion``; nothing here needs the
real Fashion-MNIST files.
"""
import glob
import os
import os.path as osp
from types import SimpleNamespace

import pytest
import torch
from fixtures_data import REPO, load_tool
from fixtures_fashion import make_fashion_root, write_tiny_fashion_config
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS

from mdc_plugin.utils.cfg_variables import copied_variables
from mdc_plugin.utils.cli import UnknownConfigKeyError, merge_cfg_options

MDC_FASHION = osp.join(REPO, 'configs/mdc/resnet18-w32_fashion.py')

init_default_scope('mmpretrain')


@pytest.fixture(scope='module')
def fashion_root(tmp_path_factory) -> str:
    return make_fashion_root(str(tmp_path_factory.mktemp('fashion')))


# ------------------------------------------------- 1. check_dataset.py
def _check(config, capsys, *args):
    tool = load_tool('tools/misc/check_dataset.py')
    rc = tool.main([config, '--num-items', '12', *args])
    return rc, capsys.readouterr().out


def test_check_dataset_checks_scenes_composed_in_memory(tmp_path,
                                                        fashion_root,
                                                        capsys):
    config = write_tiny_fashion_config(str(tmp_path / 'c.py'),
                                       'configs/mdc/resnet18-w32_fashion.py',
                                       fashion_root)
    rc, out = _check(config, capsys)
    assert rc == 0, out
    assert 'cannot load' not in out and 'img_path' not in out
    for name in ('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz',
                 't10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
        assert osp.join(fashion_root, name) in out  # full paths
    # every split and the probe's data sets, with counts
    assert 'train: FashionSceneCaption' in out
    assert 'val: FashionSceneCaption' in out
    assert 'probe train (custom_hooks.0.train_dataset): FashionMNISTItems' \
        in out
    assert ('100000 entries, composed in memory (no image files); 12 '
            'spread over the split loaded through the pipeline: 0 failed; '
            '60 captions tokenized') in out
    assert ('8 entries, composed in memory (no image files); all loaded '
            'through the pipeline: 0 failed; 40 captions tokenized') in out
    assert '40 items (a fixed subset, seed 0)' in out
    assert out.strip().splitlines()[-1].startswith('no problems')


def test_check_dataset_names_a_missing_idx_file(tmp_path, capsys):
    root = make_fashion_root(str(tmp_path / 'root'))
    os.remove(osp.join(root, 't10k-labels-idx1-ubyte.gz'))
    config = write_tiny_fashion_config(str(tmp_path / 'c.py'),
                                       'configs/mdc/resnet18-w32_fashion.py',
                                       root)
    rc, out = _check(config, capsys, '--splits', 'train', 'val')
    assert rc == 1
    assert 'train: FashionSceneCaption' in out
    assert ('cannot load: FileNotFoundError: Fashion-MNIST file '
            't10k-labels-idx1-ubyte[.gz] not found') in out
    assert '1 problem(s)' in out


def test_check_dataset_reports_a_caption_that_does_not_tokenize(
        tmp_path, fashion_root, capsys, monkeypatch):
    from mdc_plugin.datasets import FashionSceneCaption
    compose = FashionSceneCaption.compose

    def bad_caption(self, scene_index):
        out = compose(self, scene_index)
        if scene_index == 0:
            out['gt_caption'][1] = 'zebra zebra'  # no word the vocab knows
        return out

    monkeypatch.setattr(FashionSceneCaption, 'compose', bad_caption)
    config = write_tiny_fashion_config(str(tmp_path / 'c.py'),
                                       'configs/mdc/resnet18-w32_fashion.py',
                                       fashion_root)
    rc, out = _check(config, capsys, '--splits', 'val')
    assert rc == 1
    assert "item 0 (val_000000): caption 'zebra zebra' does not tokenize" \
        in out


# ------------------------------------------------- 2. probe hook progress
def test_probe_hook_says_what_it_does_and_shows_progress(
        fashion_root, mm_log_messages):
    from mdc_plugin.engine.hooks import LinearProbeHook
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(MDC_FASHION).model)
    items = dict(type='FashionMNISTItems', data_root=fashion_root,
                 check_count=False)
    hook = LinearProbeHook(
        train_dataset=dict(items, split='train', num_items=40),
        val_dataset=dict(items, split='test'),
        pipeline=[dict(type='LoadCaptionImage'), dict(type='PackInputs')],
        batch_size=16, baselines=['init', 'pixels'])
    hook.progress_interval = 0  # a progress line after every batch
    runner = SimpleNamespace(iter=0, cfg=Config(dict(load_from=None)),
                             model=model, _load_from=None,
                             logger=MMLogger.get_current_instance())
    hook.before_train(runner)
    text = '\n'.join(mm_log_messages)
    first = next(i for i, m in enumerate(mm_log_messages)
                 if 'LinearProbeHook' in m)
    assert mm_log_messages[first] == (
        'LinearProbeHook: linear probe of the starting weights (random '
        'init) and raw pixels before training: extracting features of 40 '
        'train / 30 val items (batch 16), then fitting an L-BFGS linear '
        'probe (mean pooling) ...')
    for line in ('starting weights: features of the train items: 16/40 '
                 '(40%)',
                 'starting weights: features of the train items: 32/40 '
                 '(80%)',
                 'starting weights: features of the val items: 30/30 done '
                 'in', 'raw pixels: pixels of the val items: 16/30 (53%)'):
        assert 'LinearProbeHook: ' + line in text, text
    assert 'LinearProbeHook: starting weights: ' in text
    assert 'LinearProbeHook: raw pixels: ' in text
    # the numbers are those of the probes run directly
    model.eval()
    assert hook.baseline_results['pixels'] == hook.probe_pixels(model)
    assert hook.baseline_results['init'] == hook.fit_model(model)


# ------------------------------------------- 3. train_cfg.max_iters=N
def _merge(options, config=MDC_FASHION):
    return merge_cfg_options(Config.fromfile(config), options, config)


def test_max_iters_override_carries_the_budget_everywhere(mm_log_messages):
    cfg = _merge({'train_cfg.max_iters': 60})
    assert cfg.train_cfg.max_iters == 60 and cfg.max_iters == 60
    assert cfg.train_cfg.val_interval == 60
    assert cfg.default_hooks.checkpoint.interval == 15  # a quarter
    warmup, cosine = cfg.param_scheduler
    assert (warmup.begin, warmup.end) == (0, 5)  # 100 of 1,200 -> 5 of 60
    assert (cosine.begin, cosine.end) == (5, 60)
    note = next(m for m in mm_log_messages
                if m.startswith('--cfg-options train_cfg.max_iters=60'))
    for part in ('derived other entries from max_iters=1200',
                 'train_cfg.val_interval 1200 -> 60',
                 'default_hooks.checkpoint.interval 300 -> 15',
                 'param_scheduler.0.end 100 -> 5',
                 'param_scheduler.1.begin 100 -> 5',
                 'param_scheduler.1.end 1200 -> 60'):
        assert part in note, note


def test_max_iters_override_keeps_keys_given_on_the_command_line():
    cfg = _merge({'train_cfg.max_iters': 60,
                  'default_hooks.checkpoint.interval': -1})
    assert cfg.default_hooks.checkpoint.interval == -1
    assert cfg.train_cfg.val_interval == 60
    # a schedule given in part is left as given (tools/analysis/
    # reproduce_fashion.sh's longer runs keep their 100 warm-up steps)
    cfg = _merge({'train_cfg.max_iters': 2400,
                  'train_cfg.val_interval': 2400,
                  'param_scheduler.1.end': 2400,
                  'default_hooks.checkpoint.interval': 600})
    warmup, cosine = cfg.param_scheduler
    assert (warmup.end, cosine.begin, cosine.end) == (100, 100, 2400)


def test_max_iters_variable_refusal_names_the_key_that_carries_it():
    with pytest.raises(UnknownConfigKeyError,
                       match=r'max_iters=60 would change nothing.*set '
                       r'train_cfg\.max_iters=60 instead: every entry '
                       r'derived from max_iters follows it \(param_scheduler'
                       r', train_cfg\.val_interval, '
                       r'default_hooks\.checkpoint\.interval\)'):
        _merge({'max_iters': 60})


def test_a_child_that_sets_its_own_budget_is_left_alone(tmp_path,
                                                         fashion_root):
    config = write_tiny_fashion_config(str(tmp_path / 'c.py'),
                                       'configs/mdc/resnet18-w32_fashion.py',
                                       fashion_root, iters=4)
    cfg = _merge({'train_cfg.max_iters': 6}, config)
    assert cfg.train_cfg.max_iters == 6 and cfg.train_cfg.val_interval == 4
    assert cfg.param_scheduler[1].end == 4


def test_epoch_budgets_keep_their_meaning():
    config = osp.join(REPO, 'configs/mdc/vit-tiny_shapes.py')
    before = Config.fromfile(config)
    cfg = _merge({'train_cfg.max_epochs': 3}, config)
    assert cfg.param_scheduler == before.param_scheduler
    assert cfg.train_cfg.val_interval == before.train_cfg.val_interval


BUDGET_CONFIGS = sorted(
    osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p.split(osp.sep)
    and 'max_iters' in copied_variables(p))


@pytest.mark.parametrize('config', BUDGET_CONFIGS)
def test_every_iteration_config_takes_a_short_budget(config):
    path = osp.join(REPO, config)
    old = Config.fromfile(path)
    cfg = _merge({'train_cfg.max_iters': 60}, path)
    assert cfg.train_cfg.max_iters == 60
    for sched in cfg.param_scheduler:
        assert sched.get('end', 60) <= 60 and \
            sched.get('begin', 0) < sched.get('end', 61)
    if old.train_cfg.get('val_interval') == old.max_iters:
        assert cfg.train_cfg.val_interval == 60
    if old.default_hooks.checkpoint.interval == old.max_iters:
        assert cfg.default_hooks.checkpoint.interval == 60


# ---------------------------------------- 4. Fashion data sets name files
def test_fashion_datasets_log_their_files_once(tmp_path, mm_log_messages):
    root = make_fashion_root(str(tmp_path / 'idx'))
    kw = dict(data_root=root, check_count=False)
    DATASETS.build(dict(type='FashionSceneCaption', split='val',
                        num_scenes=7, **kw))
    DATASETS.build(dict(type='FashionSceneCaption', split='val',
                        num_scenes=7, **kw))
    DATASETS.build(dict(type='FashionMNISTItems', split='train',
                        num_items=25, **kw))
    lines = [m for m in mm_log_messages if root in m]
    assert lines == [
        f'FashionSceneCaption (val): 7 scenes composed on the fly from the '
        f'30 Fashion-MNIST test items of {root}/t10k-images-idx3-ubyte.gz '
        f'and {root}/t10k-labels-idx1-ubyte.gz',
        f'FashionMNISTItems (train): 25 items (a fixed subset, seed 0) '
        f'rendered on the fly from the 60 Fashion-MNIST train items of '
        f'{root}/train-images-idx3-ubyte.gz and '
        f'{root}/train-labels-idx1-ubyte.gz']
