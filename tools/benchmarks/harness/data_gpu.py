"""The ``data`` and ``gpu`` sections.

* ``data``: share of step time spent waiting for data in a short real
  ``tools/train.py`` run of ``configs/mdc/vit-tiny_shapes.py`` without
  validation and custom hooks (``data_time / time`` of MMEngine's logs).
* ``gpu`` (CUDA only): ``configs/mdc/vit-b_coco.py`` training images/s in
  bf16 autocast and model FLOPs utilisation, with FLOPs counted by
  ``torch.utils.flop_counter.FlopCounterMode`` on one training step.
"""
import json
import os
import os.path as osp
import statistics
import subprocess
import sys
import tempfile
import time

import torch
from mmpretrain.registry import MODELS
from rich.progress import Progress

from .common import MDC_CONFIG, ROOT, device, load_cfg
from .options import BenchmarkOptions
from .timing import sync

# Dense bf16 tensor-core peak (TFLOP/s) per device name fragment.
BF16_PEAK_TFLOPS = {'H200': 989.0, 'H100': 989.0, 'A100': 312.0,
                    'L40S': 362.0, 'A10': 125.0, 'V100': 125.0}


def bench_data(opts: BenchmarkOptions, progress: Progress) -> dict:
    """data_time / time over a short real training run: ``command``,
    ``windows``, ``data_time_s``, ``step_time_s``, ``data_share``,
    ``first_window_data_share``."""
    task = progress.add_task('data loading (tools/train.py)', total=1)
    with tempfile.TemporaryDirectory() as work_dir:
        cmd = [sys.executable, 'tools/train.py', MDC_CONFIG, '--work-dir',
               work_dir, '--no-validate', '--cfg-options',
               'train_cfg.max_epochs=1', 'default_hooks.logger.interval=10',
               'default_hooks.checkpoint.interval=-1',
               f'+train_dataloader.dataset.indices={opts.data_iters * 32}',
               # no LinearProbeHook: it needs the val split (dropped by
               # --no-validate) and runs outside the timed iterations
               'custom_hooks=[]']
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
        rows = []
        for root, _, files in os.walk(work_dir):
            if 'scalars.json' in files:
                with open(osp.join(root, 'scalars.json')) as f:
                    rows = [json.loads(line) for line in f]
    progress.advance(task)
    rows = [r for r in rows if 'data_time' in r]
    if not rows:
        raise RuntimeError('training run logged no data_time')
    # Skip the first window (worker start-up, first-batch warm-up).
    steady = rows[1:] or rows
    data_time = sum(r['data_time'] for r in steady)
    step_time = sum(r['time'] for r in steady)
    return dict(command=' '.join(cmd[1:]).replace(work_dir, 'TMP'),
                windows=len(steady), data_time_s=data_time / len(steady),
                step_time_s=step_time / len(steady),
                data_share=data_time / step_time,
                first_window_data_share=rows[0]['data_time'] / rows[0]['time'])


def synthetic_batch(model: torch.nn.Module, size: int, bsz: int) -> dict:
    """``bsz`` random uint8 (3, size, size) images with random
    ``model.head.max_length`` caption ids (seeded)."""
    from mmpretrain.structures import DataSample
    gen = torch.Generator().manual_seed(0)
    length = model.head.max_length
    return dict(
        inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8,
                              generator=gen) for _ in range(bsz)],
        data_samples=[DataSample(caption_ids=torch.randint(
            4, model.head.vocab_size, (length,), generator=gen))
            for _ in range(bsz)])


def bench_gpu(opts: BenchmarkOptions, progress: Progress) -> dict:
    """ViT-B/16 MDC training images/s and MFU in bf16 (CUDA only).

    With ``vitb_on_cpu`` (no CUDA) the same code runs in fp32 on the CPU
    for a FLOP count and a smoke test of this section; no MFU is given.
    """
    cuda = torch.cuda.is_available()
    if not cuda and not opts.vitb_on_cpu:
        return dict(skipped='no CUDA device: unmeasured')
    from mmengine.optim import build_optim_wrapper
    from torch.utils.flop_counter import FlopCounterMode
    cfg = load_cfg('configs/mdc/vit-b_coco.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device()).train()
    optim_cfg = dict(cfg.optim_wrapper)
    if cuda:
        optim_cfg.update(type='AmpOptimWrapper', dtype='bfloat16')
    optim = build_optim_wrapper(model, optim_cfg)
    bsz = opts.gpu_batch_size
    batch = synthetic_batch(model, cfg.model.backbone.get('img_size', 224),
                            bsz)
    with FlopCounterMode(display=False) as counter:
        model.train_step(batch, optim)
    flops = counter.get_total_flops()
    for _ in range(opts.warmup):
        model.train_step(batch, optim)
    task = progress.add_task('vit-b_coco train step', total=opts.rounds)
    rates = []
    for _ in range(opts.rounds):
        sync()
        start = time.perf_counter()
        for _ in range(opts.steps):
            model.train_step(batch, optim)
        sync()
        rates.append(bsz * opts.steps / (time.perf_counter() - start))
        progress.advance(task)
    ips = statistics.median(rates)
    achieved = flops / bsz * ips / 1e12
    result = dict(device=torch.cuda.get_device_name() if cuda else 'cpu',
                  precision='bf16 autocast' if cuda else 'fp32', batch=bsz,
                  images_per_s=ips, train_flops_per_image=flops / bsz,
                  achieved_tflops=achieved)
    if cuda:
        name = result['device']
        peak = opts.peak_tflops or next(
            (v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
        result.update(peak_bf16_tflops=peak,
                      mfu=achieved / peak if peak else None,
                      peak_memory_bytes=torch.cuda.max_memory_allocated())
    return result
