"""Prefix-diffusion against MDC and Cap on the embedded shapes test split.

    python tools/analysis/prefix_eval.py \
        [--prefix-ckpt work_dirs/prefix_diffusion/epoch_8.pth] \
        [--out-dir docs/results_data/prefix_diffusion]

Every model captions the 500 test images with the real test dataloader
and is scored by ``CaptionMetric``: BLEU-4, ROUGE-L, CIDEr, CLIPScore (the
contrastive baseline ``work_dirs/results/clip/epoch_8.pth`` as scorer),
Dist-1/2/3, Vocab, and Self-BLEU-4 / Div-1/2 over ``--num-samples``
independent samples per image (the "diversity set": MDC and Cap at
temperature ``--temperature``, Prefix-diffusion from fresh noise draws).
Settings: MDC greedy and sampled, Cap greedy and sampled, Prefix-diffusion
with n = 1, 5, 10 candidates reranked by the contrastive model. Writes
``<out-dir>/<setting>.json`` and ``<out-dir>/summary.json``.
"""
import argparse
import json
import os
import os.path as osp
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmpretrain.registry import MODELS

import mdc_plugin  # noqa: F401
from mdc_plugin.evaluation.metrics import CaptionMetric
from mdc_plugin.models.captioners import count_parameters
from mdc_plugin.utils.atomic_io import atomic_dump_json

CLIP_CFG = 'configs/baselines/clip_vit-tiny_shapes.py'
CLIP_CKPT = 'work_dirs/results/clip/epoch_8.pth'


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--prefix-config',
                   default='configs/prefix_diffusion/clip-tiny_shapes.py')
    p.add_argument('--prefix-ckpt',
                   default='work_dirs/prefix_diffusion/epoch_8.pth')
    p.add_argument('--mdc-ckpt', default='work_dirs/results/mdc/epoch_8.pth')
    p.add_argument('--cap-ckpt', default='work_dirs/results/cap/epoch_8.pth')
    p.add_argument('--num-samples', type=int, default=5)
    p.add_argument('--temperature', type=float, default=1.0)
    p.add_argument('--limit', type=int, default=None,
                   help='only the first N test batches (quick check)')
    p.add_argument('--out-dir', default='docs/results_data/prefix_diffusion')
    p.add_argument('--sweep', action='store_true',
                   help='instead: Prefix-diffusion n=1 under sampler '
                   'variants (steps, eta, clamp), into <out-dir>/sweep/')
    p.add_argument('--table', action='store_true',
                   help='only print the markdown table of an existing '
                   '<out-dir>/summary.json')
    return p.parse_args()


COLUMNS = (('BLEU-4', 100), ('ROUGE-L', 100), ('CIDEr', 100),
           ('CLIPScore', 1), ('Dist-2', 1), ('Dist-3', 1), ('Vocab', 1),
           ('Self-BLEU-4', 100), ('Div-2', 1))


def table(summary: dict) -> str:
    """Markdown table of the settings in ``summary['results']``."""
    head = ['setting', 'trainable params'] + [c for c, _ in COLUMNS]
    lines = ['| ' + ' | '.join(head) + ' |',
             '| ' + ' | '.join('---' for _ in head) + ' |']
    for name, r in summary['results'].items():
        m = r['metrics']
        cells = [name, f"{r['trainable_params'] / 1e6:.2f} M"]
        for col, scale in COLUMNS:
            value = m.get(f'caption/{col}')
            digits = 0 if col == 'Vocab' else 3 if scale == 1 else 1
            cells.append('-' if value is None else
                         f'{value * scale:.{digits}f}')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def load(config: str, ckpt: str):
    cfg = Config.fromfile(config)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, ckpt, map_location='cpu', strict=True)
    return cfg, model.eval()


def captioner_fn(model, temperature: float, num_samples: int):
    """ImageCaptioner (MDC / Cap): best = head.predict with its config
    (greedy) or at ``temperature``; diversity set at --temperature."""

    def run(data: dict, sample_temp: float) -> list:
        feats = model.extract_feat(data['inputs'])
        best = model.head.predict(feats, temperature=temperature)
        samples = [model.head.predict(feats, temperature=sample_temp)
                   for _ in range(num_samples)]
        return best, [list(s) for s in zip(*samples)]

    return run


