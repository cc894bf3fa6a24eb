"""Decoding speed and quality of trained MDC and AR captioners, side by side.

    python tools/benchmarks/decoding_speed.py \\
        --mdc configs/mdc/resnet18-w32_fashion.py MDC_CKPT \\
        --ar configs/baselines/cap_resnet18-w32_fashion.py CAP_CKPT \\
        --batch-sizes 1 32 --rounds 5 --out REPORT.json

(the Fashion bed's 1x seed-0 checkpoints, ``work_dirs/fashion/mdc_seed0/
iter_1200.pth`` and ``cap_seed0/iter_1200.pth`` after
``reproduce_fashion.sh``). On a GPU: ``--device cuda --dtype bf16
--batch-sizes 1 32 256`` (autocast; timing waits for the device).

For every decoder (MDC: one token per step, the config's sampler, and the
fast-decoding levers alone and combined; AR: greedy with its key/value
cache) it measures

* **speed**: captions/s of the head's sampler on precomputed image tokens
  (the backbone, the same for both, is excluded), at each batch size, the
  median of ``--rounds`` interleaved rounds over the first val scenes
  (batch 1: ``--single-images`` different scenes per round), and its ratio
  to AR measured in the same rounds;
* **quality** on the val scenes (500 on the Fashion bed): CIDEr, BLEU-4,
  empty captions, decoder passes per batch of 64 (full and block-window)
  and decoder positions per caption (rows x width summed over the passes:
  the arithmetic, whatever the pass), with the change in CIDEr against the
  same checkpoint's one-token-per-step decoding.

Prints a progress line per decoder, a table, and writes the JSON report.
Absolute speeds are from this machine's CPU: compare the ratios.
"""
import argparse
import contextlib
import statistics
import time
from typing import Callable, Dict, List

import torch
from mmengine.config import Config
from mmengine.runner import Runner

import mdc_plugin  # noqa: F401
from mdc_plugin.apis import init_captioner
from mdc_plugin.evaluation import caption_and_score
from mdc_plugin.utils.atomic_io import atomic_dump_json
from mdc_plugin.utils.quiet_warnings import silence_known_warnings

silence_known_warnings()


def mdc_decoders(head) -> Dict[str, dict]:
    """Label -> sampler overrides of the MDC rows."""
    slow = head.max_length - 1
    block = head.sampler_cfg['block_length']
    steps = head.sampler_cfg['steps']
    return {
        f'one token per step ({slow} steps)':
            dict(steps=slow, early_stop=False),
        f'config: {steps} steps, blocks of {block}':
            dict(early_stop=False),
        f'{steps} steps + early stop': dict(early_stop=True),
        'threshold 0.9 + early stop': dict(threshold=0.9, early_stop=True),
        'threshold 0.7 + early stop': dict(threshold=0.7, early_stop=True),
        'threshold 0.7 + early stop + block cache':
            dict(threshold=0.7, early_stop=True, block_cache=True),
        'threshold 0.9 + early stop + block cache, committed refresh':
            dict(threshold=0.9, early_stop=True, block_cache=True,
                 cache_refresh='committed'),
        'threshold 0.7 + early stop + block cache, committed refresh':
            dict(threshold=0.7, early_stop=True, block_cache=True,
                 cache_refresh='committed'),
        'threshold 0.5 + early stop + block cache, committed refresh':
            dict(threshold=0.5, early_stop=True, block_cache=True,
                 cache_refresh='committed'),
        'threshold 0.7, blocks of 9, early stop, block cache, committed '
        'refresh': dict(threshold=0.7, early_stop=True, block_cache=True,
                        cache_refresh='committed', block_length=9),
        'threshold 0.7 + early stop + block cache, committed refresh, '
        'refresh ahead 5': dict(threshold=0.7, early_stop=True,
                                block_cache=True, cache_refresh='committed',
                                refresh_ahead=5),
        'threshold 0.7 + early stop + block cache, committed refresh, '
        'refresh ahead 10': dict(threshold=0.7, early_stop=True,
                                 block_cache=True, cache_refresh='committed',
                                 refresh_ahead=10),
    }


def device_name(device: str) -> str:
    """The device in words, for the report (the GPU's name on cuda)."""
    if torch.device(device).type == 'cuda':
        return torch.cuda.get_device_name(device)
    return f'CPU, {torch.get_num_threads()} thread(s)'


