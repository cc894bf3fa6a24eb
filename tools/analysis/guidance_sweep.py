"""Guidance-scale sweep of MC-Diffusion models: reference metrics against
image-text alignment.

    python tools/analysis/guidance_sweep.py \
        --run mcs configs/mc_diffusion/mcs_vit-tiny-vq_shapes.py MCS.pth \
        --run cfg configs/mc_diffusion/cfg_vit-tiny-vq_shapes.py CFG.pth \
        --scales 0 1 2 3 5 \
        --scorer-config configs/baselines/clip_vit-tiny_shapes.py \
        --scorer-checkpoint work_dirs/results/clip/epoch_8.pth \
        --out sweep.json --table sweep.md --plot docs/images/sweep.png

For every run and scale it captions the config's test split (optionally
its first ``--num-images``) with ``model.predict(..., scale=S)``, and
scores the captions with the plugin's ``CaptionMetric``: BLEU-4, CIDEr,
ROUGE-L (references) and CLIPScore / RefCLIPScore from the image-text model
given by ``--scorer-*`` (``PluginModelScorer``). Each (run, scale) starts
from the same seed, so within a run the scales see the same sampling noise;
between an MCS and a CFG run the noise streams differ (MCS draws its
condition masks from the same generator, CFG draws none), so compare runs
over several seeds (``--seed``).
"""
import argparse
import os.path as osp
import sys
from typing import Dict, List

from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from mdc_plugin.utils.safe_checkpoint import hardened_checkpoints
from mmengine.utils import ProgressBar

import mdc_plugin  # noqa: F401
from mdc_plugin.evaluation import caption_and_score
from mdc_plugin.utils.atomic_io import atomic_dump_json, atomic_write

KEYS = ('BLEU-4', 'CIDEr', 'ROUGE-L', 'CLIPScore', 'RefCLIPScore')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--run', nargs=3, action='append', required=True,
                        metavar=('NAME', 'CONFIG', 'CHECKPOINT'))
    parser.add_argument('--scales', type=float, nargs='+',
                        default=[0, 1, 2, 3, 5])
    parser.add_argument('--scorer-config', required=True)
    parser.add_argument('--scorer-checkpoint', required=True)
    parser.add_argument('--num-images', type=int, default=None,
                        help='first N test images (default: all)')
    parser.add_argument('--steps', type=int, default=None,
                        help='sampling steps (default: the config\'s)')
    parser.add_argument('--batch-size', type=int, default=50)
    parser.add_argument('--data-root', default=None)
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='overrides applied to every run\'s config, '
                        'e.g. model.head.guidance.sample_p_mask=0.5')
    parser.add_argument('--out', required=True, help='JSON results')
    parser.add_argument('--table', help='markdown table')
    parser.add_argument('--plot', help='PNG: CLIPScore against BLEU-4 and '
                        'CIDEr')
    args = parser.parse_args()
    for scale in args.scales:
        if scale < 0:
            parser.error(f'guidance scale {scale} must be >= 0')
    return args


def build(config: str, checkpoint: str, args: argparse.Namespace):
    """(model, test dataloader) of one run."""
    cfg = Config.fromfile(config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import MODELS
    if not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} is not a file')
    model = MODELS.build(cfg.model)
    with hardened_checkpoints():
        load_checkpoint(model, checkpoint, map_location='cpu', strict=True)
    model.eval()
    loader = cfg.test_dataloader
    loader.update(batch_size=args.batch_size, num_workers=0,
                  persistent_workers=False)
    if args.num_images:
        loader.dataset['indices'] = args.num_images
    if args.data_root:
        loader.dataset['data_root'] = args.data_root
    return model, Runner.build_dataloader(loader)


def evaluate(model, loader, scorer, scale: float, steps, seed: int,
             bar: ProgressBar) -> Dict[str, float]:
    """Caption the loader at one guidance scale and score it."""
    decode = dict(scale=scale) if steps is None else dict(scale=scale,
                                                           steps=steps)
    metric = dict(
        type='CaptionMetric',
        scores=['BLEU', 'ROUGE-L', 'CIDEr', 'CLIPScore', 'RefCLIPScore'],
        clip_scorer=scorer)
    metrics = caption_and_score(model, loader, metric, decode=decode,
                                seed=seed, on_batch=bar.update)['metrics']
    return {k.split('/', 1)[-1]: float(v) for k, v in metrics.items()}


def markdown(results: dict) -> str:
    lines = ['| run | scale | ' + ' | '.join(KEYS) + ' |',
             '| --- | --- |' + ' --- |' * len(KEYS)]
    for name, run in results['runs'].items():
        for row in run['rows']:
            cells = []
            for key in KEYS:
                value = row[key]
                cells.append(f'{100 * value:.1f}' if key in ('BLEU-4',
                                                             'CIDEr',
                                                             'ROUGE-L')
                             else f'{value:.3f}')
            lines.append(f'| {name} | {row["scale"]:g} | ' +
                         ' | '.join(cells) + ' |')
    return '\n'.join(lines) + '\n'


def plot(results: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ('BLEU-4', 'CIDEr')):
        for name, run in results['runs'].items():
            xs = [100 * r[key] for r in run['rows']]
            ys = [r['CLIPScore'] for r in run['rows']]
            ax.plot(xs, ys, marker='o', label=name)
            for r, x, y in zip(run['rows'], xs, ys):
                ax.annotate(f'{r["scale"]:g}', (x, y), fontsize=8,
                            textcoords='offset points', xytext=(3, 3))
        ax.set_xlabel(f'{key} (x100)')
        ax.set_ylabel('CLIPScore (offline contrastive scorer)')
        ax.grid(alpha=0.3)
        ax.legend(title='guidance (labels: scale)')
    fig.suptitle('MC-Diffusion guidance scale sweep (embedded shapes data)')
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    init_default_scope('mmpretrain')
    from mdc_plugin.models.scorers import PluginModelScorer
    scorer = PluginModelScorer(args.scorer_config, args.scorer_checkpoint)
    built = {name: build(config, ckpt, args)
             for name, config, ckpt in args.run}
    total = sum(len(loader.dataset) for _, loader in built.values()) * \
        len(args.scales)
    bar = ProgressBar(total)
    results = dict(scales=args.scales, seed=args.seed, steps=args.steps,
                   num_images=args.num_images,
                   cfg_options=dict(args.cfg_options or {}),
                   scorer=dict(config=args.scorer_config,
                               checkpoint=args.scorer_checkpoint),
                   runs={})
    for name, config, ckpt in args.run:
        model, loader = built[name]
        rows: List[dict] = []
        for scale in args.scales:
            row = evaluate(model, loader, scorer, scale, args.steps,
                           args.seed, bar)
            rows.append(dict(scale=scale, images=len(loader.dataset), **row))
        results['runs'][name] = dict(config=config, checkpoint=ckpt,
                                     rows=rows)
    sys.stdout.write('\n')
    atomic_dump_json(results, args.out, indent=2)
    table = markdown(results)
    print(table)
    if args.table:
        with atomic_write(args.table, 'w') as f:
            f.write(table)
    if args.plot:
        plot(results, args.plot)


if __name__ == '__main__':
    main()
