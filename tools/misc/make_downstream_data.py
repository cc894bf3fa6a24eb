"""Write Fashion-MNIST scenes as MMDetection and MMSegmentation data sets.

Scenes are the ones ``FashionSceneCaption`` composes (same seed, split and
index give the same items and layout), rendered at ``--canvas x --scale``
px. Masks are exact: an item's non-black pixels. Layouts written::

    OUT/coco/train2017/*.png, OUT/coco/val2017/*.png
    OUT/coco/annotations/instances_{train,val}2017.json   (RLE masks)
    OUT/ade/images/{training,validation}/*.png
    OUT/ade/annotations/{training,validation}/*.png       (0 = background,
                                                           1-10 = classes)

Usage::

    python tools/misc/make_downstream_data.py data/fashion_downstream \
        --num-train 2000 --num-val 200
"""
import argparse
import os
import os.path as osp
import time

import numpy as np
from PIL import Image
from pycocotools import mask as mask_utils

from mdc_plugin.datasets.fashion import (CLASSES, compose_scene,
                                         load_fashion_split, render_scene)
from mdc_plugin.datasets.fashion.downstream import (scene_instances,
                                                    semantic_map, upscale)
from mdc_plugin.datasets.fashion_scene_caption import ITEM_SPLIT, SPLIT_CODES
from mdc_plugin.utils.atomic_io import atomic_dump_json

#: Our split name -> (COCO folder, ADE20K folder).
FOLDERS = dict(train=('train2017', 'training'), val=('val2017', 'validation'))


def coco_categories() -> list:
    return [dict(id=i + 1, name=name, supercategory='fashion')
            for i, name in enumerate(CLASSES)]


def write_split(out: str, split: str, num: int, args) -> dict:
    """Render ``num`` scenes of ``split``; return its COCO dict."""
    images, labels = load_fashion_split(args.data_root, ITEM_SPLIT[split],
                                        not args.no_count_check)
    coco_dir, ade_dir = FOLDERS[split]
    dirs = [osp.join(out, 'coco', coco_dir),
            osp.join(out, 'ade', 'images', ade_dir),
            osp.join(out, 'ade', 'annotations', ade_dir)]
    for d in dirs:
        os.makedirs(d, exist_ok=True)
    size = args.canvas * args.scale
    coco = dict(images=[], annotations=[], categories=coco_categories())
    for i in range(num):
        rng = np.random.default_rng([args.seed, SPLIT_CODES[split], i])
        placements = compose_scene(rng, labels, args.canvas)
        gray = upscale(render_scene(images, placements, args.canvas),
                       args.scale)
        instances = scene_instances(images, placements, args.canvas,
                                    args.scale)
        name = f'{split}_{i:06d}.png'
        Image.fromarray(np.stack([gray] * 3, -1)).save(osp.join(dirs[0], name))
        Image.fromarray(np.stack([gray] * 3, -1)).save(osp.join(dirs[1], name))
        Image.fromarray(semantic_map(instances, size)).save(
            osp.join(dirs[2], name))
        coco['images'].append(
            dict(id=i + 1, file_name=name, height=size, width=size))
        for inst in instances:
            rle = mask_utils.encode(np.asfortranarray(inst.mask))
            rle['counts'] = rle['counts'].decode('ascii')
            coco['annotations'].append(dict(
                id=len(coco['annotations']) + 1, image_id=i + 1,
                category_id=inst.label + 1, bbox=inst.bbox, area=inst.area,
                segmentation=rle, iscrowd=0))
        if (i + 1) % 500 == 0 or i + 1 == num:
            print(f'{split}: {i + 1}/{num} scenes', flush=True)
    ann_dir = osp.join(out, 'coco', 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    atomic_dump_json(coco, osp.join(ann_dir, f'instances_{coco_dir}.json'))
    return coco


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('out', help='output folder')
    parser.add_argument('--num-train', type=int, default=2000)
    parser.add_argument('--num-val', type=int, default=200)
    parser.add_argument('--canvas', type=int, default=64,
                        help='scene side before upscaling (as pretraining)')
    parser.add_argument('--scale', type=int, default=2,
                        help='integer nearest-neighbour upscale')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--data-root', default=None,
                        help='folder with the Fashion-MNIST IDX files')
    parser.add_argument('--no-count-check', action='store_true',
                        help='accept IDX files of any size (tests)')
    args = parser.parse_args()
    start = time.time()
    for split, num in (('train', args.num_train), ('val', args.num_val)):
        coco = write_split(args.out, split, num, args)
        print(f'{split}: {len(coco["images"])} images, '
              f'{len(coco["annotations"])} instances')
    meta = dict(classes=list(CLASSES), canvas=args.canvas, scale=args.scale,
                seed=args.seed, num_train=args.num_train,
                num_val=args.num_val)
    atomic_dump_json(meta, osp.join(args.out, 'meta.json'))
    print(f'wrote {args.out} in {time.time() - start:.1f} s')


if __name__ == '__main__':
    main()
