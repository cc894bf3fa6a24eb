"""Caption-head benchmark harness (``tools/benchmark.py`` is its CLI).

Tool code of the checkout, not of the installed ``mdc_plugin``: it reads
``configs/``, ``work_dirs/`` and ``tools/train.py`` relative to the
checkout. ``tools/benchmark.py`` imports it as ``benchmarks.harness``
(``tools/`` is its ``sys.path[0]``); elsewhere put ``tools/`` on
``sys.path`` first.

Every head is an entry of :data:`~.cases.CASES` (MDC, AR, D3PM, Prefix)
on the same backbone, weights and batch. Ratios are measured side by side
in one process: every case is warmed up, then the timed repetitions are
interleaved round by round and the per-round ratios summarised by their
median. Modules, one per job:

* :mod:`.cases`: the cases and their models; :mod:`.common`: paths,
  configs, the batch; :mod:`.options`: the knobs; :mod:`.timing`.
* sections: :mod:`.train_memory` (``train``, ``memory``),
  :mod:`.sampling` (``sample``), :mod:`.quality` (``quality``),
  :mod:`.data_gpu` (``data``, ``gpu``); :mod:`.profiling` (``--profile``).
* :mod:`.run` (:func:`run_benchmarks`) and :mod:`.report`
  (:func:`print_tables`).
"""
from .cases import CASES, D3PM_STEPS, SAMPLE_LENGTH, HeadCase, active_cases
from .options import SECTIONS, BenchmarkOptions
from .profiling import profile_heads
from .report import print_tables
from .run import run_benchmarks
from .sampling import SAMPLE_TOKENIZERS

__all__ = [
    'CASES', 'D3PM_STEPS', 'SAMPLE_LENGTH', 'HeadCase', 'active_cases',
    'SECTIONS', 'BenchmarkOptions', 'profile_heads', 'print_tables',
    'run_benchmarks', 'SAMPLE_TOKENIZERS'
]
