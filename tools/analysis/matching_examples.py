"""Figure: the Fashion minimal pairs of the matching benchmark, with each
scorer's verdict.

    python tools/analysis/matching_examples.py \
        --result Cap work_dirs/matching/cap_seed0.json \
        --result "MDC ELBO-16" work_dirs/matching/mdc_seed0_elbo-16.json \
        --out docs/images/fashion_matching_pairs.png

One row per negative kind (the first pair of each): image A, image B, the
two captions, and per result whether the scorer ranked the true caption
first for image A and for image B (from the results' per-case scores, so
the figure shows what was measured).
"""
import argparse
import json
import textwrap
from typing import Dict, List, Tuple

from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

import mdc_plugin  # noqa: F401  (registers the components)
from mdc_plugin.datasets.fashion.matching import NEGATIVE_TYPES


def verdicts(path: str) -> Dict[str, bool]:
    """sample_id -> whether the true caption scored strictly highest."""
    with open(path) as f:
        cases = json.load(f)['cases']
    out = {}
    for case in cases:
        scores, true = case['scores'], case['true_index']
        out[case['sample_id']] = all(scores[true] > s for k, s in
                                     enumerate(scores) if k != true)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--result', nargs=2, action='append', default=[],
                   metavar=('NAME', 'JSON'),
                   help='a tools/analysis/image_text_matching.py result '
                   'on --benchmark fashion')
    p.add_argument('--out', required=True, help='PNG to write')
    args = p.parse_args()
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    init_default_scope('mmpretrain')
    dataset = DATASETS.build(dict(type='FashionSceneMatching', split='val',
                                  pipeline=[]))
    firsts: List[Tuple[dict, dict]] = []
    for kind in NEGATIVE_TYPES:
        index = next(i for i in range(0, len(dataset), 2)
                     if dataset[i]['group'] == kind)
        firsts.append((dataset[index], dataset[index + 1]))
    results = [(name, verdicts(path)) for name, path in args.result]
    fig, axes = plt.subplots(len(firsts), 3, figsize=(11, 2.6 * len(firsts)),
                             gridspec_kw=dict(width_ratios=[1, 1, 3.2]))
    for row, (a, b) in zip(axes, firsts):
        for ax, case, tag in ((row[0], a, 'A'), (row[1], b, 'B')):
            ax.imshow(case['img'], cmap='gray', vmin=0, vmax=255)
            ax.set_title(f"{case['group']}: image {tag}", fontsize=9)
            ax.axis('off')
        lines = [f'A: {a["caption_options"][0]}',
                 f'B: {a["caption_options"][1]}', '']
        for name, right in results:
            marks = ['right' if right.get(c['sample_id']) else 'wrong'
                     for c in (a, b)]
            lines.append(f'{name}: image A {marks[0]}, image B {marks[1]}')
        text = '\n'.join('\n'.join(textwrap.wrap(line, 70)) or ' '
                         for line in lines)
        row[2].text(0, 0.5, text, va='center', fontsize=8.5,
                    family='monospace')
        row[2].axis('off')
    fig.suptitle('Fashion minimal pairs: each caption is true of one image '
                 'of its pair and false of the other', fontsize=10)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
