"""``DumpResults`` that writes its pickle atomically."""
import pickle
from typing import List

from mmengine.evaluator import DumpResults
from mmengine.logging import print_log
from mmengine.registry import METRICS

from ...utils.atomic_io import atomic_write


@METRICS.register_module()
class AtomicDumpResults(DumpResults):
    """Dump per-sample predictions to ``out_file_path`` (.pkl) atomically.

    Same as MMEngine's ``DumpResults`` (tensors moved to CPU, results
    collected from all ranks, written by rank 0) except that an interrupted
    run never leaves a truncated pickle behind.
    """

    default_prefix = 'predictions'

    def compute_metrics(self, results: List) -> dict:
        with atomic_write(self.out_file_path, 'wb') as f:
            pickle.dump(results, f, protocol=pickle.HIGHEST_PROTOCOL)
        print_log(
            f'Predictions saved to {self.out_file_path}', logger='current')
        return {}
