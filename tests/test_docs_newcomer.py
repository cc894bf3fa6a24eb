"""The getting-started docs match what a newcomer's commands do: the main
job's log lines, strict loading, commands that write outside the checkout,
one backbone export tool, the idle-machine runtime, seed spread."""
import math
import os.path as osp
import re
import subprocess

from fixtures_data import REPO
from mmengine.config import Config

from mdc_plugin.datasets.shapes import DEFAULT_NUM_IMAGES

GS = osp.join(REPO, 'docs', 'getting_started.md')
DOCS = [GS, osp.join(REPO, 'docs', 'data_preparation.md'),
        osp.join(REPO, 'README.md')]


def _read(path):
    with open(path, encoding='utf-8') as f:
        return f.read()


def test_section2_log_lines_are_the_single_process_main_job():
    cfg = Config.fromfile(osp.join(REPO, 'configs/mdc/vit-tiny_shapes.py'))
    train = DEFAULT_NUM_IMAGES['train'] // cfg.train_dataloader.batch_size
    val = math.ceil(DEFAULT_NUM_IMAGES['val'] / cfg.val_dataloader.batch_size)
    epochs = cfg.train_cfg.max_epochs
    text = _read(GS)
    section = text[text.index('## 2.'):text.index('## 3.')]
    iters = re.findall(r'Epoch\(train\) \[\d+\]\[ *\d+/(\d+)\]', section)
    vals = re.findall(r'Epoch\(val\) \[(\d+)\]\[(\d+)/(\d+)\]', section)
    assert iters and all(int(n) == train for n in iters), (iters, train)
    assert vals and all((int(e), int(i), int(n)) == (epochs, val, val)
                        for e, i, n in vals), (vals, epochs, val)
    assert f'{train} iterations' in section


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
