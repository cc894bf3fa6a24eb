"""Tables and the budget plot of "Why MDC trails Cap" (docs/results.md).

    python tools/analysis/collect_mdc_gap.py work_dirs/fashion \
        --committed docs/results_data/fashion \
        --out docs/results_data/fashion_gap \
        --plot docs/images/fashion_mdc_gap_budget.png

Reads, under the results folder, each training run's final scalars
(``NAME_seedS/`` at 1x the budget, ``NAME_Mx_seedS/`` at M times; the
probe and the training-time caption scores) and its diagnostics
``diag_RUN.json`` (tools/analysis/caption_diagnostics.py: nats per real
token and the caption scores of each decoding). ``--committed`` adds the
1x runs of the Fashion comparison (docs/results_data/fashion) for seeds
the results folder lacks. Writes every number to ``OUT/summary.json`` and
the runs' final scalars and diagnostics beside it; prints Markdown tables.
"""
import argparse
import glob
import os
import os.path as osp
import re
import shutil
from typing import Dict, Optional

from collect_fashion import (fmt, last_val_scalars, mean_spread, read_json,
                             wall_seconds)

from mdc_plugin.utils.atomic_io import atomic_dump_json

RUN_DIR = re.compile(r'^(?P<name>[a-z0-9_.-]+?)(?:_(?P<mult>\d+)x)?'
                     r'_seed(?P<seed>\d+)$')
BUDGET_ROWS = ('mdc', 'cap')
ABLATION_ROWS = [
    ('mdc', 'MDC (paper range t ~ U[0.5, 1], loss on every position)'),
    ('mdc_words-loss', 'MDC, loss on words and first EOS only'),
    ('cap', 'Cap (autoregressive)'),
    ('cappa', 'CapPa (Cap, 75% parallel-decoded samples)'),
]
#: Caption positions of the Fashion bed (max_length 36 less bos): a block
#: this long (or ``None``) is one block over the whole caption.
POSITIONS = 35
#: Named decodings of the tables: MDC sampler options (Cap decodes
#: greedily, which fills the 'left to right' column).
DECODINGS = {
    'surest-first, 8 steps': dict(steps=8, remasking='low_confidence',
                                  block_length=POSITIONS),
    'random order, 8 steps': dict(steps=8, remasking='random',
                                  block_length=POSITIONS),
    'surest-first in blocks of 5, 8 steps': dict(
        steps=8, remasking='low_confidence', block_length=5),
    'surest-first in blocks of 5, 35 steps': dict(
        steps=35, remasking='low_confidence', block_length=5),
    'left to right, 1 token/step': dict(steps=35, remasking='low_confidence',
                                        block_length=1),
}


def find_runs(root: str) -> Dict[tuple, str]:
    """(name, mult, seed) -> run folder, for every finished run."""
    runs = {}
    for path in sorted(glob.glob(osp.join(root, '*_seed*/'))):
        match = RUN_DIR.match(osp.basename(osp.normpath(path)))
        if match and last_val_scalars(path):
            runs[(match['name'], int(match['mult'] or 1),
                  int(match['seed']))] = path
    return runs


def one_block(options: dict) -> dict:
    """``options`` with ``block_length=None`` written as :data:`POSITIONS`
    (the same decoding)."""
    if 'block_length' in options and options['block_length'] is None:
        return dict(options, block_length=POSITIONS)
    return options


def decoding_row(diag: Optional[dict], options: dict) -> Optional[dict]:
    """The diagnostics row decoded with ``options`` (Cap: its one row)."""
    if not diag:
        return None
    for row in diag['decodings']:
        if one_block(row['options']) in (options, {}):
            return row
    return None


#: The raw-pixel probe of the Fashion comparison (results_data/fashion).
PIXELS_PROBE = 83.1
#: Rows trained without loss on the padding: their ELBO counts padding
#: positions the model never learned, so it is left out of the tables.
NO_ELBO = ('mdc_words-loss', )


def run_numbers(run_dir: str, diag: Optional[dict]) -> dict:
    scalars = last_val_scalars(run_dir)
    out = dict(probe=scalars['probe/accuracy'],
               wall_seconds=wall_seconds(run_dir))
    if diag:
        like = diag['likelihood']
        out['nll'] = like['nll_per_real_token']
        out['nll_order'] = like['nll_order']
        if 'elbo_per_real_token' in like:
            out['elbo'] = like['elbo_per_real_token']
        out['decodings'] = {}
        for label, options in DECODINGS.items():
            row = decoding_row(diag, options)
            if row and (row['options'] or label.startswith('left')):
                out['decodings'][label] = dict(
                    cider=row['metrics']['caption/CIDEr'],
                    bleu4=row['metrics']['caption/BLEU-4'],
                    empty=row['empty_captions'], images=row['images'])
    return out


def collect(root: str, committed: Optional[str]) -> dict:
    names = set(BUDGET_ROWS) | {name for name, _ in ABLATION_ROWS}
    runs = {k: p for k, p in find_runs(root).items() if k[0] in names}
    if committed:
        for key, path in find_runs(committed).items():
            if key[0] in names:
                runs.setdefault(key, path)
    per_run = {}
    for (name, mult, seed), path in sorted(runs.items()):
        base = osp.basename(osp.normpath(path))
        diag = read_json(osp.join(root, f'diag_{base}.json'))
        per_run[base] = dict(name=name, mult=mult, seed=seed, path=path,
                             **run_numbers(path, diag))

    def stats(name: str, mult: int, key: str):
        return mean_spread([
            run[key] for run in per_run.values()
            if run['name'] == name and run['mult'] == mult
            and run.get(key) is not None])

    budget = {}
    for name in BUDGET_ROWS:
        for mult in sorted({r['mult'] for r in per_run.values()
                            if r['name'] == name}):
            budget.setdefault(name, {})[str(mult)] = {
                key: stats(name, mult, key)
                for key in ('probe', 'nll', 'elbo', 'wall_seconds')}
    ablation = {}
    for name, _ in ABLATION_ROWS:
        row = {key: stats(name, 1, key) for key in ('probe', 'nll', 'elbo')}
        if name in NO_ELBO:
            row['elbo'] = None
        for label in DECODINGS:
            for key2 in ('cider', 'empty'):
                values = [r['decodings'][label][key2]
                          for r in per_run.values()
                          if r['name'] == name and r['mult'] == 1 and
                          label in (r.get('decodings') or {})]
                row[f'{label}/{key2}'] = mean_spread(values)
        ablation[name] = row
    return dict(runs=per_run, budget=budget, ablation=ablation)


