"""The Fashion-MNIST bed: IDX reading, scene composition, captions, the
probe task and the configs, on tiny IDX folders the tests write."""
import gzip
import os.path as osp
import re
import struct

import numpy as np
import pytest
from fixtures_fashion import idx_bytes, make_fashion_root
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from mdc_plugin.datasets.fashion import (CLASSES, NAMES, IDXFormatError,
                                         compose_scene, load_fashion_split,
                                         scene_captions, vocabulary)
from mdc_plugin.models.tokenizers import FashionTokenizer

init_default_scope('mmpretrain')


@pytest.fixture(scope='module')
def fashion_root(tmp_path_factory) -> str:
    return make_fashion_root(str(tmp_path_factory.mktemp('fashion')))


def scenes(root, split='train', n=20, **kwargs):
    return DATASETS.build(dict(type='FashionSceneCaption', data_root=root,
                               split=split, num_scenes=n, check_count=False,
                               **kwargs))


# ------------------------------------------------------------- IDX reading
@pytest.mark.parametrize('gz', [True, False])
def test_idx_files_read_back_exactly(tmp_path, gz):
    root = make_fashion_root(str(tmp_path), gz=gz)
    load_fashion_split.cache_clear()
    images, labels = load_fashion_split(root, 'train', check_count=False)
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    assert labels.tolist() == [i % 10 for i in range(60)]
    assert images[3, 6:14, 4:24].min() == 200  # class 3's bar


def corrupt(root, name, data: bytes):
    with gzip.open(osp.join(root, name + '.gz'), 'wb') as f:
        f.write(data)
    load_fashion_split.cache_clear()


def test_bad_files_name_the_file_and_the_fix(tmp_path):
    root = make_fashion_root(str(tmp_path / 'wrong_magic'))
    images = idx_bytes(np.zeros((60, 28, 28), np.uint8))
    corrupt(root, 'train-images-idx3-ubyte',
            struct.pack('>I', 2049) + images[4:])
    with pytest.raises(IDXFormatError, match=r'train-images.*magic number '
                       r'2049 is not the IDX image magic 2051.*apt-get'):
        load_fashion_split(root, 'train', check_count=False)

    root = make_fashion_root(str(tmp_path / 'truncated'))
    corrupt(root, 't10k-labels-idx1-ubyte', idx_bytes(np.zeros(30))[:-5])
    with pytest.raises(IDXFormatError, match=r't10k-labels.*truncated'):
        load_fashion_split(root, 'test', check_count=False)

    root = make_fashion_root(str(tmp_path / 'mismatch'))
    corrupt(root, 'train-labels-idx1-ubyte', idx_bytes(np.zeros(59)))
    with pytest.raises(IDXFormatError,
                       match=r'60 images but .*59 labels'):
        load_fashion_split(root, 'train', check_count=False)

    root = make_fashion_root(str(tmp_path / 'not_gzip'))
    with open(osp.join(root, 't10k-images-idx3-ubyte.gz'), 'wb') as f:
        f.write(b'plain bytes, not gzip')
    load_fashion_split.cache_clear()
    with pytest.raises(IDXFormatError, match=r't10k-images.*damaged'):
        load_fashion_split(root, 'test', check_count=False)

    with pytest.raises(FileNotFoundError, match=r'train-images-idx3-ubyte'
                       r'.*apt-get install dataset-fashion-mnist'):
        load_fashion_split(str(tmp_path / 'empty'), 'train')

    root = make_fashion_root(str(tmp_path / 'small'))
    load_fashion_split.cache_clear()
    with pytest.raises(IDXFormatError, match='official train split has '
                       '60000'):
        load_fashion_split(root, 'train')
    # the dataset fails at build time, naming the file
    with pytest.raises(FileNotFoundError, match='t10k-images'):
        DATASETS.build(dict(type='FashionSceneCaption', split='val',
                            data_root=str(tmp_path / 'empty')))


