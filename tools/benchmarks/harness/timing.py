"""Timing helpers: device sync, interleaved rounds, median ratios."""
import statistics
import time
from typing import Callable, Dict, List

import torch
from rich.progress import Progress


def sync() -> None:
    """Wait for queued CUDA work (no-op on the CPU)."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def interleave(fns: Dict[str, Callable[[], float]], rounds: int,
               progress: Progress, label: str) -> Dict[str, List[float]]:
    """Run each fn once per round, in rotating order: name -> ``rounds``
    results (in round order)."""
    names = list(fns)
    out: Dict[str, List[float]] = {n: [] for n in names}
    task = progress.add_task(label, total=rounds * len(names))
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            out[name].append(fns[name]())
            progress.advance(task)
    return out


def median_ratio(num: List[float], den: List[float]) -> float:
    """Median of the per-round ratios ``num[i] / den[i]``."""
    return statistics.median(a / b for a, b in zip(num, den))


def sampling_timer(key: str, fn: Callable[[], torch.Tensor], batch: int,
                   length: int) -> Callable[[], float]:
    """A closure timing ``fn()`` (-> (batch, length) ids, checked);
    returns captions/s."""
    def run() -> float:
        sync()
        start = time.perf_counter()
        with torch.no_grad():
            ids = fn()
        sync()
        seconds = time.perf_counter() - start
        if tuple(ids.shape) != (batch, length):
            raise RuntimeError(f'{key}: sampled ids of shape '
                               f'{tuple(ids.shape)}, expected '
                               f'({batch}, {length})')
        return batch / seconds
    return run
