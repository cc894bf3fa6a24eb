"""Image-text matching accuracy of a captioner (or CLIP-style model) by
caption likelihood, on the Fashion minimal pairs or an ARO benchmark.

    python tools/analysis/image_text_matching.py CONFIG CHECKPOINT \
        --benchmark fashion|aro-vg-relation|aro-vg-attribution|\
aro-coco-order|aro-flickr30k-order \
        [--data-root DIR] [--score-options method=elbo draws=16 ...] \
        [--batch-size 32] [--max-cases N] [--seed 0] [--out result.json]

CHECKPOINT may be ``random``: the config's model at PyTorch's default
initialisation, seeded by ``--seed`` (the random-init reference).

Each case is an image and K candidate captions, one true; the model scores
every candidate (``model.score``: Cap/CapPa the exact log-likelihood, MDC a
log-likelihood estimate chosen by ``method``, CLIP-style the cosine) and is
right when the true one scores highest. Prints a progress bar, then one
summary line; ``--out`` writes the metrics, the cost and every case's
scores as JSON (atomically).
"""
import argparse
import json
import sys
import time
from typing import Any, Dict, List

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmengine.utils import ProgressBar

import mdc_plugin  # noqa: F401  (registers the components)
from mdc_plugin.apis import init_captioner
from mdc_plugin.evaluation.matching_eval import MATCHING_KEYS, score_and_match
from mdc_plugin.models.captioners.scoring import scoring_refusal
from mdc_plugin.utils.atomic_io import atomic_dump_json
from mdc_plugin.utils.cli import merge_cfg_options

#: Benchmark name -> data set config (``data_root`` is filled from
#: ``--data-root``; ARO needs it, Fashion searches as the training does).
BENCHMARKS: Dict[str, Dict[str, Any]] = {
    'fashion': dict(type='FashionSceneMatching', split='val'),
    'aro-vg-relation': dict(type='AROVGRelation'),
    'aro-vg-attribution': dict(type='AROVGAttribution'),
    'aro-coco-order': dict(type='AROCOCOOrder'),
    'aro-flickr30k-order': dict(type='AROFlickr30kOrder'),
}
#: Benchmarks whose images are cropped to the relation's box (as ARO does).
CROPPED = ('aro-vg-relation', 'aro-vg-attribution')
#: Metric options per benchmark (``--metric-options`` overrides them):
#: every group's accuracy; VG-Attribution's macro mean over the attribute
#: pairs with at least 25 cases, as ARO's notebook reports it.
METRIC_DEFAULTS: Dict[str, Dict[str, Any]] = {
    'aro-vg-attribution': dict(min_group_size=25),
}


def positive(text: str) -> int:
    """argparse type: an int >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f'{value} is not >= 1')
    return value


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint', help="a checkpoint, or 'random'")
    p.add_argument('--benchmark', required=True, choices=sorted(BENCHMARKS))
    p.add_argument('--data-root', help='the benchmark folder (ARO: the '
                   'folder of its JSON file and images; Fashion: the IDX '
                   'files, default: the training search path)')
    p.add_argument('--dataset-options', nargs='+', action=DictAction,
                   default={}, help='extra data set arguments, e.g. '
                   'pairs_per_type=100 (Fashion) or ann_file=x.json (ARO)')
    p.add_argument('--score-options', nargs='+', action=DictAction,
                   default={}, help="model.score options, e.g. "
                   "method=elbo draws=16 normalize=mean")
    p.add_argument('--metric-options', nargs='+', action=DictAction,
                   default={}, help='ImageTextMatchingAccuracy options, '
                   'e.g. min_group_size=25 (default per benchmark: '
                   'METRIC_DEFAULTS)')
    p.add_argument('--batch-size', type=positive, default=32,
                   help='images per batch (each with its K captions); '
                   'Monte-Carlo scores draw per batch, so they depend on it')
    p.add_argument('--max-cases', type=positive, default=None,
                   help='only the first N cases (quick checks; the Fashion '
                   'cases are ordered by negative kind, so a few cases '
                   'cover the first kinds only)')
    p.add_argument('--seed', type=int, default=0,
                   help="the initialisation seed of 'random'")
    p.add_argument('--device', default='cpu')
    p.add_argument('--out', help='JSON file for the result')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args(argv)


def matching_pipeline(cfg: Config, crop: bool) -> List[dict]:
    """The config's test pipeline made to carry caption options: no
    ``TokenizeCaption``, ``PackInputs`` packing :data:`MATCHING_KEYS`, and
    for ARO's Visual Genome sets ``CropToBox`` after loading."""
    try:
        steps = cfg.test_dataloader.dataset.pipeline
    except AttributeError as err:
        raise KeyError(f'{cfg.filename}: no test_dataloader.dataset.pipeline '
                       'to prepare the images with') from err
    out: List[dict] = []
    for step in steps:
        kind = step['type']
        if kind == 'TokenizeCaption':
            continue
        if kind == 'PackInputs':
            out.append(dict(type='PackInputs',
                            algorithm_keys=list(MATCHING_KEYS)))
            continue
        out.append(dict(step))
        if crop and kind == 'LoadCaptionImage':
            out.append(dict(type='CropToBox'))
    if not any(s['type'] == 'PackInputs' for s in out):
        raise KeyError(f'{cfg.filename}: the test pipeline has no '
                       'PackInputs step')
    return out


