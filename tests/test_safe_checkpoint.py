"""Safe checkpoint loading / atomic saving with the real MMEngine Runner."""
import glob
import itertools
import os
import os.path as osp
import shutil
import sys

import numpy as np
import pytest
import torch

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import mdc_plugin  # noqa: E402,F401  (registers the components)
import mmengine.runner.checkpoint as mme_ckpt  # noqa: E402
import toy_model  # noqa: E402
from mmengine.config import Config  # noqa: E402
from mmengine.logging import HistoryBuffer  # noqa: E402
from mmengine.model import BaseModule  # noqa: E402
from mmengine.runner import Runner  # noqa: E402
from mdc_plugin.utils import (
    SAFE_GLOBALS,
    UnsafeCheckpointError,  # noqa: E402,E501
    WeightsNotLoadedError,
    assert_state_dict_loaded,
    hardened_checkpoints,
    load_checkpoint_safely)
from mdc_plugin.utils.safe_checkpoint import (  # noqa: E402
    atomic_save_checkpoint, load_from_local)

ITERS_PER_EPOCH = 4  # 16 samples / batch 4


_RUNNER_IDS = itertools.count()


def _runner(work_dir, max_epochs, **overrides):
    overrides.setdefault('custom_hooks', [dict(type='ToyRecorderHook')])
    # Unique names: MMEngine's logger/visualizer instances are per name.
    overrides.setdefault('experiment_name', f'toy{next(_RUNNER_IDS)}')
    cfg = toy_model.toy_runner_cfg(
        str(work_dir), max_epochs=max_epochs, **overrides)
    return Runner.from_cfg(Config(cfg))


def _recorder(runner):
    return next(
        h for h in runner.hooks if type(h).__name__ == 'ToyRecorderHook')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A work dir trained for 2 epochs (epoch_1.pth, epoch_2.pth)."""
    work_dir = tmp_path_factory.mktemp('trained')
    _runner(work_dir, 2).train()
    return work_dir


@pytest.fixture
def work_copy(trained, tmp_path):
    dst = tmp_path / 'work'
    shutil.copytree(trained, dst)
    # last_checkpoint holds an absolute path into the original dir.
    (dst / 'last_checkpoint').write_text(str(dst / 'epoch_2.pth'))
    return dst


class _Payload:
    """Pickles as a call that creates ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


class _GetattrPayload:
    """Pickles as ``getattr(HistoryBuffer, '__init__')`` (allow-listed)."""

    def __reduce__(self):
        return getattr, (HistoryBuffer, '__init__')


class _PlantedMethod:
    """A HistoryBuffer whose state plants a callable into its registry."""

    def __reduce__(self):
        state = dict(
            max_length=10,
            _log_history=np.zeros(1),
            _count_history=np.ones(1),
            statistics_methods=dict(evil=np.ndarray))
        return HistoryBuffer, (), state


def _evil_checkpoint(path, payload):
    model = toy_model.ToyModel()
    torch.save(
        dict(
            meta=dict(epoch=1, iter=4),
            state_dict=model.state_dict(),
            message_hub=dict(log_scalars={}, runtime_info={}, resumed_keys={}),
            evil=payload), str(path))
    return str(path)


@pytest.fixture
def evil(tmp_path):
    marker = tmp_path / 'PWNED'
    path = _evil_checkpoint(tmp_path / 'evil.pth', _Payload(marker))
    yield path, marker
    assert not marker.exists(), 'the malicious payload ran'


# ------------------------------------------------------------ allow-list --
def test_checkpoint_globals_are_allow_listed(trained):
    for path in glob.glob(str(trained / 'epoch_*.pth')):
        with torch.serialization.safe_globals(SAFE_GLOBALS):
            assert torch.serialization.get_unsafe_globals_in_checkpoint(
                path) == []
        ckpt = load_checkpoint_safely(path)
        assert isinstance(ckpt['message_hub']['log_scalars']['train/loss'],
                          HistoryBuffer)


def test_hardening_is_scoped_to_the_block():
    before = list(torch.serialization.get_safe_globals())
    schemes = dict(mme_ckpt.CheckpointLoader._schemes)
    assert schemes[''] is not load_from_local  # MMEngine's own
    with hardened_checkpoints():
        assert mme_ckpt.CheckpointLoader._schemes[''] is load_from_local
        assert mme_ckpt.load_from_local is load_from_local
        assert torch.serialization.get_safe_globals() == before
    assert dict(mme_ckpt.CheckpointLoader._schemes) == schemes
    assert torch.serialization.get_safe_globals() == before
    for entry in SAFE_GLOBALS:  # only inside the safe loader
        assert entry not in before
    import mmengine.runner as mr
    import mmengine.runner.runner as mrr
    for module in (mme_ckpt, mr, mrr):
        assert module.save_checkpoint is not atomic_save_checkpoint


