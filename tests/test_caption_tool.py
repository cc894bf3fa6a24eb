"""tools/caption.py, mdc_plugin.apis and MMPretrain's inference APIs on a
freshly initialised tiny captioner saved to a temporary checkpoint."""
import glob
import importlib.util
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmpretrain.apis import ImageCaptionInferencer, get_model, inference_model
from mmpretrain.registry import MODELS

from mdc_plugin.apis import caption_images, init_captioner
from mdc_plugin.utils import UnsafeCheckpointError, WeightsNotLoadedError

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MDC_CFG = osp.join(ROOT, 'configs', 'mdc', 'vit-tiny_shapes.py')
CAP_CFG = osp.join(ROOT, 'configs', 'baselines', 'cap_vit-tiny_shapes.py')
CLIP_CFG = osp.join(ROOT, 'configs', 'baselines', 'clip_vit-tiny_shapes.py')


def _load_tool():
    spec = importlib.util.spec_from_file_location(
        'mdc_tools_caption', osp.join(ROOT, 'tools', 'caption.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


caption_tool = _load_tool()


def _save_fresh(config: str, path) -> str:
    """Build ``config``'s model with random weights and save a checkpoint."""
    init_default_scope('mmpretrain')
    torch.manual_seed(0)
    model = MODELS.build(Config.fromfile(config).model)
    torch.save({'meta': {'epoch': 0}, 'state_dict': model.state_dict()},
               str(path))
    return str(path)


@pytest.fixture(scope='module')
def mdc_ckpt(tmp_path_factory) -> str:
    return _save_fresh(MDC_CFG, tmp_path_factory.mktemp('ckpt') / 'mdc.pth')


@pytest.fixture(scope='module')
def images(tiny_shapes_root):
    return sorted(
        glob.glob(osp.join(tiny_shapes_root, '*', 'images', 'test_*.png')))[:3]


def _run(argv, capsys):
    code = caption_tool.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_tool_prints_captions_and_alternatives(mdc_ckpt, images, tmp_path,
                                               capsys):
    out_json = tmp_path / 'out' / 'captions.json'
    code, out, err = _run(images + [
        '--config', MDC_CFG, '--checkpoint', mdc_ckpt, '--device', 'cpu',
        '--num-alternatives', '3', '--steps', '4', '--batch-size', '2',
        '--out', str(out_json)
    ], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == len(images) * 4
    results = json.loads(out_json.read_text())
    assert [r['image'] for r in results] == images
    for result in results:
        assert f"{result['image']}: {result['caption']}" in lines
        assert len(result['alternatives']) == 3
        assert all(isinstance(a, str) for a in result['alternatives'])
    # Random weights + temperature 1: the samples differ from each other.
    assert len({a for r in results for a in r['alternatives']}) > 1

    # Same seed, same alternatives; batch size does not change anything.
    code, out2, _ = _run(images + [
        '--config', MDC_CFG, '--checkpoint', mdc_ckpt, '--device', 'cpu',
        '--num-alternatives', '3', '--steps', '4'
    ], capsys)
    assert code == 0
    greedy = [ln for ln in out2.splitlines() if not ln.startswith(' ')]
    assert greedy == [f"{r['image']}: {r['caption']}" for r in results]


def test_tool_matches_mmpretrain_inferencers(mdc_ckpt, images, tmp_path,
                                             capsys):
    """Greedy captions agree with MMPretrain's ImageCaptionInferencer and
    inference_model; --steps acts like setting the sampler in the config."""
    cfg = Config.fromfile(MDC_CFG)
    cfg.model.head.sampler.steps = 2
    cfg_path = str(tmp_path / 'steps2.py')
    cfg.dump(cfg_path)

    code, out, err = _run(images + [
        '--config', MDC_CFG, '--checkpoint', mdc_ckpt, '--device', 'cpu',
        '--steps', '2'
    ], capsys)
    assert code == 0, err
    ours = [ln.split(': ', 1)[1] for ln in out.splitlines()]

    inferencer = ImageCaptionInferencer(
        model=cfg_path, pretrained=mdc_ckpt, device='cpu')
    theirs = [r['pred_caption'] for r in inferencer(images)]
    assert ours == theirs

    # inference_model picks ImageCaptionInferencer for our captioners,
    # whether built by get_model or by init_captioner.
    model = get_model(cfg_path, pretrained=mdc_ckpt, device='cpu')
    assert inference_model(model, images[0])['pred_caption'] == ours[0]
    model = init_captioner(cfg_path, mdc_ckpt, device='cpu')
    assert inference_model(model, images[1])['pred_caption'] == ours[1]


def test_api_on_arrays_and_autoregressive_head(tmp_path, images):
    import mmcv
    ckpt = _save_fresh(CAP_CFG, tmp_path / 'cap.pth')
    model = init_captioner(CAP_CFG, ckpt, device='cpu')
    arrays = [mmcv.imread(p) for p in images[:2]]
    from_arrays = caption_images(model, arrays, num_alternatives=2)
    from_files = caption_images(model, images[:2], num_alternatives=2)
    assert [r['image'] for r in from_arrays] == [0, 1]
    assert [r['caption'] for r in from_arrays] == \
        [r['caption'] for r in from_files]
    assert [r['alternatives'] for r in from_arrays] == \
        [r['alternatives'] for r in from_files]
    with pytest.raises(ValueError, match='no denoising steps'):
        caption_images(model, images[:1], steps=4)


def test_contrastive_model_is_refused(tmp_path, images):
    ckpt = _save_fresh(CLIP_CFG, tmp_path / 'clip.pth')
    model = init_captioner(CLIP_CFG, ckpt, device='cpu')
    with pytest.raises(TypeError, match='cannot caption bare images'):
        caption_images(model, images[:1])


@pytest.mark.parametrize('what', ['missing', 'corrupt'])
def test_bad_image_named(what, mdc_ckpt, images, tmp_path, capsys):
    bad = tmp_path / 'bad.png'
    if what == 'corrupt':
        bad.write_bytes(b'\x89PNG\r\n\x1a\n' + b'not really an image' * 8)
    code, out, err = _run([
        images[0], str(bad), '--config', MDC_CFG, '--checkpoint', mdc_ckpt,
        '--device', 'cpu'
    ], capsys)
    assert code == 1 and out == ''
    assert str(bad) in err
    assert ('not found' if what == 'missing' else 'cannot decode') in err


def test_bad_checkpoints_named(tmp_path, images, capsys):
    missing = tmp_path / 'missing.pth'
    truncated = tmp_path / 'truncated.pth'
    truncated.write_bytes(b'PK\x03\x04 truncated zip')
    wrong = _save_fresh(CLIP_CFG, tmp_path / 'clip.pth')  # other model
    for ckpt, expect in [(missing, 'checkpoint file not found'),
                         (truncated, 'Could not read checkpoint'),
                         (wrong, 'did not load')]:
        code, out, err = _run([
            images[0], '--config', MDC_CFG, '--checkpoint',
            str(ckpt), '--device', 'cpu'
        ], capsys)
        assert code == 1 and out == '', (ckpt, err)
        assert str(ckpt) in err and expect in err, err
    with pytest.raises(WeightsNotLoadedError):
        init_captioner(MDC_CFG, wrong, device='cpu')


class _Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def test_malicious_checkpoint_refused(mdc_ckpt, images, tmp_path, capsys):
    marker = tmp_path / 'pwned'
    ckpt = torch.load(mdc_ckpt, weights_only=True)
    ckpt['meta']['payload'] = _Payload(str(marker))
    evil = tmp_path / 'evil.pth'
    torch.save(ckpt, str(evil))
    code, out, err = _run([
        images[0], '--config', MDC_CFG, '--checkpoint',
        str(evil), '--device', 'cpu'
    ], capsys)
    assert code == 1 and out == ''
    assert 'Refusing to load checkpoint' in err and str(evil) in err
    assert 'posix.system' in err or 'os.system' in err
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError):
        init_captioner(MDC_CFG, str(evil), device='cpu')
    assert not marker.exists()


def test_argument_errors(mdc_ckpt, images, capsys):
    for extra in (['--steps', '0'], ['--num-alternatives', '-1'],
                  ['--num-alternatives', '2', '--temperature', '0']):
        with pytest.raises(SystemExit) as excinfo:
            caption_tool.main(images[:1] + [
                '--config', MDC_CFG, '--checkpoint', mdc_ckpt] + extra)
        assert excinfo.value.code == 2
        assert extra[0] in capsys.readouterr().err


def test_seed_repeats_a_sampled_default_caption(tmp_path, images):
    """MC-Diffusion decodes at temperature 1 by default: the caption itself
    is sampled, so --seed must cover it, not only the alternatives."""
    config = osp.join(ROOT, 'configs', 'mc_diffusion',
                      'mcs_vit-tiny-vq_shapes.py')
    model = init_captioner(config, _save_fresh(config, tmp_path / 'mc.pth'),
                           device='cpu')

    def captions(seed):
        return [r['caption'] for r in caption_images(
            model, images, steps=4, seed=seed)]

    assert captions(0) == captions(0)
    unseeded = {tuple(captions(None)) for _ in range(3)}
    assert len(unseeded) > 1  # really sampled: the seed is what repeats it
    # alternatives work on a head whose features are not a tensor
    result = caption_images(model, images[:1], steps=4, num_alternatives=2,
                            temperature=0.5, seed=0)
    assert len(result[0]['alternatives']) == 2
