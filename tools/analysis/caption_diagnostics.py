"""Likelihood and decoding diagnostics of a caption checkpoint on a split.

    python tools/analysis/caption_diagnostics.py CONFIG CHECKPOINT \
        [--split val] [--steps 8 35] [--remaskings low_confidence random] \
        [--block-lengths 0 9] [--elbo-draws 16] [--out diag.json] \
        [--cfg-options k=v ...]

Reports, on the config's val (or test) dataloader:

* nats per real token of the reference captions (the words and the first
  eos): exact teacher forcing for Cap / CapPa; for MDC the exact
  left-to-right chain rule and the Monte-Carlo negative ELBO of the padded
  caption (``--elbo-draws`` masks, t ~ U(0, 1]);
* caption scores (BLEU-4, ROUGE-L, CIDEr) and the number of empty captions
  for each decoding: Cap greedy; MDC for every ``steps x remasking x
  block_length`` (0 = one block, passed as ``block_length = L - 1``;
  combinations with more blocks than steps are skipped) plus strictly left
  to right (``block_length=1``, one token per step).
"""
import argparse
import json
import time

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

import mdc_plugin  # noqa: F401
from mdc_plugin.apis import init_captioner
from mdc_plugin.evaluation import caption_and_score, caption_likelihood
from mdc_plugin.utils.atomic_io import atomic_dump_json
from mdc_plugin.utils.cli import merge_cfg_options


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('checkpoint')
    p.add_argument('--split', choices=['val', 'test'], default='val')
    p.add_argument('--steps', type=int, nargs='+', default=[8, 35])
    p.add_argument('--remaskings', nargs='+',
                   default=['low_confidence', 'random'])
    p.add_argument('--block-lengths', type=int, nargs='+', default=[0, 9],
                   help='0 = the whole caption is one block (passed as '
                   'block_length = L - 1)')
    p.add_argument('--elbo-draws', type=int, default=16)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--max-batches', type=int, default=None,
                   help='only the first N batches (quick checks)')
    p.add_argument('--out', help='JSON file for the report')
    p.add_argument('--cfg-options', nargs='+', action=DictAction)
    return p.parse_args()


def decodings(model, args) -> list:
    """The decode options to score: Cap's default; MDC's grid and left to
    right."""
    keys = set(model.decode_keys)
    if 'block_length' not in keys:
        return [dict()]
    positions = model.head.max_length - 1
    out = []
    for steps in args.steps:
        for remasking in args.remaskings:
            for block in args.block_lengths:
                # one block spanning the caption: the same decoding as
                # block_length=None, which as an override would keep the
                # config's own block length
                block_length = positions if block == 0 else block
                if -(-positions // block_length) > steps:
                    continue
                out.append(dict(steps=steps, remasking=remasking,
                                block_length=block_length))
    left_to_right = dict(steps=positions, remasking='low_confidence',
                         block_length=1)
    if left_to_right not in out:
        out.append(left_to_right)
    return out


def run(args) -> dict:
    cfg = Config.fromfile(args.config)
    merge_cfg_options(cfg, args.cfg_options, args.config)
    model = init_captioner(cfg, args.checkpoint, device='cpu')
    loader_cfg = cfg.val_dataloader if args.split == 'val' else \
        cfg.test_dataloader
    loader = Runner.build_dataloader(loader_cfg)
    num = len(loader.dataset)
    print(f'{args.split}: {num} images; scoring the reference captions',
          flush=True)
    start = time.perf_counter()
    likelihood = caption_likelihood(model, loader, args.elbo_draws,
                                    args.seed, args.max_batches)
    likelihood['seconds'] = round(time.perf_counter() - start, 1)
    print(json.dumps(likelihood), flush=True)
    rows = []
    for options in decodings(model, args):
        result = caption_and_score(
            model, loader, dict(type='CaptionMetric',
                                scores=['BLEU', 'ROUGE-L', 'CIDEr']),
            decode=options, seed=args.seed, max_batches=args.max_batches,
            num_examples=num)
        preds = [r['pred'] for r in result['examples']]
        row = dict(options=options, images=result['images'],
                   empty_captions=sum(not p.strip() for p in preds),
                   captions_per_s=round(result['images'] /
                                        result['seconds'], 1),
                   metrics={k: float(v)
                            for k, v in result['metrics'].items()},
                   examples=preds[:5])
        rows.append(row)
        m = row['metrics']
        print(f"{json.dumps(options)}: CIDEr {100 * m['caption/CIDEr']:.1f}"
              f" BLEU-4 {100 * m['caption/BLEU-4']:.1f} empty "
              f"{row['empty_captions']}/{row['images']}", flush=True)
    return dict(config=args.config, checkpoint=args.checkpoint,
                split=args.split, cfg_options=args.cfg_options or {},
                head=type(model.head).__name__, likelihood=likelihood,
                decodings=rows)


def main() -> None:
    args = parse_args()
    report = run(args)
    if args.out:
        atomic_dump_json(report, args.out, indent=2)


if __name__ == '__main__':
    main()
