"""The embedded Fashion-MNIST subset (mdc_plugin/assets/fashion_mnist_subset):
checksums, IDX headers, equality with the official files, the fallback when
no full set is found (and its log line), and the real Fashion config on it.

The fallback is simulated by pointing the default search path
(``mdc_plugin.datasets.fashion.idx.DEFAULT_ROOTS``) at an empty folder.
"""
import glob
import gzip
import hashlib
import importlib.util
import os
import os.path as osp
import shutil
import struct

import numpy as np
import pytest
from fixtures_fashion import make_fashion_root
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from mdc_plugin.datasets.fashion import idx

init_default_scope('mmpretrain')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SUBSET = idx.EMBEDDED_ROOT
OFFICIAL = idx.SYSTEM_ROOT
CONFIG = osp.join(REPO, 'configs', 'mdc', 'resnet18-w32_fashion.py')
#: The README's main job: the same model, data_root='embedded'.
MAIN_JOB = osp.join(REPO, 'configs', 'mdc', 'resnet18-w32_fashion_embedded.py')
FILES = dict(
    train=('train-images-idx3-ubyte.gz', 'train-labels-idx1-ubyte.gz'),
    test=('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'))
COUNTS = dict(train=10000, test=2000)
has_official = pytest.mark.skipif(
    not all(osp.isfile(osp.join(OFFICIAL, name))
            for pair in FILES.values() for name in pair),
    reason=f'the official Fashion-MNIST files are not in {OFFICIAL}')


