"""Run the selected sections and collect the results dict (the JSON of
``docs/results_data/benchmarks/*.json``)."""
import os
from typing import List, Optional, Sequence

import torch
from mmengine.registry import init_default_scope
from rich.progress import Progress

from .cases import active_cases
from .common import device
from .data_gpu import bench_data, bench_gpu
from .options import SECTIONS, BenchmarkOptions
from .quality import bench_quality
from .sampling import bench_sample
from .train_memory import bench_memory, bench_train


def run_benchmarks(sections: Sequence[str] = SECTIONS,
                   opts: Optional[BenchmarkOptions] = None,
                   case_names: Optional[List[str]] = None,
                   command: str = '') -> dict:
    """Run ``sections`` (of :data:`SECTIONS`, in the given order) on the
    cases ``case_names`` (default: all of ``CASES``).

    Returns ``device``, ``torch``, ``load_average_start``, ``threads``,
    ``batch_size``, ``rounds``, ``steps_per_round``, ``command`` (as given),
    one entry per section, ``load_average_end`` and ``notes`` (cases or
    decoders not measured, and why).
    """
    opts = opts or BenchmarkOptions()
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        raise ValueError(f'unknown sections {sorted(unknown)}; '
                         f'choose from {SECTIONS}')
    init_default_scope('mmpretrain')
    notes: List[str] = []
    cases = active_cases(notes, case_names)
    results: dict = dict(
        device=str(device()), torch=torch.__version__,
        load_average_start=os.getloadavg(),
        threads=torch.get_num_threads(), batch_size=opts.batch_size,
        rounds=opts.rounds, steps_per_round=opts.steps, command=command)
    with Progress(transient=False) as progress:
        for name in sections:
            if name == 'train':
                results[name] = bench_train(cases, opts, progress)
            elif name == 'memory':
                results[name] = bench_memory(cases, opts, progress)
            elif name == 'sample':
                results[name] = bench_sample(cases, opts, progress, notes)
            elif name == 'quality':
                results[name] = bench_quality(cases, opts, progress, notes)
            elif name == 'data':
                results[name] = bench_data(opts, progress)
            elif name == 'gpu':
                results[name] = bench_gpu(opts, progress)
    results['load_average_end'] = os.getloadavg()
    results['notes'] = notes
    return results
