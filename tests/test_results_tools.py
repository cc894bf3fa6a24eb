"""docs/results_shapes.md is rendered from the committed raw outputs."""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

from fixtures_data import load_tool

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA = osp.join(REPO, 'docs', 'results_data')


def test_collect_results_renders_committed_numbers(tmp_path):
    plot = tmp_path / 'steps.png'
    out = subprocess.run(
        [sys.executable, 'tools/analysis/collect_results.py', DATA,
         '--plot', str(plot)], cwd=REPO, capture_output=True, text=True,
        check=True).stdout
    assert plot.stat().st_size > 0
    with open(osp.join(DATA, 'mdc', 'test.json')) as f:
        cider = json.load(f)['metrics']['caption/CIDEr']
    with open(osp.join(DATA, 'cap', 'probe_mean.json')) as f:
        probe = json.load(f)['probe/accuracy']
    assert f'{100 * cider:.1f}' in out and f'{probe:.1f}' in out
    # Every table row the tool prints appears verbatim in results_shapes.md.
    with open(osp.join(REPO, 'docs', 'results_shapes.md')) as f:
        doc = f.read()
    rows = [line for line in out.splitlines() if line.startswith('| ')
            and not line.startswith('| ---') and 'random init' not in line]
    assert rows and all(row in doc for row in rows)


def test_patch_embed_stats_separate_colour_from_spatial(tmp_path):
    import pytest
    import torch
    tool = load_tool('tools/analysis/patch_embed_stats.py')
    torch.manual_seed(0)
    spatial = torch.randn(16, 3, 4, 4)
    spatial -= spatial.mean((2, 3), keepdim=True)  # no colour part
    colour = torch.randn(16, 3, 1, 1).expand(16, 3, 4, 4)  # only colour
    assert tool.patch_embed_stats(spatial)['spatial_energy'] == \
        pytest.approx(100)
    assert tool.patch_embed_stats(colour)['spatial_energy'] == \
        pytest.approx(0, abs=1e-9)
    mixed = tool.patch_embed_stats(spatial + colour)
    assert 0 < mixed['spatial_energy'] < 100
    # rank: 3 colour directions at most for colour-only filters
    assert tool.patch_embed_stats(colour)['effective_rank'] <= 3 + 1e-6
    assert tool.patch_embed_stats(colour)['top3_singular_energy'] == \
        pytest.approx(100)
    with pytest.raises(ValueError, match='conv weight'):
        tool.patch_embed_stats(torch.randn(16, 48))

    # end to end on checkpoints: NAME=CKPT rows in order, JSON written
    for name, weight in (('spatial', spatial), ('colour', colour)):
        torch.save({'state_dict': {tool.KEY: weight}},
                   str(tmp_path / f'{name}.pth'))
    torch.save({'state_dict': {}}, str(tmp_path / 'other.pth'))
    out = tmp_path / 'stats.json'
    rows = tool.main([f'spatial={tmp_path / "spatial.pth"}',
                      f'colour={tmp_path / "colour.pth"}', '--out', str(out)])
    assert [r['name'] for r in rows] == ['spatial', 'colour']
    assert json.loads(out.read_text()) == rows
    with pytest.raises(KeyError, match='no backbone.patch_embed'):
        tool.main([f'x={tmp_path / "other.pth"}'])


def test_fashion_tables_render_from_committed_outputs(tmp_path):
    """docs/results.md's Fashion tables are what collect_fashion.py prints
    from the committed raw outputs in docs/results_data/fashion/."""
    data = osp.join(DATA, 'fashion')
    plot, steps_plot = tmp_path / 'curve.png', tmp_path / 'steps.png'
    out = subprocess.run(
        [sys.executable, 'tools/analysis/collect_fashion.py', data,
         '--plot', str(plot), '--steps-plot', str(steps_plot)], cwd=REPO,
        capture_output=True, text=True, check=True).stdout
    assert plot.stat().st_size > 0 and steps_plot.stat().st_size > 0
    # the sampling sweeps, both remasking orders
    assert ', seed 0, random remasking |' in out
    assert ', seed 0, low-confidence remasking |' in out
    with open(osp.join(data, 'supervised_seed0', 'final_scalars.json')) as f:
        supervised = json.load(f)['probe/accuracy']
    assert f'{supervised:.1f}' in out
    with open(osp.join(REPO, 'docs', 'results.md')) as f:
        doc = f.read()
    rows = [line for line in out.splitlines() if line.startswith('| ')
            and not line.startswith('| ---')]
    assert len(rows) >= 10 and all(row in doc for row in rows)


