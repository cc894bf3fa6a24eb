# Linear probe of an MDC ViT-B/16 on an ImageNet-style folder tree
# (data/imagenet/train/<class>/*.JPEG, data/imagenet/val/<class>/*.JPEG),
# MAE's recipe: frozen backbone, cls token, BatchNorm neck, LARS.
#   bash tools/dist_train.sh configs/benchmarks/linear-probe_vit-b16_imagenet-folder.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=work_dirs/vit-b_coco/epoch_20.pth
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/imagenet'
num_classes = 1000
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=num_classes,
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True,
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=256, num_workers=8, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=256, num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='VisionTransformer', arch='b', img_size=224, patch_size=16,
        frozen_stages=12, out_type='cls_token', final_norm=True,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.',
                      strict=True)),
    neck=dict(type='ClsBatchNormNeck', input_features=768),
    head=dict(type='VisionTransformerClsHead', num_classes=num_classes,
              in_channels=768, loss=dict(type='CrossEntropyLoss'),
              init_cfg=[dict(type='TruncNormal', layer='Linear', std=0.01)]))

max_epochs = 90
optim_wrapper = dict(
    optimizer=dict(type='LARS', lr=6.4, weight_decay=0.0, momentum=0.9))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=10,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=80, by_epoch=True, begin=10,
         end=max_epochs, eta_min=0.0, convert_to_iter_based=True),
]
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=2048)
