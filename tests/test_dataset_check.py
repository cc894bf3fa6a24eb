"""Up-front data set check: every missing/unreadable image and every entry
without captions, with counts, for COCO-Karpathy and CUB layouts (written by
the tests in the public layouts)."""
import json
import os
import os.path as osp

import pytest
from fixtures_data import REPO, load_tool, make_coco_karpathy, make_cub

from mdc_plugin.datasets import COCOKarpathyCaption, CUBCaption


def _truncate(path: str) -> None:
    with open(path, 'r+b') as f:
        f.truncate(os.path.getsize(path) // 3)


def _broken_coco(root):
    info = make_coco_karpathy(root, dict(train=4, restval=0, val=3, test=2))
    ann = json.load(open(info['ann_path']))
    train = [im for im in ann['images'] if im['split'] == 'train']
    paths = [osp.join(info['data_root'], im['filepath'], im['filename'])
             for im in train]
    os.remove(paths[0])
    _truncate(paths[1])
    train[2]['sentences'] = [dict(raw='   ', tokens=[])]
    json.dump(ann, open(info['ann_path'], 'w'))
    return info, paths


def _broken_cub(root, empty_caption: bool = True):
    info = make_cub(root)
    # trainval classes (class split): 0, 1, 2
    paths = {i: osp.join(info['data_root'], 'images', p)
             for i, p in info['image_paths'].items()}
    os.remove(paths[1])
    _truncate(paths[2])
    cdir, name = info['image_paths'][4][:-4].split('/')
    if empty_caption:
        open(osp.join(info['data_root'], 'text_c10', cdir, name + '.txt'),
             'w').close()
    return info, paths


def test_coco_check_images_option_reports_counts(tmp_path):
    info, paths = _broken_coco(tmp_path)
    kw = dict(data_root=info['data_root'], ann_file=info['ann_file'],
              split='train', train_includes_restval=False)
    ds = COCOKarpathyCaption(check_images=True, on_corrupt='skip', **kw)
    assert len(ds) == 1 and ds.num_skipped == 3
    assert any(paths[0] in m for m in ds.skipped_entries)
    assert any(paths[1] in m and 'unreadable' in m
               for m in ds.skipped_entries)
    assert any('no caption' in m for m in ds.skipped_entries)
    COCOKarpathyCaption(on_corrupt='skip', **kw)  # default: no image check


def test_cub_check_images_option_raises_with_counts(tmp_path):
    info, paths = _broken_cub(tmp_path, empty_caption=False)
    with pytest.raises(FileNotFoundError, match=r'(?s)1 of 9 images '
                       r'missing, 1 unreadable.*Bird_0_0000\.jpg.*'
                       r'check_dataset\.py'):
        CUBCaption(data_root=info['data_root'], split='trainval',
                   check_images=True)
    assert len(CUBCaption(data_root=info['data_root'], split='trainval',
                          check_images=True, on_corrupt='skip')) == 7


def _run_tool(config, root, capsys):
    tool = load_tool('tools/misc/check_dataset.py')
    rc = tool.main([config, '--workers', '2',
                    '--cfg-options', f'data_root={root}'])
    return rc, capsys.readouterr().out


def test_check_dataset_tool_lists_every_problem_coco(tmp_path, capsys):
    info, paths = _broken_coco(tmp_path)
    config = osp.join(REPO, 'configs/_base_/datasets/coco_karpathy_caption.py')
    rc, out = _run_tool(config, info['data_root'], capsys)
    assert rc == 1
    assert f'missing image: {paths[0]}' in out
    assert f'Truncated File Read: {paths[1]}' in out or \
        f': {paths[1]}' in out
    assert 'has no caption' in out
    # train (restval included): 4 entries, 1 missing, 1 unreadable, 1 no cap
    assert ('3 entries with captions, 1 images missing, 1 unreadable, '
            '1 entries without captions') in out
    assert '3 problem(s)' in out


def test_check_dataset_tool_lists_every_problem_cub(tmp_path, capsys):
    info, paths = _broken_cub(tmp_path)
    config = osp.join(REPO, 'configs/_base_/datasets/cub_caption.py')
    rc, out = _run_tool(config, info['data_root'], capsys)
    assert rc == 1
    assert f'missing image: {paths[1]}' in out
    assert paths[2] in out and 'unreadable' in out
    assert 'caption file is empty' in out
    assert '8 entries with captions, 1 images missing, 1 unreadable, '\
        '1 entries without captions' in out


def test_check_dataset_tool_clean_data_exits_0(tmp_path, capsys):
    info = make_cub(tmp_path)
    config = osp.join(REPO, 'configs/_base_/datasets/cub_caption.py')
    rc, out = _run_tool(config, info['data_root'], capsys)
    assert rc == 0 and 'all images decode' in out
