"""SIGKILL a real ``tools/train.py`` run mid-epoch, ``--resume`` it, and
compare its loss curve with an uninterrupted run (toy model, CPU)."""
import glob
import os
import os.path as osp
import signal
import subprocess
import sys
import time

import pytest
from mmengine.hooks import Hook
from mmpretrain.registry import HOOKS

TESTS = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(TESTS)
sys.path.insert(0, TESTS)

import toy_model  # noqa: E402

MAX_ITERS = 12  # 3 epochs of 4 iterations (ToyDataset(16), batch 4)
CKPT_EVERY = 3
KILL_AFTER = 8  # iteration 8 = 4th of epoch 2; iter_6.pth is the latest


@HOOKS.register_module()
class LossTraceHook(Hook):
    """Appends ``<iteration> <loss repr>`` per training iteration to
    ``path`` (fsync-ed), then sleeps ``delay`` seconds."""

    def __init__(self, path: str, delay: float = 0.0) -> None:
        self.path = path
        self.delay = delay

    def after_train_iter(self, runner, batch_idx, data_batch=None,
                         outputs=None) -> None:
        with open(self.path, 'a') as f:
            f.write(f'{runner.iter + 1} {float(outputs["loss"])!r}\n')
            f.flush()
            os.fsync(f.fileno())
        time.sleep(self.delay)


@HOOKS.register_module()
class SlowSaveHook(Hook):
    """On the ``on_save``-th checkpoint save, writes ``marker`` and sleeps
    inside the save (for a kill to land there)."""

    def __init__(self, marker: str, on_save: int = 2) -> None:
        self.marker = marker
        self.on_save = on_save
        self.saves = 0

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        self.saves += 1
        if self.saves == self.on_save:
            with open(self.marker, 'w') as f:
                f.write(str(runner.iter))
            time.sleep(120)


def _config(tmp_path) -> str:
    path = toy_model.write_toy_config(
        tmp_path / 'kill_cfg.py',
        train_cfg=dict(type='ExactResumeIterBasedTrainLoop',
                       max_iters=MAX_ITERS, val_interval=10 * MAX_ITERS),
        param_scheduler=dict(type='MultiStepLR', milestones=[7],
                             by_epoch=False),
        default_hooks=dict(
            checkpoint=dict(type='AtomicCheckpointHook', interval=CKPT_EVERY,
                            by_epoch=False, max_keep_ckpts=3),
            safe_checkpoint_loading=dict(type='SafeCheckpointLoadingHook'),
            logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0, deterministic=True))
    with open(path) as f:
        text = f.read()
    # Shuffled batches, so the resumed run must restore the sampler too.
    text = text.replace("'shuffle': False", "'shuffle': True")
    text += ("custom_imports = dict(imports=['mdc_plugin', 'toy_model', "
             "'test_kill_resume'], allow_failed_imports=False)\n"
             "custom_hooks = [dict(type='LossTraceHook', path='unset', "
             "delay=0.0)]\n")
    with open(path, 'w') as f:
        f.write(text)
    return str(path)


def _cmd(config, work_dir, trace, delay=0.0, resume=None):
    cmd = [sys.executable, 'tools/train.py', config, '--work-dir',
           str(work_dir), '--cfg-options', f'custom_hooks.0.path={trace}',
           f'custom_hooks.0.delay={delay}']
    if resume is not None:
        cmd += ['--resume'] + ([resume] if resume != 'auto' else [])
    return cmd


def _env():
    env = dict(os.environ, OMP_NUM_THREADS='1')
    env['PYTHONPATH'] = os.pathsep.join(
        [TESTS, ROOT] + [p for p in [env.get('PYTHONPATH')] if p])
    return env


def _run(cmd):
    proc = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]


def _trace(path):
    with open(path) as f:
        return [(int(i), float(v)) for i, v in
                (line.split() for line in f if line.strip())]


