"""Checkpoint refusals say what was refused, in words (issue 24).

1. a bare numpy dtype object where MMEngine expects a dict or a tensor;
2. a protocol-4/5 pickle opcode (``FRAME``, ``BYTEARRAY8``), by name;
3. a protocol-0 pickle, as such (not "neither a zip archive nor a pickle");
4. a HistoryBuffer state trick / restricted call, naming the refused part;
5. ``tools/train.py`` / ``tools/test.py``: one line and exit status 1;
6. ``tools/caption.py`` loads http:// checkpoints (served on 127.0.0.1);
7. the tools print neither mmcv-lite's nor MMEngine's known-harmless
   warnings, and still print every other one.

None of these weakens the refusal: every crafted file is still refused and
no payload runs.
"""
import itertools
import os
import os.path as osp
import pickle
import struct
import subprocess
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import mdc_plugin  # noqa: E402,F401  (registers the components)
import toy_model  # noqa: E402
from fixtures_data import REPO, load_tool, write_image  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.logging import HistoryBuffer  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from test_checkpoint_trust import _BufferState, _Reduce  # noqa: E402
from mdc_plugin.utils import (UnsafeCheckpointError,  # noqa: E402
                              hardened_checkpoints, load_checkpoint_safely)

V4 = np.dtype('V4')
V4_CLASS = f'{type(V4).__module__}.{type(V4).__qualname__}'
_RUNNER_IDS = itertools.count()
#: The known-harmless warnings the tools silence (item 7).
MMCV_LITE = 'You should install ``mmcv`` rather than ``mmcv-lite``'
FILE_CLIENT = '"FileClient" will be deprecated'
HARD_DISK = '"HardDiskBackend" is the alias of "LocalBackend"'


@pytest.fixture
def marker(tmp_path):
    """A file no payload may create."""
    path = tmp_path / 'PWNED'
    yield path
    assert not path.exists(), 'a payload ran'


def _toy_runner(tmp_path):
    cfg = toy_model.toy_runner_cfg(
        str(tmp_path / 'work'), max_epochs=1,
        experiment_name=f'messages{next(_RUNNER_IDS)}')
    return Runner.from_cfg(Config(cfg))


def _message(excinfo) -> str:
    return str(excinfo.value)


# ----------------------------------------------------- 1: numpy dtypes --
@pytest.mark.parametrize('what', ['state_dict entry', 'whole checkpoint',
                                  'value', 'state_dict value'])
def test_dtype_object_is_refused_by_name(tmp_path, what):
    state = toy_model.ToyModel().state_dict()
    checkpoint = {
        'state_dict entry': {'meta': {}, 'state_dict': V4},
        'whole checkpoint': V4,
        'value': {'x': V4},
        'state_dict value': {'state_dict': dict(state, x=V4)},
    }[what]
    path = str(tmp_path / 'dtype.pth')
    torch.save(checkpoint, path)
    runner = _toy_runner(tmp_path)
    for load in (runner.load_checkpoint, load_checkpoint_safely):
        with pytest.raises(UnsafeCheckpointError) as excinfo:
            with hardened_checkpoints():
                load(path)
        msg = _message(excinfo)
        assert path in msg and V4_CLASS in msg and "dtype('V4')" in msg, msg
        assert 'not allow-listed' not in msg
    if what == 'state_dict entry':
        assert '"state_dict" entry holds' in msg and 'a dict' in msg


def test_dtype_class_and_list_are_refused_by_name(tmp_path):
    path = str(tmp_path / 'cls.pth')
    torch.save({'meta': type(V4)}, path)
    with pytest.raises(UnsafeCheckpointError,
                       match=f'"meta" entry holds the class {V4_CLASS}'):
        load_checkpoint_safely(path)
    torch.save([torch.zeros(1)], path)
    with pytest.raises(TypeError, match='holds a list where a checkpoint'):
        load_checkpoint_safely(path)


def test_arrays_with_void_dtype_still_load(tmp_path):
    """Data is not refused: only dtype objects standing in for weights."""
    path = str(tmp_path / 'ok.pth')
    data = {'meta': {'dtype': V4}, 'x': np.zeros(2, dtype='V4'),
            'state_dict': {'w': torch.ones(2)}}
    torch.save(data, path)
    loaded = load_checkpoint_safely(path)
    assert loaded['meta']['dtype'] == V4 and loaded['x'].dtype == V4


# ----------------------------------------------- 2: protocol-5 opcodes --
def test_protocol_5_pickle_names_the_opcode(tmp_path, marker):
    path = str(tmp_path / 'p5.pth')
    torch.save({'w': torch.zeros(2),
                'evil': _Reduce(os.system, f'touch {marker}')},
               path, pickle_protocol=5)
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        load_checkpoint_safely(path)
    msg = _message(excinfo)
    assert 'Unsupported operand' not in msg and 'not allow-listed' not in msg
    assert 'opcode FRAME (0x95, from pickle protocol 4)' in msg, msg
    assert 'refused as untrusted' in msg and path in msg
    assert excinfo.value.refused == ['opcode FRAME']


