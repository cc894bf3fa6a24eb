"""Tables over seeds of ``decoding_speed.py`` reports.

    python tools/benchmarks/collect_decoding_speed.py \\
        --group '1x' work_dirs/bench/fashion_seed0.json \\
                     work_dirs/bench/fashion_seed1.json \\
        --group '4x' work_dirs/bench/fashion_4x_seed0.json \\
        --out docs/results_data/decoding_speed/summary.json

For each group (checkpoints of one training budget, one report per seed)
and decoder: the CIDEr change against the same checkpoint's one-token-per-
step decoding, empty captions, decoder positions per caption and the speed
ratio to AR at each batch size, as the mean over seeds +- half the range,
and whether every seed stays within ``--quality-bound`` percent. Prints the
markdown tables (and writes them next to ``--out`` as ``.md``).
"""
import argparse
import json
import os.path as osp
from typing import Dict, List

from mdc_plugin.utils.atomic_io import atomic_dump_json, atomic_write_bytes


def spread(values: List[float]) -> Dict[str, float]:
    """Mean and half the range of ``values``."""
    return dict(mean=sum(values) / len(values),
                half_range=(max(values) - min(values)) / 2, n=len(values))


def cell(stat: Dict[str, float], digits: int = 2, suffix: str = '') -> str:
    text = f'{stat["mean"]:.{digits}f}{suffix}'
    if stat['n'] > 1:
        text += f' ± {stat["half_range"]:.{digits}f}'
    return text


def collect_group(reports: List[dict], bound: float) -> Dict[str, dict]:
    """Decoder -> its statistics over the group's reports (seeds)."""
    names = list(reports[0]['rows'])
    for report in reports[1:]:
        if list(report['rows']) != names:
            raise ValueError('the reports of a group must time the same '
                             'decoders')
    batch_keys = [k for k in reports[0]['rows'][names[0]]
                  if k.startswith('batch')]
    rows = {}
    for name in names:
        seeds = [r['rows'][name] for r in reports]
        row = dict(cider=spread([s['cider'] for s in seeds]),
                   empty_max=max(s['empty'] for s in seeds),
                   positions=spread([s['decoder_positions_per_caption']
                                     for s in seeds]))
        change = [s.get('cider_vs_one_token_per_step_pct') for s in seeds]
        if None not in change:  # AR, or an untrained MDC scoring 0
            row['cider_change_pct'] = spread(change)
            row['within_bound_every_seed'] = all(c >= -bound for c in change)
        for key in batch_keys:
            row[f'{key}_ratio_vs_AR'] = spread(
                [s[key]['ratio_vs_AR'] for s in seeds])
        rows[name] = row
    return rows


def table(rows: Dict[str, dict], bound: float) -> str:
    batch_keys = [k[:-len('_ratio_vs_AR')] for k in next(iter(rows.values()))
                  if k.endswith('_ratio_vs_AR')]
    head = ['decoder', 'CIDEr', 'vs one token per step',
            f'within {bound:g}% (every seed)', 'empty (max)',
            'decoder positions per caption'] + [
                f'{k.replace("batch", "batch ")}: vs AR' for k in batch_keys]
    lines = ['| ' + ' | '.join(head) + ' |', '|' + ' --- |' * len(head)]
    for name, row in rows.items():
        change = row.get('cider_change_pct')
        cells = [name, cell(row['cider'], 1),
                 cell(change, 1, '%') if change else '',
                 ('yes' if row['within_bound_every_seed'] else 'no')
                 if change else '',
                 str(row['empty_max']), cell(row['positions'], 1)]
        cells += [cell(row[f'{k}_ratio_vs_AR']) for k in batch_keys]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--group', nargs='+', action='append', required=True,
                   metavar=('NAME', 'REPORT'),
                   help='a name and its reports (one per seed)')
    p.add_argument('--quality-bound', type=float, default=2.0,
                   help='allowed CIDEr loss in percent')
    p.add_argument('--out', help='summary JSON (and a .md beside it)')
    args = p.parse_args(argv)
    for group in args.group:
        if len(group) < 2:
            p.error(f'--group {group[0]} names no report')
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    summary, text = {}, []
    for name, *paths in args.group:
        reports = []
        for path in paths:
            if not osp.isfile(path):
                raise SystemExit(f'report not found: {path}')
            with open(path) as f:
                reports.append(json.load(f))
        summary[name] = dict(reports=paths, rows=collect_group(
            reports, args.quality_bound))
        text.append(f'### {name} ({len(paths)} seed'
                    f'{"s" if len(paths) > 1 else ""})\n\n'
                    + table(summary[name]['rows'], args.quality_bound))
    print('\n\n'.join(text))
    if args.out:
        atomic_dump_json(summary, args.out, indent=2)
        atomic_write_bytes(('\n\n'.join(text) + '\n').encode(),
                           osp.splitext(args.out)[0] + '.md')


if __name__ == '__main__':
    main()