def test_sampling_steps_sweeps_the_val_split(tmp_path):
    """sampling_steps.py runs the real test loop once per step count on the
    config's val dataloader and evaluator with ``--split val``, and records
    the split and the overrides beside the rows."""
    import torch
    from mmpretrain.registry import MODELS

    from fixtures_data import load_repo_config
    cfg = load_repo_config('configs/mdc/vit-tiny_shapes.py')
    torch.manual_seed(0)
    ckpt = tmp_path / 'mdc.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(),
                'meta': {}}, ckpt)
    out = tmp_path / 'steps.json'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/sampling_steps.py',
         'configs/mdc/vit-tiny_shapes.py', str(ckpt), '--split', 'val',
         '--steps', '2', '1', '--work-dir', str(tmp_path / 'wd'),
         '--out', str(out), '--cfg-options',
         'model.head.sampler.remasking=random',
         # the test loader is not used with --split val: a broken one
         # shows it
         'test_dataloader.dataset.split=no-such-split'],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result['split'] == 'val'
    assert result['cfg_options']['model.head.sampler.remasking'] == 'random'
    assert [r['steps'] for r in result['rows']] == [2, 1]
    assert all(r['images'] == 500 for r in result['rows'])  # val: 500
    assert all(0 <= r['caption/CIDEr'] for r in result['rows'])


def test_fashion_collection_in_place_keeps_every_file(tmp_path):
    """collect_fashion.py with --out = its own input folder (re-collecting
    the committed outputs) rewrites summary.json identically and leaves the
    runs' files alone (it once truncated the wall-time files)."""
    import shutil
    data = tmp_path / 'fashion'
    shutil.copytree(osp.join(DATA, 'fashion'), data)
    before = {p: p.read_bytes() for p in data.rglob('*') if p.is_file()}
    subprocess.run(
        [sys.executable, 'tools/analysis/collect_fashion.py', str(data),
         '--out', str(data)], cwd=REPO, capture_output=True, text=True,
        check=True)
    after = {p: p.read_bytes() for p in data.rglob('*') if p.is_file()}
    assert after.keys() == before.keys()
    changed = [str(p) for p in before if before[p] != after[p]]
    assert changed == [], changed


def test_fashion_collection_refuses_a_mislabelled_sweep(tmp_path):
    """A sweep file named for one remasking order but run with the other
    is refused, naming the file (the table would mislabel it)."""
    import shutil
    src = osp.join(DATA, 'fashion', 'steps_mdc_seed0_random.json')
    shutil.copy(src, tmp_path / 'steps_mdc_seed0_low-confidence.json')
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/collect_fashion.py', str(tmp_path)],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert 'steps_mdc_seed0_low-confidence.json' in proc.stderr
    assert "remasking 'random'" in proc.stderr


@pytest.mark.parametrize('config', ['configs/mdc/vit-tiny_shapes.py',
                                    'configs/baselines/cap_vit-tiny_shapes.py'])
def test_caption_diagnostics_reports_likelihood_and_decodings(tmp_path,
                                                              config):
    """caption_diagnostics.py on a real config and checkpoint: nats per
    real token, and for MDC the ELBO and every decoding of the grid (blocks
    with more blocks than steps skipped, left to right added), each with
    its scores and empty-caption count."""
    import torch
    from mmpretrain.registry import MODELS

    from fixtures_data import load_repo_config
    cfg = load_repo_config(config)
    torch.manual_seed(0)
    ckpt = tmp_path / 'model.pth'
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(),
                'meta': {}}, ckpt)
    out = tmp_path / 'diag.json'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/caption_diagnostics.py', config,
         str(ckpt), '--steps', '2', '15', '--block-lengths', '0', '5',
         '--elbo-draws', '2', '--max-batches', '1', '--out', str(out)],
        cwd=REPO, capture_output=True, text=True,
        env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    like = report['likelihood']
    assert like['captions'] == 32 and like['real_tokens'] > 32
    # untrained: about log(vocabulary) nats per token
    assert 1.0 < like['nll_per_real_token'] < 10.0
    options = [row['options'] for row in report['decodings']]
    if 'mdc' in config:
        assert like['nll_order'] == 'left_to_right'
        assert like['elbo_per_real_token'] > like['elbo_per_position']
        # 15 positions in blocks of 5 = 3 blocks: not in 2 steps
        assert dict(steps=2, remasking='random', block_length=5) \
            not in options
        assert dict(steps=15, remasking='low_confidence',
                    block_length=5) in options
        assert dict(steps=15, remasking='low_confidence',
                    block_length=1) in options  # left to right
        assert len(options) == 7  # 2 + 4 of the grid, left to right
    else:
        assert like['nll_order'] == 'autoregressive'
        assert options == [{}]
    for row in report['decodings']:
        assert row['images'] == 32
        assert 0 <= row['empty_captions'] <= 32
        assert 0 <= row['metrics']['caption/CIDEr']