def prefix_fn(model, n: int, num_samples: int, **sampler):
    """Prefix-diffusion: best of n reranked; diversity set = num_samples
    single draws; ``sampler`` overrides the head's sampler config."""

    def run(data: dict, _: float) -> list:
        best = [s.pred_caption for s in model.predict(
            data['inputs'], num_candidates=n, **sampler)]
        draws = model.head.predict(
            model.prefix(data['inputs']).repeat_interleave(num_samples, 0),
            **sampler)
        samples = [draws[i:i + num_samples]
                   for i in range(0, len(draws), num_samples)]
        return best, samples

    return run


@torch.no_grad()
def evaluate(name: str, cfg: Config, model, run, args) -> dict:
    metric = CaptionMetric(
        scores=['BLEU', 'ROUGE-L', 'CIDEr', 'CLIPScore'], diversity=True,
        clip_scorer=dict(type='PluginModelScorer', config=CLIP_CFG,
                         checkpoint=CLIP_CKPT))
    loader = Runner.build_dataloader(
        dict(cfg.test_dataloader, num_workers=0, persistent_workers=False))
    torch.manual_seed(0)
    start, count = time.time(), 0
    for i, batch in enumerate(loader):
        if args.limit is not None and i >= args.limit:
            break
        data = model.data_preprocessor(batch, False)
        best, samples = run(data, args.temperature)
        for sample, caption, group in zip(data['data_samples'], best,
                                          samples):
            sample.pred_caption = caption
            sample.pred_captions = group
        metric.process(batch, data['data_samples'])
        count += len(best)
    seconds = time.time() - start
    examples = [dict(image_id=r['image_id'], pred=r['pred'],
                     samples=r['samples'], refs=r['refs'])
                for r in metric.results[:5]]
    metrics = metric.evaluate(count)
    params = count_parameters(model)
    if hasattr(model, 'encoder'):
        trainable = params['trainable']
    else:
        trainable = params['total']  # MDC / Cap train everything
    result = dict(setting=name, images=count, seconds=round(seconds, 1),
                  trainable_params=trainable, total_params=params['total'],
                  metrics=metrics, examples=examples)
    print(json.dumps({k: v for k, v in result.items() if k != 'examples'}),
          flush=True)
    return result


def main() -> None:
    args = parse_args()
    if args.table:
        with open(osp.join(args.out_dir, 'summary.json')) as f:
            print(table(json.load(f)))
        return
    init_default_scope('mmpretrain')
    os.makedirs(args.out_dir, exist_ok=True)
    if args.sweep:
        pd_cfg, pd = load(args.prefix_config, args.prefix_ckpt)
        variants = dict(steps5=dict(steps=5), steps20=dict(steps=20),
                        steps100=dict(steps=100),
                        steps20_eta0=dict(steps=20, eta=0.0),
                        steps20_noclamp=dict(steps=20, clamp=False))
        settings = [(f'prefix_n1_{k}', pd_cfg, pd,
                     prefix_fn(pd, 1, args.num_samples, **v))
                    for k, v in variants.items()]
        args.out_dir = osp.join(args.out_dir, 'sweep')
        os.makedirs(args.out_dir, exist_ok=True)
        run_settings(settings, args)
        return
    settings = []
    mdc_cfg, mdc = load('configs/mdc/vit-tiny_shapes.py', args.mdc_ckpt)
    settings += [('mdc_greedy', mdc_cfg, mdc,
                  captioner_fn(mdc, 0.0, args.num_samples)),
                 ('mdc_sampled', mdc_cfg, mdc,
                  captioner_fn(mdc, args.temperature, args.num_samples))]
    cap_cfg, cap = load('configs/baselines/cap_vit-tiny_shapes.py',
                        args.cap_ckpt)
    settings += [('cap_greedy', cap_cfg, cap,
                  captioner_fn(cap, 0.0, args.num_samples)),
                 ('cap_sampled', cap_cfg, cap,
                  captioner_fn(cap, args.temperature, args.num_samples))]
    pd_cfg, pd = load(args.prefix_config, args.prefix_ckpt)
    settings += [(f'prefix_n{n}', pd_cfg, pd,
                  prefix_fn(pd, n, args.num_samples)) for n in (1, 5, 10)]
    run_settings(settings, args)


def run_settings(settings: list, args: argparse.Namespace) -> None:
    """Evaluate every setting; write one JSON each and summary.json."""
    summary = {}
    for name, cfg, model, run in settings:
        path = osp.join(args.out_dir, f'{name}.json')
        result = evaluate(name, cfg, model, run, args)
        atomic_dump_json(result, path, indent=1)
        summary[name] = result
    atomic_dump_json(dict(args=vars(args), results=summary),
                     osp.join(args.out_dir, 'summary.json'), indent=1)


if __name__ == '__main__':
    main()