def count_passes(head, fn: Callable[[], torch.Tensor]) -> tuple:
    """(full decoder passes, block-window passes, caption positions the
    decoder ran) that ``fn()`` makes; positions sum rows x width over every
    pass, the decoder's arithmetic whatever the pass."""
    calls, windows, positions = [], [], []

    def full_pass(module, args, kwargs):
        calls.append(1)
        positions.append((args[0] if args else kwargs['tokens']).numel())
    handle = head.decoder.register_forward_pre_hook(full_pass,
                                                    with_kwargs=True)
    window = getattr(head.decoder, 'forward_window', None)
    if window is not None:
        def counted(tokens, *args, **kwargs):
            windows.append(1)
            positions.append(tokens.numel())
            return window(tokens, *args, **kwargs)
        head.decoder.forward_window = counted
    try:
        fn()
    finally:
        handle.remove()
        if window is not None:
            del head.decoder.forward_window
    return len(calls), len(windows), sum(positions)


def image_tokens(model, loader, limit: int) -> torch.Tensor:
    """(N, T, C) backbone tokens of the first ``limit`` loader images."""
    chunks, seen = [], 0
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            chunks.append(model.extract_feat(data['inputs']))
            seen += len(chunks[-1])
            if seen >= limit:
                break
    return torch.cat(chunks)[:limit]


