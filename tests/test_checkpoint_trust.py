"""No checkpoint runs code on any scheme; benign data still loads.

Crafted checkpoints are served by a real HTTP server on 127.0.0.1 and
loaded through every MMEngine scheme (``http://``, ``torchvision://``,
``open-mmlab://``, ``mmcls://``, ``s3://`` / ``petrel://`` through a storage
backend that fetches over that server, ``pavi://``) and through the tools
(``tools/train.py`` ``load_from`` / ``--resume URL`` / ``Pretrained``,
``tools/test.py``) and ``mmpretrain.get_model(pretrained=URL)``.
"""
import os
import pickle
import os.path as osp
import subprocess
import sys
import types
import urllib.request

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import mdc_plugin  # noqa: E402,F401  (registers the components)
import mmengine.fileio.backends as mme_backends  # noqa: E402
import mmengine.runner.checkpoint as mme_ckpt  # noqa: E402
import toy_model  # noqa: E402
from fixtures_data import load_tool  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.fileio import BaseStorageBackend  # noqa: E402
from mmengine.logging import HistoryBuffer  # noqa: E402
from mdc_plugin.utils import (SAFE_GLOBALS, UnsafeCheckpointError,  # noqa
                              hardened_checkpoints, load_checkpoint_safely)

MARKER_ENV = 'MDC_TRUST_MARKER'


# -------------------------------------------------------------- payloads --
class _Reduce:
    """Pickles as ``func(*args)``."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


class _BufferState:
    """Pickles as a HistoryBuffer with the given ``__setstate__`` state."""

    def __init__(self, **state):
        self.state = dict(
            max_length=10,
            _log_history=np.array([1., 5., 3.]),
            _count_history=np.ones(3),
            **state)

    def __reduce__(self):
        return HistoryBuffer, (), self.state


def _method(name):
    return _Reduce(getattr, HistoryBuffer, name)


def _payloads(marker):
    """name -> object that must never load (all refused)."""
    touch = f'touch {marker}'
    return {
        'os.system': _Reduce(os.system, touch),
        'eval': _Reduce(eval, f'__import__("os").system("{touch}")'),
        'subprocess.call': _Reduce(subprocess.call, ['touch', str(marker)]),
        'getattr(HistoryBuffer,__init__)': _method('__init__'),
        'planted statistics method':
        _BufferState(statistics_methods=dict(evil=np.ndarray)),
        'swapped statistics methods':
        _BufferState(statistics_methods=dict(
            mean=_method('max'), max=_method('mean'))),
        'instance _statistics_methods':
        _BufferState(_statistics_methods=dict(mean=_method('mean'))),
        'shadowed mean': _BufferState(mean=np.zeros(1)),
        'shadowed current': _BufferState(current=_method('max')),
        'object-dtype array': np.array([None, 'x'], dtype=object),
    }


def _checkpoint(payload):
    return dict(
        meta=dict(epoch=1, iter=4),
        state_dict=toy_model.ToyModel().state_dict(),
        message_hub=dict(
            log_scalars=dict(loss=payload),
            runtime_info={},
            resumed_keys={}))


# ------------------------------------------------------------- transport --
class _HTTPPetrelBackend(BaseStorageBackend):
    """``s3://bucket/name`` -> GET ``<server>/name`` (a stand-in store)."""

    base_url = None

    def __init__(self, **kwargs):
        pass

    def get(self, filepath):
        name = str(filepath).rsplit('/', 1)[-1]
        with urllib.request.urlopen(f'{self.base_url}/{name}') as resp:
            return resp.read()

    def get_text(self, filepath, encoding='utf-8'):
        return self.get(filepath).decode(encoding)


class _PaviModel:

    def __init__(self, url):
        self.url, self.name = url, url.rsplit('/', 1)[-1]

    def download(self, path):
        urllib.request.urlretrieve(self.url, path)


@pytest.fixture
def schemes(server, tmp_path, monkeypatch):
    """scheme -> function(name) giving the address of a served file."""
    root, base = server
    monkeypatch.setattr(torch.hub, '_hub_dir', str(tmp_path / 'hub'))
    urls = {}
    for table in ('get_torchvision_models', 'get_external_models',
                  'get_mmcls_models'):
        monkeypatch.setattr(mme_ckpt, table, lambda: urls)
    monkeypatch.setattr(mme_ckpt, 'get_deprecated_model_names', lambda: {})
    _HTTPPetrelBackend.base_url = base
    monkeypatch.setitem(mme_backends.backends, 'petrel', _HTTPPetrelBackend)
    pavi = types.ModuleType('pavi')
    pavi.modelcloud = types.SimpleNamespace(
        get=lambda name: _PaviModel(f'{base}/{name}'))
    monkeypatch.setitem(sys.modules, 'pavi', pavi)

    def model_zoo(prefix):

        def address(name):
            urls[name] = f'{base}/{name}'
            return f'{prefix}{name}'

        return address

    return {
        'local': lambda name: str(root / name),
        'http': lambda name: f'{base}/{name}',
        'torchvision': model_zoo('torchvision://'),
        'open-mmlab': model_zoo('open-mmlab://'),
        'mmcls': model_zoo('mmcls://'),
        's3': lambda name: f's3://bucket/{name}',
        'petrel': lambda name: f'petrel://bucket/{name}',
        'pavi': lambda name: f'pavi://{name}',
    }


