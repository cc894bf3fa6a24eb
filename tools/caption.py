"""Caption images with a trained captioner.

Examples::

    python tools/caption.py img1.png img2.jpg \
        --config configs/mdc/vit-tiny_shapes.py \
        --checkpoint work_dirs/vit-tiny_shapes/epoch_8.pth
    python tools/caption.py img.png --config CFG --checkpoint CKPT \
        --num-alternatives 3 --temperature 1.0 --steps 4 --out caps.json
    python tools/caption.py img.png --config CFG \
        --checkpoint https://example.org/mdc_epoch_8.pth

Prints ``IMAGE: caption`` per image and, with ``--num-alternatives N``, N
captions sampled at ``--temperature`` below it (heads with stochastic
sampling: MDC, Cap). ``--steps`` sets MDC's denoising steps. The checkpoint
(a path, or a URL downloaded into the torch hub cache as by
``tools/train.py`` / ``tools/test.py``) is read with ``weights_only=True``
and the plugin's allow-list; a checkpoint holding any other pickled object
is refused, and a missing or unreadable image or checkpoint stops with an
error naming the file (exit status 1). ``--out`` writes a JSON list of
``{image, caption, alternatives}``.
"""
import argparse
import os.path as osp
import re
import sys
from typing import List, Optional

from mmengine.config import DictAction

import mdc_plugin  # noqa: F401  (registers the components)
from mdc_plugin.apis import caption_images, init_captioner
from mdc_plugin.datasets.transforms.load_caption_image import (
    ImageLoadError)
from mdc_plugin.utils import (
    WeightsNotLoadedError, atomic_dump_json)
from mdc_plugin.utils.cli import UnknownConfigKeyError
from mdc_plugin.utils.quiet_warnings import silence_known_warnings
from mdc_plugin.utils.safe_checkpoint import CHECKPOINT_ERRORS

silence_known_warnings()

#: Errors reported as ``caption.py: error: ...`` with exit status 1 (a
#: refused, missing, unreadable or undownloadable checkpoint among them).
USER_ERRORS = CHECKPOINT_ERRORS + (ImageLoadError, WeightsNotLoadedError,
                                   UnknownConfigKeyError, ValueError,
                                   TypeError)


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog='caption.py', description='Caption images with a captioner')
    parser.add_argument('images', nargs='+', metavar='IMAGE')
    parser.add_argument('--config', required=True, help='model config file')
    parser.add_argument('--checkpoint', required=True,
                        help='checkpoint file or http(s):// URL (loaded '
                        'weights-only)')
    parser.add_argument('--num-alternatives', type=int, default=0,
                        help='sampled alternative captions per image')
    parser.add_argument('--temperature', type=float, default=1.0,
                        help='sampling temperature of the alternatives')
    parser.add_argument('--steps', type=int, default=None,
                        help='denoising steps (MDC); default: the config')
    parser.add_argument('--seed', type=int, default=0,
                        help='seed of the alternatives')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default=None,
                        help='cpu, cuda, cuda:1, ... (default: cuda if '
                        'available)')
    parser.add_argument('--out', help='write the captions to this JSON file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config keys: key=value')
    args = parser.parse_args(argv)
    if args.num_alternatives < 0:
        parser.error('--num-alternatives must be >= 0')
    if args.steps is not None and args.steps < 1:
        parser.error('--steps must be >= 1')
    if args.batch_size < 1:
        parser.error('--batch-size must be >= 1')
    if args.num_alternatives and not args.temperature > 0:
        parser.error('--temperature must be > 0 with --num-alternatives')
    return args


def _is_address(path: str) -> bool:
    """``http://...``, ``s3://...`` and the like: not a local file name."""
    return re.match(r'[A-Za-z][\w+.-]*://', path) is not None


def _check_files(args: argparse.Namespace) -> None:
    """Fail before building the model when an input file is missing.

    A checkpoint address (``http(s)://``, ...) is not checked here: the
    safe loader downloads it, or says why it cannot (an unsupported scheme,
    an HTTP error), when the model is built.
    """
    checkpoint = [] if _is_address(args.checkpoint) else [
        ('checkpoint', args.checkpoint)]
    for kind, path in [('config', args.config)] + checkpoint + [
            ('image', p) for p in args.images]:
        if not osp.isfile(path):
            raise FileNotFoundError(f'{kind} file not found: {path}')


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(argv)
    try:
        _check_files(args)
        model = init_captioner(args.config, args.checkpoint, args.device,
                               args.cfg_options)
        results = caption_images(
            model, args.images, num_alternatives=args.num_alternatives,
            steps=args.steps, temperature=args.temperature, seed=args.seed,
            batch_size=args.batch_size)
    except USER_ERRORS as err:
        print(f'caption.py: error: {err}', file=sys.stderr)
        return 1
    except RuntimeError as err:  # unreadable / truncated checkpoint
        if 'checkpoint' not in str(err):
            raise
        print(f'caption.py: error: {err}', file=sys.stderr)
        return 1
    for result in results:
        print(f"{result['image']}: {result['caption']}")
        for i, alt in enumerate(result['alternatives'], 1):
            print(f'    alternative {i}: {alt}')
    if args.out:
        atomic_dump_json(results, args.out, indent=2)
    return 0


if __name__ == '__main__':
    sys.exit(main())