def test_bytearray8_opcode_is_named(tmp_path):
    """An unframed protocol-5 pickle: PROTO 5, BYTEARRAY8, STOP."""
    path = tmp_path / 'bytearray8.pth'
    path.write_bytes(b'\x80\x05\x96' + struct.pack('<Q', 2) + b'ab.')
    with pytest.raises(UnsafeCheckpointError,
                       match=r'opcode BYTEARRAY8 \(0x96, from pickle '
                       r'protocol 5\)'):
        load_checkpoint_safely(str(path))


# ------------------------------------------------ 3: protocol-0 pickles --
@pytest.mark.parametrize('writer', ['torch legacy', 'pickle'])
def test_protocol_0_pickle_is_called_a_pickle(tmp_path, marker, writer):
    path = str(tmp_path / 'p0.pth')
    payload = {'w': torch.zeros(2),
               'evil': _Reduce(os.system, f'touch {marker}')}
    if writer == 'pickle':
        with open(path, 'wb') as f:
            pickle.dump(payload, f, protocol=0)
    else:
        torch.save(payload, path, pickle_protocol=0,
                   _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        load_checkpoint_safely(path)
    msg = _message(excinfo)
    assert 'neither' not in msg, msg
    assert 'a pickle in protocol 0 (the legacy text protocol' in msg, msg
    assert 'does not support' in msg and 'refused as untrusted' in msg
    assert excinfo.value.refused == ['pickle protocol 0']


def test_non_pickle_is_still_not_a_checkpoint(tmp_path):
    path = tmp_path / 'notes.pth'
    path.write_text('hello world\n')
    with pytest.raises(RuntimeError,
                       match='neither a complete zip archive nor a pickle'):
        load_checkpoint_safely(str(path))


# ------------------------------------------- 4: HistoryBuffer tricks --
@pytest.mark.parametrize('payload,named', [
    (_BufferState(statistics_methods=dict(evil=np.ndarray)),
     ["statistics_methods {'evil': the class numpy.ndarray}"]),
    (_BufferState(mean=np.zeros(1)), ["the state key(s) ['mean']"]),
    (_Reduce(getattr, HistoryBuffer, '__init__'),
     ["the call builtins.getattr(HistoryBuffer, '__init__')",
      'only the HistoryBuffer statistics methods']),
    (_Reduce(HistoryBuffer, [1.0], [1]),
     ['the call mmengine.logging.history_buffer.HistoryBuffer(<list>, '
      '<list>)']),
    (_Reduce(range, 'x'), ["the call builtins.range('x',)"]),
], ids=['planted method', 'shadowed mean', 'getattr', 'reduce call',
        'range'])
def test_history_buffer_trick_names_what_was_refused(tmp_path, payload,
                                                      named):
    path = str(tmp_path / 'trick.pth')
    torch.save({'message_hub': {'log_scalars': {'loss': payload}}}, path)
    before = dict(HistoryBuffer._statistics_methods)
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        load_checkpoint_safely(path)
    msg = _message(excinfo)
    assert 'not allow-listed' not in msg, msg
    for part in named:
        assert part in msg, msg
    assert HistoryBuffer._statistics_methods == before


def test_non_allow_listed_global_is_still_named_as_such(tmp_path, marker):
    path = str(tmp_path / 'system.pth')
    torch.save({'x': _Reduce(os.system, f'touch {marker}')}, path)
    with pytest.raises(UnsafeCheckpointError,
                       match='not allow-listed .*: posix.system'):
        load_checkpoint_safely(path)


# -------------------------------------------- 5: train/test, one line --
def _evil(tmp_path, marker):
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': toy_model.ToyModel().state_dict(),
                'x': _Reduce(os.system, f'touch {marker}')}, path)
    return path


def _one_error_line(err: str, tool: str, *parts: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.startswith(tool)]
    assert len(lines) == 1 and 'Traceback' not in err, err
    for part in parts:
        assert part in lines[0], lines[0]
    return lines[0]


def test_train_and_test_report_refusal_in_one_line(tools, toy_cfg,
                                                   tmp_path, marker, capsys):
    train, test = tools
    evil = _evil(tmp_path, marker)
    missing = str(tmp_path / 'missing.pth')
    work = str(tmp_path / 'w')
    runs = {
        'train.py load_from': (train, [toy_cfg, '--work-dir', work,
                                       '--cfg-options', f'+load_from={evil}'],
                               'Refusing to load checkpoint'),
        'train.py --resume': (train, [toy_cfg, '--work-dir', work,
                                      '--resume', missing],
                              'can not be found'),
        'test.py': (test, [toy_cfg, evil, '--work-dir', work],
                    'Refusing to load checkpoint'),
        'test.py missing': (test, [toy_cfg, missing, '--work-dir', work],
                            'can not be found'),
    }
    for what, (tool, argv, expected) in runs.items():
        capsys.readouterr()
        assert tool.cli(argv) == 1, what
        name = 'tools/train.py' if tool is train else 'tools/test.py'
        _one_error_line(capsys.readouterr().err, f'{name}: error:',
                        expected)


