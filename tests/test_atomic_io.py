"""mdc_plugin.utils.atomic_io: a killed or failing write keeps the old file."""
import json
import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from mdc_plugin.utils import atomic_io
from mdc_plugin.utils.atomic_io import (atomic_dump_json, atomic_write,
                                        atomic_write_bytes, json_safe)


def test_sigkill_mid_write_keeps_the_old_file(tmp_path):
    """A writer killed (SIGKILL, no cleanup runs) half-way through leaves
    the previous file whole; only its own temp file remains."""
    target = tmp_path / 'results.json'
    target.write_text('{"old": true}')
    script = textwrap.dedent(f"""
        import os, signal
        from mdc_plugin.utils.atomic_io import atomic_write
        with atomic_write({str(target)!r}, 'w') as f:
            f.write('{{"new": tr')
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, '-c', script], check=False)
    assert proc.returncode == -signal.SIGKILL
    assert target.read_text() == '{"old": true}'
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers[1:] == ['results.json']
    assert leftovers[0].startswith('.results.json.')
    assert leftovers[0].endswith('.tmp')


def test_exception_mid_write_keeps_the_old_file(tmp_path):
    target = tmp_path / 'out.bin'
    target.write_bytes(b'old')
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(str(target), 'wb') as f:
            f.write(b'partial')
            raise KeyboardInterrupt
    assert target.read_bytes() == b'old'
    assert os.listdir(tmp_path) == ['out.bin']


def test_file_then_rename_then_directory_are_synced(tmp_path, monkeypatch):
    """The data is fsync-ed before the rename, the directory after it."""
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(('fsync', os.path.realpath(f'/proc/self/fd/{fd}')))
        real_fsync(fd)

    def replace(src, dst):
        events.append(('replace', str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic_io.os, 'fsync', fsync)
    monkeypatch.setattr(atomic_io.os, 'replace', replace)
    target = tmp_path / 'sub' / 'data.bin'
    atomic_write_bytes(b'payload', str(target))
    assert target.read_bytes() == b'payload'
    kinds = [kind for kind, _ in events]
    assert kinds == ['fsync', 'replace', 'fsync']
    assert os.path.basename(events[0][1]).startswith('.data.bin.')
    assert events[1][1] == str(target)
    assert events[2][1] == str(tmp_path / 'sub')


def test_mode_must_be_a_write_mode(tmp_path):
    with pytest.raises(ValueError, match='mode must be'):
        with atomic_write(str(tmp_path / 'x'), 'a'):
            pass
    assert os.listdir(tmp_path) == []


def test_dump_json_argument_order_and_format(tmp_path):
    target = tmp_path / 'a.json'
    atomic_dump_json({'b': [1, 2]}, str(target))
    assert target.read_text() == json.dumps({'b': [1, 2]}, indent=2) + '\n'
    atomic_dump_json({'é': 1}, str(target), indent=1, ensure_ascii=False)
    assert target.read_text(encoding='utf-8') == '{\n "é": 1\n}\n'


def test_json_safe():
    value = {1: [np.float32(0.5), math.nan, math.inf, (np.int64(3), None)],
             'x': object}
    out = json_safe(value)
    assert out == {'1': [0.5, None, None, [3, None]], 'x': str(object)}
    json.dumps(out, allow_nan=False)
