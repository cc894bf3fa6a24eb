"""The installed environment matches requirements/runtime.txt and imports."""
import os.path as osp
import re
import subprocess
import sys
from importlib import metadata

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
RUNTIME = osp.join(ROOT, 'requirements', 'runtime.txt')


def _requirements():
    reqs = []
    with open(RUNTIME) as f:
        for line in f:
            line = line.split('#')[0].strip()
            if line and not line.startswith('-'):
                reqs.append(Requirement(line))
    return reqs


def test_runtime_txt_parses():
    names = {r.name for r in _requirements()}
    assert {'torch', 'mmengine', 'mmpretrain', 'transformers'} <= names


@pytest.mark.parametrize('req', _requirements(), ids=lambda r: r.name)
def test_installed_version_in_pinned_range(req):
    try:
        installed = metadata.version(req.name)
    except metadata.PackageNotFoundError:
        pytest.fail(f'{req.name} is not installed ({RUNTIME}: {req})')
    # A local label (e.g. torch "+cu130") does not change the public version.
    assert req.specifier.contains(
        installed, prereleases=True), (
            f'{req.name} {installed} is outside {req.specifier} ({RUNTIME})')


def test_transformers_below_4_52():
    # mmpretrain 1.2.0's BLIP/OFA code imports names moved in 4.52.
    version = Version(metadata.version('transformers'))
    assert version < Version('4.52'), version


def test_fresh_interpreter_imports():
    script = '\n'.join([
        'import mmpretrain.models',
        'import mdc_plugin',
        'import mmengine.runner.checkpoint as ckpt',
        'from mmengine.registry import WEIGHT_INITIALIZERS',
        'from mdc_plugin.utils import hardened_checkpoints',
        # importing changes nothing; the hardening is a block (or a hook)
        'loader = ckpt.CheckpointLoader._schemes[""]',
        'assert loader.__module__ == "mmengine.runner.checkpoint"',
        'with hardened_checkpoints():',
        '    loader = ckpt.CheckpointLoader._schemes[""]',
        '    assert loader.__module__ == "mdc_plugin.utils.safe_checkpoint"',
        '    assert WEIGHT_INITIALIZERS.get("Pretrained").__name__ == '
        '"SafePretrainedInit"',
        'print("IMPORT_OK", mdc_plugin.__version__)',
    ])
    proc = subprocess.run([sys.executable, '-c', script],
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-5000:]
    assert re.search(r'IMPORT_OK \S+', proc.stdout)
