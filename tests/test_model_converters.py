"""tools/model_converters/extract_backbone.py on freshly built MDC, Cap and
CLIP models: the extracted backbone loads strictly into a fresh MMPretrain
``VisionTransformer`` (directly and through the strict ``Pretrained``
init) and computes exactly the source backbone's features; malicious,
garbage and backbone-less inputs are refused with a clear error."""
import os
import os.path as osp
import sys

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

import mdc_plugin  # noqa: F401  (registers every component)
from mdc_plugin.utils import hardened_checkpoints  # noqa: E402
from mdc_plugin.utils import load_checkpoint_safely

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'model_converters'))

import extract_backbone  # noqa: E402
from extract_backbone import ConversionError, convert, main  # noqa: E402

CONFIGS = {
    'mdc': 'configs/mdc/vit-tiny_shapes.py',
    'cap': 'configs/baselines/cap_vit-tiny_shapes.py',
    'clip': 'configs/baselines/clip_vit-tiny_shapes.py',
}


def _models():
    init_default_scope('mmpretrain')
    from mmpretrain.registry import MODELS
    return MODELS


@pytest.fixture(scope='module')
def sources(tmp_path_factory):
    """{method: (checkpoint path, model)}: fresh models saved like MMEngine
    checkpoints (state_dict + meta)."""
    out = {}
    root = tmp_path_factory.mktemp('sources')
    for i, (name, config) in enumerate(sorted(CONFIGS.items())):
        torch.manual_seed(10 + i)
        model = _models().build(Config.fromfile(osp.join(ROOT,
                                                         config)).model)
        model.init_weights()
        model.eval()
        path = str(root / f'{name}.pth')
        torch.save({'state_dict': model.state_dict(),
                    'meta': dict(epoch=8, iter=1248, seed=0,
                                 experiment_name=name)}, path)
        out[name] = (path, model)
    return out


@pytest.mark.parametrize('method', sorted(CONFIGS))
def test_converted_backbone_loads_strictly_with_same_features(
        method, sources, tmp_path, capsys):
    src, model = sources[method]
    config = osp.join(ROOT, CONFIGS[method])
    dst = str(tmp_path / 'backbone.pth')
    assert main([src, dst, '--config', config]) == 0
    assert 'wrote' in capsys.readouterr().out

    ckpt = load_checkpoint_safely(dst)  # weights-only loadable
    assert set(ckpt) == {'state_dict', 'meta'}
    state = ckpt['state_dict']
    expected = model.backbone.state_dict()
    assert list(state) == list(expected)
    assert not any(k.startswith(('backbone.', 'head.', 'text.'))
                   for k in state)
    meta = ckpt['meta']
    assert meta['source'] == osp.abspath(src)
    assert meta['config'] == osp.abspath(config)
    assert meta['backbone_cfg']['type'] == 'VisionTransformer'
    assert meta['arch'] == dict(embed_dims=192, in_channels=3, patch_size=8,
                                num_layers=6, feedforward_channels=768,
                                num_tokens=65)
    assert meta['source_meta']['epoch'] == 8
    assert len(meta['source_sha256']) == 64

    cfg = Config.fromfile(config).model.backbone
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = model.backbone(x)[-1]
    # 1) plain torch, strict=True: no missing or unexpected keys
    fresh = _models().build(cfg)
    result = fresh.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(fresh(x)[-1], reference)
    # 2) the way MMPretrain configs consume it: strict Pretrained init
    via_init = _models().build(
        dict(cfg, init_cfg=dict(type='Pretrained', checkpoint=dst,
                                strict=True)))
    with hardened_checkpoints():  # as SafeCheckpointLoadingHook does
        via_init.init_weights()
    via_init.eval()
    with torch.no_grad():
        assert torch.equal(via_init(x)[-1], reference)


