# Supervised upper reference of the Fashion bed: the same backbone, batch,
# budget and optimiser as the caption runs, trained on the probe's own
# label (the 60k official train items at scene scale). The validity gate:
# its probe must reach >= 88% and beat the random-init probe by >= 5 points.
#   python tools/train.py configs/benchmarks/supervised_resnet18-w32_fashion.py
_base_ = [
    '../_base_/models/resnet18-w32_64px.py',
    '../_base_/schedules/fashion_adamw_iter.py',
    '../_base_/fashion_probe_hook.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone={{_base_.backbone}},
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10,
              in_channels={{_base_.backbone_dims}},
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)),
)
item_pipeline = [dict(type='LoadCaptionImage'), dict(type='PackInputs')]
train_dataloader = dict(
    batch_size=64,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type='FashionMNISTItems', split='train',
                 pipeline=item_pipeline),
    sampler=dict(type='InfiniteSampler', shuffle=True),
    collate_fn=dict(type='default_collate'),
    drop_last=True,
)
val_dataloader = dict(
    batch_size=256,
    num_workers=1,
    persistent_workers=True,
    dataset=dict(type='FashionMNISTItems', split='test',
                 pipeline=item_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False),
    collate_fn=dict(type='default_collate'),
)
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator
default_hooks = {{_base_.fashion_default_hooks}}
log_processor = {{_base_.fashion_log_processor}}