# ------------------------------------------------------------ scenes
def test_scenes_are_deterministic_and_splits_never_share_items(
        fashion_root):
    a, b = scenes(fashion_root), scenes(fashion_root)
    for i in (0, 7):
        x, y = a.get_data_info(i), b.get_data_info(i)
        assert np.array_equal(x['img'], y['img'])
        assert x['gt_caption'] == y['gt_caption']
    assert not np.array_equal(a.get_data_info(0)['img'],
                              a.get_data_info(1)['img']) or \
        a.get_data_info(0)['gt_caption'] != a.get_data_info(1)['gt_caption']
    other_seed = scenes(fashion_root, seed=1)
    assert any(other_seed.get_data_info(i)['gt_caption'] !=
               a.get_data_info(i)['gt_caption'] for i in range(5))
    # train items have bars of 200, test items of 120 (fixtures_fashion)
    for split, bright, absent in (('train', 200, 120), ('val', 120, 200),
                                  ('test', 120, 200)):
        ds = scenes(fashion_root, split)
        pixels = np.concatenate([ds.get_data_info(i)['img'].ravel()
                                 for i in range(len(ds))])
        assert (pixels == bright).any() and not (pixels == absent).any()
    sample = scenes(fashion_root, 'val', n=3, pipeline=[
        dict(type='LoadCaptionImage'), dict(type='PackInputs')])[0]
    assert tuple(sample['inputs'].shape) == (3, 64, 64)
    assert sample['inputs'][0].equal(sample['inputs'][2])  # no colour


def names_of(label):
    return [form for pair in NAMES[label] for form in pair]


def test_every_caption_names_every_item_with_counts():
    rng = np.random.default_rng(0)
    pool = np.arange(10).repeat(3)
    seen_counts = 0
    for _ in range(500):
        placements = compose_scene(rng, pool)
        labels = [p.label for p in placements]
        for caption in scene_captions(rng, placements, 5):
            for label in set(labels):
                k = labels.count(label)
                found = [n for n in names_of(label)
                         if re.search(rf'(^|[ ,:]){re.escape(n)}($|[ ,])',
                                      caption)]
                assert found, (caption, CLASSES[label])
                # inventory and count captions count repeated classes
                if k > 1 and caption.startswith((
                        'a picture', 'a photo', 'there', 'one ', 'two ',
                        'three ', 'four ')):
                    assert ('two', 'three', 'four')[k - 2] in caption, \
                        caption
                    seen_counts += 1
            assert 'red' not in caption and 'blue' not in caption
    assert seen_counts > 20


def test_captions_round_trip_through_the_tokenizer_and_fit():
    tok = FashionTokenizer()
    rng = np.random.default_rng(1)
    longest = 0
    for _ in range(1000):
        for caption in scene_captions(rng, compose_scene(rng, np.arange(10)),
                                      5):
            ids = tok.encode(caption)
            assert 1 not in ids, caption  # no [UNK]
            assert tok.decode([tok.bos_id, *ids, tok.eos_id]) == caption
            longest = max(longest, len(ids))
    # the configs' max_caption_length (36) holds bos + eos + every caption
    assert longest + 2 <= 36
    assert 't-shirt' in tok.words and tok.vocab_size == 74
    # the tokenizer owns the word list; the grammar must produce exactly it
    assert tok.words[5:] == vocabulary()


def test_probe_items_are_the_official_task_at_scene_scale(fashion_root):
    items = DATASETS.build(dict(
        type='FashionMNISTItems', data_root=fashion_root, split='test',
        check_count=False,
        pipeline=[dict(type='LoadCaptionImage'), dict(type='PackInputs')]))
    assert len(items) == 30 and items.metainfo['classes'] == CLASSES
    sample = items[4]
    assert int(sample['data_samples'].gt_label) == 4
    img = sample['inputs'][0].numpy()
    assert img.shape == (64, 64) and img[18:46, 18:46].max() == 120
    assert img[:18].max() == 0 and img[46:].max() == 0  # centred
    subset = DATASETS.build(dict(type='FashionMNISTItems',
                                 data_root=fashion_root, split='train',
                                 num_items=25, check_count=False))
    assert len(subset) == 25


# ------------------------------------------------- the real configs, tiny
def run_train(config, work_dir, *options):
    import subprocess
    import sys
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    cmd = [sys.executable, osp.join(repo, 'tools', 'train.py'), config,
           '--work-dir', str(work_dir)]
    if options:
        cmd += ['--cfg-options', *options]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def losses(log: str):
    return [float(m) for m in re.findall(r'Iter\(train\).*? loss: ([\d.]+)',
                                         log)]


