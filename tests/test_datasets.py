"""Caption datasets: the generated shapes set, COCO Karpathy (both formats)
and CUB, built through the config system and iterated through the full
pipelines."""
import hashlib
import json
import os
import os.path as osp
import threading

import numpy as np
import pytest
from mmengine import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmpretrain.registry import DATASETS
from PIL import Image

from conftest import TINY_SHAPES
from fixtures_data import make_coco_karpathy, make_coco_lavis, make_cub
from mdc_plugin.datasets import CorruptEntryError
from mdc_plugin.datasets.shapes import (COLORS, SHAPES,
                                        ensure_shapes_generated)
from mdc_plugin.datasets.shapes import generate as shapes_generate

CFG_DIR = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                   'configs', '_base_', 'datasets')


def build_loader(cfg_name: str, which: str, batch_size: int = 2,
                 **dataset_overrides):
    """Build ``<which>_dataloader`` of a base dataset config, in-process."""
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(osp.join(CFG_DIR, cfg_name))
    dl = cfg[f'{which}_dataloader']
    dl.update(num_workers=0, persistent_workers=False, batch_size=batch_size)
    dl.dataset.update(dataset_overrides)
    return Runner.build_dataloader(dl, seed=0)


def iterate(loader):
    """All batches; checks the packed structure of each."""
    batches = list(loader)
    for batch in batches:
        inputs, samples = batch['inputs'], batch['data_samples']
        assert inputs.ndim == 4 and inputs.shape[1] == 3
        assert len(samples) == inputs.shape[0]
    return batches


def check_caption_ids(loader, batches):
    tok = loader.dataset.pipeline.transforms[-2].tokenizer
    for batch in batches:
        for s in batch['data_samples']:
            assert s.caption_ids.dtype == np.int64
            text = tok.decode(s.caption_ids)
            assert text in [tok.decode(tok.encode(c)) for c in s.gt_caption]


def file_digest(path: str) -> str:
    with open(path, 'rb') as f:
        return hashlib.sha1(f.read()).hexdigest()


# ------------------------------------------------------------------- shapes
def shapes(root, split='train', **kwargs):
    kwargs.setdefault('num_images', TINY_SHAPES)
    return DATASETS.build(dict(type='SyntheticShapesCaption', data_root=root,
                               split=split, **kwargs))


def test_shapes_config_pipeline(tiny_shapes_root):
    loader = build_loader('shapes_caption.py', 'train', batch_size=4,
                          data_root=tiny_shapes_root, num_images=TINY_SHAPES)
    batches = iterate(loader)
    assert len(batches) == TINY_SHAPES['train'] // 4
    assert batches[0]['inputs'].shape == (4, 3, 64, 64)
    check_caption_ids(loader, batches)
    s = batches[0]['data_samples'][0]
    assert s.gt_label.shape == (1, ) and 0 <= int(s.gt_label) < 10
    assert len(s.gt_caption) == 5 and s.image_id.startswith('train_')
    val = build_loader('shapes_caption.py', 'val', batch_size=3,
                       data_root=tiny_shapes_root, num_images=TINY_SHAPES)
    vb = iterate(val)
    assert sum(len(b['data_samples']) for b in vb) == TINY_SHAPES['val']
    assert val.dataset.metainfo['classes'][4] == 'square+square'


def test_shapes_deterministic_by_seed(tmp_path):
    counts = dict(train=6, val=2, test=2)
    a, gen_a = ensure_shapes_generated(str(tmp_path / 'a'), counts, 64, 0)
    b, gen_b = ensure_shapes_generated(str(tmp_path / 'b'), counts, 64, 0)
    c, _ = ensure_shapes_generated(str(tmp_path / 'c'), counts, 64, 1)
    assert gen_a and gen_b
    assert osp.basename(a) == osp.basename(b) != osp.basename(c)
    names = sorted(os.listdir(osp.join(a, 'images')))
    assert names == sorted(os.listdir(osp.join(b, 'images')))
    for name in names:
        assert file_digest(osp.join(a, 'images', name)) == \
            file_digest(osp.join(b, 'images', name))
    for split in ('train', 'val', 'test'):
        assert file_digest(osp.join(a, f'{split}.json')) == \
            file_digest(osp.join(b, f'{split}.json'))
    same = [file_digest(osp.join(a, 'images', n)) ==
            file_digest(osp.join(c, 'images', n)) for n in names]
    assert not any(same)
    with open(osp.join(a, 'train.json')) as fa, \
            open(osp.join(c, 'train.json')) as fc:
        caps_a = [d['gt_caption'] for d in json.load(fa)['data_list']]
        caps_c = [d['gt_caption'] for d in json.load(fc)['data_list']]
    assert caps_a != caps_c


