"""End to end: the real configs through tools/train.py and tools/test.py on
a tiny generated shapes set (the real runner, hooks, metric and probe)."""
import glob
import json
import os.path as osp
import subprocess
import sys

import pytest
from fixtures_data import write_tiny_shapes_config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def tiny_config(tmp_path, base: str, root: str, epochs: int = 2) -> str:
    """A child of ``base`` that trains on the tiny shapes set."""
    return write_tiny_shapes_config(
        tmp_path / f'tiny_{osp.basename(base)}', base, root, epochs=epochs)


def run_tool(tool: str, *args: str, timeout: int = 600) -> str:
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', tool), *args], cwd=REPO,
        capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def scalars(work_dir: str) -> list:
    files = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data',
                                      'scalars.json')))
    assert files, f'no scalars.json under {work_dir}'
    with open(files[-1]) as f:
        return [json.loads(line) for line in f]


@pytest.mark.slow
def test_main_config_trains_validates_probes_and_resumes(
        tmp_path, tiny_shapes_root):
    cfg = tiny_config(tmp_path, 'configs/mdc/vit-tiny_shapes.py',
                      tiny_shapes_root, epochs=2)
    work_dir = str(tmp_path / 'work')
    out = run_tool('train.py', cfg, '--work-dir', work_dir,
                   '--cfg-options', 'model.head.sampler.steps=4')
    assert osp.exists(osp.join(work_dir, 'epoch_2.pth'))
    rows = scalars(work_dir)
    train_rows = [r for r in rows if 'loss' in r]
    val_rows = [r for r in rows if 'caption/CIDEr' in r]
    assert len(train_rows) == 6  # 24 images / batch 8 x 2 epochs
    assert len(val_rows) == 2
    for row in val_rows:
        assert 0 <= row['caption/BLEU-4'] <= 1
        assert 0 <= row['probe/accuracy'] <= 100
    assert 'linear probe: probe/accuracy=' in out

    # Resume from epoch 2 and go on to epoch 3: the iteration counter and
    # the schedule continue rather than restart.
    out = run_tool('train.py', cfg, '--work-dir', work_dir, '--resume',
                   '--cfg-options', 'train_cfg.max_epochs=3',
                   'model.head.sampler.steps=4')
    assert 'resumed epoch: 2, iter: 6' in out
    assert osp.exists(osp.join(work_dir, 'epoch_3.pth'))
    last = [r for r in scalars(work_dir) if 'loss' in r]
    assert [r['iter'] for r in last] == [7, 8, 9]

    # tools/test.py on the test split writes the metrics.
    result = tmp_path / 'test.json'
    run_tool('test.py', cfg, osp.join(work_dir, 'epoch_3.pth'),
             '--work-dir', work_dir, '--out', str(result),
             '--cfg-options', 'model.head.sampler.steps=4')
    assert result.exists()


@pytest.mark.slow
@pytest.mark.parametrize('base', ['configs/baselines/cap_vit-tiny_shapes.py',
                                  'configs/baselines/clip_vit-tiny_shapes.py'])
def test_baseline_configs_train_and_validate(tmp_path, tiny_shapes_root,
                                             base):
    cfg = tiny_config(tmp_path, base, tiny_shapes_root, epochs=1)
    work_dir = str(tmp_path / 'work')
    run_tool('train.py', cfg, '--work-dir', work_dir)
    rows = scalars(work_dir)
    assert any('loss' in r for r in rows)
    val = [r for r in rows if 'caption/CIDEr' in r]
    assert val and 'probe/accuracy' in val[0]


@pytest.mark.slow
def test_linear_probe_tool_random_init_and_checkpoint(tmp_path,
                                                      tiny_shapes_root):
    cfg = tiny_config(tmp_path, 'configs/mdc/vit-tiny_shapes.py',
                      tiny_shapes_root, epochs=1)
    work_dir = str(tmp_path / 'work')
    run_tool('train.py', cfg, '--work-dir', work_dir,
             '--cfg-options', 'model.head.sampler.steps=2')
    for extra in ([], ['--checkpoint', osp.join(work_dir, 'epoch_1.pth')]):
        out_file = tmp_path / f'probe{len(extra)}.json'
        run_tool('linear_probe.py', cfg, *extra, '--out', str(out_file))
        result = json.loads(out_file.read_text())
        assert 0 <= result['probe/accuracy'] <= 100
    assert result['checkpoint'].endswith('epoch_1.pth')

    # A checkpoint of another architecture is refused, naming the problem.
    other = tiny_config(tmp_path, 'configs/baselines/clip_vit-tiny_shapes.py',
                        tiny_shapes_root)
    proc = subprocess.run(
        [sys.executable, 'tools/linear_probe.py', other, '--checkpoint',
         osp.join(work_dir, 'epoch_1.pth'), '--cfg-options',
         'model.backbone.arch.embed_dims=96',
         'model.backbone.arch.feedforward_channels=384',
         'model.image_dims=96'],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert 'did not load' in proc.stderr
