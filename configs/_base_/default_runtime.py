# Runtime shared by every config: registries, hooks, logging, environment.
default_scope = 'mmpretrain'
custom_imports = dict(imports=['mdc_plugin'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=20),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Checkpoint hardening (docs/reliability.md), components chosen here
    # rather than patches applied on import: checkpoints and the
    # last_checkpoint pointer written atomically, old ones deleted only
    # after the new one is complete ...
    checkpoint=dict(type='AtomicCheckpointHook', interval=1,
                    max_keep_ckpts=2),
    # ... and every load of the run (load_from, --resume, init_cfg
    # Pretrained, URLs) through the allow-listed weights-only loader.
    # Exact resume is the training loop: our schedules set train_cfg.type
    # to ExactResumeEpochBasedTrainLoop / ExactResumeIterBasedTrainLoop.
    safe_checkpoint_loading=dict(type='SafeCheckpointLoadingHook'),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Images with predicted + reference captions (classifiers: MMPretrain's
    # drawing). Switch on: default_hooks.visualization.enable=True
    visualization=dict(type='CaptionVisualizationHook', enable=False,
                       interval=500),
    # NaN / inf loss guard: stops before the backward pass of the first
    # non-finite loss (nothing updated or saved; the iteration and every
    # loss term are reported). 'skip' drops such updates instead (raises
    # after max_consecutive_skips in a row):
    #   --cfg-options default_hooks.nonfinite_loss.action=skip
    # Cost: one host sync per iteration on GPU (none extra on CPU). Off:
    #   --cfg-options default_hooks.nonfinite_loss=None
    # See mdc_plugin/engine/hooks/nonfinite_loss_hook.py.
    nonfinite_loss=dict(type='NonFiniteLossHook', action='stop'),
    # Gives metrics that run the model (ShapeWordAccuracy) the runner's
    # model before validation / test; a no-op for every other metric.
    bind_model=dict(type='BindModelToMetricsHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='UniversalVisualizer', vis_backends=vis_backends)

log_level = 'INFO'
log_processor = dict(by_epoch=True, window_size=20)
load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
