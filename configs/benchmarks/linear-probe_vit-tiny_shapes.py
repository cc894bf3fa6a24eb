# Linear probe (MMPretrain ImageClassifier) of a pretrained backbone on the
# shapes shape-set classes (which two shapes an image holds, 10 classes):
# frozen ViT -> mean of patch tokens -> BatchNorm
# (no affine) -> linear classifier. Give the pretraining checkpoint with
#   python tools/train.py configs/benchmarks/linear-probe_vit-tiny_shapes.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/vit-tiny_shapes/epoch_8.pth
# The Pretrained init is strict in this plugin: a checkpoint without
# `backbone.*` weights for every layer fails instead of probing a random net.
_base_ = [
    '../_base_/models/vit-tiny-p8_64px.py',
    '../_base_/datasets/shapes_caption.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=192, num_layers=6, num_heads=3,
                  feedforward_channels=768),
        img_size=64,
        patch_size=8,
        out_type='avg_featmap',
        frozen_stages=6,
        # strict: every pretrained layer must load; only the pooled-feature
        # norm (ln2) that avg_featmap adds is new.
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.',
                      strict=True, ignore_keys=[r'^ln2\.'])),
    neck=dict(type='ClsBatchNormNeck', input_features=192),
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=192,
        loss=dict(type='CrossEntropyLoss'),
        init_cfg=dict(type='TruncNormal', layer='Linear', std=0.01)),
)

probe_pipeline = [dict(type='LoadCaptionImage'), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=probe_pipeline))
val_dataloader = dict(dataset=dict(pipeline=probe_pipeline))
test_dataloader = dict(dataset=dict(pipeline=probe_pipeline))
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 20
optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0))
param_scheduler = dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
                       end=max_epochs)
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