def budget_table(summary: dict) -> str:
    lines = ['| budget | MDC probe, % | Cap probe, % | gap, points | '
             'MDC NLL, left to right | MDC -ELBO | Cap NLL |',
             '| --- | --- | --- | --- | --- | --- | --- |']
    mdc, cap = summary['budget'].get('mdc', {}), summary['budget'].get(
        'cap', {})
    for mult in sorted(set(mdc) | set(cap), key=int):
        m, c = mdc.get(mult, {}), cap.get(mult, {})
        gap = '-'
        if m.get('probe') and c.get('probe'):
            gap = f"{c['probe']['mean'] - m['probe']['mean']:.1f}"
        lines.append(
            f"| {mult}x ({1200 * int(mult)} it) | {fmt(m.get('probe'))} | "
            f"{fmt(c.get('probe'))} | {gap} | {fmt(m.get('nll'), 3)} | "
            f"{fmt(m.get('elbo'), 3)} | {fmt(c.get('nll'), 3)} |")
    return '\n'.join(lines)


def ablation_table(summary: dict) -> str:
    labels = list(DECODINGS)
    head = ['row', 'probe, %', 'NLL / real token', '-ELBO / real token'] + [
        f'CIDEr, {label} (empty)' for label in labels]
    lines = ['| ' + ' | '.join(head) + ' |',
             '| ' + ' | '.join('---' for _ in head) + ' |']
    for name, title in ABLATION_ROWS:
        row = summary['ablation'].get(name, {})
        cells = [title, fmt(row.get('probe')), fmt(row.get('nll'), 3),
                 fmt(row.get('elbo'), 3)]
        for label in labels:
            cider, empty = row.get(f'{label}/cider'), row.get(
                f'{label}/empty')
            cells.append('-' if not cider else
                         f"{fmt(cider, 1, 100)} ({empty['mean']:.0f})")
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot_budget(summary: dict, path: str) -> None:
    import matplotlib
    import matplotlib.ticker
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    for name, label, color in (('mdc', 'MDC', 'C0'), ('cap', 'Cap', 'C1')):
        points = summary['budget'].get(name, {})
        mults = sorted(points, key=int)
        for ax, key in ((ax1, 'probe'), (ax2, 'nll')):
            xs = [int(m) for m in mults if points[m].get(key)]
            ys = [points[str(m)][key]['mean'] for m in xs]
            err = [points[str(m)][key]['spread'] for m in xs]
            if xs:
                ax.errorbar(xs, ys, yerr=err, marker='o', color=color,
                            label=label, capsize=3)
    ax1.set(xscale='log', xlabel='budget (x 1,200 iterations)',
            ylabel='linear probe, %', title='Fashion-MNIST probe')
    ax2.set(xscale='log', xlabel='budget (x 1,200 iterations)',
            ylabel='nats per real token', title='val caption NLL '
            '(MDC: left to right)')
    ax1.axhline(PIXELS_PROBE, color='gray', ls='--', lw=1,
                label=f'raw pixels ({PIXELS_PROBE})')
    for ax in (ax1, ax2):
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xticks([1, 2, 4], ['1x', '2x', '4x'])
        ax.legend()
    fig.tight_layout()
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp.png'
    fig.savefig(tmp, dpi=110)
    os.replace(tmp, path)


def copy_raw(summary: dict, root: str, out: str) -> None:
    """Each run's final scalars and diagnostics into ``out``."""
    for base, run in summary['runs'].items():
        scalars = last_val_scalars(run['path'])
        dest = osp.join(out, base)
        os.makedirs(dest, exist_ok=True)
        atomic_dump_json(scalars, osp.join(dest, 'final_scalars.json'),
                         indent=1)
        for extra in ('done', ):
            src = osp.join(run['path'], extra)
            if osp.isfile(src) and osp.abspath(src) != osp.abspath(
                    osp.join(dest, extra)):
                shutil.copyfile(src, osp.join(dest, extra))
        diag = osp.join(root, f'diag_{base}.json')
        if osp.isfile(diag) and osp.abspath(diag) != osp.abspath(
                osp.join(out, f'diag_{base}.json')):
            shutil.copyfile(diag, osp.join(out, f'diag_{base}.json'))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('root')
    p.add_argument('--committed', help='folder of the committed 1x runs')
    p.add_argument('--out', help='folder for summary.json and raw copies')
    p.add_argument('--plot', help='PNG of probe and NLL against budget')
    args = p.parse_args()
    summary = collect(args.root, args.committed)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        copy_raw(summary, args.root, args.out)
        for run in summary['runs'].values():
            run['path'] = osp.relpath(run['path'])
        atomic_dump_json(summary, osp.join(args.out, 'summary.json'),
                         indent=1)
    if args.plot:
        plot_budget(summary, args.plot)
    print(budget_table(summary))
    print()
    print(ablation_table(summary))


if __name__ == '__main__':
    main()