def sha256(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def sums(folder: str = SUBSET) -> dict:
    with open(osp.join(folder, 'SHA256SUMS')) as f:
        return {name: digest for digest, name in
                (line.split() for line in f if line.strip())}


@pytest.fixture
def no_full_set(tmp_path, monkeypatch):
    """The default search path holds no official file."""
    empty = tmp_path / 'no-fashion-here'
    empty.mkdir()
    monkeypatch.setattr(idx, 'DEFAULT_ROOTS', (str(empty), ))
    idx.read_split.cache_clear()
    yield str(empty)
    idx.read_split.cache_clear()


# -------------------------------------------------------- the shipped files
def test_shipped_subset_matches_its_checksums_and_carries_the_licence():
    listed = sums()
    assert sorted(listed) == sorted(n for p in FILES.values() for n in p)
    for name, digest in listed.items():
        assert sha256(osp.join(SUBSET, name)) == digest, name
    # the code's own record of the counts agrees with the files
    assert idx.EMBEDDED_COUNTS == COUNTS
    licence = open(osp.join(SUBSET, 'LICENSE'), encoding='utf-8').read()
    assert 'The MIT License' in licence and 'Zalando SE' in licence
    assert 'Permission is hereby granted, free of charge' in licence
    readme = open(osp.join(SUBSET, 'README.md'), encoding='utf-8').read()
    assert 'the first 10,000 of the 60,000 train' in readme
    assert 'the first 2,000 of the 10,000 test' in readme
    total = sum(osp.getsize(osp.join(SUBSET, n)) for n in listed)
    assert total < 8e6  # a few MB


@pytest.mark.parametrize('split', ['train', 'test'])
def test_shipped_headers_have_the_idx_magic_and_the_counts(split):
    n = COUNTS[split]
    for name, magic, dims in ((FILES[split][0], 2051, (n, 28, 28)),
                              (FILES[split][1], 2049, (n, ))):
        path = osp.join(SUBSET, name)
        with open(path, 'rb') as f:
            head = f.read(10)
        # deterministic gzip: no file name in the header, mtime 0
        assert head[:3] == b'\x1f\x8b\x08' and not head[3] & 0x08
        assert struct.unpack('<I', head[4:8])[0] == 0
        with gzip.open(path, 'rb') as f:
            data = f.read()
        header = 4 + 4 * len(dims)
        assert struct.unpack(f'>I{len(dims)}I', data[:header]) == \
            (magic, *dims), name
        assert len(data) - header == int(np.prod(dims))
    labels = idx.read_idx(osp.join(SUBSET, FILES[split][1]), 2049)
    assert np.bincount(labels, minlength=10).min() > n // 20  # all classes


@has_official
@pytest.mark.parametrize('split', ['train', 'test'])
def test_subset_is_the_first_items_of_the_official_files(split):
    n = COUNTS[split]
    for name, magic in zip(FILES[split], (2051, 2049)):
        ours = idx.read_idx(osp.join(SUBSET, name), magic)
        official = idx.read_idx(osp.join(OFFICIAL, name), magic)
        assert len(official) == idx.SPLIT_COUNTS[split]
        assert np.array_equal(ours, official[:n]), name


@has_official
def test_the_script_reproduces_the_shipped_bytes(tmp_path):
    spec = importlib.util.spec_from_file_location(
        'make_fashion_subset',
        osp.join(REPO, 'tools', 'misc', 'make_fashion_subset.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    _, outputs, _ = tool.cut(OFFICIAL, str(tmp_path), COUNTS)
    assert outputs == sums()


# ---------------------------------------------------------- the fallback
def test_datasets_fall_back_to_the_subset_and_say_so(no_full_set,
                                                     mm_log_messages):
    scenes = DATASETS.build(dict(type='FashionSceneCaption', split='val',
                                 num_scenes=6))
    items = DATASETS.build(dict(type='FashionMNISTItems', split='train',
                                num_items=10000))
    probe_val = DATASETS.build(dict(type='FashionMNISTItems', split='test',
                                    num_items=None))
    assert scenes.source_files() == [osp.join(SUBSET, n)
                                     for n in FILES['test']]
    assert items.source_files() == [osp.join(SUBSET, n)
                                    for n in FILES['train']]
    assert len(scenes.items()[1]) == 2000
    assert len(items) == 10000 and len(probe_val) == 2000
    assert all(0 <= i < 2000 for i in scenes.get_data_info(5)['labels']
               ) and scenes.get_data_info(5)['img'].shape == (64, 64)
    lines = [m for m in mm_log_messages if no_full_set in m]
    assert lines == [
        f'FashionSceneCaption (val): 6 scenes composed on the fly from the '
        f'2,000 Fashion-MNIST test items of {SUBSET}/t10k-images-idx3-ubyte'
        f'.gz and {SUBSET}/t10k-labels-idx1-ubyte.gz (embedded subset: the '
        f'first 2,000 of the 10,000 official test items, shipped with '
        f'mdc_plugin; the full set was not found in {no_full_set}: see '
        'docs/data_preparation.md to get it)',
        f'FashionMNISTItems (train): 10,000 items rendered on the fly from '
        f'the 10,000 Fashion-MNIST train items of {SUBSET}/train-images-'
        f'idx3-ubyte.gz and {SUBSET}/train-labels-idx1-ubyte.gz (embedded '
        f'subset: the first 10,000 of the 60,000 official train items, '
        f'shipped with mdc_plugin; the full set was not found in '
        f'{no_full_set}: see docs/data_preparation.md to get it)',
        f'FashionMNISTItems (test): 2,000 items rendered on the fly from the '
        f'2,000 Fashion-MNIST test items of {SUBSET}/t10k-images-idx3-ubyte'
        f'.gz and {SUBSET}/t10k-labels-idx1-ubyte.gz (embedded subset: the '
        f'first 2,000 of the 10,000 official test items, shipped with '
        f'mdc_plugin; the full set was not found in {no_full_set}: see '
        'docs/data_preparation.md to get it)']


def test_asking_for_more_items_than_the_subset_has_says_so(
        no_full_set, mm_log_messages):
    items = DATASETS.build(dict(type='FashionMNISTItems', split='test',
                                num_items=10000))
    assert len(items) == 2000
    assert any('num_items=10,000 asks for more than the 2,000 there are: '
               'all of them are used' in m for m in mm_log_messages)


def test_the_full_set_on_the_search_path_comes_first(tmp_path, monkeypatch,
                                                     mm_log_messages):
    full = make_fashion_root(str(tmp_path / 'full'))
    monkeypatch.setattr(idx, 'DEFAULT_ROOTS', (str(tmp_path / 'none'), full))
    idx.read_split.cache_clear()
    scenes = DATASETS.build(dict(type='FashionSceneCaption', split='val',
                                 num_scenes=3, check_count=False))
    assert scenes.item_source().kind == 'search'
    assert scenes.source_files()[0] == osp.join(full,
                                                't10k-images-idx3-ubyte.gz')
    assert [m for m in mm_log_messages if full in m][0].endswith(
        '(found on the default search path)')
    # the official counts are still required of a full set
    with pytest.raises(idx.IDXFormatError, match='official test split has '
                       '10000'):
        DATASETS.build(dict(type='FashionSceneCaption', split='val'))
    # a partial full set is an error, never a silent mix with the subset
    os.remove(osp.join(full, 't10k-labels-idx1-ubyte.gz'))
    with pytest.raises(FileNotFoundError, match='t10k-labels-idx1-ubyte'):
        DATASETS.build(dict(type='FashionSceneCaption', split='val',
                            check_count=False))
    idx.read_split.cache_clear()


@pytest.mark.parametrize('dataset', ['FashionSceneCaption',
                                     'FashionMNISTItems'])
def test_an_explicit_missing_data_root_is_an_error(tmp_path, dataset):
    missing = str(tmp_path / 'not-there')
    with pytest.raises(FileNotFoundError, match=(
            r'not found in .*not-there \(that folder does not exist\); '
            r'data_root is set explicitly, so neither the default search '
            r'path nor the embedded subset is used.*apt-get install')):
        DATASETS.build(dict(type=dataset, split='test', data_root=missing))


def test_data_root_embedded_reads_the_subset_beside_a_full_set(
        tmp_path, monkeypatch, mm_log_messages):
    """The main job's data_root='embedded' reads the shipped subset even
    where a full set is installed (same numbers on every machine), and
    says so at INFO level: it is asked for, not a fallback."""
    from mdc_plugin.datasets import fashion_scene_caption
    monkeypatch.setattr(fashion_scene_caption, '_LOGGED', set())
    full = make_fashion_root(str(tmp_path / 'full'))
    monkeypatch.setattr(idx, 'DEFAULT_ROOTS', (full, ))
    idx.read_split.cache_clear()
    cfg = Config.fromfile(MAIN_JOB)
    hook = cfg.custom_hooks[0]
    datasets = [cfg.train_dataloader.dataset, cfg.val_dataloader.dataset,
                cfg.test_dataloader.dataset, hook.train_dataset,
                hook.val_dataset]
    for dataset_cfg in datasets:
        assert dataset_cfg.data_root == 'embedded'
        dataset = _dataset(dict(dataset_cfg, pipeline=[]))
        source = dataset.item_source()
        assert source.kind == 'embedded_by_config' and source.embedded
        assert not source.fallback
        assert osp.dirname(source.images) == SUBSET
    lines = [m for m in mm_log_messages if "chosen by data_root='embedded'"
             in m]
    assert any('the first 10,000 of the 60,000 official train items' in m
               for m in lines)
    assert any('the first 2,000 of the 10,000 official test items' in m
               for m in lines)
    idx.read_split.cache_clear()


def test_data_root_embedded_with_the_subset_missing_says_so(
        tmp_path, monkeypatch):
    monkeypatch.setattr(idx, 'EMBEDDED_ROOT', str(tmp_path / 'gone'))
    with pytest.raises(FileNotFoundError, match=(
            r"data_root='embedded' asks for the embedded subset, which is "
            r'missing or incomplete: reinstall mdc_plugin')):
        DATASETS.build(dict(type='FashionMNISTItems', split='test',
                            data_root='embedded'))


def test_a_damaged_subset_is_refused(tmp_path, no_full_set, monkeypatch):
    copy = str(tmp_path / 'subset')
    shutil.copytree(SUBSET, copy)
    monkeypatch.setattr(idx, 'EMBEDDED_ROOT', copy)
    with gzip.open(osp.join(copy, 't10k-labels-idx1-ubyte.gz'), 'wb') as f:
        f.write(struct.pack('>II', 2049, 3) + bytes([0, 1, 2]))
    with pytest.raises(idx.IDXFormatError, match=r't10k-labels.*sha256 .* '
                       r'does not match .* SHA256SUMS'):
        DATASETS.build(dict(type='FashionMNISTItems', split='test'))


# ------------------------------------------- the real config on the subset
def _dataset(cfg: dict):
    return DATASETS.build(cfg)


def test_the_fashion_config_datasets_run_on_the_subset(no_full_set):
    cfg = Config.fromfile(CONFIG)
    train = _dataset(cfg.train_dataloader.dataset)
    val = _dataset(cfg.val_dataloader.dataset)
    assert len(train) == 100000 and len(val) == 500
    assert train.item_source().embedded and val.item_source().embedded
    for dataset, i in ((train, 99999), (val, 3)):
        sample = dataset[i]
        assert tuple(sample['inputs'].shape) == (3, 64, 64)
        ds = sample['data_samples']
        assert ds.caption_ids.shape == (36, ) and len(ds.gt_caption) == 5
    hook = cfg.custom_hooks[0]
    pipeline = Compose(hook.pipeline)
    for key, size in (('train_dataset', 10000), ('val_dataset', 2000)):
        probe = _dataset(hook[key])
        assert probe.item_source().embedded and len(probe) == size
        sample = pipeline(probe.get_data_info(len(probe) - 1))
        assert tuple(sample['inputs'].shape) == (3, 64, 64)
        assert 0 <= int(sample['data_samples'].gt_label) < 10


@pytest.mark.parametrize('config', [CONFIG, MAIN_JOB],
                         ids=['fallback', 'main-job'])
def test_the_fashion_config_trains_on_the_subset(tmp_path, no_full_set,
                                                 config):
    """Two iterations of the real MDC Fashion config (and of the README's
    main job) with the Runner, val on 4 scenes and the probe (with its init
    and pixel rows) on 40 / 30 items, all from the embedded subset."""
    import torch
    from mmengine.runner import Runner
    cfg = Config.fromfile(config)
    loader = dict(num_workers=0, persistent_workers=False, batch_size=4)
    options = {
        'work_dir': str(tmp_path / 'work'),
        'train_cfg.max_iters': 2, 'train_cfg.val_interval': 2,
        'default_hooks.logger.interval': 1,
        'default_hooks.checkpoint.interval': 2,
        'val_dataloader.dataset.num_scenes': 4,
        'custom_hooks.0.train_dataset.num_items': 40,
        'custom_hooks.0.val_dataset.num_items': 30,
    }
    for key, value in loader.items():
        options[f'train_dataloader.{key}'] = value
        options[f'val_dataloader.{key}'] = value
    cfg.merge_from_dict(options)
    cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0,
                                by_epoch=False, begin=0, end=2)]
    cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
    torch.manual_seed(0)
    runner = Runner.from_cfg(cfg)
    runner.train()
    log = open(glob.glob(str(tmp_path / 'work' / '*' / '*.log'))[0]).read()
    assert 'the first 10,000 of the 60,000 official train' in log
    assert 'the first 2,000 of the 10,000 official test' in log
    assert 'Iter(train) [2/2]' in log
    assert 'linear probe (mean pooling, 10 classes): this backbone' in log
