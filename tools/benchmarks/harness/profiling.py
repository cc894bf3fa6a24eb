"""``--profile``: torch.profiler tables of a training step and of the
first sampler of each case (printed, nothing returned)."""
from typing import List, Optional

import torch
from mmengine.registry import init_default_scope

from .cases import SAMPLE_LENGTH, active_cases, build_model, case_by_name
from .common import build_optim, train_batch
from .options import BenchmarkOptions
from .sampling import (image_tokens, raw_batch_images, sample_model,
                       sampling_fns)


def print_profile(prof, title: str) -> None:
    """A profiler's top 15 ops by self CPU time under ``== title ==``."""
    print(f'== {title} ==')
    print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                    row_limit=15))


def profile_heads(opts: BenchmarkOptions,
                  case_names: Optional[List[str]] = None) -> None:
    """Profile ``opts.steps`` training steps (batch ``opts.batch_size``)
    and one call of the first sampler per sample batch size."""
    from torch.profiler import ProfilerActivity, profile
    init_default_scope('mmpretrain')
    batch = train_batch(opts.batch_size)
    for case in active_cases([], case_names):
        model = build_model(case).train()
        optim = build_optim(model, case.config)
        for _ in range(opts.warmup):
            model.train_step(batch, optim)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(opts.steps):
                model.train_step(batch, optim)
        print_profile(prof, f'{case.name} train step')
        model = sample_model(case, SAMPLE_LENGTH)
        tokens = image_tokens(batch, case_by_name('MDC'))
        images = raw_batch_images(batch)
        label = next(iter(sampling_fns(case, model, tokens, images,
                                       'shapes', [])))
        for bsz in opts.sample_batch_sizes:
            sub = sampling_fns(case, model, tokens[:bsz], images[:bsz],
                               'shapes', [])[label]
            with torch.no_grad():
                sub()
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    sub()
            print_profile(prof, f'{case.name} sample {label}, batch {bsz}')
