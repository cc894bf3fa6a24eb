"""Does a captioner use the image for shapes? (embedded shapes data)

    python tools/analysis/shape_token_accuracy.py CONFIG CHECKPOINT [--num 500]

Feeds the reference captions of val images with only the shape words hidden
(masked-diffusion head: shape words replaced by [MASK], everything else
visible; autoregressive head: teacher forcing) and reports how often the
shape word is predicted right. The text around a shape word says nothing
about which of the 4 shapes it is, so 25% is chance and anything above it
comes from the image.
"""
import argparse
import json
import os.path as osp
import sys

import torch
from mmengine.config import Config, DictAction
from mmengine.dataset import pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.utils import track_iter_progress

sys.path.insert(0, osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
import mdc_plugin  # noqa: E402,F401
from mdc_plugin.datasets.shapes import SHAPES  # noqa: E402
from mdc_plugin.models.heads import MaskedDiffusionCaptionHead  # noqa: E402
from mdc_plugin.utils import load_checkpoint_safely  # noqa: E402
from mdc_plugin.utils.cli import merge_cfg_options  # noqa: E402


@torch.no_grad()
def shape_token_accuracy(model, data_samples, inputs) -> float:
    """Fraction of shape words predicted right from image + other words."""
    head = model.head
    tok = head.tokenizer
    image = model.extract_feat(inputs)
    ids = head.caption_ids(data_samples, image.device)
    shape_ids = torch.tensor([i for s in SHAPES for i in tok.encode(s)])
    is_shape = torch.isin(ids, shape_ids)
    if isinstance(head, MaskedDiffusionCaptionHead):
        targets = head.targets(ids)
        hidden, _ = head.decoder(targets.masked_fill(is_shape, tok.mask_id),
                                 memory=image)
        pred = head.logits(hidden).argmax(-1)
        return (pred[is_shape] == targets[is_shape]).float().mean().item()
    hidden, _ = head.decoder(ids[:, :-1], memory=image, causal=True)
    pred = head.logits(hidden).argmax(-1)
    wanted = is_shape[:, 1:]
    return (pred[wanted] == ids[:, 1:][wanted]).float().mean().item()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('--num', type=int, default=500)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    args = parser.parse_args()
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
    data = model.data_preprocessor(batch, False)
    acc = shape_token_accuracy(model, data['data_samples'], data['inputs'])
    print(json.dumps(dict(config=args.config, checkpoint=args.checkpoint,
                          images=num,
                          shape_token_accuracy=round(100 * acc, 1))))


if __name__ == '__main__':
    main()
