"""tools/train.py, tools/test.py and tools/dist_train.sh on the toy model."""
import importlib.util
import json
import os
import os.path as osp
import pickle
import shutil
import socket
import subprocess
import sys

import pytest

TESTS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TESTS)
sys.path.insert(0, TESTS)

import toy_model  # noqa: E402

ITERS_PER_EPOCH = 4  # 16 samples / batch 4


def _env(**extra):
    env = dict(os.environ, **extra)
    env['PYTHONPATH'] = os.pathsep.join(
        [TESTS, ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    env.setdefault('OMP_NUM_THREADS', '1')
    return env


def _run(cmd, cwd, timeout=180, **env):
    proc = subprocess.run(
        cmd,
        cwd=str(cwd),
        env=_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout)
    return proc


def _ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def _records(record_dir, rank=0):
    with open(osp.join(str(record_dir), f'rank{rank}.log')) as f:
        return f.read().splitlines()


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(
        f'mdc_tools_{name}', osp.join(ROOT, 'tools', f'{name}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """tools/train.py for 2 epochs: (cwd, config, work_dir, record_dir)."""
    cwd = tmp_path_factory.mktemp('tools')
    record = cwd / 'records'
    config = toy_model.write_toy_config(
        cwd / 'toy_cfg.py', record_dir=str(record))
    work_dir = cwd / 'work'
    _ok(
        _run([
            sys.executable,
            osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
            str(work_dir)
        ], cwd))
    return cwd, config, work_dir, record


def test_train_writes_checkpoints(trained):
    _, _, work_dir, record = trained
    assert sorted(p for p in os.listdir(work_dir)
                  if p.endswith('.pth')) == ['epoch_1.pth', 'epoch_2.pth']
    assert (work_dir / 'last_checkpoint').read_text().endswith('epoch_2.pth')
    assert osp.isfile(work_dir / 'toy_cfg.py')
    lines = _records(record)
    assert 'start epoch 0 iter 0' in lines
    assert lines.count('save epoch_2') == 1


def test_train_auto_resume(trained, tmp_path):
    cwd, config, work_dir, _ = trained
    work = tmp_path / 'work'
    shutil.copytree(work_dir, work)
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    record = tmp_path / 'records'
    config = toy_model.write_toy_config(
        tmp_path / 'toy_cfg.py', record_dir=str(record))
    _ok(
        _run([
            sys.executable,
            osp.join(ROOT, 'tools', 'train.py'), config, '--work-dir',
            str(work), '--resume', '--cfg-options', 'train_cfg.max_epochs=3'
        ], tmp_path))
    lines = _records(record)
    assert f'start epoch 2 iter {2 * ITERS_PER_EPOCH}' in lines
    assert lines.count('save epoch_3') == 1
    assert (work / 'last_checkpoint').read_text().endswith('epoch_3.pth')


def test_unknown_cfg_option_fails(trained, capsys):
    _, config, _, _ = trained
    train = _load_tool('train')
    with pytest.raises(SystemExit) as excinfo:
        train.main([
            config, '--cfg-options', 'optim_wrapper.optimizer.lrr=0.1',
            'train_cfg.max_epochs=1'
        ])
    assert excinfo.value.code == 2
    err = capsys.readouterr().err
    assert 'optim_wrapper.optimizer.lrr' in err
    assert 'Did you mean: optim_wrapper.optimizer.lr' in err
    assert '+optim_wrapper.optimizer.lrr=' in err
    assert 'train_cfg.max_epochs' not in err


def test_cfg_options_new_key_and_flags(trained, tmp_path):
    from mmengine.config import Config
    _, config, _, _ = trained
    train = _load_tool('train')
    args = train.parse_args([
        config, '--amp', '--amp-dtype', 'bfloat16', '--no-validate',
        '--resume', 'some.pth', '--cfg-options', '+model.init_cfg.type=Foo',
        'optim_wrapper.optimizer.lr=0.5'
    ])

    def fail(msg):
        raise AssertionError(msg)

    cfg = train.merge_args(Config.fromfile(config), args, fail)
    assert cfg.model.init_cfg == dict(type='Foo')
    assert cfg.optim_wrapper.optimizer.lr == 0.5
    assert cfg.val_cfg is None and cfg.val_dataloader is None
    assert cfg.resume is True and cfg.load_from == 'some.pth'
    assert cfg.work_dir == osp.join('./work_dirs', 'toy_cfg')
    from mdc_plugin.utils.cli import accelerator_available
    if accelerator_available():
        assert cfg.optim_wrapper.type == 'AmpOptimWrapper'
        assert cfg.optim_wrapper.dtype == 'bfloat16'
    else:  # CPU: falls back to fp32 OptimWrapper instead of crashing
        assert cfg.optim_wrapper.get('type', 'OptimWrapper') == 'OptimWrapper'

    args = train.parse_args([config, '--auto-scale-lr'])
    with pytest.raises(AssertionError, match='auto_scale_lr'):
        train.merge_args(Config.fromfile(config), args, fail)


def test_test_py_writes_out(trained, tmp_path):
    cwd, config, work_dir, _ = trained
    out = tmp_path / 'res' / 'results.json'
    _ok(
        _run([
            sys.executable,
            osp.join(ROOT, 'tools', 'test.py'), config,
            str(work_dir / 'epoch_2.pth'), '--work-dir',
            str(tmp_path / 'test_work'), '--out',
            str(out)
        ], tmp_path))
    result = json.loads(out.read_text())
    assert set(result['metrics']) == {'toy/mse'}
    assert isinstance(result['metrics']['toy/mse'], float)
    assert result['predictions'] == str(tmp_path / 'res' /
                                        'results.predictions.pkl')
    with open(result['predictions'], 'rb') as f:
        preds = pickle.load(f)
    assert len(preds) == 16 and {'pred', 'target'} <= set(preds[0])
    assert sorted(os.listdir(
        out.parent)) == ['results.json', 'results.predictions.pkl']


def test_runner_with_custom_imports_only(trained, tmp_path):
    """A plain MMEngine Runner (as MMPretrain's tools use) gets the plugin,
    incl. safe resume, from ``custom_imports`` alone."""
    _, _, work_dir, _ = trained
    config = toy_model.write_toy_config(tmp_path / 'cfg.py')
    script = f'''
import sys
from mmengine.config import Config
from mmengine.runner import Runner
assert 'mdc_plugin' not in sys.modules
cfg = Config.fromfile({config!r})
cfg.work_dir = {str(tmp_path / 'work')!r}
cfg.load_from = {str(work_dir / 'epoch_2.pth')!r}
cfg.resume = True
cfg.train_cfg.max_epochs = 3
runner = Runner.from_cfg(cfg)
assert 'mdc_plugin' in sys.modules
runner.train()
assert (runner.epoch, runner.iter) == (3, {3 * ITERS_PER_EPOCH})
print('RESUMED_OK')
'''
    proc = _ok(_run([sys.executable, '-c', script], tmp_path))
    assert 'RESUMED_OK' in proc.stdout


MIM_TRAIN = None
try:
    import mmpretrain
    MIM_TRAIN = osp.join(
        osp.dirname(mmpretrain.__file__), '.mim', 'tools', 'train.py')
except ImportError:  # pragma: no cover
    pass


@pytest.mark.skipif(
    MIM_TRAIN is None or not osp.isfile(MIM_TRAIN),
    reason="MMPretrain's tools/train.py is not installed")
def test_mmpretrain_train_py_resumes(trained, tmp_path):
    _, _, work_dir, _ = trained
    work = tmp_path / 'work'
    shutil.copytree(work_dir, work)
    (work / 'last_checkpoint').write_text(str(work / 'epoch_2.pth'))
    config = toy_model.write_toy_config(tmp_path / 'cfg.py')
    _ok(
        _run([
            sys.executable, MIM_TRAIN, config, '--work-dir',
            str(work), '--resume', '--no-persistent-workers', '--cfg-options',
            'train_cfg.max_epochs=3'
        ], tmp_path))
    assert osp.isfile(work / 'epoch_3.pth')


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def test_dist_train_two_processes(tmp_path):
    record = tmp_path / 'records'
    config = toy_model.write_toy_config(
        tmp_path / 'toy_cfg.py', record_dir=str(record))
    work = tmp_path / 'work'
    proc = _ok(
        _run([
            'bash',
            osp.join(ROOT, 'tools', 'dist_train.sh'), config, '2',
            '--work-dir',
            str(work), '--cfg-options', 'log_level=INFO'
        ],
             tmp_path,
             timeout=300,
             PORT=str(_free_port())))
    iters_per_rank = ITERS_PER_EPOCH // 2  # DefaultSampler splits the data
    for rank in (0, 1):
        lines = _records(record, rank)
        assert 'world_size 2' in lines
        assert lines.count('start epoch 0 iter 0') == 1
        assert sum(ln.startswith('iter ')
                   for ln in lines) == 2 * iters_per_rank
    # Checkpoints are written by rank 0 only, once per epoch.
    assert _records(record, 0).count('save epoch_1') == 1
    assert not any(ln.startswith('save') for ln in _records(record, 1))
    assert sorted(p for p in os.listdir(work)
                  if p.endswith('.pth')) == ['epoch_1.pth', 'epoch_2.pth']
    assert not [p for p in os.listdir(work) if p.endswith('.tmp')]
    log = ''.join(
        open(osp.join(work, d, f'{d}.log')).read() for d in os.listdir(work)
        if osp.isdir(work / d) and osp.isfile(work / d / f'{d}.log'))
    assert 'Distributed training: True' in log + proc.stdout + proc.stderr
    assert 'GPU number: 2' in log + proc.stdout + proc.stderr

    # dist_test.sh: both ranks evaluate, rank 0 writes --out once.
    out = tmp_path / 'results.json'
    _ok(
        _run([
            'bash',
            osp.join(ROOT, 'tools', 'dist_test.sh'), config,
            str(work / 'epoch_2.pth'), '2', '--work-dir',
            str(tmp_path / 'test_work'), '--out',
            str(out)
        ],
             tmp_path,
             timeout=300,
             PORT=str(_free_port())))
    assert 'toy/mse' in json.loads(out.read_text())['metrics']
    with open(tmp_path / 'results.predictions.pkl', 'rb') as f:
        assert len(pickle.load(f)) == 16  # gathered from both ranks
