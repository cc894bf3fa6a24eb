# MMSegmentation 1.x: UperNet on ADE20K with an MDC-pretrained ViT-B/16
# (MMPretrain's VisionTransformer, features of blocks 3/6/9/12) and
# MMSegmentation's MultiLevelNeck (resampled to strides 4/8/16/32), as in
# mmseg's configs/vit/vit_vit-b16_mln_upernet_8xb2-160k_ade20k-512x512.py.
#
# Self-contained (no mmseg `_base_`), so it also parses where mmseg is not
# installed. Steps (docs/downstream.md):
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/vit-b_coco/epoch_20.pth work_dirs/mdc_vit-b16_backbone.pth \
#       --config configs/mdc/vit-b_coco.py
#   # in an MMSegmentation 1.x environment with mdc_plugin installed
#   # (CFG = this file, CKPT = the converted backbone):
#   bash tools/dist_train.sh CFG 8 \
#       --cfg-options model.backbone.init_cfg.checkpoint=CKPT
default_scope = 'mmseg'
# mmpretrain.models registers VisionTransformer; mdc_plugin the strict,
# weights-only `Pretrained` initializer.
custom_imports = dict(
    imports=['mmpretrain.models', 'mdc_plugin'], allow_failed_imports=False)

pretrained = 'work_dirs/mdc_vit-b16_backbone.pth'  # extract_backbone.py
crop_size = (512, 512)
num_classes = 150
norm_cfg = dict(type='SyncBN', requires_grad=True)

data_preprocessor = dict(
    type='SegDataPreProcessor',
    # the normalisation the backbone was pretrained with
    # (configs/_base_/models/vit-b16_224px.py), RGB
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    bgr_to_rgb=True,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,  # the backbone's init_cfg loads the weights
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch='b',
        img_size=crop_size,  # pos_embed is resized from 224 px at load time
        patch_size=16,
        out_type='featmap',  # 4 x (B, 768, H/16, W/16)
        out_indices=(2, 5, 8, 11),
        final_norm=True,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      strict=True)),
    neck=dict(
        type='MultiLevelNeck',
        in_channels=[768, 768, 768, 768],
        out_channels=768,
        scales=[4, 2, 1, 0.5]),
    decode_head=dict(
        type='UPerHead',
        in_channels=[768, 768, 768, 768],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=512,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=768,
        in_index=3,
        channels=256,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))

# ---------------------------------------------------------------- data
dataset_type = 'ADE20KDataset'
data_root = 'data/ade/ADEChallengeData2016'
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='RandomResize', scale=(2048, 512), ratio_range=(0.5, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_size=crop_size, cat_max_ratio=0.75),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(2048, 512), keep_ratio=True),
    dict(type='LoadAnnotations', reduce_zero_label=True),
    dict(type='PackSegInputs'),
]
train_dataloader = dict(
    batch_size=2,  # x 8 GPUs = 16
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=1,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# ------------------------------------------------------------------ schedule
# AdamW as mmseg's ViT-B UperNet recipe, plus layer-wise lr decay (0.65, as
# for MAE/BEiT backbones) written as MMEngine custom_keys: block i of the
# ViT gets lr * rate ** (num_layers - i), the stem rate ** (num_layers + 1).
# (mmseg's LayerDecayOptimizerConstructor only knows BEiT/MAE/ConvNeXt
# class names, so it refuses MMPretrain's VisionTransformer.)
num_layers = 12
layer_decay_rate = 0.65
layer_lr_keys = {
    f'backbone.layers.{i}.': dict(lr_mult=layer_decay_rate**(num_layers - i))
    for i in range(num_layers)
}
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            **layer_lr_keys,
            'backbone.patch_embed': dict(
                lr_mult=layer_decay_rate**(num_layers + 1)),
            'backbone.pos_embed': dict(
                lr_mult=layer_decay_rate**(num_layers + 1), decay_mult=0.0),
            'backbone.cls_token': dict(
                lr_mult=layer_decay_rate**(num_layers + 1), decay_mult=0.0),
        }))
max_iters = 160000
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-6, by_epoch=False, begin=0,
         end=1500),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=1500, end=max_iters,
         by_epoch=False),
]
train_cfg = dict(
    type='mmpretrain.ExactResumeIterBasedTrainLoop', max_iters=max_iters,
    val_interval=16000)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

# ------------------------------------------------------------------- runtime
default_hooks = dict(
    # mdc_plugin's checkpoint hardening (docs/reliability.md); the
    # 'mmpretrain.' prefix finds it from the mmdet / mmseg scope.
    safe_checkpoint_loading=dict(type='mmpretrain.SafeCheckpointLoadingHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='mmpretrain.AtomicCheckpointHook', by_epoch=False,
                    interval=16000),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=True,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