def precision(device: str, dtype: str):
    """The context the samplers run in: ``fp32`` as built, ``bf16`` under
    autocast on ``device``."""
    if dtype == 'fp32':
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def synchronize(device: str) -> None:
    """Wait for the device's queued work (timing on a GPU)."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], torch.Tensor], captions: int,
          device: str = 'cpu') -> float:
    synchronize(device)
    start = time.perf_counter()
    with torch.no_grad():
        fn()
    synchronize(device)
    return captions / (time.perf_counter() - start)


def speed(rows: Dict[str, Callable[[torch.Tensor], torch.Tensor]],
          tokens: Dict[str, torch.Tensor], batch: int, rounds: int,
          singles: int, device: str = 'cpu') -> Dict[str, List[float]]:
    """Label -> captions/s per round (interleaved, rotating order)."""
    names = list(rows)
    out = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, toks = rows[name], tokens[name]
            if batch == 1:
                per = [timed(lambda i=i, fn=fn, toks=toks: fn(toks[i:i + 1]),
                             1, device) for i in range(singles)]
                out[name].append(len(per) / sum(1 / p for p in per))
            else:
                out[name].append(timed(
                    lambda fn=fn, toks=toks: fn(toks[:batch]), batch,
                    device))
    return out


def quality(model, loader, options: dict, max_batches=None) -> dict:
    result = caption_and_score(
        model, loader, dict(type='CaptionMetric',
                            scores=['BLEU', 'ROUGE-L', 'CIDEr']),
        decode=options, seed=0, num_examples=len(loader.dataset),
        max_batches=max_batches)
    preds = [r['pred'] for r in result['examples']]
    metrics = {k: float(v) for k, v in result['metrics'].items()}
    return dict(cider=round(100 * metrics['caption/CIDEr'], 1),
                bleu4=round(100 * metrics['caption/BLEU-4'], 1),
                empty=sum(not p.strip() for p in preds),
                images=result['images'])


def run(args) -> dict:
    torch.set_num_threads(args.threads)
    models, loaders = {}, {}
    for kind, (config, ckpt) in (('MDC', args.mdc), ('AR', args.ar)):
        cfg = Config.fromfile(config)
        models[kind] = init_captioner(cfg, ckpt, device=args.device)
        loader_cfg = cfg.val_dataloader
        loader_cfg.update(num_workers=0, persistent_workers=False)
        loaders[kind] = Runner.build_dataloader(loader_cfg)
    limit = max(max(args.batch_sizes), args.single_images)
    with precision(args.device, args.dtype):
        tokens = {k: image_tokens(models[k], loaders[k], limit)
                  for k in models}
    if min(len(t) for t in tokens.values()) < limit:
        raise SystemExit(f'the val set has fewer than {limit} images for '
                         '--batch-sizes / --single-images')
    mdc, ar = models['MDC'].head, models['AR'].head
    fns, row_tokens, row_kind, options = {}, {}, {}, {}

    def in_precision(fn: Callable) -> Callable:
        def run_fn(t: torch.Tensor) -> torch.Tensor:
            with precision(args.device, args.dtype):
                return fn(t)
        return run_fn
    for label, opts in mdc_decoders(mdc).items():
        fns[f'MDC {label}'] = in_precision(
            lambda t, o=opts: mdc.sample(t, **o))
        row_tokens[f'MDC {label}'], row_kind[f'MDC {label}'] = \
            tokens['MDC'], 'MDC'
        options[f'MDC {label}'] = opts
    fns['AR greedy + KV cache'] = in_precision(lambda t: ar.sample(t))
    row_tokens['AR greedy + KV cache'], row_kind['AR greedy + KV cache'] = \
        tokens['AR'], 'AR'
    options['AR greedy + KV cache'] = {}
    report = dict(mdc=args.mdc, ar=args.ar, threads=args.threads,
                  rounds=args.rounds, single_images=args.single_images,
                  device=device_name(args.device), dtype=args.dtype,
                  rows={})
    for name in fns:
        kind = row_kind[name]
        head = models[kind].head
        passes, windows, positions = count_passes(
            head, lambda fn=fns[name], t=row_tokens[name]: fn(t[:64]))
        captions = len(row_tokens[name][:64])
        with precision(args.device, args.dtype):
            q = quality(models[kind], loaders[kind], options[name],
                        args.max_batches)
        report['rows'][name] = dict(options=options[name],
                                    decoder_passes_batch64=passes,
                                    window_passes_batch64=windows,
                                    decoder_positions_per_caption=round(
                                        positions / captions, 1), **q)
        print(f'{name}: CIDEr {q["cider"]} BLEU-4 {q["bleu4"]} empty '
              f'{q["empty"]}/{q["images"]}, {passes} full + {windows} '
              'block-window decoder passes per batch of 64, '
              f'{positions / captions:.1f} decoder positions per caption',
              flush=True)
    slow = next(n for n in fns if 'one token per step' in n)
    for name, row in report['rows'].items():
        if name.startswith('MDC'):
            ref = report['rows'][slow]['cider']
            # undefined (None) when the slow decoding scores 0 (untrained)
            row['cider_vs_one_token_per_step_pct'] = round(
                100 * (row['cider'] - ref) / ref, 1) if ref else None
    for batch in args.batch_sizes:
        per_round = speed(fns, row_tokens, batch, args.rounds,
                          args.single_images, args.device)
        ar_rounds = per_round['AR greedy + KV cache']
        for name, values in per_round.items():
            ratio = statistics.median(v / a for v, a in zip(values,
                                                           ar_rounds))
            report['rows'][name][f'batch{batch}'] = dict(
                captions_per_s=round(statistics.median(values), 1),
                ratio_vs_AR=round(ratio, 2), rounds=values)
        print(f'batch {batch}: ' + ', '.join(
            f'{n} {report["rows"][n][f"batch{batch}"]["ratio_vs_AR"]}x'
            for n in per_round), flush=True)
    return report


def table(report: dict, batch_sizes: List[int]) -> str:
    head = ('| decoder | CIDEr | vs one token per step | empty | decoder '
            'passes, full + block window (batch 64) | decoder positions '
            'per caption | ' + ' | '.join(
                f'batch {b}: captions/s | vs AR' for b in batch_sizes) +
            ' |')
    lines = [head, '|' + ' --- |' * (6 + 2 * len(batch_sizes))]
    for name, row in report['rows'].items():
        change = row.get('cider_vs_one_token_per_step_pct')
        cells = [name, f'{row["cider"]}',
                 '' if change is None else f'{change}%',
                 f'{row["empty"]}', f'{row["decoder_passes_batch64"]} + '
                 f'{row["window_passes_batch64"]}',
                 f'{row.get("decoder_positions_per_caption", "")}']
        for b in batch_sizes:
            r = row[f'batch{b}']
            cells += [f'{r["captions_per_s"]}', f'{r["ratio_vs_AR"]}']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--mdc', nargs=2, metavar=('CONFIG', 'CKPT'),
                   required=True)
    p.add_argument('--ar', nargs=2, metavar=('CONFIG', 'CKPT'),
                   required=True)
    p.add_argument('--batch-sizes', type=int, nargs='+', default=[1, 32])
    p.add_argument('--rounds', type=int, default=5)
    p.add_argument('--single-images', type=int, default=8,
                   help='different scenes per batch-1 round')
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--device', default='cpu',
                   help="where the models run, e.g. 'cuda' (a GPU table)")
    p.add_argument('--dtype', choices=['fp32', 'bf16'], default='fp32',
                   help='bf16: the samplers and quality under autocast')
    p.add_argument('--max-batches', type=int, default=None,
                   help='quality on the first N val batches only (checks)')
    p.add_argument('--out', help='JSON report')
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    report = run(args)
    print(table(report, args.batch_sizes))
    if args.out:
        atomic_dump_json(report, args.out, indent=2)


if __name__ == '__main__':
    main()
