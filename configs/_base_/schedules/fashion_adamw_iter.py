# The Fashion bed's budget, identical for every objective: 1,200 iterations
# at batch 64 (76,800 scenes), AdamW, 100 warm-up iterations, cosine decay.
# Checkpoints at 25/50/75/100% of the budget are kept for the learning curve.
max_iters = 1200
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=False,
         begin=100, end=max_iters),
]
train_cfg = dict(type='ExactResumeIterBasedTrainLoop', max_iters=max_iters,
                 val_interval=max_iters)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=64)
# Iteration-based logging and checkpoints (keep every quarter-budget one):
fashion_default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='AtomicCheckpointHook', by_epoch=False,
                    interval=max_iters // 4, max_keep_ckpts=-1))
fashion_log_processor = dict(by_epoch=False, window_size=50)