# --------------------------------------------------------------- resume --
def test_resume_auto_continues(trained, work_copy):
    ckpt = load_checkpoint_safely(str(trained / 'epoch_2.pth'))
    runner = _runner(work_copy, 3, resume=True)
    runner.train()
    snap = _recorder(runner).snapshot
    assert (snap['epoch'], snap['iter']) == (2, 2 * ITERS_PER_EPOCH)
    assert snap['loss_history'] == 2 * ITERS_PER_EPOCH
    assert snap['lr'] == pytest.approx(0.001)  # MultiStepLR step restored
    saved = ckpt['optimizer']['state']
    assert set(snap['optim_state']) == set(saved)
    for k, v in saved.items():
        torch.testing.assert_close(snap['optim_state'][k]['momentum_buffer'],
                                   v['momentum_buffer'])
    assert (runner.epoch, runner.iter) == (3, 3 * ITERS_PER_EPOCH)
    assert osp.isfile(work_copy / 'epoch_3.pth')
    assert (work_copy / 'last_checkpoint').read_text().endswith('epoch_3.pth')
    assert len(runner.message_hub.log_scalars['train/loss'].data[0]) == 12


def test_resume_from_given_checkpoint(trained, tmp_path):
    runner = _runner(
        tmp_path, 3, resume=True, load_from=str(trained / 'epoch_1.pth'))
    runner.train()
    snap = _recorder(runner).snapshot
    assert (snap['epoch'], snap['iter']) == (1, ITERS_PER_EPOCH)
    assert (runner.epoch, runner.iter) == (3, 3 * ITERS_PER_EPOCH)


def test_load_from_weights_only(trained, tmp_path):
    ckpt = load_checkpoint_safely(str(trained / 'epoch_2.pth'))
    runner = _runner(tmp_path, 1, load_from=str(trained / 'epoch_2.pth'))
    runner.train()
    snap = _recorder(runner).snapshot
    assert (snap['epoch'], snap['iter']) == (0, 0)
    torch.testing.assert_close(snap['weight'],
                               ckpt['state_dict']['backbone.weight'])


# ---------------------------------------------------- malicious refusal --
def _assert_refused(excinfo, path, name):
    msg = str(excinfo.value)
    assert path in msg and name in msg, msg


def test_refused_by_load_checkpoint_safely(evil):
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        load_checkpoint_safely(path)
    _assert_refused(excinfo, path, 'posix.system')
    assert excinfo.value.refused == ['posix.system']


@pytest.mark.parametrize(
    'loader', [
        lambda p: mme_ckpt._load_checkpoint(p, map_location='cpu'),
        lambda p: mme_ckpt.CheckpointLoader.load_checkpoint(p),
        lambda p: mme_ckpt.load_checkpoint(toy_model.ToyModel(), p),
        lambda p: mme_ckpt.load_from_local(p, None),
    ],
    ids=[
        '_load_checkpoint', 'CheckpointLoader', 'load_checkpoint',
        'load_from_local'
    ])
def test_refused_by_mmengine_loaders(evil, loader):
    path, _ = evil
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        with hardened_checkpoints():
            loader(path)
    _assert_refused(excinfo, path, 'posix.system')
    # Outside the block MMEngine is untouched by the plugin: torch >= 2.6's
    # weights-only default still refuses the payload, in its own words.
    import pickle
    with pytest.raises(pickle.UnpicklingError, match='Weights only load'):
        loader(path)


@pytest.mark.parametrize('resume', [True, False], ids=['resume', 'load_from'])
def test_refused_by_runner(evil, tmp_path, resume):
    path, _ = evil
    runner = _runner(tmp_path / 'w', 1, resume=resume, load_from=path)
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        runner.train()
    _assert_refused(excinfo, path, 'posix.system')


def test_refused_by_pretrained_init(evil):
    path, _ = evil
    model = toy_model.ToyModel(
        init_cfg=dict(type='Pretrained', checkpoint=path, prefix='backbone.'))
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        with hardened_checkpoints():
            model.init_weights()
    _assert_refused(excinfo, path, 'posix.system')


