"""The MDC backbone trains in the real MMDetection and MMSegmentation loops.

Needs mmdet 3.3 / mmseg 1.2 with mmcv's compiled ops, which the main
environment (mmcv-lite) does not have: run these tests with the python of
``tools/misc/install_downstream.sh``; elsewhere they are skipped.
Each test writes Fashion scenes in the COCO / ADE20K layouts, converts a
checkpoint of the real MDC Fashion config with extract_backbone.py, and
runs ``tools/train.py`` with the downstream config for two iterations plus
validation.
"""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from fixtures_fashion import make_fashion_root

try:
    import mmcv.ops  # noqa: F401
    import mmdet  # noqa: F401
    import mmseg  # noqa: F401
    MISSING = None
except Exception as exc:  # ImportError, or mmdet's mmcv version assert
    MISSING = f'{type(exc).__name__}: {exc}'

pytestmark = pytest.mark.skipif(
    MISSING is not None,
    reason='needs mmdet/mmseg with compiled mmcv ops (run '
    f'tools/misc/install_downstream.sh): {MISSING}')

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DOWNSTREAM = osp.join(REPO, 'configs', 'downstream')
MASK_RCNN = osp.join(DOWNSTREAM,
                     'mask-rcnn_resnet18-w32-mdc_fpn_fashion-128px.py')
UPERNET = osp.join(DOWNSTREAM, 'upernet_resnet18-w32-mdc_fashion-128px.py')
MDC_FASHION = osp.join(REPO, 'configs', 'mdc', 'resnet18-w32_fashion.py')


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
    """(data folder, converted MDC backbone, raw MDC checkpoint)."""
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS

    sys.path.insert(0, osp.join(REPO, 'tools', 'model_converters'))
    from extract_backbone import convert

    base = tmp_path_factory.mktemp('downstream')
    fashion = make_fashion_root(str(base / 'fashion'))
    data = str(base / 'data')
    subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'misc',
                                  'make_downstream_data.py'), data,
         '--num-train', '16', '--num-val', '8', '--data-root', fashion,
         '--no-count-check'], check=True, capture_output=True)
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(MDC_FASHION).model)
    model.init_weights()
    raw = str(base / 'mdc_fashion.pth')
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, raw)
    converted = str(base / 'mdc_resnet18-w32_backbone.pth')
    convert(raw, converted, config=MDC_FASHION)
    return data, converted, raw


def _train(config: str, work_dir: str, options: list) -> str:
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'train.py'), config,
         '--work-dir', work_dir, '--cfg-options', 'train_cfg.max_iters=2',
         'train_cfg.val_interval=2', 'default_hooks.logger.interval=1',
         *options], capture_output=True, text=True, cwd=REPO)
    return proc.returncode, proc.stdout + proc.stderr


def _det_options(data: str, ckpt: str) -> list:
    coco = osp.join(data, 'coco') + '/'
    ann = coco + 'annotations/instances_val2017.json'
    return [f'model.backbone.init_cfg.checkpoint={ckpt}',
            f'train_dataloader.dataset.data_root={coco}',
            f'val_dataloader.dataset.data_root={coco}',
            f'test_dataloader.dataset.data_root={coco}',
            f'val_evaluator.ann_file={ann}', f'test_evaluator.ann_file={ann}']


def _seg_options(data: str, ckpt: str) -> list:
    ade = osp.join(data, 'ade')
    return [f'model.backbone.init_cfg.checkpoint={ckpt}',
            f'train_dataloader.dataset.data_root={ade}',
            f'val_dataloader.dataset.data_root={ade}',
            f'test_dataloader.dataset.data_root={ade}']


def test_mask_rcnn_trains_and_evaluates(prepared, tmp_path):
    data, converted, _ = prepared
    rc, log = _train(MASK_RCNN, str(tmp_path), _det_options(data, converted))
    assert rc == 0, log[-4000:]
    for key in ('loss_rpn_cls', 'loss_bbox', 'loss_mask'):
        assert re.search(rf'{key}: \d', log), key
    assert 'coco/bbox_mAP' in log and 'coco/segm_mAP' in log, log[-3000:]


def test_upernet_trains_and_evaluates(prepared, tmp_path):
    data, converted, _ = prepared
    rc, log = _train(UPERNET, str(tmp_path), _seg_options(data, converted))
    assert rc == 0, log[-4000:]
    assert re.search(r'decode\.loss_ce: \d', log), log[-3000:]
    assert re.search(r'mIoU: \d', log), log[-3000:]


@pytest.mark.parametrize('config', [MASK_RCNN, UPERNET])
def test_unconverted_checkpoint_fails_loudly(prepared, tmp_path, config):
    """The raw captioner checkpoint (keys ``backbone.*``, not converted)
    must stop training, not probe a random backbone."""
    data, _, raw = prepared
    options = (_det_options if config == MASK_RCNN else _seg_options)(
        data, raw)
    rc, log = _train(config, str(tmp_path), options)
    assert rc != 0
    assert 'WeightsNotLoadedError' in log or 'did not load' in log, \
        log[-3000:]
