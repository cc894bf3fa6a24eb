"""Does a captioner use the image for shapes? (embedded shapes data)

    python tools/analysis/shape_token_accuracy.py CONFIG CHECKPOINT [--num 500]

Runs the ``ShapeWordAccuracy`` metric (mdc_plugin/evaluation/metrics) on the
first ``--num`` val images in one batch and prints its result as JSON. The
same metric can sit in any config's ``test_evaluator``.
"""
import argparse
import json
import sys
from typing import List, Optional

from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.utils import track_iter_progress

import mdc_plugin  # noqa: F401
from mdc_plugin.evaluation.metrics import ShapeWordAccuracy
from mdc_plugin.utils import load_checkpoint_safely
from mdc_plugin.utils.cli import merge_cfg_options


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num', type=int, default=500)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args(argv)
    init_default_scope('mmpretrain')
    from mmpretrain.registry import DATASETS, MODELS
    cfg = merge_cfg_options(Config.fromfile(args.config), args.cfg_options,
                            args.config)
    model = MODELS.build(cfg.model)
    model.load_state_dict(
        load_checkpoint_safely(args.checkpoint)['state_dict'])
    model.eval()
    dataset = DATASETS.build(cfg.val_dataloader.dataset)
    num = min(args.num, len(dataset))
    # progress on stderr: stdout carries the JSON result
    batch = pseudo_collate([
        dataset[i] for i in track_iter_progress(range(num), file=sys.stderr)
    ])
    metric = ShapeWordAccuracy()
    metric.bind_model(model)
    metric.process(batch, batch['data_samples'])
    acc = metric.evaluate(num)['shape_word/accuracy']
    print(json.dumps(dict(config=args.config, checkpoint=args.checkpoint,
                          images=num, shape_token_accuracy=round(acc, 1))))


if __name__ == '__main__':
    main()