def test_refused_restricted_getattr(tmp_path):
    path = _evil_checkpoint(tmp_path / 'getattr.pth', _GetattrPayload())
    # Both globals are allow-listed, so only the restricted getattr stops it.
    with torch.serialization.safe_globals(SAFE_GLOBALS):
        assert torch.serialization.get_unsafe_globals_in_checkpoint(
            path) == []
    with pytest.raises(UnsafeCheckpointError, match='__init__') as excinfo:
        load_checkpoint_safely(path)
    _assert_refused(excinfo, path, 'builtins.getattr')


def test_refused_planted_statistics_method(tmp_path):
    before = dict(HistoryBuffer._statistics_methods)
    path = _evil_checkpoint(tmp_path / 'planted.pth', _PlantedMethod())
    with pytest.raises(UnsafeCheckpointError, match='evil') as excinfo:
        with hardened_checkpoints():
            mme_ckpt._load_checkpoint(path)
    _assert_refused(excinfo, path, 'HistoryBuffer')
    assert HistoryBuffer._statistics_methods == before


def test_legacy_format_payload_refused(tmp_path):
    marker = tmp_path / 'PWNED_LEGACY'
    path = str(tmp_path / 'legacy.pth')
    torch.save({'evil': _Payload(marker)},
               path,
               _use_new_zipfile_serialization=False)
    with pytest.raises(UnsafeCheckpointError) as excinfo:
        load_checkpoint_safely(path)
    _assert_refused(excinfo, path, 'system')
    assert not marker.exists()


# ---------------------------------------------------------- atomic save --
def test_atomic_save_keeps_previous_checkpoint(trained, work_copy,
                                               monkeypatch):
    target = work_copy / 'epoch_2.pth'
    original = target.read_bytes()
    last = (work_copy / 'last_checkpoint').read_text()
    real_save = torch.save

    def crash_mid_write(obj, f, *args, **kwargs):
        f.write(b'PK\x03\x04 partial checkpoint bytes')
        raise KeyboardInterrupt('killed mid-write')

    monkeypatch.setattr(torch, 'save', crash_mid_write)
    runner = _runner(work_copy, 3)
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'AtomicCheckpointHook')
    hook.before_train(runner)
    hook.save_optimizer = hook.save_param_scheduler = False
    with pytest.raises(KeyboardInterrupt):
        hook._save_checkpoint_with_step(runner, 2, meta=dict(epoch=2))
    with pytest.raises(KeyboardInterrupt):
        atomic_save_checkpoint({'a': 1}, str(target))
    monkeypatch.setattr(torch, 'save', real_save)

    assert target.read_bytes() == original
    assert (work_copy / 'last_checkpoint').read_text() == last
    assert not [p for p in os.listdir(work_copy) if p.endswith('.tmp')]
    assert load_checkpoint_safely(str(target))['meta']['epoch'] == 2


def test_atomic_save_writes_complete_file(tmp_path):
    target = tmp_path / 'sub' / 'ckpt.pth'
    atomic_save_checkpoint({'state_dict': {'w': torch.ones(2)}}, str(target))
    umask = os.umask(0)
    os.umask(umask)
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)
    torch.testing.assert_close(
        load_checkpoint_safely(str(target))['state_dict']['w'], torch.ones(2))
    assert os.listdir(tmp_path / 'sub') == ['ckpt.pth']


# ------------------------------------------------- loud pretrained init --
def _vit(**kwargs):
    from mmpretrain.models import VisionTransformer
    arch = dict(
        embed_dims=32, num_layers=2, num_heads=2, feedforward_channels=64)
    kwargs.setdefault('img_size', 32)
    return VisionTransformer(arch=arch, patch_size=16, **kwargs)


@pytest.fixture(scope='module')
def vit_ckpt(tmp_path_factory):
    """A classifier-style checkpoint: ``backbone.*`` ViT weights + head."""
    torch.manual_seed(0)
    src = _vit()
    with hardened_checkpoints():
        src.init_weights()
    state = {f'backbone.{k}': v for k, v in src.state_dict().items()}
    state['head.fc.weight'] = torch.zeros(3, 32)
    path = tmp_path_factory.mktemp('vit') / 'vit.pth'
    torch.save({'state_dict': state, 'meta': {}}, str(path))
    return str(path), src.state_dict()


def _assert_same(module, expected):
    for k, v in module.state_dict().items():
        torch.testing.assert_close(v, expected[k], msg=k)


def test_pretrained_vit_right_prefix_loads(vit_ckpt):
    path, expected = vit_ckpt
    vit = _vit(
        init_cfg=dict(
            type='Pretrained',
            checkpoint=path,
            prefix='backbone.',
            strict=True))
    with hardened_checkpoints():
        vit.init_weights()
    _assert_same(vit, expected)  # incl. pos_embed and the FFN layers


