"""Turn the outputs of tools/analysis/reproduce_results.sh into tables and a
plot for docs/results_shapes.md.

    python tools/analysis/collect_results.py work_dirs/results \
        --plot docs/images/mdc_sampling_steps.png > tables.md

Reads, per run directory ``RUN`` under the results folder:
``RUN/probe_mean.json``, ``RUN/probe_cls.json`` and ``RUN/probe_attn.json``
(tools/linear_probe.py),
``RUN/test.json`` (tools/test.py --out) and, for the MDC run,
``RUN/steps.json`` (tools/analysis/sampling_steps.py) and, for caption
models, ``RUN/shape_acc.json`` (tools/analysis/shape_token_accuracy.py),
``RUN/probe_layers_{mean,attn}.json`` (tools/analysis/layerwise_probe.py)
and ``RUN/probe_map.json`` (tools/linear_probe.py --pooling attn
--attn-mlp-ratio 4).
Missing files are shown as '-' so a partial reproduction still renders.
"""
import argparse
import json
import os.path as osp
from typing import Optional

RUNS = [
    ('mdc', 'MDC (masked diffusion), t ~ U[0.001, 1]'),
    ('cap', 'Cap (autoregressive)'),
    ('clip', 'CLIP-style contrastive'),
    ('random', 'random init (no pretraining)'),
    ('supervised', 'reference: supervised on the probe label itself'),
]
ABLATION = [
    ('mdc', 't ~ U[0.001, 1] (default)'),
    ('mdc_t-low', 't ~ U[0.001, 0.4] (light masking)'),
    ('mdc_t-high', 't ~ U[0.6, 1] (heavy masking)'),
    ('mdc_uniform', 't ~ U[0.001, 1], unweighted mean over masked tokens'),
    ('mdc_clip5', 't ~ U[0.001, 1], gradient clipped at 5 instead of 1'),
]

LONGER = [
    ('cap', 'Cap, 8 epochs'),
    ('cap_16ep', 'Cap, 16 epochs'),
    ('mdc_t-high', 'MDC t ~ U[0.6, 1], 8 epochs'),
    ('mdc_t-high_16ep', 'MDC t ~ U[0.6, 1], 16 epochs'),
    ('random', 'random init (no pretraining)'),
]
LAYERWISE = [
    ('random', 'random init'),
    ('supervised', 'supervised reference'),
    ('cap', 'Cap'),
    ('mdc', 'MDC, t ~ U[0.001, 1]'),
    ('mdc_t-high', 'MDC, t ~ U[0.6, 1]'),
    ('clip', 'CLIP-style'),
    ('cap_16ep', 'Cap, 16 epochs'),
    ('mdc_t-high_16ep', 'MDC t ~ U[0.6, 1], 16 epochs'),
]


def load(path: str) -> Optional[dict]:
    if not osp.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def fmt(value, scale: float = 1.0, digits: int = 1) -> str:
    return '-' if value is None else f'{value * scale:.{digits}f}'


def probe(root: str, run: str, pooling: str) -> Optional[float]:
    result = load(osp.join(root, run, f'probe_{pooling}.json'))
    return None if result is None else result['probe/accuracy']


def test_metric(root: str, run: str, key: str) -> Optional[float]:
    result = load(osp.join(root, run, 'test.json'))
    if result is None:
        return None
    return result['metrics'].get(key)


def shape_acc(root: str, run: str) -> Optional[float]:
    result = load(osp.join(root, run, 'shape_acc.json'))
    return None if result is None else result['shape_token_accuracy']


def comparison_table(root: str, runs) -> str:
    lines = [
        '| pretraining | probe acc. (mean-pooled) | probe acc. (cls) | '
        'probe acc. (attn-pooled) | shape-word acc. | BLEU-4 | CIDEr | '
        'CLIPScore | RefCLIPScore |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- |'
    ]
    for run, label in runs:
        lines.append('| {} | {} | {} | {} | {} | {} | {} | {} | {} |'.format(
            label, fmt(probe(root, run, 'mean')), fmt(probe(root, run, 'cls')),
            fmt(probe(root, run, 'attn')), fmt(shape_acc(root, run)),
            fmt(test_metric(root, run, 'caption/BLEU-4'), 100),
            fmt(test_metric(root, run, 'caption/CIDEr'), 100),
            fmt(test_metric(root, run, 'caption/CLIPScore'), 1, 3),
            fmt(test_metric(root, run, 'caption/RefCLIPScore'), 1, 3)))
    return '\n'.join(lines)


def steps_table(root: str) -> str:
    result = load(osp.join(root, 'mdc', 'steps.json'))
    if result is None:
        return '(not run)'
    lines = ['| steps | BLEU-4 | CIDEr | ROUGE-L | captions/s (CPU) |',
             '| --- | --- | --- | --- | --- |']
    for row in result['rows']:
        lines.append('| {} | {} | {} | {} | {} |'.format(
            row['steps'], fmt(row.get('caption/BLEU-4'), 100),
            fmt(row.get('caption/CIDEr'), 100),
            fmt(row.get('caption/ROUGE-L'), 100), row['captions_per_s']))
    return '\n'.join(lines)


def layer_accuracies(root: str, run: str, pooling: str) -> Optional[list]:
    result = load(osp.join(root, run, f'probe_layers_{pooling}.json'))
    if result is None:
        return None
    return [(row['layer'], row['accuracy']) for row in result['layers']]