def test_test_py_command_line_exits_1_with_one_line(toy_cfg, tmp_path,
                                                    marker):
    """The real command line: status 1, one line, no traceback."""
    evil = _evil(tmp_path, marker)
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PYTHONPATH=osp.dirname(osp.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'test.py'), toy_cfg, evil,
         '--work-dir', str(tmp_path / 'w')],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1, proc.stderr
    _one_error_line(proc.stderr, 'tools/test.py: error:',
                    'Refusing to load checkpoint', 'posix.system')
    # item 7: a tool's output has none of the known-harmless warnings
    for known in (MMCV_LITE, FILE_CLIENT, HARD_DISK):
        assert known not in proc.stdout + proc.stderr


# -------------------------------------------- 6: caption.py over HTTP --
MDC_CFG = osp.join(REPO, 'configs', 'mdc', 'vit-tiny_shapes.py')


@pytest.fixture(scope='module')
def caption_tool():
    return load_tool('tools/caption.py')


def test_caption_loads_http_checkpoint(caption_tool, server, tmp_path,
                                       monkeypatch, marker, capsys):
    from mmengine.registry import init_default_scope
    from mmpretrain.registry import MODELS
    root, base = server
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(MDC_CFG).model)
    torch.save({'meta': {}, 'state_dict': model.state_dict()},
               str(root / 'mdc_http.pth'))
    torch.save({'state_dict': model.state_dict(),
                'x': _Reduce(os.system, f'touch {marker}')},
               str(root / 'evil_http.pth'))
    image = write_image(tmp_path / 'img.png', size=(64, 64))

    def run(checkpoint):
        capsys.readouterr()
        code = caption_tool.main([image, '--config', MDC_CFG,
                                  '--checkpoint', checkpoint,
                                  '--device', 'cpu', '--steps', '1'])
        return (code, *capsys.readouterr())

    code, out, err = run(f'{base}/mdc_http.pth')
    assert code == 0, err
    assert out.startswith(f'{image}: ') and 'not found' not in err
    assert osp.isfile(tmp_path / 'hub' / 'checkpoints' / 'mdc_http.pth')
    # the same safe loader: a served payload is refused, in one line
    code, _, err = run(f'{base}/evil_http.pth')
    assert code == 1
    _one_error_line(err, 'caption.py: error:', 'Refusing to load',
                    'posix.system')
    # accurate messages for a missing URL and an unsupported scheme
    code, _, err = run(f'{base}/missing.pth')
    assert code == 1
    _one_error_line(err, 'caption.py: error:', 'Could not download',
                    '404')
    code, _, err = run('ftp://127.0.0.1/x.pth')
    assert code == 1
    _one_error_line(err, 'caption.py: error:',
                    'scheme "ftp://" is not supported', 'http://')


# ------------------------------------------------ 7: harmless warnings --
def _python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS='1')
    return subprocess.run([sys.executable, '-c', code], cwd=REPO,
                          capture_output=True, text=True, env=env,
                          timeout=300)


def test_tool_silences_only_the_known_warnings():
    """A tool's preamble (run as a script would run it) hides mmcv-lite's
    import warning and MMEngine's FileClient / HardDiskBackend notices
    (what CheckpointHook prints); any other warning still shows."""
    proc = _python(
        'import logging, runpy, warnings\n'
        "runpy.run_path('tools/train.py', run_name='not_main')\n"
        'import mmcv.cnn.bricks.transformer\n'
        'from mmengine.fileio import FileClient\n'
        'from mmengine.logging import print_log\n'
        "FileClient.infer_client(None, 'work_dirs/x')\n"
        "print_log('another MMEngine warning', logger='current',\n"
        '          level=logging.WARNING)\n'
        "warnings.warn('Fail to import another module')\n")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    for known in (MMCV_LITE, FILE_CLIENT, HARD_DISK):
        assert known not in out, out
    assert 'another MMEngine warning' in out
    assert 'UserWarning: Fail to import another module' in out


def test_importing_the_plugin_silences_nothing():
    """``import mdc_plugin`` adds no warning filter and leaves MMLogger
    as it is: only the tools' entry points silence anything."""
    proc = _python(
        'import warnings\n'
        'from mmengine.logging import MMLogger\n'
        'original = MMLogger.filter\n'
        'import mdc_plugin\n'
        'assert MMLogger.filter is original\n'
        "assert not any('MultiScaleDeformableAttention' in str(f[1])\n"
        '               for f in warnings.filters)\n')
    assert proc.returncode == 0, proc.stderr
