"""tools/misc/make_downstream_data.py writes exact COCO and ADE20K layouts."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from fixtures_fashion import make_fashion_root

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOL = osp.join(REPO, 'tools', 'misc', 'make_downstream_data.py')


@pytest.fixture(scope='module')
def downstream_root(tmp_path_factory):
    base = tmp_path_factory.mktemp('downstream')
    root = make_fashion_root(str(base / 'fashion'))
    out = str(base / 'out')
    subprocess.run(
        [sys.executable, TOOL, out, '--num-train', '12', '--num-val', '4',
         '--data-root', root, '--no-count-check'], check=True,
        capture_output=True, text=True)
    return root, out


def test_coco_masks_boxes_and_semantic_maps_agree(downstream_root):
    from pycocotools.coco import COCO

    from mdc_plugin.datasets.fashion import (compose_scene,
                                             load_fashion_split,
                                             render_scene)
    fashion, out = downstream_root
    coco = COCO(osp.join(out, 'coco', 'annotations',
                         'instances_train2017.json'))
    assert len(coco.getImgIds()) == 12
    assert [c['name'] for c in coco.loadCats(coco.getCatIds())][:2] == [
        'T-shirt/top', 'Trouser']
    images, labels = load_fashion_split(fashion, 'train', False)
    for img_id in coco.getImgIds():
        info = coco.loadImgs(img_id)[0]
        rgb = np.array(Image.open(osp.join(out, 'coco', 'train2017',
                                           info['file_name'])))
        assert rgb.shape == (128, 128, 3)
        seg = np.array(Image.open(osp.join(
            out, 'ade', 'annotations', 'training', info['file_name'])))
        assert seg.shape == (128, 128) and seg.dtype == np.uint8
        # the scene is the one FashionSceneCaption composes (split code 0)
        rng = np.random.default_rng([0, 0, img_id - 1])
        placements = compose_scene(rng, labels, 64)
        gray = render_scene(images, placements, 64)
        assert np.array_equal(rgb[::2, ::2, 0], gray)
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[img_id]))
        assert sorted(a['category_id'] - 1 for a in anns) == sorted(
            p.label for p in placements)
        union = np.zeros((128, 128), dtype=bool)
        for ann in anns:
            mask = coco.annToMask(ann).astype(bool)
            assert mask.sum() == ann['area'] > 0
            x, y, w, h = ann['bbox']
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (
                x, y, x + w, y + h)
            # exact: the mask is where the item is non-black, and the label
            # map holds the class there
            assert (rgb[..., 0][mask] > 0).all()
            assert (seg[mask] == ann['category_id']).all()
            assert not (union & mask).any()
            union |= mask
        assert (seg[~union] == 0).all()
        assert (rgb[..., 0][~union] == 0).all()


def test_val_split_uses_test_items(downstream_root):
    _, out = downstream_root
    names = sorted(osp.basename(p) for p in __import__('glob').glob(
        osp.join(out, 'ade', 'images', 'validation', '*.png')))
    assert names == [f'val_{i:06d}.png' for i in range(4)]
    # fixtures_fashion: test items have bars of 120, train items of 200
    img = np.array(Image.open(osp.join(out, 'coco', 'val2017', names[0])))
    assert img.max() == 120