class _Payload:
    """Pickles as a call that creates ``marker`` when unpickled."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_malicious_checkpoint_refused(tmp_path, sources, capsys):
    _, model = sources['mdc']
    marker = tmp_path / 'PWNED'
    evil = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': model.state_dict(),
                'meta': dict(epoch=1, hook=_Payload(marker))}, evil)
    dst = tmp_path / 'out.pth'
    assert main([evil, str(dst)]) == 1
    err = capsys.readouterr().err
    assert 'Refusing to load checkpoint' in err and 'system' in err
    assert not marker.exists(), 'the malicious payload ran'
    assert not dst.exists()


def test_legacy_format_checkpoint_converts(tmp_path, sources):
    """torch's legacy (non-zip) format loads here as on every other path."""
    src, _ = sources['mdc']
    legacy = str(tmp_path / 'legacy.pth')
    torch.save(load_checkpoint_safely(src), legacy,
               _use_new_zipfile_serialization=False)
    dst = str(tmp_path / 'out.pth')
    assert main([legacy, dst]) == 0
    got = load_checkpoint_safely(dst)['state_dict']
    assert main([src, str(tmp_path / 'ref.pth')]) == 0
    expected = load_checkpoint_safely(str(tmp_path / 'ref.pth'))['state_dict']
    assert set(got) == set(expected)
    assert all(torch.equal(got[k], expected[k]) for k in got)


def test_checkpoint_without_backbone(tmp_path, sources):
    _, model = sources['cap']
    head_only = str(tmp_path / 'head_only.pth')
    torch.save({'state_dict': {k: v for k, v in model.state_dict().items()
                               if k.startswith('head.')}}, head_only)
    with pytest.raises(ConversionError,
                       match=r'no "backbone\.\*" weights.*\'head\.\'') as e:
        convert(head_only, str(tmp_path / 'out.pth'))
    assert head_only in str(e.value)
    assert not (tmp_path / 'out.pth').exists()


def test_backbone_of_another_config_refused(tmp_path, sources):
    src, _ = sources['mdc']
    with pytest.raises(ConversionError, match='does not match'):
        convert(src, str(tmp_path / 'out.pth'),
                config=osp.join(ROOT, 'configs/mdc/vit-b_coco.py'))
    assert not (tmp_path / 'out.pth').exists()


def test_garbage_inputs(tmp_path, sources, capsys):
    dst = str(tmp_path / 'out.pth')
    text = tmp_path / 'notes.pth'
    text.write_text('not a checkpoint\n')
    with pytest.raises(ConversionError, match='not a torch checkpoint'):
        convert(str(text), dst)
    # a checkpoint cut short (e.g. a killed copy)
    src, _ = sources['clip']
    with open(src, 'rb') as f:
        data = f.read()
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(data[:len(data) // 2])
    with pytest.raises(ConversionError, match='truncated'):
        convert(str(truncated), dst)
    # a torch file that holds no dict
    listed = str(tmp_path / 'list.pth')
    torch.save([torch.zeros(2)], listed)
    with pytest.raises(ConversionError, match='holds a list'):
        convert(listed, dst)
    # non-tensor values under backbone.*
    odd = str(tmp_path / 'odd.pth')
    torch.save({'state_dict': {'backbone.pos_embed': 3}}, odd)
    with pytest.raises(ConversionError, match='not a tensor'):
        convert(odd, dst)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        convert(str(tmp_path / 'missing.pth'), dst)
    assert not osp.exists(dst)
    # the CLI reports them as errors (exit 1), and will not overwrite
    assert main([str(text), dst]) == 1
    assert 'error: ' in capsys.readouterr().err
    open(dst, 'w').close()
    assert main([src, dst]) == 2
    assert 'exists' in capsys.readouterr().err
    assert main([src, dst, '--force']) == 0
    assert load_checkpoint_safely(dst)['state_dict']


def test_help_documents_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        extract_backbone.parse_args(['--help'])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for word in ('src', 'dst', '--config', '--prefix', 'Pretrained'):
        assert word in out
