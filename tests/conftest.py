"""Shared pytest fixtures: registration, tiny generated data, log capture."""
import logging
import os.path as osp
import sys
from typing import List

import pytest

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))  # fixtures_data
# synthetic_captions / coco_reference, shared with the caption benchmark
sys.path.insert(0, osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))),
                            'tools', 'benchmarks'))

import mdc_plugin  # noqa: E402,F401  (registers every component)

#: images per split of the tiny shapes set used by tests
TINY_SHAPES = dict(train=24, val=8, test=8)


@pytest.fixture(scope='session')
def tiny_shapes_root(tmp_path_factory) -> str:
    """A data_root holding a generated tiny shapes set (``TINY_SHAPES``,
    64 px, seed 0), shared by the whole session."""
    from mdc_plugin.datasets.shapes import ensure_shapes_generated
    root = str(tmp_path_factory.mktemp('shapes'))
    ensure_shapes_generated(root, TINY_SHAPES, img_size=64, seed=0)
    return root


class _ListHandler(logging.Handler):

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.messages: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture
def mm_log_messages():
    """List collecting the messages logged through mmengine's current
    MMLogger (``print_log(..., logger='current')``) during the test."""
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    handler = _ListHandler()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


@pytest.fixture(scope='module')
def one_thread():
    """One intra-op thread for a module (``pytestmark =
    pytest.mark.usefixtures('one_thread')``): the most reproducible
    summation order, and on a loaded 2-core machine ~10x faster than two
    spinning OpenMP threads."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope='module')
def tools():
    """``(tools/train.py, tools/test.py)`` loaded as modules."""
    from fixtures_data import load_tool
    return load_tool('tools/train.py'), load_tool('tools/test.py')


@pytest.fixture
def toy_cfg(tmp_path):
    """A one-epoch config of the toy model (tests/toy_model.py)."""
    import toy_model
    return toy_model.write_toy_config(
        tmp_path / 'toy_cfg.py',
        train_cfg=dict(by_epoch=True, max_epochs=1, val_interval=10))


@pytest.fixture(scope='module')
def server(tmp_path_factory):
    """``(root dir, base URL)`` of an HTTP server on 127.0.0.1 serving the
    root dir (remote-checkpoint tests)."""
    import functools
    import http.server
    import threading
    root = tmp_path_factory.mktemp('served')
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f'http://127.0.0.1:{httpd.server_address[1]}'
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def mmengine_as_found():
    """Every test starts and ends with MMEngine as the plugin found it: a
    run that raised inside a test never reached its hook's ``after_run``
    (and pytest keeps the runner alive in the traceback), so its
    hardened-checkpoints block is closed here."""
    from mdc_plugin.utils.safe_checkpoint import close_abandoned_hardening
    close_abandoned_hardening()
    yield
    close_abandoned_hardening()


@pytest.fixture
def initialised_as_in_a_run():
    """Inside SafeCheckpointLoadingHook's ``hardened_checkpoints()`` block, as
    a run of the shipped configs is (strict, safe ``Pretrained``; importing
    the plugin alone changes nothing in MMEngine): for tests that build a
    model and call ``init_weights()`` themselves."""
    from mdc_plugin.utils import hardened_checkpoints
    with hardened_checkpoints():
        yield