def layerwise_table(root: str, pooling: str) -> str:
    rows = [(label, layer_accuracies(root, run, pooling))
            for run, label in LAYERWISE]
    rows = [(label, acc) for label, acc in rows if acc]
    if not rows:
        return '(not run)'
    blocks = [layer for layer, _ in rows[0][1]]
    lines = ['| backbone | ' + ' | '.join(
        f'block {b}' for b in blocks) + ' |',
             '| --- |' + ' --- |' * len(blocks)]
    for label, acc in rows:
        by_block = dict(acc)
        lines.append(f'| {label} | ' + ' | '.join(
            fmt(by_block.get(b)) for b in blocks) + ' |')
    return '\n'.join(lines)


def map_table(root: str) -> str:
    """Attention probe without and with the MAP head's MLP."""
    rows = [(label, probe(root, run, 'attn'), probe(root, run, 'map'))
            for run, label in LAYERWISE]
    rows = [row for row in rows if row[2] is not None]
    if not rows:
        return '(not run)'
    lines = ['| backbone | attention + LayerNorm + linear | MAP: attention + '
             'MLP + LayerNorm + linear |', '| --- | --- | --- |']
    for label, attn, map_acc in rows:
        lines.append(f'| {label} | {fmt(attn)} | {fmt(map_acc)} |')
    return '\n'.join(lines)


def plot_layers(root: str, out: str) -> None:
    """Probe accuracy against ViT block, one panel per pooling."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    poolings = [p for p in ('mean', 'attn') if any(
        layer_accuracies(root, run, p) for run, _ in LAYERWISE)]
    if not poolings:
        return
    fig, axes = plt.subplots(1, len(poolings), figsize=(5 * len(poolings),
                                                        3.6), dpi=120,
                             squeeze=False)
    for ax, pooling in zip(axes[0], poolings):
        for run, label in LAYERWISE:
            acc = layer_accuracies(root, run, pooling)
            if acc:
                style = '--' if run in ('random', 'supervised') else '-'
                ax.plot(*zip(*acc), 'o' + style, label=label, markersize=4)
        ax.set_xlabel('ViT block (5 = last, after the final norm)')
        ax.set_ylabel('probe accuracy (%)')
        ax.set_title(f'{pooling}-pooled probe per block (shapes val)')
        ax.axhline(12.5, color='grey', lw=0.8, ls=':')
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=7, loc='upper left', bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(out)


def plot_steps(root: str, out: str) -> None:
    result = load(osp.join(root, 'mdc', 'steps.json'))
    if result is None:
        return
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = sorted(result['rows'], key=lambda r: r['steps'])
    steps = [r['steps'] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=120)
    for key, label in (('caption/CIDEr', 'CIDEr'),
                       ('caption/BLEU-4', 'BLEU-4')):
        ax.plot(steps, [100 * r[key] for r in rows], 'o-', label=label)
    ax.set_xscale('log', base=2)
    ax.set_xticks(steps, [str(s) for s in steps])
    ax.set_xlabel('denoising steps (15 = one token per step)')
    ax.set_ylabel('score (x100)')
    ax.set_title('MDC caption quality vs sampling steps (shapes test)')
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out)


def plot_examples(root: str, out: str, num: int = 6) -> None:
    """Test images with the MDC, Cap and CLIP captions and a reference.

    Reads the ``test.predictions.pkl`` files tools/test.py wrote in this
    reproduction (our own outputs; never point this at foreign files).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import mmengine
    runs = [r for r in ('mdc', 'cap', 'clip')
            if osp.exists(osp.join(root, r, 'test.predictions.pkl'))]
    if not runs:
        return
    preds = {r: mmengine.load(osp.join(root, r, 'test.predictions.pkl'))
             for r in runs}
    cols = 3
    rows = (num + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 4.4 * rows),
                             dpi=110)
    for i, ax in enumerate(axes.flat):
        sample = preds[runs[0]][i]
        ax.imshow(plt.imread(sample['img_path']))
        ax.axis('off')
        lines = [f'ref: {sample["gt_caption"][0]}'] + [
            f'{r.upper()}: {preds[r][i]["pred_caption"]}' for r in runs]
        ax.text(0, -0.03, '\n'.join(_wrap(line, 44) for line in lines),
                transform=ax.transAxes, va='top', fontsize=7)
    fig.subplots_adjust(left=0.02, right=0.98, top=0.98, bottom=0.2,
                        hspace=0.75, wspace=0.08)
    fig.savefig(out)


def _wrap(text: str, width: int) -> str:
    import textwrap
    return '\n'.join(textwrap.wrap(text, width))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('root')
    parser.add_argument('--plot', help='save the steps plot here (PNG)')
    parser.add_argument('--examples', help='save example captions (PNG)')
    parser.add_argument('--layers-plot',
                        help='save the layer-wise probe plot here (PNG)')
    args = parser.parse_args()
    print('## Pretraining comparison\n')
    print(comparison_table(args.root, RUNS))
    print('\n## Masking-ratio ablation\n')
    print(comparison_table(args.root, ABLATION))
    print('\n## Longer training\n')
    print(comparison_table(args.root, LONGER))
    for pooling in ('mean', 'attn'):
        print(f'\n## Layer-wise probe ({pooling}-pooled)\n')
        print(layerwise_table(args.root, pooling))
    print('\n## MAP probe\n')
    print(map_table(args.root))
    print('\n## MDC sampling steps\n')
    print(steps_table(args.root))
    if args.plot:
        plot_steps(args.root, args.plot)
    if args.examples:
        plot_examples(args.root, args.examples)
    if args.layers_plot:
        plot_layers(args.root, args.layers_plot)


if __name__ == '__main__':
    main()
