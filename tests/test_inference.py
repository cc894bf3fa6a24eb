"""MMPretrain's own inference APIs on the plugin's captioners."""
import glob
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.apis import ImageCaptionInferencer
from mmpretrain.registry import MODELS

import mdc_plugin  # noqa: F401

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIG = osp.join(REPO, 'configs', 'mdc', 'vit-tiny_shapes.py')


def test_image_caption_inferencer_runs_our_captioner(tmp_path,
                                                      tiny_shapes_root):
    init_default_scope('mmpretrain')
    cfg = Config.fromfile(CONFIG)
    cfg.model.head.sampler.steps = 3
    model = MODELS.build(cfg.model)
    ckpt = tmp_path / 'mdc.pth'
    torch.save({'state_dict': model.state_dict()}, ckpt)
    cfg_path = tmp_path / 'cfg.py'
    cfg.dump(str(cfg_path))
    image = sorted(glob.glob(
        osp.join(tiny_shapes_root, '*', 'images', '*.png')))[0]

    inferencer = ImageCaptionInferencer(model=str(cfg_path),
                                        pretrained=str(ckpt), device='cpu')
    results = inferencer([image, image])
    assert len(results) == 2
    assert all(isinstance(r['pred_caption'], str) for r in results)
    # Same weights, same greedy sampler: the same caption twice.
    assert results[0]['pred_caption'] == results[1]['pred_caption']
