"""Tables and the learning-curve plot of the Fashion-MNIST comparison.

    python tools/analysis/collect_fashion.py work_dirs/fashion \
        --out docs/results_data/fashion \
        --plot docs/images/fashion_learning_curve.png \
        --steps-plot docs/images/fashion_mdc_sampling_steps.png

Reads what tools/analysis/reproduce_fashion.sh wrote under the results
folder: per training run ``NAME_seedS/`` its last validation scalars
(``*/vis_data/scalars.json``: the hook's linear probe and caption scores)
and wall time (``done``); ``random_seedS.json`` and ``pixels.json``
(tools/linear_probe.py); ``curve_NAME_seedS_iterN.json`` (probes of the
25% / 50% checkpoints), ``attn_*.json`` (attention-pooling probes) and
``steps_NAME_seedS_REMASKING.json`` (tools/analysis/sampling_steps.py:
caption scores against MDC's denoising steps, per remasking order).
Writes every raw number to ``OUT/summary.json`` and prints Markdown tables.
Missing results show as '-', so a partial reproduction still renders.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
import statistics
from typing import Dict, List, Optional

from mdc_plugin.utils.atomic_io import atomic_dump_json, atomic_write_bytes

ROWS = [
    ('supervised', 'supervised reference (trained on the probe label)'),
    ('mdc', 'MDC, paper masking t ~ U[0.5, 1]'),
    ('mdc_mdlm-t', "MDC, MDLM masking t ~ U[0.001, 1]"),
    ('cap', 'Cap (autoregressive captioning)'),
    ('clip', 'CLIP-style contrastive'),
    ('random', 'random init (no pretraining)'),
]
CURVE = ('mdc', 'cap', 'clip')
#: MDC rows: their caption cells are the val scores of the final checkpoint
#: decoded with the config's own sampler (a ``steps_*`` sweep row), when the
#: sweep is there; the training-time validation is kept beside them.
#: (steps, remasking) of the comparison's MDC caption cells: the Fashion
#: configs' sampler when the table was made. The configs have decoded
#: surest-first in blocks since (docs/results.md, "Why MDC trails Cap"),
#: which these sweeps do not cover.
COMPARISON_SAMPLER = (8, 'random')
MDC_CONFIGS = {'mdc': 'configs/mdc/resnet18-w32_fashion.py',
               'mdc_mdlm-t': 'configs/mdc/resnet18-w32_fashion_mdlm-t.py'}
CAPTION_KEYS = ('caption/BLEU-4', 'caption/ROUGE-L', 'caption/CIDEr')
STEPS_FILE = re.compile(r'steps_(?P<name>.+)_seed(?P<seed>\d+)'
                        r'_(?P<remasking>low-confidence|random)\.json$')


def read_json(path: str) -> Optional[dict]:
    if not osp.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def last_val_scalars(run_dir: str) -> Optional[dict]:
    """The last scalars line that holds the probe result (or the
    ``final_scalars.json`` a previous ``--out`` copied)."""
    copied = read_json(osp.join(run_dir, 'final_scalars.json'))
    if copied:
        return copied
    files = sorted(glob.glob(osp.join(run_dir, '*', 'vis_data',
                                      'scalars.json')))
    for path in reversed(files):
        with open(path) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        for entry in reversed(lines):
            if 'probe/accuracy' in entry:
                return entry
    return None


def wall_seconds(run_dir: str) -> Optional[int]:
    path = osp.join(run_dir, 'done')
    if not osp.isfile(path):
        return None
    match = re.search(r'(\d+) s', open(path).read())
    return int(match.group(1)) if match else None


def mean_spread(values: List[float]) -> Optional[Dict[str, float]]:
    """Mean, half the max-min range (the seed-to-seed spread) and values."""
    if not values:
        return None
    return dict(mean=statistics.fmean(values),
                spread=(max(values) - min(values)) / 2, values=values,
                n=len(values))


def fmt(stat: Optional[dict], digits: int = 1, scale: float = 1.0) -> str:
    """'mean ± half-range' over seeds, or 'value (1 seed)'."""
    if not stat:
        return '-'
    mean, spread = scale * stat['mean'], scale * stat['spread']
    if stat['n'] == 1:
        return f'{mean:.{digits}f} (1 seed)'
    return f'{mean:.{digits}f} ± {spread:.{digits}f}'


def collect(root: str, budget: int = 1200) -> dict:
    """Every number of the comparison, per row, with seed statistics."""
    seeds = sorted({int(m.group(1)) for p in os.listdir(root)
                    for m in [re.search(r'_seed(\d+)', p)] if m})
    pixels = read_json(osp.join(root, 'pixels.json'))
    if pixels is None:  # the hook's in-run pixel reference (same probe code)
        for run_dir in sorted(glob.glob(osp.join(root, '*_seed*/'))):
            scalars = last_val_scalars(run_dir) or {}
            if 'probe/pixels_accuracy' in scalars:
                pixels = {'probe/accuracy': scalars['probe/pixels_accuracy'],
                          'source': f'{osp.basename(osp.normpath(run_dir))}'
                                    ' (LinearProbeHook pixels reference)'}
                break
    out = dict(rows={}, curve={}, pixels=pixels)
    for name, _ in ROWS:
        linear, attn, captions, walls, finals = [], [], {}, [], []
        init = []
        for seed in seeds:
            if name == 'random':
                res = read_json(osp.join(root, f'random_seed{seed}.json'))
                if res:
                    linear.append(res['probe/accuracy'])
            else:
                run_dir = osp.join(root, f'{name}_seed{seed}')
                scalars = last_val_scalars(run_dir)
                if scalars:
                    linear.append(scalars['probe/accuracy'])
                    finals.append(scalars)
                    if 'probe/init_accuracy' in scalars:
                        init.append(scalars['probe/init_accuracy'])
                    for key in CAPTION_KEYS + ('accuracy/top1', ):
                        if key in scalars:
                            captions.setdefault(key, []).append(scalars[key])
                wall = wall_seconds(run_dir)
                if wall:
                    walls.append(wall)
            res = read_json(osp.join(root, f'attn_{name}_seed{seed}.json'))
            if res:
                attn.append(res['probe/accuracy'])
        out['rows'][name] = dict(
            linear=mean_spread(linear), attn=mean_spread(attn),
            scores={k: mean_spread(v) for k, v in captions.items()},
            wall_seconds=mean_spread(walls), final_scalars=finals,
            in_run_init=mean_spread(init))
    for name in CURVE:
        points = {}
        pattern = osp.join(root, f'curve_{name}_seed*_iter*.json')
        for path in glob.glob(pattern):
            it = int(re.search(r'_iter(\d+)', path).group(1))
            points.setdefault(it, []).append(
                read_json(path)['probe/accuracy'])
        final = out['rows'][name]['linear']
        if final:
            points[budget] = final['values']
        out['curve'][name] = {str(k): mean_spread(v)
                              for k, v in sorted(points.items())}
    out['sampling_steps'] = collect_steps(root)
    for name, config in MDC_CONFIGS.items():
        rescored = shipped_sampler_scores(out['sampling_steps'], name,
                                          config, seeds)
        if rescored:
            row = out['rows'][name]
            row['scores_training_time'] = row['scores']
            row['scores'], row['scores_source'] = rescored
    return out


def shipped_sampler_scores(sweeps: Dict[str, List[dict]], name: str,
                           config: str, seeds: List[int]):
    """(``{key: mean_spread}``, source) of ``name``'s sweep rows at the
    comparison's sampler (:data:`COMPARISON_SAMPLER`), or None when no
    seed has one. ``config`` is the run's config (named in the source)."""
    steps, remasking = COMPARISON_SAMPLER
    values = {}
    for seed in seeds:
        rows = [r for r in sweeps.get(f'{name} seed{seed} {remasking}', [])
                if r['steps'] == steps]
        if not rows:
            continue
        for key in CAPTION_KEYS:
            values.setdefault(key, []).append(rows[0][key])
    if not values:
        return None
    source = (f"val, {steps} steps, {remasking.replace('-', '_')} "
              'remasking (the config\'s sampler; '
              'tools/analysis/sampling_steps.py)')
    return {k: mean_spread(v) for k, v in values.items()}, source


