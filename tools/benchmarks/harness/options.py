"""The benchmark's knobs (``tools/benchmark.py``'s options, same names)."""
from dataclasses import dataclass
from typing import Optional, Sequence

#: Every section, in the default order (``profile`` is separate).
SECTIONS = ('train', 'memory', 'sample', 'quality', 'data', 'gpu')


@dataclass
class BenchmarkOptions:
    """Sizes and repetitions of the sections.

    ``batch_size``: training batch (train, memory, profile);
    ``sample_batch_sizes`` / ``clip_sample_batch_sizes``: sampling batches
    with the shapes / other tokenizers; ``rounds``: interleaved timed
    repetitions per case; ``steps``: training steps per repetition;
    ``warmup``: untimed calls per case; ``data_iters``: iterations of the
    data section's training run; ``vitb_on_cpu``: run the gpu section on
    the CPU in fp32; ``peak_tflops``: bf16 peak (default: from the name).
    """

    batch_size: int = 32
    sample_batch_sizes: Sequence[int] = (1, 32)
    sample_tokenizers: Sequence[str] = ('shapes', 'clip')
    clip_sample_batch_sizes: Sequence[int] = (8, )
    gpu_batch_size: int = 64
    rounds: int = 15
    steps: int = 2
    warmup: int = 2
    data_iters: int = 60
    vitb_on_cpu: bool = False
    peak_tflops: Optional[float] = None
