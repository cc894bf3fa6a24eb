"""Checkpoint bookkeeping: rotation that never loses the last checkpoint,
and an auto-resume pointer that is checked.

``max_keep_ckpts`` deletes old checkpoints only after a new one is complete.

MMEngine's ``CheckpointHook._save_checkpoint_with_step`` removes the oldest
kept checkpoint *before* writing the new one. With ``max_keep_ckpts=1`` a
job killed during that save is left with no checkpoint at all and a
``last_checkpoint`` naming a deleted file.
:class:`~mdc_plugin.engine.hooks.AtomicCheckpointHook` keeps the same
bookkeeping (:func:`rotate_checkpoint_ids`: ``keep_ckpt_ids`` in the message
hub, so the saved checkpoint lists what will be kept) but deletes the
rotated-out file (:func:`remove_checkpoint`) only after the new checkpoint
is complete and ``last_checkpoint`` points at it. A kill between the two
leaves one extra old file, never a missing one.

``--resume`` without a path reads ``<work_dir>/last_checkpoint``; MMEngine
passes its content on unchecked, so an empty pointer surfaces as
``FileNotFoundError:  can not be found.``. :func:`find_latest_checkpoint`
(run by :class:`~mdc_plugin.engine.hooks.SafeCheckpointLoadingHook` before
the runner resumes) refuses an empty pointer, or one naming a missing file,
with a message that lists the checkpoints that are there and how to resume
from one.
"""
import glob
import os.path as osp
from typing import List, Optional

from mmengine.hooks import CheckpointHook
from mmengine.logging import print_log

__all__ = ['rotate_checkpoint_ids', 'remove_checkpoint',
           'find_latest_checkpoint', 'BadResumePointerError']


class BadResumePointerError(RuntimeError):
    """``last_checkpoint`` is empty or names a missing checkpoint."""


def find_latest_checkpoint(path: str) -> Optional[str]:
    """MMEngine's ``find_latest_checkpoint``, with the pointer checked."""
    pointer = osp.join(path, 'last_checkpoint')
    if not osp.exists(pointer):
        print_log('Did not find last_checkpoint to be resumed.')
        return None  # nothing to resume: MMEngine starts from scratch
    with open(pointer) as f:
        target = f.read().strip()
    if target and osp.isfile(target):
        return target
    found = sorted(glob.glob(osp.join(glob.escape(path), '*.pth')),
                   key=osp.getmtime)
    problem = ('is empty' if not target else
               f'names "{target}", which does not exist')
    hint = (f'Resume from one of the checkpoints there explicitly, e.g. '
            f'--resume {found[-1]} (newest of {len(found)}), or write its '
            f'path into {pointer}.' if found else
            f'There is no checkpoint in {path}: start without --resume.')
    raise BadResumePointerError(
        f'Cannot auto-resume: {pointer} {problem} (written by an '
        f'interrupted or copied run?). {hint}')


def rotate_checkpoint_ids(hook: CheckpointHook, runner,
                          step: int) -> List[int]:
    """Update ``keep_ckpt_ids`` for ``step``; return the steps to delete."""
    if hook.max_keep_ckpts <= 0:
        return []
    if hook.keep_ckpt_ids and hook.keep_ckpt_ids[-1] == step:
        return []  # saved twice in one step (latest and best)
    doomed = []
    while len(hook.keep_ckpt_ids) >= hook.max_keep_ckpts:
        doomed.append(hook.keep_ckpt_ids.popleft())
    hook.keep_ckpt_ids.append(step)
    runner.message_hub.update_info('keep_ckpt_ids', list(hook.keep_ckpt_ids))
    return doomed


def remove_checkpoint(hook: CheckpointHook, step: int) -> None:
    """Delete the hook's checkpoint of ``step`` (a file or a folder)."""
    path = hook.file_backend.join_path(hook.out_dir,
                                       hook.filename_tmpl.format(step))
    if hook.file_backend.isfile(path):
        hook.file_backend.remove(path)
    elif hook.file_backend.isdir(path):  # DeepSpeed checkpoints
        hook.file_backend.rmtree(path)
