"""Figure: Fashion-MNIST test scenes with the captions trained models give.

    python tools/analysis/fashion_examples.py \
        --model MDC configs/mdc/resnet18-w32_fashion.py CKPT \
        --model Cap configs/baselines/cap_resnet18-w32_fashion.py CKPT \
        --out docs/images/fashion_examples.png --json captions.json \
        [--previous captions.json]

Scenes come from the config's test split (official test items only); each
panel shows the image, one reference caption and each model's caption
(decoded with its config's sampler). ``--previous`` takes the captions of
models not given again from an earlier ``--json`` of the same scenes (the
references must match), so one model can be redone without the others'
checkpoints.
"""
import argparse
import json
import textwrap

import numpy as np
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

from mdc_plugin.apis import caption_images, init_captioner
from mdc_plugin.utils.atomic_io import atomic_dump_json


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--model', nargs=3, action='append', required=True,
                        metavar=('NAME', 'CONFIG', 'CHECKPOINT'))
    parser.add_argument('--num', type=int, default=6, help='scenes shown')
    parser.add_argument('--out', required=True, help='PNG to write')
    parser.add_argument('--json', help='also write the captions here')
    parser.add_argument('--previous', help="an earlier --json: captions of "
                        'models not given again are taken from it')
    args = parser.parse_args()

    cfg = Config.fromfile(args.model[0][1])
    init_default_scope('mmpretrain')
    dataset_cfg = dict(cfg.test_dataloader.dataset)
    dataset_cfg.update(pipeline=[], num_scenes=args.num)
    scenes = DATASETS.build(dataset_cfg)
    infos = [scenes.get_data_info(i) for i in range(args.num)]
    # the models' pipelines take (H, W, 3) uint8 arrays
    images = [np.repeat(info['img'][:, :, None], 3, axis=2) for info in infos]
    captions = {}
    if args.previous:
        with open(args.previous) as f:
            previous = json.load(f)
        references = [list(i['gt_caption']) for i in infos]
        if previous['references'] != references:
            raise SystemExit(f'{args.previous} holds captions of other '
                             'scenes (its references differ from the '
                             'config\'s first --num test scenes)')
        captions = previous['captions']
    for name, config, checkpoint in args.model:
        model = init_captioner(config, checkpoint, device='cpu')
        torch.manual_seed(0)  # random-order samplers: the same figure
        captions[name] = [r['caption'] for r in caption_images(model, images)]

    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    cols = 3
    rows = (args.num + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 5.6 * rows))
    for i, ax in enumerate(np.atleast_1d(axes).ravel()):
        ax.axis('off')
        if i >= args.num:
            continue
        ax.imshow(infos[i]['img'], cmap='gray', vmin=0, vmax=255)
        lines = [f'reference: {infos[i]["gt_caption"][0]}'] + [
            f'{name}: {caps[i]}' for name, caps in captions.items()]
        text = '\n'.join(textwrap.fill(line, 44) for line in lines)
        ax.text(0, 66, text, va='top', fontsize=7.5, family='monospace')
    fig.subplots_adjust(hspace=0.75, wspace=0.08)
    fig.savefig(args.out, dpi=110, bbox_inches='tight')
    if args.json:
        atomic_dump_json(dict(references=[i['gt_caption'] for i in infos],
                              captions=captions), args.json, indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
