"""No run silently uses the wrong weights or data, and failures say what to
do: strict ``load_from`` in the tools, sampler keys, full disk, an empty
``last_checkpoint``, non-numbers for numbers, ``num_workers=0`` as an
override, captions of unknown words."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from mmengine.config import Config

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import mdc_plugin  # noqa: E402,F401
import toy_model  # noqa: E402
from mdc_plugin.utils import WeightsNotLoadedError  # noqa: E402
from mdc_plugin.utils.checkpoint_rotation import \
    BadResumePointerError  # noqa: E402
from mdc_plugin.utils.safe_checkpoint import \
    atomic_save_checkpoint  # noqa: E402

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
MDC_CONFIG = osp.join(ROOT, 'configs/mdc/vit-tiny_shapes.py')


def _mismatched(tmp_path, kind):
    state = toy_model.ToyModel().state_dict()
    if kind == 'missing key':
        state.pop('head.bias')
    elif kind == 'unexpected key':
        state['extra.weight'] = torch.zeros(1)
    else:  # e.g. another tokenizer's vocabulary size
        state['backbone.weight'] = torch.zeros(8, 5)
    path = str(tmp_path / f'{kind.replace(" ", "_")}.pth')
    torch.save(dict(state_dict=state, meta=dict()), path)
    return path


# --------------------------------------------------------- item 7: strict --
@pytest.mark.parametrize('kind', ['missing key', 'unexpected key',
                                  'size mismatch'])
def test_tools_load_strictly(tools, toy_cfg, tmp_path, kind):
    train, test = tools
    ckpt = _mismatched(tmp_path, kind)
    work = str(tmp_path / 'w')
    runs = {
        'test.py': lambda *flag: test.main([toy_cfg, ckpt, '--work-dir',
                                            work, *flag]),
        'train.py load_from': lambda *flag: train.main([
            toy_cfg, '--work-dir', work, *flag, '--cfg-options',
            f'+load_from={ckpt}'
        ]),
    }
    for what, run in runs.items():
        with pytest.raises(WeightsNotLoadedError,
                           match='--no-strict-load') as err:
            run()
        assert ckpt in str(err.value), what
        run('--no-strict-load')  # the explicit opt-out still works


# ----------------------------------------------------- item 8: sampler keys --
@pytest.mark.parametrize('bad', [dict(stepz=4), dict(schedule='cosin'),
                                 dict(remasking='best')])
def test_mdc_head_refuses_unknown_sampler_settings(bad):
    from mmpretrain.registry import MODELS
    head = Config.fromfile(MDC_CONFIG).model.head
    head.sampler.update(bad)
    with pytest.raises(ValueError, match=str(list(bad.values())[0])
                       if 'stepz' not in bad else 'stepz'):
        MODELS.build(head)


# -------------------------------------------------------- item 10: errors --
@pytest.fixture
def tiny_disk(tmp_path):
    """A 256 KiB tmpfs (needs root; skipped elsewhere)."""
    mount = tmp_path / 'disk'
    mount.mkdir()
    proc = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=256k',
                           'tmpfs', str(mount)], capture_output=True)
    if proc.returncode:
        pytest.skip('cannot mount a small tmpfs here')
    yield mount
    subprocess.run(['umount', str(mount)], check=False)


def test_full_disk_is_named_and_keeps_previous(tiny_disk):
    target = str(tiny_disk / 'epoch_1.pth')
    atomic_save_checkpoint({'w': torch.ones(1000)}, target)
    with pytest.raises(OSError, match='No space left') as err:
        atomic_save_checkpoint({'w': torch.ones(10**6)}, target)
    assert 'inline_container' not in str(err.value)
    assert '--resume' in str(err.value)
    assert os.listdir(tiny_disk) == ['epoch_1.pth']
    assert torch.load(target)['w'].shape == (1000, )


@pytest.mark.parametrize('pointer', ['', 'gone/epoch_9.pth'])
def test_bad_last_checkpoint_is_named(tools, toy_cfg, tmp_path, pointer):
    train, _ = tools
    work = tmp_path / 'w'
    train.main([toy_cfg, '--work-dir', str(work)])
    (work / 'last_checkpoint').write_text(pointer)
    with pytest.raises(BadResumePointerError,
                       match='--resume .*epoch_1.pth') as err:
        train.main([toy_cfg, '--work-dir', str(work), '--resume'])
    assert 'last_checkpoint' in str(err.value)


@pytest.mark.parametrize('option', ['optim_wrapper.optimizer.lr=abc',
                                    'model.head.max_length=abc'])
def test_non_number_for_a_number_names_the_key(tools, option, capsys):
    train, _ = tools
    with pytest.raises(SystemExit):
        train.main([MDC_CONFIG, '--cfg-options', option])
    err = capsys.readouterr().err
    assert option.split('=')[0] in err and 'must be' in err


def test_num_workers_zero_override_builds_a_loader(tools, tmp_path):
    train, _ = tools
    args = train.parse_args([
        MDC_CONFIG, '--cfg-options', 'train_dataloader.num_workers=0',
        f'data_root={tmp_path}'
    ])
    cfg = train.merge_args(Config.fromfile(MDC_CONFIG), args, pytest.fail)
    loader = cfg.train_dataloader
    assert loader.num_workers == 0 and loader.persistent_workers is False
    from mmengine.runner import Runner
    loader.dataset.num_images = dict(train=8, val=4, test=4)
    loader.dataset.data_root = str(tmp_path)
    loader.batch_size = 4
    batch = next(iter(Runner.build_dataloader(loader)))
    assert len(batch['inputs']) == 4


def test_caption_of_unknown_words_is_refused():
    from mdc_plugin.datasets.transforms import TokenizeCaption
    tokenize = TokenizeCaption(dict(type='ShapesTokenizer'), max_length=16)
    assert tokenize(dict(gt_caption='a red circle !!'))  # some known: fine
    for caption in ('!!! ?', '\U0001F600 \U0001F680'):
        with pytest.raises(ValueError, match='no word the tokenizer knows'):
            tokenize(dict(gt_caption=caption, img_path='x.png'))