def _write(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def test_mdc_gap_collection_tables_budget_and_ablations(tmp_path):
    """collect_mdc_gap.py: the budget table pairs MDC and Cap per budget
    (gap = Cap - MDC), seeds give mean ± half-range, the committed folder
    fills seeds the results folder lacks, and the ablation table shows each
    named decoding's CIDEr with its empty captions (Cap's greedy decoding
    in the left-to-right column)."""
    root, committed = tmp_path / 'runs', tmp_path / 'committed'
    probes = {('mdc', 1, 0): 79.0, ('cap', 1, 0): 82.0,
              ('mdc', 2, 0): 80.5, ('cap', 2, 0): 82.5,
              ('mdc_words-loss', 1, 0): 79.4}
    for (name, mult, seed), acc in probes.items():
        run = name + (f'_{mult}x' if mult > 1 else '') + f'_seed{seed}'
        _write(root / run / 'final_scalars.json', {'probe/accuracy': acc})
    _write(committed / 'mdc_seed1' / 'final_scalars.json',
           {'probe/accuracy': 80.0})
    _write(committed / 'mdc_seed0' / 'final_scalars.json',
           {'probe/accuracy': 1.0})  # shadowed by the results folder

    def decoding(options, cider, empty):
        return dict(options=options, images=500, empty_captions=empty,
                    metrics={'caption/CIDEr': cider,
                             'caption/BLEU-4': cider / 2})

    _write(root / 'diag_mdc_seed0.json', dict(
        likelihood=dict(nll_per_real_token=0.8, nll_order='left_to_right',
                        elbo_per_real_token=0.9),
        decodings=[
            decoding(dict(steps=8, remasking='low_confidence',
                          block_length=None), 0.2, 230),
            decoding(dict(steps=8, remasking='random', block_length=None),
                     0.95, 0),
            decoding(dict(steps=35, remasking='low_confidence',
                          block_length=1), 1.0, 0)]))
    _write(root / 'diag_cap_seed0.json', dict(
        likelihood=dict(nll_per_real_token=0.5, nll_order='autoregressive'),
        decodings=[decoding({}, 1.7, 0)]))
    out = tmp_path / 'out'
    proc = subprocess.run(
        [sys.executable, 'tools/analysis/collect_mdc_gap.py', str(root),
         '--committed', str(committed), '--out', str(out)],
        cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    one_x = next(line for line in lines if line.startswith('| 1x'))
    # MDC 1x: seed 0 here (79.0) and the committed seed 1 (80.0)
    assert '79.5 ± 0.5' in one_x and '82.0 (1 seed)' in one_x
    assert '| 2.5 |' in one_x  # 82.0 - 79.5
    assert '0.800 (1 seed)' in one_x and '0.500 (1 seed)' in one_x
    two_x = next(line for line in lines if line.startswith('| 2x'))
    assert '| 2.0 |' in two_x
    mdc_row = next(line for line in lines if line.startswith('| MDC (paper'))
    assert '20.0 (1 seed) (230)' in mdc_row and '95.0 (1 seed) (0)' in mdc_row
    cap_row = next(line for line in lines if line.startswith('| Cap (auto'))
    assert cap_row.rstrip(' |').endswith('170.0 (1 seed) (0)')
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['budget']['mdc']['1']['probe']['values'] == [79.0, 80.0]
    assert (out / 'mdc_2x_seed0' / 'final_scalars.json').is_file()
    assert (out / 'diag_mdc_seed0.json').is_file()
