"""The ``train`` and ``memory`` sections: training-step speed and peak
memory of each case on the shared batch.

* ``train``: samples/s of ``model.train_step`` (forward, backward, the
  config's optimizer and clipping), interleaved rounds; ``ratio_vs_AR``
  is the median of the per-round ratios.
* ``memory``: peak memory of three training steps. CUDA:
  ``torch.cuda.max_memory_allocated`` (in this process). CPU: each case in
  a fresh subprocess (``python -c`` calling :func:`probe_main`); after the
  model, optimizer and batch are built the peak resident set size
  (``VmHWM``) is reset through ``/proc/self/clear_refs`` and its growth is
  reported.
"""
import json
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

import torch
from mmengine.registry import init_default_scope
from rich.progress import Progress

from .cases import HeadCase, build_model, case_by_name
from .common import ROOT, TOOLS, build_optim, train_batch
from .options import BenchmarkOptions
from .timing import interleave, median_ratio, sync

#: The subprocess of the CPU memory probe: ``TOOLS CASE BATCH_SIZE``
#: follow (``TOOLS``: the folder to import ``benchmarks.harness`` from).
PROBE_CODE = ('import sys; sys.path.insert(0, sys.argv[1]); '
              'from benchmarks.harness.train_memory import probe_main; '
              'probe_main(sys.argv[2:])')


def bench_train(cases: List[HeadCase], opts: BenchmarkOptions,
                progress: Progress) -> Dict[str, dict]:
    """name -> ``samples_per_s`` (median), ``rounds`` (all) and, but for
    AR, ``ratio_vs_AR``."""
    batch = train_batch(opts.batch_size)
    runs = {}
    for case in cases:
        model = build_model(case)
        model.train()
        optim = build_optim(model, case.config)
        for _ in range(opts.warmup):
            model.train_step(batch, optim)

        def step(model=model, optim=optim) -> float:
            sync()
            start = time.perf_counter()
            for _ in range(opts.steps):
                model.train_step(batch, optim)
            sync()
            return opts.batch_size * opts.steps / (time.perf_counter()
                                                   - start)
        runs[case.name] = step
    samples = interleave(runs, opts.rounds, progress, 'train step')
    result = {n: dict(samples_per_s=statistics.median(v), rounds=v)
              for n, v in samples.items()}
    for name in samples:
        if name != 'AR' and 'AR' in samples:
            result[name]['ratio_vs_AR'] = median_ratio(samples[name],
                                                       samples['AR'])
    return result


def read_status(key: str) -> int:
    """A ``/proc/self/status`` size entry (``VmRSS``, ``VmHWM``) in bytes.
    """
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{key} not in /proc/self/status')


def memory_probe(case_name: str, batch_size: int) -> dict:
    """Peak memory growth of three training steps in this process:
    ``dict(method=..., peak_bytes=...)``."""
    case = case_by_name(case_name)
    init_default_scope('mmpretrain')
    batch = train_batch(batch_size)
    model = build_model(case)
    model.train()
    optim = build_optim(model, case.config)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(3):
            model.train_step(batch, optim)
        torch.cuda.synchronize()
        return dict(method='torch.cuda.max_memory_allocated',
                    peak_bytes=torch.cuda.max_memory_allocated() - base)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM (peak RSS) to the current RSS
    base = read_status('VmRSS')
    for _ in range(3):
        model.train_step(batch, optim)
    return dict(method='VmHWM growth after clear_refs (fresh process)',
                peak_bytes=read_status('VmHWM') - base)


def probe_main(argv: Optional[List[str]] = None) -> None:
    """Subprocess entry: ``CASE BATCH_SIZE`` -> the probe's JSON on the
    last line of stdout."""
    case_name, batch_size = argv if argv is not None else sys.argv[1:]
    print(json.dumps(memory_probe(case_name, int(batch_size))))


def bench_memory(cases: List[HeadCase], opts: BenchmarkOptions,
                 progress: Progress) -> Dict[str, dict]:
    """name -> :func:`memory_probe`'s dict (a fresh process on the CPU)."""
    result = {}
    task = progress.add_task('memory', total=len(cases))
    for case in cases:
        if torch.cuda.is_available():
            result[case.name] = memory_probe(case.name, opts.batch_size)
        else:
            out = subprocess.run(
                [sys.executable, '-c', PROBE_CODE, TOOLS, case.name,
                 str(opts.batch_size)],
                capture_output=True, text=True, cwd=ROOT)
            if out.returncode:
                raise RuntimeError(f'memory probe of {case.name} failed '
                                   f'(exit {out.returncode}):\n'
                                   f'{out.stderr[-4000:]}')
            result[case.name] = json.loads(out.stdout.strip().splitlines()[-1])
        progress.advance(task)
    return result