def collect_steps(root: str) -> Dict[str, List[dict]]:
    """``'NAME seedS REMASKING'`` -> the sweep's rows (steps, scores), in
    the order of :data:`ROWS`, then seed, then remasking."""
    order = [name for name, _ in ROWS]
    found = []
    for path in glob.glob(osp.join(root, 'steps_*.json')):
        match = STEPS_FILE.search(osp.basename(path))
        if match and match['name'] in order:
            found.append((order.index(match['name']), int(match['seed']),
                          match['remasking'], match['name'], path))
    sweeps = {}
    for _, seed, remasking, name, path in sorted(found):
        sweep = read_json(path)
        given = (sweep.get('cfg_options') or {}).get(
            'model.head.sampler.remasking', '').replace('_', '-')
        if sweep.get('split') != 'val' or given != remasking:
            raise ValueError(
                f'{path}: expected a sweep of the val split with '
                f'model.head.sampler.remasking={remasking}, got split '
                f"{sweep.get('split')!r} and remasking {given!r}")
        sweeps[f'{name} seed{seed} {remasking}'] = sorted(
            sweep['rows'], key=lambda r: -r['steps'])
    return sweeps


def steps_table(summary: dict) -> str:
    """BLEU-4 / CIDEr (x100) of every sweep against the step count."""
    sweeps = summary.get('sampling_steps') or {}
    if not sweeps:
        return ''
    steps = sorted({r['steps'] for rows in sweeps.values() for r in rows},
                   reverse=True)
    lines = ['| sweep (BLEU-4 / CIDEr, x100) | '
             + ' | '.join(f'{s} steps' for s in steps) + ' |',
             '| --- |' + ' --- |' * len(steps)]
    for key, rows in sweeps.items():
        name, seed, remasking = key.split(' ')
        by_steps = {r['steps']: r for r in rows}
        cells = [f"{100 * by_steps[s]['caption/BLEU-4']:.1f} / "
                 f"{100 * by_steps[s]['caption/CIDEr']:.1f}"
                 if s in by_steps else '-' for s in steps]
        label = (f"{dict(ROWS)[name]}, seed {seed[len('seed'):]}, "
                 f'{remasking} remasking')
        lines.append(f'| {label} | ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot_steps(summary: dict, path: str) -> None:
    """Val CIDEr against the number of denoising steps: one colour per
    masking range, solid = low-confidence and dashed = random remasking,
    mean ± half-range over the seeds."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups: Dict[tuple, Dict[int, List[float]]] = {}
    for key, rows in (summary.get('sampling_steps') or {}).items():
        name, _, remasking = key.split(' ')
        for r in rows:
            groups.setdefault((name, remasking), {}).setdefault(
                r['steps'], []).append(100 * r['caption/CIDEr'])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = dict(zip(MDC_CONFIGS, ('tab:blue', 'tab:green')))
    for (name, remasking), points in groups.items():
        xs = sorted(points)
        stats = [mean_spread(points[x]) for x in xs]
        ax.errorbar(xs, [st['mean'] for st in stats],
                    yerr=[st['spread'] for st in stats], capsize=3,
                    marker='o', color=colours.get(name),
                    ls='--' if remasking == 'random' else '-',
                    label=f"{dict(ROWS)[name].split(' t ~')[0]}, "
                          f'{remasking} remasking')
    ax.set_xscale('log', base=2)
    ticks = sorted({x for points in groups.values() for x in points})
    ax.set_xticks(ticks, [str(t) for t in ticks])
    ax.set_xlabel('denoising steps (35 = one token per step)')
    ax.set_ylabel('CIDEr (x100), 500 val scenes')
    ax.set_title('MDC caption quality against sampling steps (Fashion; '
                 'mean ± half-range over seeds)', fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    fig.savefig(path + '.tmp.png', dpi=120)
    os.replace(path + '.tmp.png', path)


def tables(summary: dict, budget: int = 1200) -> str:
    lines = ['| backbone | linear probe (mean-pooled), % | attention probe, % '
             '| BLEU-4 (x100) | CIDEr (x100) | train wall time |',
             '| --- | --- | --- | --- | --- | --- |']
    for name, label in ROWS:
        row = summary['rows'][name]
        scores = row['scores']
        wall = row['wall_seconds']
        minutes = '-' if not wall else f"{wall['mean'] / 60:.0f} min"
        lines.append(
            f"| {label} | {fmt(row['linear'])} | {fmt(row['attn'])} | "
            f"{fmt(scores.get('caption/BLEU-4'), scale=100)} | "
            f"{fmt(scores.get('caption/CIDEr'), scale=100)} | "
            f'{minutes} |')
    pixels = summary.get('pixels')
    if pixels:
        lines.append(f"| raw pixels (same linear probe) | "
                     f"{pixels['probe/accuracy']:.1f} (deterministic) | - | "
                     '- | - | - |')
    lines.append('')
    lines.append('| objective | 25% of the budget | 50% | 100% |')
    lines.append('| --- | --- | --- | --- |')
    for name in CURVE:
        points = summary['curve'].get(name, {})
        cells = [fmt(points.get(str(it)))
                 for it in (budget // 4, budget // 2, budget)]
        lines.append(f"| {dict(ROWS)[name]} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(summary: dict, path: str, budget: int) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in CURVE:
        points = summary['curve'].get(name, {})
        xs = sorted(int(k) for k in points)
        if not xs:
            continue
        ys = [points[str(x)]['mean'] for x in xs]
        err = [points[str(x)]['spread'] for x in xs]
        ax.errorbar([100 * x / budget for x in xs], ys, yerr=err, marker='o',
                    capsize=3, label=dict(ROWS)[name])
    for name, style in (('random', ':'), ('supervised', '--')):
        stat = summary['rows'][name]['linear']
        if stat:
            ax.axhline(stat['mean'], ls=style, color='gray')
            ax.text(26, stat['mean'] + 0.4, dict(ROWS)[name].split(' (')[0],
                    color='gray', fontsize=8)
    if summary.get('pixels'):
        ax.axhline(summary['pixels']['probe/accuracy'], ls='-.', color='k',
                   lw=0.8)
        ax.text(26, summary['pixels']['probe/accuracy'] + 0.4, 'raw pixels',
                fontsize=8)
    ax.set_xlabel('% of the training budget (1,200 iterations at batch 64)')
    ax.set_ylabel('Fashion-MNIST linear probe, test accuracy %')
    ax.set_title('Probe accuracy along training (mean ± half-range over '
                 'seeds)',
                 fontsize=9)
    ax.legend(fontsize=8, loc='lower right')
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    fig.savefig(path + '.tmp.png', dpi=120)
    os.replace(path + '.tmp.png', path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root', help='reproduce_fashion.sh output folder')
    parser.add_argument('--out', help='folder for summary.json and the raw '
                        'probe JSON files')
    parser.add_argument('--plot', help='learning-curve PNG')
    parser.add_argument('--steps-plot', help='CIDEr-against-steps PNG')
    parser.add_argument('--budget', type=int, default=1200,
                        help='iterations of the full budget')
    args = parser.parse_args()
    summary = collect(args.root, args.budget)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        atomic_dump_json(summary, osp.join(args.out, 'summary.json'),
                         indent=1)
    if args.out and not osp.samefile(args.out, args.root):
        for path in glob.glob(osp.join(args.root, '*.json')):
            if osp.basename(path) == 'summary.json':
                continue  # an earlier collection's; the new one is written
            atomic_dump_json(read_json(path),
                             osp.join(args.out, osp.basename(path)), indent=1)
        # each run's final validation scalars and wall time, without the
        # checkpoints, so the committed folder renders the same tables
        for run_dir in sorted(glob.glob(osp.join(args.root, '*_seed*/'))):
            name = osp.basename(osp.normpath(run_dir))
            scalars = last_val_scalars(run_dir)
            if not scalars:
                continue
            os.makedirs(osp.join(args.out, name), exist_ok=True)
            atomic_dump_json(scalars, osp.join(args.out, name,
                                               'final_scalars.json'),
                             indent=1)
            done = osp.join(run_dir, 'done')
            if osp.isfile(done):
                with open(done, 'rb') as src:
                    atomic_write_bytes(src.read(),
                                       osp.join(args.out, name, 'done'))
    if args.plot:
        plot(summary, args.plot, args.budget)
    if args.steps_plot and summary['sampling_steps']:
        plot_steps(summary, args.steps_plot)
    print(tables(summary, args.budget))
    print()
    print(steps_table(summary))


if __name__ == '__main__':
    main()