@pytest.fixture(scope='module')
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp('kill_resume')
    config = _config(tmp)
    killed_dir, killed_trace = tmp / 'killed', tmp / 'killed.txt'
    proc = subprocess.Popen(
        _cmd(config, killed_dir, killed_trace, delay=0.5), cwd=ROOT,
        env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            if (osp.exists(killed_trace)
                    and len(_trace(killed_trace)) >= KILL_AFTER):
                break
            time.sleep(0.05)
        assert proc.poll() is None, (
            'the run ended before it could be killed:\n'
            + proc.stderr.read().decode()[-4000:])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    from mdc_plugin.utils import load_checkpoint_safely
    after_kill = dict(
        files=sorted(os.listdir(killed_dir)),
        last=(killed_dir / 'last_checkpoint').read_text(),
        iters={name: load_checkpoint_safely(
            str(killed_dir / name))['meta']['iter']
            for name in os.listdir(killed_dir) if name.endswith('.pth')})
    resumed_trace = tmp / 'resumed.txt'
    _run(_cmd(config, killed_dir, resumed_trace, resume='auto'))
    # Uninterrupted from the same checkpoint (a copy, in a fresh work dir).
    same_dir, same_trace = tmp / 'same_ckpt', tmp / 'same_ckpt.txt'
    same_dir.mkdir()
    ckpt = same_dir / 'start.pth'
    ckpt.write_bytes((killed_dir / f'iter_{2 * CKPT_EVERY}.pth').read_bytes())
    _run(_cmd(config, same_dir, same_trace, resume=str(ckpt)))
    return dict(killed_dir=killed_dir, after_kill=after_kill,
                killed=_trace(killed_trace), resumed=_trace(resumed_trace),
                same=_trace(same_trace))


@pytest.mark.slow
def test_kill_left_complete_checkpoints_only(runs):
    files, last = runs['after_kill']['files'], runs['after_kill']['last']
    assert [f for f in files if f.endswith('.pth')] == [
        'iter_3.pth', 'iter_6.pth']
    assert not [f for f in files if f.endswith('.tmp')], files
    assert last.strip() == str(runs['killed_dir'] / 'iter_6.pth')
    # Both load (safe loader) and hold the iteration their name says.
    assert runs['after_kill']['iters'] == {'iter_3.pth': 3, 'iter_6.pth': 6}


@pytest.mark.slow
def test_resumed_curve_matches_uninterrupted(runs):
    killed, resumed = runs['killed'], runs['resumed']
    assert [i for i, _ in killed][:KILL_AFTER] == list(
        range(1, KILL_AFTER + 1))
    assert [i for i, _ in resumed] == list(range(7, MAX_ITERS + 1))
    # Bit-identical losses: the resumed run equals an uninterrupted run
    # from the same checkpoint, and on iterations 7-8 (run before the kill
    # and again after the resume) it equals the killed run itself.
    assert resumed == runs['same']
    assert resumed[:KILL_AFTER - 6] == killed[6:KILL_AFTER]
    # The resumed run wrote its checkpoints and moved the pointer on.
    work = runs['killed_dir']
    assert (work / 'last_checkpoint').read_text().strip() == str(
        work / f'iter_{MAX_ITERS}.pth')
    assert not glob.glob(str(work / '.*.tmp'))


def _hook_and_runner(tmp_path):
    """The toy runner's AtomicCheckpointHook, iteration mode, ready to
    save (no optimizer / scheduler state: the runner is not trained)."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    from mdc_plugin.engine.hooks import AtomicCheckpointHook
    runner = Runner.from_cfg(Config(toy_model.toy_runner_cfg(
        str(tmp_path), experiment_name=f'hook{len(os.listdir(tmp_path))}')))
    hook = AtomicCheckpointHook(interval=1, by_epoch=False,
                                save_optimizer=False,
                                save_param_scheduler=False)
    hook.before_train(runner)
    return hook, runner


def test_last_checkpoint_pointer_is_written_atomically(tmp_path,
                                                       monkeypatch):
    """AtomicCheckpointHook writes ``last_checkpoint`` through atomic_write:
    a failure mid-write keeps the old pointer and leaves no temp file."""
    import contextlib

    from mdc_plugin.engine.hooks import checkpoint_hooks
    hook, runner = _hook_and_runner(tmp_path)
    pointer = tmp_path / 'last_checkpoint'
    pointer.write_text('/old/epoch_1.pth')
    real = checkpoint_hooks.atomic_write

    @contextlib.contextmanager
    def full_disk(path, mode, **kwargs):
        with real(path, mode, **kwargs) as f:
            f.write('/new/it')
            raise OSError('disk full')
        yield  # pragma: no cover

    monkeypatch.setattr(checkpoint_hooks, 'atomic_write', full_disk)
    with pytest.raises(OSError, match='disk full'):
        hook._save_checkpoint_with_step(runner, 2, meta=dict(iter=2))
    assert pointer.read_text() == '/old/epoch_1.pth'
    assert not glob.glob(str(tmp_path / '.*.tmp'))
    monkeypatch.setattr(checkpoint_hooks, 'atomic_write', real)
    hook._save_checkpoint_with_step(runner, 3, meta=dict(iter=3))
    assert pointer.read_text() == str(tmp_path / 'iter_3.pth')


def test_stale_temp_of_a_killed_save_is_removed(tmp_path):
    """A SIGKILL mid-write leaves ``.<name>.<random>.tmp``; the next save of
    the same target (e.g. after --resume) deletes it, others are kept."""
    hook, runner = _hook_and_runner(tmp_path)
    stale = tmp_path / '.iter_9.pth.k1ll3d.tmp'
    stale.write_bytes(b'PK partial')
    other = tmp_path / '.iter_12.pth.abcdef.tmp'
    other.write_bytes(b'PK partial')
    stale_ptr = tmp_path / '.last_checkpoint.zzz.tmp'
    stale_ptr.write_text('/half')
    hook._save_checkpoint_with_step(runner, 9, meta=dict(iter=9))
    assert sorted(p.name for p in tmp_path.iterdir()
                  if p.name.startswith(('.', 'iter_', 'last'))) == [
        '.iter_12.pth.abcdef.tmp', 'iter_9.pth', 'last_checkpoint']


@pytest.mark.parametrize('keep', [1, 2])
def test_kill_during_save_keeps_previous_checkpoint(tmp_path, keep):
    """SIGKILL inside the 2nd (or 3rd) save with ``max_keep_ckpts=keep``:
    the kept checkpoints are all still there, ``last_checkpoint`` names one
    of them, and ``--resume`` continues from it."""
    config = _config(tmp_path)
    with open(config, 'a') as f:
        f.write("custom_hooks.append(dict(type='SlowSaveHook', "
                f"marker={str(tmp_path / 'saving')!r}, on_save={keep + 1}))\n")
    work = tmp_path / 'work'
    keep_opt = f'default_hooks.checkpoint.max_keep_ckpts={keep}'
    cmd = _cmd(config, work, tmp_path / 'trace.txt')
    cmd.insert(cmd.index('--cfg-options') + 1, keep_opt)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 180
    try:
        while time.time() < deadline and proc.poll() is None:
            if osp.exists(tmp_path / 'saving'):
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-4000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    kept = sorted(f for f in os.listdir(work) if f.endswith('.pth'))
    expected = [f'iter_{CKPT_EVERY * i}.pth' for i in range(1, keep + 1)]
    assert kept == expected
    last = (work / 'last_checkpoint').read_text().strip()
    assert last == str(work / expected[-1]) and osp.isfile(last)
    cmd = _cmd(config, work, tmp_path / 'resumed.txt', resume='auto')
    cmd.insert(cmd.index('--cfg-options') + 1, keep_opt)
    cmd.insert(cmd.index('--cfg-options') + 1, 'custom_hooks.1.on_save=0')
    _run(cmd)
    assert _trace(tmp_path / 'resumed.txt')[0][0] == CKPT_EVERY * keep + 1