def test_shapes_cache_is_reused(tmp_path):
    root = str(tmp_path)
    counts = dict(train=4, val=2, test=2)
    first = shapes(root, num_images=counts)
    assert first.freshly_generated
    meta = osp.join(first.set_dir, 'meta.json')
    mtime = os.stat(meta).st_mtime_ns
    before = shapes_generate.GENERATION_COUNT
    for split in ('train', 'val', 'test'):
        again = shapes(root, split=split, num_images=counts)
        assert not again.freshly_generated and again.set_dir == first.set_dir
    assert shapes_generate.GENERATION_COUNT == before
    assert os.stat(meta).st_mtime_ns == mtime
    assert [d for d in os.listdir(root)] == [osp.basename(first.set_dir)]


def test_shapes_concurrent_generation(tmp_path):
    root = str(tmp_path)
    counts = dict(train=30, val=5, test=5)
    results, errors = [], []

    def worker():
        try:
            results.append(ensure_shapes_generated(root, counts, 64, 3))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({r[0] for r in results}) == 1
    assert os.listdir(root) == [osp.basename(results[0][0])]  # no tmp left
    assert len(os.listdir(osp.join(results[0][0], 'images'))) == 40


def _expected_first_caption(a, b, axis):
    rel = 'to the left of' if axis == 'horizontal' else 'above'
    return (f'a {a["size"]} {a["color"]} {a["shape"]} {rel} '
            f'a {b["size"]} {b["color"]} {b["shape"]}')


def test_shapes_captions_labels_and_pixels_match_metadata(tiny_shapes_root):
    ds = shapes(tiny_shapes_root, split='train')
    names = list(COLORS)
    palette = np.array([COLORS[n] for n in names], float)
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        a, b = info['objects']
        axis = info['relation']
        dx, dy = b['cx'] - a['cx'], b['cy'] - a['cy']
        if axis == 'horizontal':
            assert dx > 0 and abs(dx) >= 1.5 * abs(dy)
        else:
            assert dy > 0 and abs(dy) >= 1.5 * abs(dx)
        # Default label: the unordered set of the two shapes.
        assert ds.metainfo['classes'][info['gt_label']] in (
            f"{a['shape']}+{b['shape']}", f"{b['shape']}+{a['shape']}")
        caps = info['gt_caption']
        assert len(caps) == 5 and len(set(caps)) == 5
        assert caps[0] == _expected_first_caption(a, b, axis)
        for o in (a, b):
            assert f'{o["color"]} {o["shape"]}' in caps[2]
        pos_a = 'left' if axis == 'horizontal' else 'top'
        pos_b = 'right' if axis == 'horizontal' else 'bottom'
        assert caps[3].endswith(pos_a) or caps[3].endswith(pos_b)
        # the image really shows the named colours at the object centres
        img = np.asarray(Image.open(info['img_path']).convert('RGB'), float)
        for o in (a, b):
            px = img[int(round(o['cy'])), int(round(o['cx']))]
            nearest = names[int(np.argmin(((palette - px)**2).sum(1)))]
            assert nearest == o['color'], (info['image_id'], o, px)


def test_shapes_splits_disjoint(tiny_shapes_root):
    ids, digests = {}, {}
    for split in ('train', 'val', 'test'):
        ds = shapes(tiny_shapes_root, split=split)
        assert len(ds) == TINY_SHAPES[split]
        infos = [ds.get_data_info(i) for i in range(len(ds))]
        ids[split] = {d['image_id'] for d in infos}
        digests[split] = {file_digest(d['img_path']) for d in infos}
    for x, y in (('train', 'val'), ('train', 'test'), ('val', 'test')):
        assert not ids[x] & ids[y]
        assert not digests[x] & digests[y]


def test_shapes_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='split'):
        shapes(str(tmp_path), split='dev')
    with pytest.raises(ValueError, match='unknown splits'):
        shapes(str(tmp_path), num_images=dict(training=3))
    with pytest.raises(TypeError, match='ann_file'):
        shapes(str(tmp_path), ann_file='x.json')


