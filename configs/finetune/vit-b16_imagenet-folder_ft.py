# Full fine-tuning of an MDC-pretrained ViT-B/16 on an ImageNet-style folder
# tree (data/imagenet/{train,val}/<class>/*.JPEG), MAE's recipe
# (mmpretrain configs/mae/benchmarks/vit-base-p16_8xb128-coslr-100e_in1k.py):
# AdamW 2e-3 at batch 1024, layer-wise lr decay 0.65, drop path 0.1,
# RandAugment, Mixup/CutMix, label smoothing, 100 epochs.
#   bash tools/dist_train.sh configs/finetune/vit-b16_imagenet-folder_ft.py 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=CKPT
# CKPT: work_dirs/vit-b_coco/epoch_20.pth (keys "backbone.*"); for a file
# from tools/model_converters/extract_backbone.py add
# model.backbone.init_cfg.prefix=None. The Pretrained init is strict.
_base_ = ['../_base_/default_runtime.py']

data_root = 'data/imagenet'
num_classes = 1000
bgr_mean = [104.09373615, 116.7460125, 122.770938]
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    num_classes=num_classes,
    # the normalisation the backbone was pretrained with (RGB)
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True,
)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomResizedCrop', scale=224, backend='pillow',
         interpolation='bicubic'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='RandAugment', policies='timm_increasing', num_policies=2,
         total_level=10, magnitude_level=9, magnitude_std=0.5,
         hparams=dict(pad_val=[round(x) for x in bgr_mean],
                      interpolation='bicubic')),
    dict(type='RandomErasing', erase_prob=0.25, mode='rand',
         min_area_ratio=0.02, max_area_ratio=1 / 3, fill_color=bgr_mean,
         fill_std=[70.32316305, 66.6321579, 68.5005327]),
    dict(type='PackInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='ResizeEdge', scale=256, edge='short', backend='pillow',
         interpolation='bicubic'),
    dict(type='CenterCrop', crop_size=224),
    dict(type='PackInputs'),
]
train_dataloader = dict(
    batch_size=128, num_workers=8, drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=128, num_workers=8,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root,
                 data_prefix='val', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

model = dict(
    type='ImageClassifier',
    data_preprocessor=data_preprocessor,
    backbone=dict(
        type='VisionTransformer', arch='b', img_size=224, patch_size=16,
        out_type='avg_featmap', final_norm=True, drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.',
                      strict=True, ignore_keys=[r'^ln2\.'])),
    neck=None,
    head=dict(
        type='LinearClsHead', num_classes=num_classes, in_channels=768,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
    train_cfg=dict(augments=[
        dict(type='Mixup', alpha=0.8),
        dict(type='CutMix', alpha=1.0),
    ]))

max_epochs = 100
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=2e-3, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='LearningRateDecayOptimWrapperConstructor',
    paramwise_cfg=dict(
        layer_decay_rate=0.65,
        custom_keys={
            '.ln': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-4, by_epoch=True, begin=0, end=5,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=95, by_epoch=True, begin=5,
         end=max_epochs, eta_min=1e-6, convert_to_iter_based=True),
]
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
