"""Linear-probe a backbone's frozen features, quickly (L-BFGS on features).

    python tools/linear_probe.py CONFIG [--checkpoint CKPT] [--pooling mean]
        [--seed 0] [--probe-seed 0] [--out probe.json] [--cfg-options k=v ...]

``--pooling attn`` trains an attention-pooling probe on all frozen tokens
instead (AdamW on cached tokens, hyper-parameters picked on a held-out
fifth of train), the MAP probe CapPa evaluates with.

Builds the model of a pretraining CONFIG, loads the backbone from CKPT (every
backbone weight must load: a checkpoint of another architecture is refused),
or keeps the random initialisation when no checkpoint is given (the
random-init baseline), then runs the same probe as ``LinearProbeHook`` on the
config's train/val datasets. For the MMPretrain-style probe (an
``ImageClassifier`` trained by the runner) see configs/benchmarks/.
"""
import argparse
import json
import sys
import time

from mmengine.config import DictAction

import mdc_plugin  # noqa: F401
from mdc_plugin.engine.hooks.linear_probe_hook import (
    build_model_for_probe, probe_hook_from_config)
from mdc_plugin.utils.atomic_io import atomic_dump_json
from mdc_plugin.utils.quiet_warnings import silence_known_warnings
from mdc_plugin.utils.safe_checkpoint import CHECKPOINT_ERRORS
from mdc_plugin.utils.weights import WeightsNotLoadedError

silence_known_warnings()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config')
    parser.add_argument(
        '--checkpoint',
        help='pretraining checkpoint; '
        'omit for a random-init backbone')
    parser.add_argument(
        '--pooling',
        default=None,
        choices=['cls', 'mean', 'cls+mean', 'attn'],
        help='attn: attention-pooling probe over all tokens (AdamW)')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the random initialisation')
    parser.add_argument(
        '--probe-seed',
        type=int,
        default=0,
        help='seed of the attention probe (init and batch order)')
    parser.add_argument(
        '--attn-mlp-ratio', type=float, default=0.0,
        help='with --pooling attn: add the MAP head MLP (hidden width = '
        'ratio x token width); 0 = attention + LayerNorm + linear only')
    parser.add_argument(
        '--pixels', action='store_true',
        help='probe raw preprocessed pixels instead of backbone features '
        '(the linear L-BFGS probe; the reference row of the probe tables)')
    parser.add_argument('--out', help='write the result as JSON here')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    # Every backbone weight must load (missing or mismatched keys raise);
    # checkpoint keys the backbone lacks, such as the pooled norm (ln2) of
    # a classifier's avg_featmap ViT, are listed and skipped.
    try:
        cfg, model, source, ignored = build_model_for_probe(
            args.config, args.cfg_options, args.seed, args.checkpoint)
    except CHECKPOINT_ERRORS + (WeightsNotLoadedError, ) as err:
        sys.exit(f'linear_probe.py: {args.checkpoint}: {err}')
    if ignored:
        print(f'ignored {len(ignored)} checkpoint keys the backbone does '
              f'not have: {ignored}', file=sys.stderr)
    hook = probe_hook_from_config(cfg, args.pooling, args.probe_seed,
                                  args.attn_mlp_ratio)
    start = time.time()
    if args.pixels:
        model.eval()
        result = {f'{hook.prefix}/{k}': v
                  for k, v in hook.probe_pixels(model).items()}
        source = 'raw pixels'
    else:
        result = hook.probe(model)
    result = dict(
        config=args.config,
        checkpoint=source,
        pooling='linear (pixels)' if args.pixels else hook.pooling,
        seconds=round(time.time() - start, 1),
        **result)
    print(json.dumps(result, indent=2))
    if args.out:
        atomic_dump_json(result, args.out, indent=2)


if __name__ == '__main__':
    main()