# --------------------------------------------------------------------- COCO
def coco(info, **kwargs):
    cfg = dict(type='COCOKarpathyCaption', data_root=info['data_root'])
    cfg.update(kwargs)
    cfg.setdefault('ann_file', info.get('ann_file'))
    return DATASETS.build(cfg)


def test_coco_karpathy_config_pipeline(tmp_path):
    info = make_coco_karpathy(tmp_path)
    loader = build_loader('coco_karpathy_caption.py', 'val',
                          data_root=info['data_root'],
                          ann_file=info['ann_file'])
    batches = iterate(loader)
    assert batches[0]['inputs'].shape[-2:] == (224, 224)
    check_caption_ids(loader, batches)
    samples = [s for b in batches for s in b['data_samples']]
    expected = {im['cocoid'] for im in info['images'] if im['split'] == 'val'}
    assert {s.image_id for s in samples} == expected
    assert all(len(s.gt_caption) == 5 for s in samples)
    train = build_loader('coco_karpathy_caption.py', 'train', batch_size=1,
                         data_root=info['data_root'],
                         ann_file=info['ann_file'])
    assert len(train.dataset) == 3  # train + restval
    assert iterate(train)[0]['inputs'].shape == (1, 3, 224, 224)


def test_coco_karpathy_splits(tmp_path):
    info = make_coco_karpathy(tmp_path)
    assert len(coco(info, split='train')) == 3
    assert len(coco(info, split='train', train_includes_restval=False)) == 2
    assert len(coco(info, split='restval')) == 1
    assert len(coco(info, split='test')) == 2
    assert len(coco(info, split=None)) == 7
    d = coco(info, split='test').get_data_info(0)
    assert d['img_path'].startswith(osp.join(info['data_root'], 'val2014'))
    assert osp.isfile(d['img_path'])
    assert d['split'] == 'test' and isinstance(d['image_id'], int)


def test_coco_lavis_list_format(tmp_path):
    info = make_coco_lavis(tmp_path)
    train = coco(info, ann_file=info['train_file'])
    assert len(train) == info['num_train']
    d = train.get_data_info(0)
    assert d['image_id'] == 'coco_1' and len(d['gt_caption']) == 5
    assert osp.isfile(d['img_path'])
    val_loader = build_loader('coco_karpathy_caption.py', 'val',
                              data_root=info['data_root'],
                              ann_file=info['val_file'], split=None)
    samples = [s for b in iterate(val_loader) for s in b['data_samples']]
    assert sorted(s.image_id for s in samples) == [1000, 1001]
    with pytest.raises(ValueError, match='list-format'):
        coco(info, ann_file=info['val_file'], split='val')


def _rewrite(path, fn):
    with open(path) as f:
        data = json.load(f)
    fn(data)
    with open(path, 'w') as f:
        json.dump(data, f)


def test_coco_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='no_such.json'):
        DATASETS.build(dict(type='COCOKarpathyCaption',
                            data_root=str(tmp_path), ann_file='no_such.json'))


def test_coco_missing_field_names_entry(tmp_path):
    info = make_coco_karpathy(tmp_path)
    _rewrite(info['ann_path'], lambda d: d['images'][2].pop('filename'))
    with pytest.raises(CorruptEntryError, match=r'images\[2\].*filename'):
        coco(info, split=None)
    lavis = make_coco_lavis(tmp_path / 'lavis')
    _rewrite(osp.join(lavis['data_root'], lavis['val_file']),
             lambda d: d[1].pop('caption'))
    with pytest.raises(CorruptEntryError, match=r'entry \[1\].*caption'):
        coco(lavis, ann_file=lavis['val_file'])


def test_coco_image_without_caption_raise_or_skip(tmp_path, mm_log_messages):
    info = make_coco_karpathy(tmp_path)

    def blank(d):
        d['images'][0]['sentences'] = [dict(raw='  ')]
    _rewrite(info['ann_path'], blank)
    with pytest.raises(CorruptEntryError, match='image_id=1'):
        coco(info, split='train')
    ds = coco(info, split='train', on_corrupt='skip')
    assert len(ds) == 2 and ds.num_skipped == 1
    assert any('skipped 1 corrupt' in m for m in mm_log_messages)


