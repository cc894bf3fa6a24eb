"""Checkpoint hardening as registered hooks (on in ``default_runtime.py``).

* :class:`SafeCheckpointLoadingHook`: from ``before_run`` to ``after_run``
  every checkpoint MMEngine loads (``load_from``, ``--resume``, ``init_cfg``
  ``Pretrained``, any URL scheme) goes through the allow-listed
  weights-only loader
  (:func:`~mdc_plugin.utils.safe_checkpoint.hardened_checkpoints`), and an
  auto-resume pointer (``last_checkpoint``) that is empty or names a
  missing file is refused with the checkpoints that are there.
* :class:`AtomicCheckpointHook`: MMEngine's ``CheckpointHook`` whose
  checkpoints and ``last_checkpoint`` pointer are written atomically (a
  temp file in the same folder, fsync-ed, then renamed over the target),
  and whose ``max_keep_ckpts`` rotation deletes old checkpoints only after
  the new one and the pointer are complete.

To use them in a config of your own (MMDetection, MMSegmentation, ...)::

    custom_imports = dict(imports=['mdc_plugin'], allow_failed_imports=False)
    default_hooks = dict(
        checkpoint=dict(type='AtomicCheckpointHook', interval=1),
        safe_checkpoint_loading=dict(type='SafeCheckpointLoadingHook'))

``import mdc_plugin`` alone changes nothing in MMEngine.
"""
import contextlib
import os
import os.path as osp
import secrets
from typing import Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook, Hook
from mmengine.runner import Runner
from mmpretrain.registry import HOOKS

from ...utils.atomic_io import atomic_write
from ...utils.checkpoint_rotation import (find_latest_checkpoint,
                                          remove_checkpoint,
                                          rotate_checkpoint_ids)
from ...utils.safe_checkpoint import (_raise_if_disk_full,
                                      _remove_stale_temps,
                                      hardened_checkpoints)

__all__ = ['SafeCheckpointLoadingHook', 'AtomicCheckpointHook']


@HOOKS.register_module()
class SafeCheckpointLoadingHook(Hook):
    """Safe checkpoint loading for the length of a run (see module doc).

    Priority HIGHEST: its ``before_run`` comes before every other hook's and
    before the runner initialises weights and loads ``load_from`` / resumes.
    A run that raises keeps the hardening on until the hook is garbage
    collected or :meth:`close` is called.
    """

    priority = 'HIGHEST'

    def __init__(self) -> None:
        self._stack: Optional[contextlib.ExitStack] = None

    def before_run(self, runner) -> None:
        if self._stack is None:
            self._stack = contextlib.ExitStack()
            self._stack.enter_context(hardened_checkpoints())
        if getattr(runner, '_resume', False) and \
                getattr(runner, '_load_from', None) is None and \
                osp.exists(osp.join(runner.work_dir, 'last_checkpoint')):
            find_latest_checkpoint(runner.work_dir)  # refuses a bad pointer

    def after_run(self, runner) -> None:
        self.close()

    def close(self) -> None:
        """Undo the hardening (idempotent)."""
        if self._stack is not None:
            stack, self._stack = self._stack, None
            stack.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """``CheckpointHook`` with atomic writes and loss-free rotation.

    Same arguments as MMEngine's ``CheckpointHook``. Local checkpoints of a
    ``Runner`` are written to ``.<name>.<random>.tmp`` and renamed over
    ``<name>`` only when complete; a temp file a killed save left of the
    same target is deleted first. Remote backends (``s3://``, ...) and the
    ``FlexibleRunner`` (DeepSpeed / FSDP, whose ranks may write shards of one
    checkpoint) are written as MMEngine writes them; the pointer and the
    rotation are safe for every runner.
    """

    def _save_checkpoint_with_step(self, runner, step: int, meta) -> None:
        doomed = rotate_checkpoint_ids(self, runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        local = (isinstance(self.file_backend, LocalBackend)
                 and isinstance(runner, Runner))
        temp = (f'.{filename}.{secrets.token_hex(4)}.tmp' if local else
                filename)
        if local and is_main_process():
            _remove_stale_temps(self.last_ckpt)
        try:
            runner.save_checkpoint(
                self.out_dir, temp, self.file_client_args,
                save_optimizer=self.save_optimizer,
                save_param_scheduler=self.save_param_scheduler, meta=meta,
                by_epoch=self.by_epoch, backend_args=self.backend_args,
                **self.args)
        except BaseException as err:  # a kill leaves the temp file only
            if local and is_main_process():
                with contextlib.suppress(OSError):
                    os.remove(osp.join(self.out_dir, temp))
            if isinstance(err, OSError):
                _raise_if_disk_full(err, self.last_ckpt, err)
            raise
        if not is_main_process():
            return
        if local:
            _publish(osp.join(self.out_dir, temp), self.last_ckpt)
        pointer = osp.join(runner.work_dir, 'last_checkpoint')
        _remove_stale_temps(pointer)
        with atomic_write(pointer, 'w', encoding='utf-8') as f:
            f.write(self.last_ckpt)
        for old in doomed:
            remove_checkpoint(self, old)


def _publish(temp: str, target: str) -> None:
    """fsync ``temp`` (a file or a DeepSpeed folder of files) and rename it
    over ``target``."""
    paths = ([temp] if osp.isfile(temp) else
             [osp.join(d, f) for d, _, files in os.walk(temp) for f in files])
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    if osp.isdir(target) and osp.isdir(temp):  # DeepSpeed folder
        import shutil
        shutil.rmtree(target)
    os.replace(temp, target)
    with contextlib.suppress(OSError):  # the rename itself, durable
        fd = os.open(osp.dirname(osp.abspath(target)), os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
