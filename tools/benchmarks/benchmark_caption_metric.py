"""Time CaptionMetric against pycocoevalcap's COCOEvalCap, same data.

Both score BLEU-1..4, METEOR, ROUGE-L and CIDEr on a reproducible synthetic
corpus (``synthetic_captions.py`` beside this script, default 5,000 images x 5
references), in one process; the script checks that every score agrees to
1e-4 and prints the times and ratios:

* ``COCOEvalCap``: ``COCO`` + ``loadRes`` + ``evaluate()`` (SPICE stubbed
  out, it would download CoreNLP), as MMPretrain's ``COCOCaption`` runs it;
* ``CaptionMetric, cold``: metric built, all samples processed and
  evaluated with nothing started before (METEOR JVM boot included);
* ``CaptionMetric, warm``: ``process`` + ``evaluate`` once the METEOR JVM
  the metric starts at construction is up and warmed, i.e. what a Runner
  sees (the JVM boots while the model runs inference) and what every later
  validation sees.

Example::

    python tools/benchmarks/benchmark_caption_metric.py --num-images 5000 \
        --repeats 3
"""
import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Tuple

KEYS = ('BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'METEOR', 'ROUGE-L', 'CIDEr')


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--num-images', type=int, default=5000)
    parser.add_argument('--refs', type=int, default=5,
                        help='references per image')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--repeats', type=int, default=1,
                        help='timed runs of each method (median reported)')
    parser.add_argument('--meteor-workers', type=int, default=1)
    parser.add_argument('--out', help='also write the figures to this JSON')
    return parser.parse_args()


def timed(fn: Callable) -> Tuple[float, object]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def java_version() -> str:
    try:
        proc = subprocess.run(['java', '-version'], capture_output=True,
                              text=True, check=False)
        return proc.stderr.splitlines()[0]
    except (OSError, IndexError):
        return 'none'


def main() -> None:
    args = parse_args()
    from coco_reference import run_coco_eval_cap  # siblings of this file
    from synthetic_captions import make_corpus

    from mdc_plugin.evaluation.functional import shared_meteor_scorer
    from mdc_plugin.evaluation.metrics import CaptionMetric
    from mdc_plugin.utils.atomic_io import atomic_dump_json

    refs, preds, _ = make_corpus(args.num_images, args.refs, seed=args.seed)
    samples = [dict(image_id=i, pred_caption=preds[i], gt_caption=refs[i])
               for i in refs]
    scores = ['BLEU', 'METEOR', 'ROUGE-L', 'CIDEr']

    def caption_metric(warmup: int) -> Dict[str, float]:
        metric = CaptionMetric(scores=scores,
                               meteor_workers=args.meteor_workers,
                               meteor_warmup=warmup)
        for start in range(0, len(samples), 64):
            metric.process(None, samples[start:start + 64])
        out = metric.evaluate(len(samples))
        return {k.split('/', 1)[1]: v for k, v in out.items()}

    print(f'{args.num_images} images x {args.refs} references (seed '
          f'{args.seed}); {os.cpu_count()} CPUs, load average '
          f'{os.getloadavg()[0]:.2f}; Python {platform.python_version()}; '
          f'{java_version()}', flush=True)

    # 1. cold: nothing started yet in this process
    cold_s, ours = timed(lambda: caption_metric(warmup=0))
    shared_meteor_scorer(args.meteor_workers).close()
    print(f'CaptionMetric, cold: {cold_s:.2f} s', flush=True)

    coco_times: List[float] = []
    warm_times: List[float] = []
    reference: Dict[str, float] = {}
    for _ in range(args.repeats):
        t, (reference, _) = timed(lambda: run_coco_eval_cap(refs, preds))
        coco_times.append(t)
        print(f'COCOEvalCap: {t:.2f} s', flush=True)
        # warm: the JVM the metric starts is up (as after model inference)
        shared_meteor_scorer(args.meteor_workers).wait_ready(
            finish_warmup=True)
        t, ours = timed(lambda: caption_metric(warmup=3000))
        warm_times.append(t)
        print(f'CaptionMetric, warm: {t:.2f} s', flush=True)

    worst = max(abs(ours[k] - reference[k]) for k in KEYS)
    coco = statistics.median(coco_times)
    warm = statistics.median(warm_times)
    print('\n| score | CaptionMetric | COCOEvalCap |\n|---|---|---|')
    for k in KEYS:
        print(f'| {k} | {ours[k]:.6f} | {reference[k]:.6f} |')
    print(f'\nlargest difference: {worst:.2e} (required <= 1e-4)')
    print(f'COCOEvalCap           {coco:7.2f} s')
    print(f'CaptionMetric (warm)  {warm:7.2f} s  ratio {coco / warm:.2f}x')
    print(f'CaptionMetric (cold)  {cold_s:7.2f} s  ratio {coco / cold_s:.2f}x')
    if args.out:
        atomic_dump_json(dict(num_images=args.num_images, refs=args.refs,
                              seed=args.seed, coco_s=coco_times,
                              warm_s=warm_times, cold_s=cold_s,
                              max_abs_diff=worst, scores=ours,
                              reference=reference), args.out, indent=1)
    if worst > 1e-4:
        sys.exit('scores differ by more than 1e-4')


if __name__ == '__main__':
    main()
