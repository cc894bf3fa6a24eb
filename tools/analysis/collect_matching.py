"""Collect the Fashion image-text matching results of
tools/analysis/reproduce_matching.sh into one table.

    python tools/analysis/collect_matching.py work_dirs/matching \
        --out docs/results_data/matching

Each result ``NAME_seedS[_SCORE].json`` becomes a row ``NAME[_SCORE]`` with
its seeds; the row gives mean ± half the range over seeds (the convention
of docs/results.md) of the accuracy on all cases and per negative kind, the
decoder passes per image-caption pair and, from ``--cost``, the time per
pair measured with every scorer on the same cases one after another (and
its ratio to Cap's). ``--out`` gets ``summary.json`` (every
number with its per-seed values; the per-case scores stay in the source
folder) and ``table.md``.
"""
import argparse
import glob
import json
import os
import os.path as osp
import re
from collections import defaultdict
from typing import Dict, List

from mdc_plugin.utils.atomic_io import atomic_dump_json, atomic_write_bytes

KINDS = ('swap', 'move', 'count', 'replace')
#: Row order and labels of the table (rows not listed come last).
LABELS = {
    'random-cap': 'random init, Cap decoder (exact)',
    'random-mdc': 'random init, MDC decoder (ELBO, 16 draws)',
    'cap-blind': 'blind Cap (image zeroed in training and test)',
    'mdc-blind_elbo-16': 'blind MDC, ELBO 16 draws',
    'mdc-blind_masked-once': 'blind MDC, masked once',
    'clip': 'CLIP-style (cosine)',
    'cap': 'Cap, exact log-likelihood (sum)',
    'cap_mean': 'Cap, exact log-likelihood (mean per token)',
    'cappa': 'CapPa, exact log-likelihood',
    'cap_2x': 'Cap 2x budget, exact',
    'mdc_masked-once': 'MDC, heuristic: masked once',
    'mdc_one-at-a-time': 'MDC, heuristic: one token masked at a time',
    'mdc_left-to-right': 'MDC, exact left-to-right chain rule',
    'mdc_elbo-1': 'MDC, Monte-Carlo ELBO, 1 draw',
    'mdc_elbo-4': 'MDC, Monte-Carlo ELBO, 4 draws',
    'mdc_elbo-16': 'MDC, Monte-Carlo ELBO, 16 draws',
    'mdc_elbo-16_mean': 'MDC, Monte-Carlo ELBO, 16 draws (mean per token)',
    'mdc_elbo-4_independent': 'MDC, ELBO 4 draws, masks not shared',
    'mdc_elbo-16_independent': 'MDC, ELBO 16 draws, masks not shared',
    'mdc_2x_elbo-16': 'MDC 2x budget, ELBO 16 draws',
    'mdc_2x_masked-once': 'MDC 2x budget, masked once',
    'cap_4x': 'Cap 4x budget, exact',
    'mdc_4x_elbo-16': 'MDC 4x budget, ELBO 16 draws',
    'mdc_4x_masked-once': 'MDC 4x budget, masked once',
}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('src', help='folder of the result JSON files')
    p.add_argument('--cost', help="folder of the 'cost' lane's results (every "
                   'scorer on the same cases, one after another, idle): '
                   'their ms per pair replace the loaded runs\' timings')
    p.add_argument('--out', help='folder for summary.json and table.md')
    return p.parse_args()


def spread(values: List[float]) -> Dict[str, float]:
    """Mean and half the range (0 for one value)."""
    return dict(mean=sum(values) / len(values),
                half_range=(max(values) - min(values)) / 2)


def collect(src: str) -> Dict[str, dict]:
    """Rows keyed by name without the seed, each with its seeds' numbers."""
    rows: Dict[str, dict] = defaultdict(lambda: dict(seeds={}))
    for path in sorted(glob.glob(osp.join(src, '*.json'))):
        name = osp.splitext(osp.basename(path))[0]
        match = re.match(r'(.+?)_seed(\d+)(.*)$', name)
        if not match:
            continue
        row_name = match.group(1) + match.group(3)
        with open(path) as f:
            report = json.load(f)
        m = report['metrics']
        rows[row_name]['seeds'][int(match.group(2))] = dict(
            accuracy=m['matching/accuracy'],
            **{kind: m.get(f'matching/accuracy/{kind}', float('nan'))
               for kind in KINDS},
            ties=m['matching/ties'], cases=m['matching/num_cases'],
            ms_per_pair=report['cost']['ms_per_pair'],
            decoder_passes_per_pair=report['cost'][
                'decoder_passes_per_pair'],
            score_options=report['score_options'],
            checkpoint=report['checkpoint'], config=report['config'])
    for row in rows.values():
        seeds = list(row['seeds'].values())
        for key in ('accuracy',) + KINDS + ('ms_per_pair', ):
            row[key] = spread([s[key] for s in seeds])
        row['decoder_passes_per_pair'] = seeds[0]['decoder_passes_per_pair']
    return dict(rows)


def _cell_of(row: dict):
    """key -> 'mean ± half range' of ``row`` (the mean alone for one
    seed)."""
    def cell(key: str) -> str:
        v = row[key]
        if len(row['seeds']) == 1:
            return f"{v['mean']:.1f}"
        return f"{v['mean']:.1f} ± {v['half_range']:.1f}"
    return cell


def add_cost(rows: Dict[str, dict], folder: str) -> None:
    """Each row's ms per pair and its ratio to Cap's from the cost lane
    (``row['idle_cost']``); rows it did not time keep the loaded timing."""
    timed = collect(folder)
    cap = timed.get('cap', {}).get('ms_per_pair', {}).get('mean')
    for name, row in timed.items():
        if name in rows:
            ms = row['ms_per_pair']['mean']
            rows[name]['idle_cost'] = dict(
                ms_per_pair=ms, vs_cap=ms / cap if cap else None,
                cases=next(iter(row['seeds'].values()))['cases'])


def table(rows: Dict[str, dict]) -> str:
    """The markdown table of docs/results.md."""
    order = [k for k in LABELS if k in rows] + sorted(set(rows) - set(LABELS))
    head = ('| scorer | seeds | all cases, % | swap | move | count | '
            'replace | decoder passes / pair | ms / pair (x Cap) |')
    lines = [head, '|' + ' --- |' * 9]
    for name in order:
        row = rows[name]
        cell = _cell_of(row)
        idle = row.get('idle_cost')
        cost = (f"{idle['ms_per_pair']:.1f} ({idle['vs_cap']:.1f}x)"
                if idle and idle['vs_cap'] else '-')
        lines.append(
            f"| {LABELS.get(name, name)} | {len(row['seeds'])} | "
            f"{cell('accuracy')} | " + ' | '.join(cell(k) for k in KINDS) +
            f" | {row['decoder_passes_per_pair']:.3g} | {cost} |")
    return '\n'.join(lines) + '\n'


def main() -> None:
    args = parse_args()
    rows = collect(args.src)
    if not rows:
        raise SystemExit(f'no NAME_seedS*.json results in {args.src}')
    if args.cost:
        add_cost(rows, args.cost)
    text = table(rows)
    print(text)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        atomic_dump_json(rows, osp.join(args.out, 'summary.json'), indent=1)
        atomic_write_bytes(text.encode(), osp.join(args.out, 'table.md'))


if __name__ == '__main__':
    main()
