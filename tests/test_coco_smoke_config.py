"""configs/mdc/vit-tiny_coco_cpu-smoke.py: the real COCO pipeline end to end
on CPU (train + validation with every shipped score + checkpoint), on a
COCO-Karpathy layout the test writes, pointed at with one option."""
import json
import os
import os.path as osp
import subprocess
import sys
import time

from fixtures_data import REPO, make_coco_karpathy

CONFIG = 'configs/mdc/vit-tiny_coco_cpu-smoke.py'


def test_coco_cpu_smoke_config_runs_end_to_end(tmp_path):
    info = make_coco_karpathy(tmp_path / 'coco', dict(
        train=48, restval=16, val=16, test=16))
    work = tmp_path / 'work'
    cmd = [sys.executable, osp.join(REPO, 'tools', 'train.py'),
           osp.join(REPO, CONFIG), '--work-dir', str(work),
           '--cfg-options', f'data_root={info["data_root"]}']
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get(
        'OMP_NUM_THREADS', '2'))
    start = time.time()
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, text=True,
                          capture_output=True, timeout=900)
    took = time.time() - start
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert '[1][8/8]' in out, out[-3000:]  # 64 train images, batch 8
    scalars = [json.loads(line) for line in open(
        next(work.glob('*/vis_data/scalars.json')))]
    val = [s for s in scalars if 'caption/CIDEr' in s]
    assert val, scalars[-2:]
    assert (work / 'epoch_1.pth').is_file()
    print(f'{CONFIG}: {took:.0f} s')
