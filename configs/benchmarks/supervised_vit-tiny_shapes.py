# Supervised upper reference for the shapes probe: the same ViT trained from
# scratch on the probe label itself (10 shape-set classes), same data, batch
# and optimiser family as the caption pretraining runs. If this cannot beat a
# random-init probe, the probe task is beyond the CPU budget for any
# objective. Run:
#   python tools/train.py configs/benchmarks/supervised_vit-tiny_shapes.py
_base_ = ['./linear-probe_vit-tiny_shapes.py']

model = dict(
    backbone=dict(frozen_stages=-1, init_cfg=None),
    neck=None,
    head=dict(init_cfg=None))
max_epochs = 8
optim_wrapper = dict(
    _delete_=True,
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', by_epoch=True, begin=1, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=2)
