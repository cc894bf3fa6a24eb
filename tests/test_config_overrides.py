"""``--cfg-options`` on config variables that other entries copy at load.

``vq_checkpoint = ...; model = dict(neck=dict(checkpoint=vq_checkpoint))``
copies the value when the file is read; overriding the variable alone used
to change nothing. Every config is audited: a string variable's override
reaches every key holding its value, a number's override is refused naming
the keys to set, and no comment or doc advertises a refused override.
"""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config

from mdc_plugin.utils.cfg_variables import _users, copied_variables
from mdc_plugin.utils.cli import UnknownConfigKeyError, merge_cfg_options

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(
    p for p in glob.glob(osp.join(ROOT, 'configs', '**', '*.py'),
                         recursive=True)
    if '_base_' not in p.split(osp.sep))


def _values(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _values(v)
    elif isinstance(node, (list, tuple)):
        for v in node:
            yield from _values(v)
    else:
        yield node


@pytest.mark.parametrize('config', CONFIGS,
                         ids=lambda p: osp.relpath(p, ROOT))
def test_string_variable_override_reaches_every_copy(config):
    copied = copied_variables(config)
    cfg = Config.fromfile(config)
    root = cfg.to_dict()
    for name in copied:
        old = root.get(name)
        if not isinstance(old, str) or name.startswith('_'):
            continue
        users = [u for u in _users(copied, name) if u in root] if \
            '*' not in _users(copied, name) else [k for k in root
                                                   if k != name]
        assert any(old in _values(root[u]) for u in users) or not users
        cfg2 = Config.fromfile(config)
        merge_cfg_options(cfg2, {name: '/sentinel/x.pth'}, config)
        after = cfg2.to_dict()
        left = [u for u in users if old in _values(after[u])]
        assert not left, (name, old, left)


def test_number_variable_override_is_refused_naming_keys():
    config = osp.join(ROOT, 'configs/mdc/vit-b_coco.py')
    with pytest.raises(UnknownConfigKeyError,
                       match=r'max_epochs=3 would change nothing.*'
                       r'train_cfg\.max_epochs=3'):
        merge_cfg_options(Config.fromfile(config), {'max_epochs': 3}, config)
    cfg = merge_cfg_options(Config.fromfile(config), {'+max_epochs': 3},
                            config)
    assert cfg.max_epochs == 3 and cfg.train_cfg.max_epochs == 20


def test_vq_checkpoint_override_sets_backbone_and_neck():
    config = osp.join(ROOT, 'configs/mc_diffusion/mcs_vqkd-b16_cub.py')
    cfg = merge_cfg_options(Config.fromfile(config),
                            {'vq_checkpoint': '/w/vqkd.pth'}, config)
    assert cfg.model.backbone.init_cfg.checkpoint == '/w/vqkd.pth'
    assert cfg.model.neck.checkpoint == '/w/vqkd.pth'
    # the comment names the variable and the keys it sets
    text = open(config).read()
    assert 'vq_checkpoint=PATH' in text
    assert 'model.backbone.init_cfg.checkpoint' in text
    assert 'model.neck.checkpoint' in text


def test_missing_vqkd_weights_fail_before_the_model_is_built(
        tmp_path, monkeypatch):
    from mmengine.runner import Runner

    from mdc_plugin.utils.cli import build_runner

    def never(*args, **kwargs):
        raise AssertionError('the runner was built before the check')

    monkeypatch.setattr(Runner, 'from_cfg', never)
    config = osp.join(ROOT, 'configs/mc_diffusion/mcs_vqkd-b16_cub.py')
    cfg = merge_cfg_options(Config.fromfile(config),
                            {'vq_checkpoint': str(tmp_path / 'nope.pth')},
                            config)
    with pytest.raises(FileNotFoundError) as info:
        build_runner(cfg)
    msg = str(info.value)
    for part in ('model.neck.checkpoint', 'model.backbone.init_cfg',
                 '--cfg-options vq_checkpoint=PATH', 'nope.pth',
                 'target_generator_ckpt/vqkd_encoder.pth',
                 'checkpoint_prefix=target_generator.'):
        assert part in msg, part
    cfg.load_from = str(tmp_path / 'full.pth')  # a full checkpoint: no check
    with pytest.raises(AssertionError, match='before the check'):
        build_runner(cfg)


_OPTION = re.compile(r'--cfg-options\s+((?:[+\w.]+=\S+\s*(?:\\\s*)?)+)')


def test_no_comment_or_doc_advertises_a_refused_override():
    files = CONFIGS + glob.glob(osp.join(ROOT, 'docs', '*.md')) + \
        [osp.join(ROOT, 'README.md')]
    numbers = {}
    for config in CONFIGS:
        cfg = Config.fromfile(config).to_dict()
        for name in copied_variables(config):
            if isinstance(cfg.get(name), (int, float)):
                numbers.setdefault(name, config)
    bad = []
    for path in files:
        for m in _OPTION.finditer(open(path, encoding='utf-8').read()):
            for token in m.group(1).split():
                key = token.split('=')[0]
                if key in numbers:
                    bad.append((osp.relpath(path, ROOT), token))
    assert not bad, bad
