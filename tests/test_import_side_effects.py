"""``import mdc_plugin`` registers components and changes nothing else in
MMEngine; the checkpoint hardening is registered components chosen in
config, and a run that used them leaves MMEngine as it found it.

Each check runs in a fresh interpreter (this test process has long imported
the plugin): it records MMEngine's loader, saver, hook and loop objects,
imports the plugin (or runs a real config), and compares identities.
"""
import json
import os.path as osp
import subprocess
import sys
import textwrap

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

SNAPSHOT = textwrap.dedent('''
    import builtins, warnings
    import torch
    import mmengine.hooks.checkpoint_hook as hook_module
    import mmengine.runner as runner_pkg
    import mmengine.runner.checkpoint as ckpt
    import mmengine.runner.runner as runner_module
    from mmengine.hooks import CheckpointHook
    from mmengine.registry import WEIGHT_INITIALIZERS
    from mmengine.runner.loops import EpochBasedTrainLoop, IterBasedTrainLoop

    def snapshot():
        """name -> id() of every object the old patches replaced."""
        objects = {
            'CheckpointLoader._schemes': ckpt.CheckpointLoader._schemes,
            'CheckpointLoader.load_checkpoint':
                ckpt.CheckpointLoader.__dict__['load_checkpoint'],
            'checkpoint_hook.open': getattr(hook_module, 'open', None),
            'CheckpointHook._save_checkpoint_with_step':
                CheckpointHook.__dict__['_save_checkpoint_with_step'],
            'EpochBasedTrainLoop.run_epoch':
                EpochBasedTrainLoop.__dict__['run_epoch'],
            'EpochBasedTrainLoop.__init__':
                EpochBasedTrainLoop.__dict__['__init__'],
            'IterBasedTrainLoop.run': IterBasedTrainLoop.__dict__['run'],
            'WEIGHT_INITIALIZERS.Pretrained':
                WEIGHT_INITIALIZERS.get('Pretrained'),
            'torch.load': torch.load,
            'builtins.open': builtins.open,
        }
        for prefix, loader in ckpt.CheckpointLoader._schemes.items():
            objects[f'scheme {prefix!r}'] = loader
        for module in (ckpt, runner_pkg, runner_module):
            for name in ('save_checkpoint', 'find_latest_checkpoint',
                         'load_from_local', 'load_from_http',
                         'load_checkpoint', '_load_checkpoint'):
                if hasattr(module, name):
                    objects[f'{module.__name__}.{name}'] = getattr(
                        module, name)
        # torch adds its own classes (DTensor, ...) when its submodules are
        # first imported; anything else would be an allow-list of ours.
        objects['safe globals'] = tuple(
            g for g in map(str, torch.serialization.get_safe_globals())
            if not g.startswith("<class 'torch."))
        objects['warning filters'] = tuple(map(str, warnings.filters))
        return {k: (v if isinstance(v, tuple) else id(v))
                for k, v in objects.items()}
''')


def _run(body: str) -> dict:
    code = SNAPSHOT + textwrap.dedent(body)
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _changed(before: dict, after: dict) -> list:
    return sorted(k for k in set(before) | set(after)
                  if before.get(k) != after.get(k))


def test_import_changes_nothing_in_mmengine():
    result = _run('''
        import json
        before = snapshot()
        import mdc_plugin  # noqa: F401
        import mdc_plugin.apis, mdc_plugin.utils  # noqa: F401
        after = snapshot()
        from mmpretrain.registry import HOOKS, LOOPS
        registered = [HOOKS.get('AtomicCheckpointHook') is not None,
                      HOOKS.get('SafeCheckpointLoadingHook') is not None,
                      LOOPS.get('ExactResumeIterBasedTrainLoop') is not None,
                      LOOPS.get('ExactResumeEpochBasedTrainLoop') is not None]
        print(json.dumps(dict(before=before, after=after,
                              registered=registered)))
    ''')
    assert _changed(result['before'], result['after']) == []
    assert all(result['registered'])


def test_a_real_run_hardens_only_while_it_runs(tmp_path):
    """Two iterations of the real Fashion MDC config (embedded subset) with
    the Runner: inside the run MMEngine loads safely ('Pretrained' is ours,
    the local scheme is the safe loader); after it, every object is back."""
    work = str(tmp_path / 'work')
    result = _run(f'''
        import json
        import mdc_plugin  # noqa: F401
        import mdc_plugin.utils.safe_checkpoint as safe
        from mmengine.config import Config
        from mmengine.hooks import Hook
        from mmengine.runner import Runner
        from mmpretrain.registry import HOOKS

        seen = {{}}

        @HOOKS.register_module()
        class ProbeHardening(Hook):
            def before_train(self, runner):
                seen['active'] = safe.hardening_active()
                seen['local'] = (ckpt.CheckpointLoader._schemes['']
                                 is safe.load_from_local)
                seen['pretrained'] = WEIGHT_INITIALIZERS.get(
                    'Pretrained').__name__
                seen['loop'] = type(runner.train_loop).__name__

        cfg = Config.fromfile('configs/mdc/resnet18-w32_fashion_embedded.py')
        cfg.merge_from_dict({{
            'work_dir': {work!r},
            'train_cfg.max_iters': 2, 'train_cfg.val_interval': 10,
            'default_hooks.checkpoint.interval': 2,
            'train_dataloader.batch_size': 2,
            'train_dataloader.num_workers': 0,
            'train_dataloader.persistent_workers': False,
            'custom_hooks': [dict(type='ProbeHardening')],
        }})
        cfg.param_scheduler = [dict(type='ConstantLR', factor=1.0,
                                    by_epoch=False, begin=0, end=2)]
        cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
        cfg.test_dataloader = cfg.test_evaluator = cfg.test_cfg = None
        before = snapshot()
        Runner.from_cfg(cfg).train()
        after = snapshot()
        print(json.dumps(dict(before=before, after=after, seen=seen)))
    ''')
    assert result['seen'] == dict(active=True, local=True,
                                  pretrained='SafePretrainedInit',
                                  loop='ExactResumeIterBasedTrainLoop')
    assert _changed(result['before'], result['after']) == []
    assert osp.isfile(osp.join(work, 'iter_2.pth'))
    with open(osp.join(work, 'last_checkpoint')) as f:
        assert f.read() == osp.join(work, 'iter_2.pth')


@pytest.mark.parametrize('nested', [False, True])
def test_hardened_checkpoints_restores_on_exit(nested):
    result = _run(f'''
        import json
        import mdc_plugin  # noqa: F401
        from mdc_plugin.utils import hardened_checkpoints
        before = snapshot()
        with hardened_checkpoints():
            if {nested}:
                with hardened_checkpoints():
                    pass
            inside = snapshot()
            # a scheme someone registers inside the block stays registered
            ckpt.CheckpointLoader.register_scheme('mine://', lambda *a: a)
        after = snapshot()
        mine = after.pop("scheme 'mine://'")
        print(json.dumps(dict(before=before, inside=inside, after=after)))
    ''')
    assert 'WEIGHT_INITIALIZERS.Pretrained' in _changed(result['before'],
                                                        result['inside'])
    assert "scheme ''" in _changed(result['before'], result['inside'])
    changed = _changed(result['before'], result['after'])
    assert changed == ['CheckpointLoader._schemes']  # re-sorted with mine://
