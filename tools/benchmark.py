"""Caption-head benchmarks: training step, memory, sampling, quality, data.

    python tools/benchmark.py [--sections train memory sample quality data
        gpu] [--rounds 15] [--out docs/results_data/benchmarks/cpu.json]
        [--profile]

The harness is ``tools/benchmarks/harness/`` (imported as
``benchmarks.harness``: this script's folder, tools/, is ``sys.path[0]``;
what each section measures is in its modules' docstrings and
docs/benchmarks.md); this prints its tables and writes its results as JSON.
"""
import argparse
import sys
from typing import List, Optional

import mdc_plugin  # noqa: F401  (registers the heads)
from mdc_plugin.utils.atomic_io import atomic_dump_json
from mdc_plugin.utils.quiet_warnings import silence_known_warnings

# tools/benchmarks/harness/ (tools/ is sys.path[0] of this script)
from benchmarks.harness import (CASES, SAMPLE_TOKENIZERS, SECTIONS,
                                BenchmarkOptions, print_tables,
                                profile_heads, run_benchmarks)

silence_known_warnings()


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    d = BenchmarkOptions()
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sections', nargs='+', default=list(SECTIONS),
                        choices=list(SECTIONS))
    parser.add_argument('--cases', nargs='+', choices=[c.name for c in CASES],
                        help='benchmark only these heads (default: all)')
    parser.add_argument('--batch-size', type=int, default=d.batch_size)
    parser.add_argument('--sample-batch-sizes', type=int, nargs='+',
                        default=list(d.sample_batch_sizes))
    parser.add_argument('--sample-tokenizers', nargs='+',
                        default=list(d.sample_tokenizers),
                        choices=list(SAMPLE_TOKENIZERS))
    parser.add_argument('--clip-sample-batch-sizes', type=int, nargs='+',
                        default=list(d.clip_sample_batch_sizes))
    parser.add_argument('--gpu-batch-size', type=int,
                        default=d.gpu_batch_size)
    parser.add_argument('--rounds', type=int, default=d.rounds,
                        help='interleaved timed repetitions per case')
    parser.add_argument('--steps', type=int, default=d.steps,
                        help='training steps per timed repetition')
    parser.add_argument('--warmup', type=int, default=d.warmup)
    parser.add_argument('--data-iters', type=int, default=d.data_iters,
                        help='training iterations of the data section')
    parser.add_argument('--vitb-on-cpu', action='store_true',
                        help='run the gpu section on the CPU (fp32): FLOP '
                        'count and smoke test')
    parser.add_argument('--peak-tflops', type=float,
                        help='bf16 peak of the GPU (default: from its name)')
    parser.add_argument('--profile', action='store_true',
                        help='print torch.profiler tables and exit')
    parser.add_argument('--out', help='write the results as JSON here')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> dict:
    args = parse_args(argv)
    opts = BenchmarkOptions(
        batch_size=args.batch_size,
        sample_batch_sizes=args.sample_batch_sizes,
        sample_tokenizers=args.sample_tokenizers,
        clip_sample_batch_sizes=args.clip_sample_batch_sizes,
        gpu_batch_size=args.gpu_batch_size, rounds=args.rounds,
        steps=args.steps, warmup=args.warmup, data_iters=args.data_iters,
        vitb_on_cpu=args.vitb_on_cpu, peak_tflops=args.peak_tflops)
    if args.profile:
        profile_heads(opts, args.cases)
        return {}
    command = 'python tools/benchmark.py ' + ' '.join(
        sys.argv[1:] if argv is None else argv)
    results = run_benchmarks(args.sections, opts, args.cases, command)
    print_tables(results)
    if args.out:
        atomic_dump_json(results, args.out)
    return results


if __name__ == '__main__':
    main()
