"""docs/results.md is rendered from the committed raw outputs."""
import json
import os.path as osp
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
DATA = osp.join(REPO, 'docs', 'results_data')


def test_collect_results_renders_committed_numbers(tmp_path):
    plot = tmp_path / 'steps.png'
    out = subprocess.run(
        [sys.executable, 'tools/analysis/collect_results.py', DATA,
         '--plot', str(plot)], cwd=REPO, capture_output=True, text=True,
        check=True).stdout
    assert plot.stat().st_size > 0
    with open(osp.join(DATA, 'mdc', 'test.json')) as f:
        cider = json.load(f)['metrics']['caption/CIDEr']
    with open(osp.join(DATA, 'cap', 'probe_mean.json')) as f:
        probe = json.load(f)['probe/accuracy']
    assert f'{100 * cider:.1f}' in out and f'{probe:.1f}' in out
    # Every table row the tool prints appears verbatim in docs/results.md.
    with open(osp.join(REPO, 'docs', 'results.md')) as f:
        doc = f.read()
    rows = [line for line in out.splitlines() if line.startswith('| ')
            and not line.startswith('| ---') and 'random init' not in line]
    assert rows and all(row in doc for row in rows)