def _serve(server, name, obj, legacy=False):
    root, _ = server
    torch.save(obj, str(root / name),
               _use_new_zipfile_serialization=not legacy)
    return name


# -------------------------------------------------------------- refusals --
PAYLOADS = list(_payloads('x'))
SCHEMES = ('local', 'http', 'torchvision', 'open-mmlab', 'mmcls', 's3',
           'petrel', 'pavi')


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
@pytest.mark.parametrize('scheme', SCHEMES)
def test_every_payload_refused_on_every_scheme(server, schemes, tmp_path,
                                               scheme, legacy):
    marker = tmp_path / 'PWNED'
    before = dict(HistoryBuffer._statistics_methods)
    for i, (what, payload) in enumerate(_payloads(marker).items()):
        name = _serve(server, f'{scheme}-{legacy}-{i}.pth',
                      _checkpoint(payload), legacy)
        address = schemes[scheme](name)
        for load in (load_checkpoint_safely, mme_ckpt._load_checkpoint):
            with pytest.raises(UnsafeCheckpointError):
                with hardened_checkpoints():
                    load(address)
        if scheme == 'local':
            # Outside a hardened block MMEngine is as the plugin found it:
            # its local loader still runs nothing (torch's weights-only
            # default), in its own words. (Its URL loaders pass
            # weights_only=False: hence the hook in default_runtime.py and
            # hardened tools; docs/reliability.md.)
            with pytest.raises(pickle.UnpicklingError):
                mme_ckpt._load_checkpoint(address)
        assert not marker.exists(), f'{what} ran on {scheme}'
        assert HistoryBuffer._statistics_methods == before, what


def test_allow_list_is_not_process_wide(server, tmp_path):
    """A plain torch.load elsewhere gets no allow-listed global from us."""
    root, _ = server
    path = str(root / 'plain.pth')
    torch.save(_checkpoint(HistoryBuffer([1., 5.], [1, 1])), path)
    load_checkpoint_safely(path)  # the safe loader was used before
    for entry in SAFE_GLOBALS:
        assert entry not in torch.serialization.get_safe_globals()
    with pytest.raises(Exception, match='HistoryBuffer|ndarray|Unsupported'):
        torch.load(path, weights_only=True)


def test_history_buffer_is_rebuilt_from_plain_data(server, schemes):
    """A genuine HistoryBuffer loads over HTTP with its own methods."""
    buf = HistoryBuffer([1., 5., 3.], [1, 1, 1])
    buf.statistics('mean')  # registers the defaults
    name = _serve(server, 'buffer.pth', _checkpoint(buf))
    loaded = load_checkpoint_safely(schemes['http'](name))
    hub = loaded['message_hub']['log_scalars']['loss']
    assert type(hub) is HistoryBuffer
    assert 'statistics_methods' not in vars(hub)
    assert hub.statistics('mean') == pytest.approx(3.0)
    assert hub.statistics('max') == 5.0 and hub.current() == 3.0


# ---------------------------------------------------------- benign data --
def _benign():
    return {
        'empty float array': np.zeros(0),
        'empty int 2-d array': np.zeros((0, 3), dtype=np.int64),
        'empty HistoryBuffer': HistoryBuffer(),
        'str array': np.array(['ab', 'c']),
        'bytes array': np.array([b'ab', b'']),
        'datetime64 array': np.array(['2024-01-02'], dtype='datetime64[D]'),
        'timedelta64': np.timedelta64(3, 's'),
        'structured array': np.array([(1, 2.5)], dtype=[('a', 'i4'),
                                                          ('b', 'f8')]),
        'np.str_': np.str_('caption'),
        'np.bytes_': np.bytes_(b'x'),
        'frozenset': frozenset({1, 2}),
        'slice': slice(1, 10, 2),
        'range': range(2, 9, 3),
        'empty bytes': b'',
        'set': {3, 4},
    }