def test_coco_duplicate_image_id(tmp_path):
    info = make_coco_karpathy(tmp_path)

    def dup(d):
        d['images'][1]['cocoid'] = d['images'][0]['cocoid']
    _rewrite(info['ann_path'], dup)
    with pytest.raises(ValueError, match='duplicate image_id 1'):
        coco(info, split=None)
    lavis = make_coco_lavis(tmp_path / 'lavis')
    path = osp.join(lavis['data_root'], lavis['train_file'])
    _rewrite(path, lambda d: d[1].update(image_id='other'))
    with pytest.raises(CorruptEntryError, match='two image ids'):
        coco(lavis, ann_file=lavis['train_file'])


# ---------------------------------------------------------------------- CUB
def cub(info, **kwargs):
    return DATASETS.build(dict(type='CUBCaption', data_root=info['data_root'],
                               **kwargs))


def test_cub_class_split_config_pipeline(tmp_path):
    info = make_cub(tmp_path)
    loader = build_loader('cub_caption.py', 'train', batch_size=3,
                          data_root=info['data_root'])
    batches = iterate(loader)
    check_caption_ids(loader, batches)
    labels = {int(s.gt_label) for b in batches for s in b['data_samples']}
    assert labels == set(info['trainval_classes'])
    test = build_loader('cub_caption.py', 'test', batch_size=2,
                        data_root=info['data_root'])
    samples = [s for b in iterate(test) for s in b['data_samples']]
    assert {int(s.gt_label) for s in samples} == set(info['test_classes'])
    assert all(len(s.gt_caption) == 10 for s in samples)
    for s in samples:
        assert info['image_classes'][s.image_id] == int(s.gt_label)
    assert test.dataset.metainfo['classes'][0] == info['class_dirs'][0]


def test_cub_image_split(tmp_path):
    info = make_cub(tmp_path, with_classes_txt=False)
    train = cub(info, split='train', split_mode='image')
    test = cub(info, split='test', split_mode='image')
    n_train = sum(info['is_train'].values())
    assert len(train) == n_train and len(test) == info['num_images'] - n_train
    ids = [train.get_data_info(i)['image_id'] for i in range(len(train))]
    assert all(info['is_train'][i] for i in ids)
    assert train.metainfo['classes'] == tuple(info['class_dirs'])
    with pytest.raises(ValueError, match='split must be one of'):
        cub(info, split='trainval', split_mode='image')


def test_cub_missing_class_list_names_file(tmp_path):
    info = make_cub(tmp_path)
    os.remove(osp.join(info['data_root'], 'testclasses.txt'))
    with pytest.raises(FileNotFoundError, match='testclasses.txt'):
        cub(info, split='test')


def test_cub_missing_caption_raise_or_skip(tmp_path):
    info = make_cub(tmp_path)
    img_id = 1
    rel = info['image_paths'][img_id]
    os.remove(osp.join(info['data_root'], 'text_c10',
                       rel.replace('.jpg', '.txt')))
    with pytest.raises(CorruptEntryError, match=f'image id {img_id}'):
        cub(info, split='trainval')
    ds = cub(info, split='trainval', on_corrupt='skip')
    assert ds.num_skipped == 1
    assert img_id not in [ds.get_data_info(i)['image_id']
                          for i in range(len(ds))]


def test_cub_missing_label_names_image(tmp_path):
    info = make_cub(tmp_path)
    path = osp.join(info['data_root'], 'image_class_labels.txt')
    lines = open(path).read().splitlines()
    with open(path, 'w') as f:
        f.write('\n'.join(lines[:-1]) + '\n')
    with pytest.raises(CorruptEntryError,
                       match=f'image id {info["num_images"]}'):
        cub(info, split='trainval')
    os.remove(path)
    with pytest.raises(FileNotFoundError, match='image_class_labels.txt'):
        cub(info, split='trainval')


def test_shapes_ordered_pair_label_option(tiny_shapes_root):
    from mdc_plugin.datasets import SyntheticShapesCaption
    ds = SyntheticShapesCaption(tiny_shapes_root, split='val',
                                num_images=TINY_SHAPES, label='shape_pair')
    assert len(ds.metainfo['classes']) == 16
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        a, b = info['objects']
        assert info['gt_label'] == 4 * SHAPES.index(a['shape']) + \
            SHAPES.index(b['shape'])
    with pytest.raises(ValueError, match='label must be one of'):
        SyntheticShapesCaption(tiny_shapes_root, num_images=TINY_SHAPES,
                               label='colour')
