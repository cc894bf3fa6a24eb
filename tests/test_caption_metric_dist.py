"""Distributed gather: 2 gloo ranks give the same numbers as one process.

Each rank gets the interleaved, padded shard a ``DistributedSampler`` would
give it; ``BaseMetric.evaluate`` gathers with MMEngine's
``collect_results`` (which also drops the padding) and scores on rank 0.
"""
import json
import os
import shutil
import socket

import pytest
import torch.multiprocessing as mp

from synthetic_captions import make_corpus

NUM_IMAGES = 41  # odd: the sampler pads one repeated sample
WORLD_SIZE = 2
SCORES = ['BLEU', 'ROUGE-L', 'CIDEr', 'Diversity']


def _samples():
    refs, preds, samples = make_corpus(NUM_IMAGES, 5, seed=7,
                                       samples_per_image=3)
    return [
        dict(image_id=i, pred_caption=preds[i], gt_caption=refs[i],
             pred_captions=samples[i]) for i in refs
    ]


def _evaluate(samples, size):
    from mdc_plugin.evaluation.metrics import CaptionMetric
    metric = CaptionMetric(scores=SCORES)
    for start in range(0, len(samples), 4):
        metric.process(None, samples[start:start + 4])
    return metric.evaluate(size)


def _worker(rank: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}',
                            rank=rank, world_size=WORLD_SIZE)
    try:
        import mdc_plugin  # noqa: F401
        samples = _samples()
        padded = samples + samples[:(-len(samples)) % WORLD_SIZE]
        shard = padded[rank::WORLD_SIZE]  # DistributedSampler order
        results = _evaluate(shard, NUM_IMAGES)
        with open(os.path.join(out_dir, f'rank{rank}.json'), 'w') as f:
            json.dump(results, f)
        # No rank tears gloo down while its peer still has a send in flight
        # (an early destroy aborted rank 0 in 1 of ~20 CI runs).
        dist.barrier()
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which('java') is None,
                    reason='Java not found: some synthetic captions need '
                    'the PTB jar')
def test_two_ranks_equal_one_process(tmp_path):
    mp.spawn(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD_SIZE,
             join=True)
    single = _evaluate(_samples(), NUM_IMAGES)
    assert set(single) == {f'caption/{k}' for k in (
        'BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'ROUGE-L', 'CIDEr', 'Dist-1',
        'Dist-2', 'Dist-3', 'Vocab', 'MeanLength', 'Self-BLEU-4', 'Div-1',
        'Div-2')}
    for rank in range(WORLD_SIZE):
        gathered = json.loads((tmp_path / f'rank{rank}.json').read_text())
        assert gathered.keys() == single.keys()
        for key, value in single.items():
            assert gathered[key] == pytest.approx(value, abs=1e-12), key
