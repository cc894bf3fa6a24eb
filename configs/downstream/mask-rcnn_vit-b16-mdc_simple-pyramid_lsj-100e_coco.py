# MMDetection 3.x: Mask R-CNN on COCO with an MDC-pretrained ViT-B/16
# (MMPretrain's VisionTransformer) and a ViTDet-style simple feature pyramid,
# LSJ 1024x1024 augmentation, 100 epochs at batch 64 (ViTDet's recipe, with
# global attention in every block: MMPretrain's ViT has no window attention).
#
# Self-contained (no mmdet `_base_`), so it also parses where mmdet is not
# installed. Steps (docs/downstream.md):
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/vit-b_coco/epoch_20.pth work_dirs/mdc_vit-b16_backbone.pth \
#       --config configs/mdc/vit-b_coco.py
#   # in an MMDetection 3.x environment with mdc_plugin installed
#   # (CFG = this file, CKPT = the converted backbone):
#   bash tools/dist_train.sh CFG 16 \
#       --cfg-options model.backbone.init_cfg.checkpoint=CKPT
default_scope = 'mmdet'
# mmpretrain.models registers VisionTransformer and LN2d; mdc_plugin adds
# ViTSimplePyramid and the strict, weights-only `Pretrained` initializer.
custom_imports = dict(
    imports=['mmpretrain.models', 'mdc_plugin'], allow_failed_imports=False)

pretrained = 'work_dirs/mdc_vit-b16_backbone.pth'  # extract_backbone.py
image_size = (1024, 1024)
num_layers = 12
norm_cfg = dict(type='mmpretrain.LN2d', requires_grad=True)

model = dict(
    type='MaskRCNN',
    data_preprocessor=dict(
        type='DetDataPreprocessor',
        # the normalisation the backbone was pretrained with
        # (configs/_base_/models/vit-b16_224px.py), RGB
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        bgr_to_rgb=True,
        pad_mask=True,
        pad_size_divisor=32,
        batch_augments=[
            dict(type='BatchFixedSizePad', size=image_size, pad_mask=True)
        ]),
    backbone=dict(
        type='mmpretrain.VisionTransformer',
        arch='b',
        img_size=1024,  # pos_embed is resized from 224 px at load time
        patch_size=16,
        out_type='featmap',  # (B, 768, H/16, W/16)
        out_indices=(num_layers - 1, ),
        final_norm=True,
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      strict=True)),
    neck=dict(
        type='mmpretrain.ViTSimplePyramid',
        in_channels=768,
        out_channels=256,
        scales=(4.0, 2.0, 1.0, 0.5),  # strides 4, 8, 16, 32
        num_outs=5),  # + stride 64 for the RPN
    rpn_head=dict(
        type='RPNHead',
        in_channels=256,
        feat_channels=256,
        num_convs=2,
        anchor_generator=dict(
            type='AnchorGenerator',
            scales=[8],
            ratios=[0.5, 1.0, 2.0],
            strides=[4, 8, 16, 32, 64]),
        bbox_coder=dict(
            type='DeltaXYWHBBoxCoder',
            target_means=[.0, .0, .0, .0],
            target_stds=[1.0, 1.0, 1.0, 1.0]),
        loss_cls=dict(
            type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
        loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
    roi_head=dict(
        type='StandardRoIHead',
        bbox_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        bbox_head=dict(
            type='Shared4Conv1FCBBoxHead',
            in_channels=256,
            conv_out_channels=256,
            fc_out_channels=1024,
            roi_feat_size=7,
            num_classes=80,
            norm_cfg=norm_cfg,
            bbox_coder=dict(
                type='DeltaXYWHBBoxCoder',
                target_means=[0., 0., 0., 0.],
                target_stds=[0.1, 0.1, 0.2, 0.2]),
            reg_class_agnostic=False,
            loss_cls=dict(
                type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        mask_roi_extractor=dict(
            type='SingleRoIExtractor',
            roi_layer=dict(type='RoIAlign', output_size=14, sampling_ratio=0),
            out_channels=256,
            featmap_strides=[4, 8, 16, 32]),
        mask_head=dict(
            type='FCNMaskHead',
            num_convs=4,
            in_channels=256,
            conv_out_channels=256,
            num_classes=80,
            norm_cfg=norm_cfg,
            loss_mask=dict(
                type='CrossEntropyLoss', use_mask=True, loss_weight=1.0))),
    train_cfg=dict(
        rpn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.7,
                neg_iou_thr=0.3,
                min_pos_iou=0.3,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=256,
                pos_fraction=0.5,
                neg_pos_ub=-1,
                add_gt_as_proposals=False),
            allowed_border=-1,
            pos_weight=-1,
            debug=False),
        rpn_proposal=dict(
            nms_pre=2000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            assigner=dict(
                type='MaxIoUAssigner',
                pos_iou_thr=0.5,
                neg_iou_thr=0.5,
                min_pos_iou=0.5,
                match_low_quality=True,
                ignore_iof_thr=-1),
            sampler=dict(
                type='RandomSampler',
                num=512,
                pos_fraction=0.25,
                neg_pos_ub=-1,
                add_gt_as_proposals=True),
            mask_size=28,
            pos_weight=-1,
            debug=False)),
    test_cfg=dict(
        rpn=dict(
            nms_pre=1000,
            max_per_img=1000,
            nms=dict(type='nms', iou_threshold=0.7),
            min_bbox_size=0),
        rcnn=dict(
            score_thr=0.05,
            nms=dict(type='nms', iou_threshold=0.5),
            max_per_img=100,
            mask_thr_binary=0.5)))

# ---------------------------------------------------------------- data (LSJ)
dataset_type = 'CocoDataset'
data_root = 'data/coco/'
backend_args = None
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomResize', scale=image_size, ratio_range=(0.1, 2.0),
         keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size,
         recompute_bbox=True, allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=image_size, keep_ratio=True),
    dict(type='Pad', size=image_size, pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape',
                    'scale_factor')),
]
train_dataloader = dict(
    batch_size=4,  # x 16 GPUs = 64
    num_workers=8,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_train2017.json',
        data_prefix=dict(img='train2017/'),
        filter_cfg=dict(filter_empty_gt=True, min_size=32),
        pipeline=train_pipeline,
        backend_args=backend_args))
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='annotations/instances_val2017.json',
        data_prefix=dict(img='val2017/'),
        test_mode=True,
        pipeline=test_pipeline,
        backend_args=backend_args))