@pytest.mark.parametrize('prefix', ['model.backbone.', 'head.', None])
@pytest.mark.parametrize('strict', [True, False])
def test_pretrained_vit_wrong_prefix_raises(vit_ckpt, prefix, strict):
    path, _ = vit_ckpt
    vit = _vit(
        init_cfg=dict(
            type='Pretrained', checkpoint=path, prefix=prefix, strict=strict))
    with pytest.raises(WeightsNotLoadedError, match='VisionTransformer'):
        with hardened_checkpoints():
            vit.init_weights()


def test_pretrained_vit_partial(vit_ckpt, tmp_path):
    path, expected = vit_ckpt
    ckpt = load_checkpoint_safely(path)
    del ckpt['state_dict']['backbone.layers.1.ln1.weight']
    partial = str(tmp_path / 'partial.pth')
    torch.save(ckpt, partial)
    vit = _vit(
        init_cfg=dict(
            type='Pretrained',
            checkpoint=partial,
            prefix='backbone.',
            strict=True))
    with pytest.raises(WeightsNotLoadedError, match='layers.1.ln1.weight'):
        with hardened_checkpoints():
            vit.init_weights()
    vit = _vit(
        init_cfg=dict(
            type='Pretrained', checkpoint=partial, prefix='backbone.'))
    with hardened_checkpoints():
        vit.init_weights()  # non-strict: warns, loads the rest
    torch.testing.assert_close(vit.layers[0].ln1.weight,
                               expected['layers.0.ln1.weight'])


def test_pretrained_vit_resized_pos_embed_is_loaded(vit_ckpt):
    path, _ = vit_ckpt
    vit = _vit(
        img_size=48,
        init_cfg=dict(
            type='Pretrained',
            checkpoint=path,
            prefix='backbone.',
            strict=True))
    with hardened_checkpoints():
        vit.init_weights()  # ViT's load hook resizes pos_embed: not a mismatch
    assert vit.pos_embed.shape[1] == 1 + 9


def test_pretrained_inside_model_runs_after_children(vit_ckpt):
    """Nested init_cfg: the parent's other inits must not clobber it."""
    path, expected = vit_ckpt

    class Wrapper(BaseModule):

        def __init__(self):
            super().__init__(
                init_cfg=dict(type='Constant', val=0.5, layer='Linear'))
            self.backbone = _vit(
                init_cfg=dict(
                    type='Pretrained', checkpoint=path, prefix='backbone.'))

    model = Wrapper()
    with hardened_checkpoints():
        model.init_weights()
    _assert_same(model.backbone, expected)


def test_assert_state_dict_loaded(vit_ckpt):
    path, _ = vit_ckpt
    ckpt = load_checkpoint_safely(path)
    vit = _vit()
    report = assert_state_dict_loaded(vit, ckpt, 'backbone.', owner='probe')
    assert not report.missing and len(report.loaded) == len(vit.state_dict())
    with pytest.raises(WeightsNotLoadedError, match='probe.*backbone'):
        assert_state_dict_loaded(vit, ckpt, 'backbone.backbone.', 'probe')
    with pytest.raises(WeightsNotLoadedError, match='0 key'):
        assert_state_dict_loaded(vit, ckpt, None, 'probe')
    state = dict(ckpt['state_dict'])
    del state['backbone.ln1.weight']
    with pytest.raises(WeightsNotLoadedError, match='missing.*ln1.weight'):
        assert_state_dict_loaded(vit, state, 'backbone.', 'probe')
    report = assert_state_dict_loaded(vit, state, 'backbone.', strict=False)
    assert report.missing == ['ln1.weight']
    with pytest.raises(WeightsNotLoadedError, match='mismatched.*pos_embed'):
        assert_state_dict_loaded(_vit(img_size=48), ckpt, 'backbone.')
    assert_state_dict_loaded(
        _vit(img_size=48), ckpt, 'backbone.', ignore_keys=['pos_embed'])


@pytest.mark.parametrize('content', [b'hello world\n', b'\x13V$\x9b' * 64])
def test_non_checkpoint_file_is_named(tmp_path, content):
    bad = tmp_path / 'notes.pth'
    bad.write_bytes(content)
    with pytest.raises(RuntimeError, match='not a torch checkpoint') as err:
        load_checkpoint_safely(str(bad))
    assert 'notes.pth' in str(err.value)