def build_loader(cfg: Config, args: argparse.Namespace):
    """The benchmark's dataloader with the config's image preparation."""
    dataset = dict(BENCHMARKS[args.benchmark], **args.dataset_options)
    if args.data_root:
        dataset['data_root'] = args.data_root
    elif args.benchmark != 'fashion':
        raise SystemExit(f'--benchmark {args.benchmark} needs --data-root '
                         '(the folder holding its JSON file and images; '
                         'see docs/data_preparation.md)')
    dataset['pipeline'] = matching_pipeline(cfg, args.benchmark in CROPPED)
    if args.max_cases:
        dataset['indices'] = args.max_cases
    return Runner.build_dataloader(dict(
        batch_size=args.batch_size, num_workers=0, dataset=dataset,
        sampler=dict(type='DefaultSampler', shuffle=False),
        collate_fn=dict(type='default_collate')))


def load_model(cfg: Config, args: argparse.Namespace) -> torch.nn.Module:
    """The model at ``checkpoint``, or seeded random init for 'random'."""
    if args.checkpoint == 'random':
        torch.manual_seed(args.seed)
        return init_captioner(cfg, None, device=args.device)
    return init_captioner(cfg, args.checkpoint, device=args.device)


def decoder_passes(model: torch.nn.Module, options: Dict[str, Any],
                   cases: List[dict], batch_size: int) -> float:
    """Text-model passes per image-caption pair, as run: ``draws`` for the
    ELBO; for the one-position-at-a-time methods the longest caption of
    each batch (words + eos), averaged over the batches; else 1."""
    method = options.get('method')
    if method == 'elbo':
        return float(options.get('draws', 1))
    if method not in ('one_at_a_time', 'left_to_right'):
        return 1.0
    tokenizer = model.head.tokenizer
    longest = [max(len(tokenizer.encode(c)) + 1
                   for case in cases[i:i + batch_size]
                   for c in case['caption_options'])
               for i in range(0, len(cases), batch_size)]
    return sum(longest) / len(longest)


def run(args: argparse.Namespace) -> Dict[str, Any]:
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options, args.config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    model = load_model(cfg, args)
    refusal = scoring_refusal(model)
    if refusal:  # before any data is read
        raise SystemExit(refusal)
    options = dict(getattr(model, 'score_cfg', {}), **args.score_options)
    metric = dict(type='ImageTextMatchingAccuracy', per_group=True,
                  **METRIC_DEFAULTS.get(args.benchmark, {}),
                  **args.metric_options)
    loader = build_loader(cfg, args)
    total = len(loader.dataset)
    print(f'{args.benchmark}: {total} cases; scoring with '
          f'{type(model).__name__} {json.dumps(options)}', flush=True)
    bar = ProgressBar(total, file=sys.stderr)
    result = score_and_match(model, loader, options, metric=metric,
                             on_batch=bar.update)
    sys.stderr.write('\n')
    metrics = {k: float(v) for k, v in result['metrics'].items()}
    return dict(
        benchmark=args.benchmark, config=args.config,
        checkpoint=args.checkpoint, seed=args.seed,
        model=type(model).__name__,
        head=type(getattr(model, 'head', model)).__name__,
        score_options=options, metric=metric, batch_size=args.batch_size,
        metrics=metrics,
        cost=dict(pairs=result['pairs'],
                  seconds=round(result['seconds'], 2),
                  ms_per_pair=round(1000 * result['seconds'] /
                                    result['pairs'], 3),
                  decoder_passes_per_pair=decoder_passes(
                      model, options, result['cases'], args.batch_size),
                  threads=torch.get_num_threads(), device=args.device),
        cases=result['cases'])


def summary(report: Dict[str, Any]) -> str:
    """One line: benchmark, model, accuracy, macro accuracy, cost."""
    m, c = report['metrics'], report['cost']
    return (f"{report['benchmark']} | {report['head']} "
            f"{json.dumps(report['score_options'])} | accuracy "
            f"{m['matching/accuracy']:.2f}% macro "
            f"{m['matching/macro_accuracy']:.2f}% | {c['pairs']} pairs in "
            f"{c['seconds']} s "
            f"({c['ms_per_pair']} ms/pair, {c['decoder_passes_per_pair']:g} "
            'decoder passes/pair)')


def main(argv=None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    report = run(args)
    report['wall_seconds'] = round(time.perf_counter() - start, 1)
    if args.out:
        atomic_dump_json(report, args.out, indent=1)
    print(summary(report), flush=True)


if __name__ == '__main__':
    main()
