"""tools/benchmark.py (the CLI over the harness ``tools/benchmarks/harness/``)
at tiny size: every caption head's cases run."""
import importlib
import importlib.util
import json
import os.path as osp
import sys

import pytest
import torch
from mmengine.registry import init_default_scope

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOOLS = osp.join(ROOT, 'tools')


def import_harness():
    """``benchmarks.harness`` as tools/benchmark.py imports it (tools/ on
    ``sys.path`` only while importing: tools/test.py, tools/train.py...
    would otherwise shadow modules of those names)."""
    sys.path.insert(0, TOOLS)
    try:
        return importlib.import_module('benchmarks.harness')
    finally:
        sys.path.remove(TOOLS)


import_harness()
from benchmarks.harness import CASES, D3PM_STEPS  # noqa: E402
from benchmarks.harness.cases import (build_model,  # noqa: E402
                                      shared_backbone)
from benchmarks.harness.common import (build_optim,  # noqa: E402
                                       latest_checkpoint, train_batch)
from benchmarks.harness.train_memory import bench_memory  # noqa: E402


@pytest.fixture(scope='module')
def bench():
    spec = importlib.util.spec_from_file_location(
        'mdc_benchmark', osp.join(ROOT, 'tools', 'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    init_default_scope('mmpretrain')
    return module


def test_all_heads_train_and_sample(bench, tmp_path):
    out = tmp_path / 'bench.json'
    res = bench.main(['--sections', 'train', 'sample', '--batch-size', '2',
                      '--rounds', '1', '--steps', '1', '--warmup', '0',
                      '--sample-batch-sizes', '1', '--sample-tokenizers',
                      'shapes', '--out', str(out)])
    assert out.is_file()
    assert set(res['train']) == {'MDC', 'AR', 'D3PM', 'Prefix'}
    for name, row in res['train'].items():
        assert row['samples_per_s'] > 0, name
        assert ('ratio_vs_AR' in row) == (name != 'AR')
    table = res['sample']['shapes/batch1']
    assert table['batch'] == 1 and table['caption_length'] == 32
    keys = set(table['cases'])
    for steps in D3PM_STEPS:
        assert f'D3PM steps={steps}' in keys
        assert f'D3PM steps={steps} guided' in keys
    assert {'Prefix steps=20 n=1', 'Prefix steps=20 n=5 rerank',
            'AR greedy+kv', 'MDC steps=8'} <= keys
    assert not any('not yet benchmarked' in n for n in res['notes'])
    saved = json.loads(out.read_text())
    assert list(saved) == ['device', 'torch', 'load_average_start',
                           'threads', 'batch_size', 'rounds',
                           'steps_per_round', 'command', 'train', 'sample',
                           'load_average_end', 'notes']
    assert saved['command'].startswith('python tools/benchmark.py --sections')


def test_shared_backbone_cases():
    """D3PM and Prefix read the same backbone output as MDC / AR, and
    their frozen encoders get no gradient from a training step."""
    batch = train_batch(2)
    cases = {c.name: c for c in CASES}
    _, dims, tokens = shared_backbone()
    assert (dims, tokens) == (192, 65)
    mdc = build_model(cases['MDC'])
    d3pm = build_model(cases['D3PM'])
    prefix = build_model(cases['Prefix'])
    # same seed -> the same backbone weights in all three models
    for other in (d3pm.backbone, prefix.encoder.backbone):
        for a, b in zip(mdc.backbone.parameters(), other.parameters()):
            assert torch.equal(a, b)
    with torch.no_grad():
        inputs = mdc.data_preprocessor(batch, False)['inputs']
        feats = d3pm.extract_feat(inputs)
    assert feats.codes.shape == (2, 65)
    assert d3pm.head.guidance is not None and d3pm.head.guidance.p_cond > 0
    assert d3pm.head.decoder is not None
    for model, case in ((d3pm, cases['D3PM']), (prefix, cases['Prefix'])):
        frozen = (model.backbone if case.name == 'D3PM'
                  else model.encoder)
        before = [p.clone() for p in frozen.parameters()]
        head_before = [p.clone() for p in model.head.parameters()]
        optim = build_optim(model.train(), case.config)
        model.train_step(batch, optim)
        assert not any(p.requires_grad for p in frozen.parameters())
        assert all(torch.equal(a, b)
                   for a, b in zip(before, frozen.parameters()))
        assert not all(torch.equal(a, b) for a, b in
                       zip(head_before, model.head.parameters()))


def test_latest_checkpoint(tmp_path):
    for name in ('epoch_3.pth', 'epoch_12.pth', 'epoch_x.pth', 'last.pth'):
        (tmp_path / name).write_bytes(b'')
    assert latest_checkpoint(str(tmp_path)) == str(
        tmp_path / 'epoch_12.pth')
    assert latest_checkpoint(str(tmp_path / 'epoch_3.pth')) == str(
        tmp_path / 'epoch_3.pth')
    assert latest_checkpoint(str(tmp_path / 'missing')) is None


def test_unknown_case_is_refused(bench, capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(['--cases', 'NoSuchHead'])
    assert 'NoSuchHead' in capsys.readouterr().err


def test_memory_probe_runs_in_a_fresh_process():
    """The memory section's probe (a subprocess on the CPU, importing the
    harness from tools/)."""
    from rich.progress import Progress

    from benchmarks.harness import BenchmarkOptions
    mdc = [c for c in CASES if c.name == 'MDC']
    with Progress(disable=True) as progress:
        res = bench_memory(mdc, BenchmarkOptions(batch_size=2), progress)
    assert res['MDC']['peak_bytes'] > 0
    if not torch.cuda.is_available():
        assert 'fresh process' in res['MDC']['method']


def test_quality_section_on_a_saved_checkpoint(tmp_path):
    """bench_quality end to end (checkpoint loading, the shared
    caption_and_score loop, the result's keys) on an untrained AR model."""
    import copy
    import dataclasses

    from rich.progress import Progress

    from benchmarks.harness import BenchmarkOptions
    from benchmarks.harness.common import load_cfg
    from benchmarks.harness.quality import bench_quality
    init_default_scope('mmpretrain')
    ar = next(c for c in CASES if c.name == 'AR')
    model = build_model(ar, cfg=copy.deepcopy(load_cfg(ar.config).model))
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save(dict(state_dict=model.state_dict()), ckpt)
    case = dataclasses.replace(ar, checkpoint=str(tmp_path))
    notes = []
    with Progress(disable=True) as progress:
        res = bench_quality([case], BenchmarkOptions(), progress, notes)
    assert res['checkpoints'] == {'AR': str(ckpt)} and not notes
    row = res['cases']['AR greedy+kv']
    assert set(row) == {'images', 'captions_per_s', 'CIDEr', 'BLEU_4'}
    assert row['images'] == 500 and row['captions_per_s'] > 0