@pytest.mark.slow
@pytest.mark.parametrize('base', [
    'configs/mdc/resnet18-w32_fashion.py',
    'configs/baselines/cap_resnet18-w32_fashion.py',
    'configs/baselines/clip_resnet18-w32_fashion.py',
    'configs/benchmarks/supervised_resnet18-w32_fashion.py',
])
def test_fashion_configs_train_and_report_the_verdict(tmp_path, fashion_root,
                                                      base):
    from fixtures_fashion import write_tiny_fashion_config
    extra = ''
    if 'supervised' in base:  # items, not scenes
        extra = ('train_dataloader = dict(dataset=dict(num_items=None))\n'
                 'val_dataloader = dict(dataset=dict(num_items=None))\n')
        cfg_text = open(write_tiny_fashion_config(
            str(tmp_path / 'c.py'), base, fashion_root, extra=extra)).read()
        cfg_text = cfg_text.replace(
            "val_dataloader = dict(loader, dataset=dict(data_root=root, "
            "num_scenes=8,", "val_dataloader = dict(loader, dataset=dict("
            "data_root=root,")
        config = str(tmp_path / 'c.py')
        open(config, 'w').write(cfg_text)
    else:
        config = write_tiny_fashion_config(str(tmp_path / 'c.py'), base,
                                           fashion_root)
    log = run_train(config, tmp_path / 'work')
    verdict = re.search(r'linear probe \(mean pooling, 10 classes\): this '
                        r'backbone ([\d.]+)% \| starting weights ([\d.]+)% \|'
                        r' raw pixels ([\d.]+)% -> training (improved|did '
                        r'not improve) the features', log)
    assert verdict, log[-3000:]
    assert len(losses(log)) == 4


@pytest.mark.slow
def test_reference_probes_leave_training_unchanged(tmp_path, fashion_root):
    """The init/pixel probes run before the first iteration without
    drawing from the global random state: losses are identical to a run
    without them."""
    from fixtures_fashion import write_tiny_fashion_config
    config = write_tiny_fashion_config(
        str(tmp_path / 'c.py'), 'configs/mdc/resnet18-w32_fashion.py',
        fashion_root)
    with_refs = run_train(config, tmp_path / 'a')
    without = run_train(config, tmp_path / 'b', 'custom_hooks.0.baselines=[]')
    assert 'starting weights' in with_refs
    assert 'starting weights' not in without
    assert losses(with_refs) == losses(without) and losses(without)


def test_example_figure_redoes_one_model_and_keeps_the_others(tmp_path,
                                                               fashion_root):
    """fashion_examples.py: the shipped MDC config (surest-first in blocks)
    captions the same scenes the same way twice (seeded), ``--previous``
    keeps the captions of models not given again, and captions of other
    scenes are refused."""
    import json
    import subprocess
    import sys

    import torch
    from fixtures_fashion import write_tiny_fashion_config
    from mmengine.config import Config
    from mmpretrain.registry import MODELS
    repo = osp.dirname(osp.dirname(osp.abspath(__file__)))
    config = write_tiny_fashion_config(
        str(tmp_path / 'c.py'), 'configs/mdc/resnet18-w32_fashion.py',
        fashion_root)
    sampler = Config.fromfile(config).model.head.sampler
    assert (sampler.remasking, sampler.block_length) == ('low_confidence', 5)
    torch.manual_seed(0)
    ckpt = str(tmp_path / 'mdc.pth')
    torch.save({'state_dict': MODELS.build(
        Config.fromfile(config).model).state_dict(), 'meta': {}}, ckpt)

    def figure(out, *args):
        proc = subprocess.run(
            [sys.executable, 'tools/analysis/fashion_examples.py', '--num',
             '3', '--out', str(tmp_path / 'fig.png'), '--json', str(out),
             *args], cwd=repo, capture_output=True, text=True, timeout=600)
        return proc

    first, second = tmp_path / 'a.json', tmp_path / 'b.json'
    assert figure(first, '--model', 'A', config, ckpt).returncode == 0
    old = json.loads(first.read_text())
    old['captions']['Kept'] = ['x', 'y', 'z']  # a model not given again
    first.write_text(json.dumps(old))
    proc = figure(second, '--model', 'A', config, ckpt, '--previous',
                  str(first))
    assert proc.returncode == 0, proc.stderr[-3000:]
    new = json.loads(second.read_text())
    assert list(new['captions']) == ['A', 'Kept']
    assert new['captions'] == old['captions']  # seeded: A is the same
    old['references'][0] = ['another scene']
    first.write_text(json.dumps(old))
    proc = figure(second, '--model', 'A', config, ckpt, '--previous',
                  str(first))
    assert proc.returncode != 0 and 'other scenes' in proc.stderr