test_dataloader = val_dataloader
val_evaluator = dict(
    type='CocoMetric',
    ann_file=data_root + 'annotations/instances_val2017.json',
    metric=['bbox', 'segm'],
    format_only=False,
    backend_args=backend_args)
test_evaluator = val_evaluator

# ------------------------------------------------------------------ schedule
# Layer-wise lr decay (ViTDet: 0.7 for ViT-B) written as MMEngine
# custom_keys, which any MMDetection version applies: block i of the ViT
# gets lr * rate ** (num_layers - i), the stem rate ** (num_layers + 1).
# (ViTDet's own constructor looks for timm's ".blocks." names and MMDet's
# LearningRateDecayOptimizerConstructor for ConvNeXt's; neither matches
# MMPretrain's "backbone.layers.N.".)
layer_decay_rate = 0.7
layer_lr_keys = {
    f'backbone.layers.{i}.': dict(lr_mult=layer_decay_rate**(num_layers - i))
    for i in range(num_layers)
}
optim_wrapper = dict(
    type='AmpOptimWrapper',
    optimizer=dict(
        type='AdamW', lr=1e-4, betas=(0.9, 0.999), weight_decay=0.1),
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
# 100 epochs = 184375 iterations x 64 images / 118k images
max_iters = 184375
interval = 5000
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0,
         end=250),
    dict(type='MultiStepLR', begin=0, end=max_iters, by_epoch=False,
         milestones=[163889, 177546], gamma=0.1),
]
train_cfg = dict(
    type='mmpretrain.ExactResumeIterBasedTrainLoop',
    max_iters=max_iters,
    val_interval=interval,
    dynamic_intervals=[(max_iters // interval * interval + 1, max_iters)])
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
auto_scale_lr = dict(enable=False, base_batch_size=64)

# ------------------------------------------------------------------- runtime
default_hooks = dict(
    # mdc_plugin's checkpoint hardening (docs/reliability.md); the
    # 'mmpretrain.' prefix finds it from the mmdet / mmseg scope.
    safe_checkpoint_loading=dict(type='mmpretrain.SafeCheckpointLoadingHook'),
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=50),
    param_scheduler=dict(type='ParamSchedulerHook'),
    checkpoint=dict(type='mmpretrain.AtomicCheckpointHook', by_epoch=False,
                    save_last=True,
                    interval=interval, max_keep_ckpts=5),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='DetVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='DetLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(type='LogProcessor', window_size=50, by_epoch=False)
log_level = 'INFO'
load_from = None
resume = False