def _same(a, b):
    if isinstance(a, HistoryBuffer):
        return (type(b) is HistoryBuffer
                and np.array_equal(a._log_history, b._log_history))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize('legacy', [False, True], ids=['zip', 'legacy'])
@pytest.mark.parametrize('scheme', ['local', 'http'])
def test_benign_data_loads(server, schemes, scheme, legacy):
    data = _benign()
    name = _serve(server, f'benign-{scheme}-{legacy}.pth', dict(data=data),
                  legacy)
    loaded = load_checkpoint_safely(schemes[scheme](name))['data']
    wrong = [k for k, v in data.items() if not _same(v, loaded[k])]
    assert not wrong


# ------------------------------------------------------- tools, get_model --
@pytest.fixture(scope='module')
def tools():
    return load_tool('tools/train.py'), load_tool('tools/test.py')


def _toy_config(tmp_path, **overrides):
    return toy_model.write_toy_config(
        tmp_path / 'toy_cfg.py',
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=10),
        **overrides)


@pytest.fixture
def evil_url(server, schemes, tmp_path):
    """``(url, marker)`` of an os.system payload served over HTTP."""
    marker = tmp_path / 'PWNED'
    name = _serve(server, 'evil-tool.pth',
                  _checkpoint(_payloads(marker)['os.system']))
    yield schemes['http'](name), marker
    assert not marker.exists(), 'the payload ran'


def _tool_paths(tools, cfg, work, url):
    train, test = tools
    return {
        'train.py load_from': lambda: train.main(
            [cfg, '--work-dir', work, '--cfg-options', f'+load_from={url}']),
        'train.py --resume URL': lambda: train.main(
            [cfg, '--work-dir', work, '--resume', url]),
        'train.py Pretrained init_cfg': lambda: train.main([
            cfg, '--work-dir', work, '--cfg-options',
            '+model.init_cfg.type=Pretrained',
            f'+model.init_cfg.checkpoint={url}'
        ]),
        'test.py': lambda: test.main([cfg, url, '--work-dir', work]),
    }


@pytest.mark.parametrize('payload',
                         ['os.system', 'swapped statistics methods'])
def test_tools_refuse_served_payload(tools, server, schemes, tmp_path,
                                     payload):
    marker = tmp_path / 'PWNED'
    name = _serve(server, f'tool-{len(payload)}.pth',
                  _checkpoint(_payloads(marker)[payload]))
    url = schemes['http'](name)
    cfg = _toy_config(tmp_path)
    for what, run in _tool_paths(tools, cfg, str(tmp_path / 'w'),
                                 url).items():
        with pytest.raises(UnsafeCheckpointError):
            run()
        assert not marker.exists(), what


def test_get_model_refuses_served_payload(evil_url):
    from mmpretrain import get_model
    url, _ = evil_url
    cfg = Config(dict(model=dict(
        type='ImageClassifier', backbone=dict(type='LeNet5', num_classes=2))))
    with pytest.raises(UnsafeCheckpointError):
        with hardened_checkpoints():
            get_model(cfg, pretrained=url)


def test_resume_from_url_works(tools, server, schemes, tmp_path):
    """A genuine checkpoint resumes over HTTP (the safe path is usable)."""
    cfg = _toy_config(tmp_path)
    work = tmp_path / 'first'
    tools[0].main([cfg, '--work-dir', str(work)])
    root, _ = server
    with open(work / 'epoch_1.pth', 'rb') as src:
        (root / 'good.pth').write_bytes(src.read())
    url = schemes['http']('good.pth')
    tools[0].main([
        cfg, '--work-dir', str(tmp_path / 'resumed'), '--resume', url,
        '--cfg-options', 'train_cfg.max_epochs=2'
    ])
    assert osp.isfile(tmp_path / 'resumed' / 'epoch_2.pth')


def test_one_weight_loader():
    """Nothing in the package or tools unpickles weights itself: every load
    goes through ``load_checkpoint_safely`` or MMEngine's (patched)
    ``CheckpointLoader``, both ending in ``load_from_local``."""
    import glob
    import re
    root = osp.dirname(osp.dirname(osp.abspath(__file__)))
    own = re.compile(r'torch\.load\(|load_state_dict_from_url\(|'
                     r'hub\.load_url\(|pickle\.loads?\(|allow_pickle=True')
    offenders = [
        osp.relpath(path, root)
        for folder in ('mdc_plugin', 'tools')
        for path in glob.glob(osp.join(root, folder, '**', '*.py'),
                              recursive=True)
        if not path.endswith(osp.join('utils', 'safe_checkpoint.py'))
        and own.search(open(path).read())
    ]
    assert offenders == []
