"""The getting-started docs match what a newcomer's commands do: the main
job's log lines, strict loading, commands that write outside the checkout,
one backbone export tool, the idle-machine runtime, seed spread."""
import math
import os.path as osp
import re
import subprocess

from fixtures_data import REPO
from mmengine.config import Config


GS = osp.join(REPO, 'docs', 'getting_started.md')
DOCS = [GS, osp.join(REPO, 'docs', 'data_preparation.md'),
        osp.join(REPO, 'README.md')]


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def test_section2_log_lines_are_the_single_process_main_job():
    """The log lines quoted for the README's main job are the ones its
    config writes: its iteration budget, its val batches, its data."""
    config = 'configs/mdc/resnet18-w32_fashion_embedded.py'
    cfg = Config.fromfile(osp.join(REPO, config))
    iters = cfg.train_cfg.max_iters
    val = math.ceil(cfg.val_dataloader.dataset.num_scenes /
                    cfg.val_dataloader.batch_size)
    text = _read(GS)
    section = text[text.index('## 2.'):text.index('## 3.')]
    assert config in section
    trains = re.findall(r'Iter\(train\) \[ *\d+/(\d+)\]', section)
    vals = re.findall(r'Iter\(val\) \[(\d+)/(\d+)\]', section)
    assert trains and all(int(n) == iters for n in trains), (trains, iters)
    assert vals and all((int(i), int(n)) == (val, val)
                        for i, n in vals), (vals, val)
    assert f'{iters:,} iterations' in section
    assert "chosen by data_root='embedded'" in section
    readme = _read(osp.join(REPO, 'README.md'))
    assert f'python tools/train.py {config}' in readme.split('```')[1]


def test_no_promise_of_a_partial_load_warning():
    assert 'loaded partially' not in _read(GS)


def test_documented_outputs_stay_out_of_the_checkout():
    outs = []
    for path in DOCS:
        outs += re.findall(r'--out\s+(\S+)', _read(path))
    assert outs
    bad = [o for o in outs if not (o.startswith('work_dirs/')
                                   or o.startswith('/'))]
    assert not bad, bad
    # and what older commands wrote at the top level is ignored by git
    ignored = subprocess.run(
        ['git', 'check-ignore', 'results/x.json', 'captions.json'],
        cwd=REPO, capture_output=True, text=True).stdout.split()
    assert ignored == ['results/x.json', 'captions.json']


def test_one_backbone_export_format():
    text = _read(GS)
    assert 'tools/model_converters/extract_backbone.py' in text
    assert 'torch.save' not in text


def test_runtime_claim_says_idle_machine():
    readme = _read(osp.join(REPO, 'README.md'))
    for line in readme.splitlines():
        if 'about 7 min' in line or '403 s' in line:
            assert 'idle' in line, line
    assert 'idle' in _read(GS)


def test_documented_numbers_state_the_spread():
    zoo = _read(osp.join(REPO, 'docs', 'model_zoo.md'))
    assert re.search(r'Spread:.*one run', zoo)
    assert '174.5' in zoo and '164.9' in zoo
