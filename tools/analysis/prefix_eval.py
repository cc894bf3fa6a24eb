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

from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from mdc_plugin.utils.safe_checkpoint import hardened_checkpoints
from mmpretrain.registry import MODELS

import mdc_plugin  # noqa: F401
from mdc_plugin.evaluation import caption_and_score
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
    with hardened_checkpoints():
        load_checkpoint(model, ckpt, map_location='cpu', strict=True)
    return cfg, model.eval()


def evaluate(name: str, cfg: Config, model, decode: dict, sample: dict,
             args) -> dict:
    """Score one setting: captions decoded with ``decode``, the diversity
    set of ``--num-samples`` draws per image with ``sample``."""
    metric = dict(type='CaptionMetric',
                  scores=['BLEU', 'ROUGE-L', 'CIDEr', 'CLIPScore'],
                  diversity=True,
                  clip_scorer=dict(type='PluginModelScorer', config=CLIP_CFG,
                                   checkpoint=CLIP_CKPT))
    loader = Runner.build_dataloader(
        dict(cfg.test_dataloader, num_workers=0, persistent_workers=False))
    out = caption_and_score(model, loader, metric, decode=decode,
                            num_samples=args.num_samples,
                            sample_decode=sample, seed=0,
                            max_batches=args.limit, num_examples=5)
    examples = [dict(image_id=r['image_id'], pred=r['pred'],
                     samples=r['samples'], refs=r['refs'])
                for r in out['examples']]
    params = count_parameters(model)
    # MDC / Cap train everything; Prefix-diffusion only mapper and head
    trainable = params['trainable' if hasattr(model, 'encoder') else 'total']
    result = dict(setting=name, images=out['images'],
                  seconds=round(out['seconds'], 1),
                  trainable_params=trainable, total_params=params['total'],
                  metrics=out['metrics'], examples=examples)
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
    # (name, config, checkpoint, decode of the caption, decode of the
    # diversity draws): MDC and Cap greedy or sampled with the diversity
    # set at --temperature; Prefix-diffusion best of n reranked, the
    # diversity set single noise draws.
    temp = dict(temperature=args.temperature)
    pd = (args.prefix_config, args.prefix_ckpt)
    if args.sweep:
        variants = dict(steps5=dict(steps=5), steps20=dict(steps=20),
                        steps100=dict(steps=100),
                        steps20_eta0=dict(steps=20, eta=0.0),
                        steps20_noclamp=dict(steps=20, clamp=False))
        settings = [(f'prefix_n1_{k}', *pd, dict(v, num_candidates=1),
                     dict(v, num_candidates=1)) for k, v in variants.items()]
        args.out_dir = osp.join(args.out_dir, 'sweep')
        os.makedirs(args.out_dir, exist_ok=True)
    else:
        mdc = ('configs/mdc/vit-tiny_shapes.py', args.mdc_ckpt)
        cap = ('configs/baselines/cap_vit-tiny_shapes.py', args.cap_ckpt)
        settings = [('mdc_greedy', *mdc, dict(temperature=0.0), temp),
                    ('mdc_sampled', *mdc, temp, temp),
                    ('cap_greedy', *cap, dict(temperature=0.0), temp),
                    ('cap_sampled', *cap, temp, temp)]
        settings += [(f'prefix_n{n}', *pd, dict(num_candidates=n),
                      dict(num_candidates=1)) for n in (1, 5, 10)]
    run_settings(settings, args)


def run_settings(settings: list, args: argparse.Namespace) -> None:
    """Evaluate every setting; write one JSON each and summary.json."""
    summary, models = {}, {}
    for name, config, ckpt, decode, sample in settings:
        if (config, ckpt) not in models:
            models[config, ckpt] = load(config, ckpt)
        cfg, model = models[config, ckpt]
        path = osp.join(args.out_dir, f'{name}.json')
        result = evaluate(name, cfg, model, decode, sample, args)
        atomic_dump_json(result, path, indent=1)
        summary[name] = result
    atomic_dump_json(dict(args=vars(args), results=summary),
                     osp.join(args.out_dir, 'summary.json'), indent=1)


if __name__ == '__main__':
    main()
