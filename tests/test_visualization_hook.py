"""CaptionVisualizationHook with the real runner on the tiny shapes set."""
import glob
import os.path as osp

import mmcv
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS
from mmpretrain.structures import DataSample

from mdc_plugin.engine.hooks import CaptionVisualizationHook

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
MDC_CFG = osp.join(REPO, 'configs', 'mdc', 'vit-tiny_shapes.py')


def _tiny_cfg(tmp_path, root: str, name: str, hook: dict,
              backends: list) -> Config:
    cfg = Config.fromfile(MDC_CFG)
    tiny = dict(data_root=root, num_images=dict(train=24, val=8, test=8))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg[key]
        loader.update(batch_size=4, num_workers=0, persistent_workers=False)
        loader.dataset.update(tiny)
    cfg.train_cfg.max_epochs = 1
    cfg.model.head.sampler.steps = 2
    cfg.custom_hooks = []  # the probe is not what is tested here
    cfg.default_hooks.visualization.update(hook)
    cfg.visualizer.vis_backends = backends
    cfg.work_dir = str(tmp_path / name)
    cfg.experiment_name = f'{name}_{tmp_path.name}'
    cfg.log_level = 'WARNING'
    return cfg


def test_default_runtime_has_it_disabled():
    cfg = Config.fromfile(MDC_CFG)
    hook = HOOKS.build(cfg.default_hooks.visualization)
    assert isinstance(hook, CaptionVisualizationHook)
    assert hook.enable is False


def test_val_images_go_to_local_and_tensorboard(tmp_path, tiny_shapes_root):
    pytest.importorskip('tensorboard')
    from tensorboard.backend.event_processing.event_accumulator import \
        EventAccumulator
    cfg = _tiny_cfg(
        tmp_path, tiny_shapes_root, 'val',
        dict(enable=True, interval=3, num_refs=2),
        [dict(type='LocalVisBackend'), dict(type='TensorboardVisBackend')])
    runner = Runner.from_cfg(cfg)
    runner.train()  # 6 iterations, then validation of 8 images (epoch 1)

    vis_data = osp.join(runner.log_dir, 'vis_data')
    files = sorted(glob.glob(osp.join(vis_data, 'vis_image', '*.png')))
    # samples 0, 3 and 6 of the 8 val images, at step = epoch 1
    assert [osp.basename(f) for f in files] == [
        'val_val_00000_1.png', 'val_val_00003_1.png', 'val_val_00006_1.png'
    ]
    drawn = mmcv.imread(files[0])
    # 64 px input, long edge resized to 256, the captions in a band below
    assert drawn.shape[1:] == (256, 3) and drawn.shape[0] > 256 + 30
    plain = mmcv.imresize(
        mmcv.imread(osp.join(glob.glob(osp.join(tiny_shapes_root, '*'))[0],
                             'images', 'val_00000.png')), (256, 256))
    # nothing is drawn over the image; the text is in the band below
    assert np.abs(drawn[:256].astype(int) - plain).max() <= 2
    assert (drawn[256:] < 128).any()

    events = EventAccumulator(osp.join(vis_data), size_guidance={'images': 0})
    events.Reload()
    assert sorted(events.Tags()['images']) == [
        'val_val_00000', 'val_val_00003', 'val_val_00006'
    ]


def test_test_loop_writes_out_dir(tmp_path, tiny_shapes_root):
    cfg = _tiny_cfg(tmp_path, tiny_shapes_root, 'test',
                    dict(enable=True, interval=5, out_dir='captions'),
                    [dict(type='LocalVisBackend')])
    runner = Runner.from_cfg(cfg)
    runner.test()
    files = sorted(glob.glob(osp.join(runner.log_dir, 'captions', '*.png')))
    assert [osp.basename(f) for f in files] == [
        'test_test_00000_0.png', 'test_test_00005_0.png'
    ]
    # out_dir replaces the backends
    assert not glob.glob(osp.join(runner.log_dir, 'vis_data', 'vis_image',
                                  '*.png'))


def test_caption_text_and_channel_order():
    hook = CaptionVisualizationHook(enable=True, num_refs=2)
    sample = DataSample(pred_caption='a red circle',
                        gt_caption=['ref one', 'ref two', 'ref three'])
    assert hook.caption_text(sample) == \
        'pred: a red circle\nref: ref one\nref: ref two'
    assert CaptionVisualizationHook(num_refs=0).caption_text(sample) == \
        'pred: a red circle'
    bgr = torch.zeros(3, 2, 2, dtype=torch.uint8)
    bgr[0] = 255  # blue in BGR
    hook._to_rgb = True
    assert hook._image(bgr)[0, 0].tolist() == [0, 0, 255]
    with pytest.raises(ValueError, match='interval'):
        CaptionVisualizationHook(interval=0)


def test_caption_is_drawn_below_the_image_not_over_it():
    from mmpretrain.visualization import UniversalVisualizer
    hook = CaptionVisualizationHook(enable=True, resize=128)
    hook._visualizer = UniversalVisualizer.get_instance(
        'caption_below_test')
    image = np.full((64, 64, 3), 90, dtype=np.uint8)
    text = 'pred: ' + ' '.join(['a red circle above a blue square'] * 3) + \
        '\nref: a red circle'
    drawn = hook.draw_caption_below(image, text)
    assert drawn.shape[1] == 128 and drawn.shape[0] > 128
    assert (drawn[:128] == 90).all()  # the image is untouched
    band = drawn[128:]
    assert (band < 128).any() and (band == 255).any()  # text on white
