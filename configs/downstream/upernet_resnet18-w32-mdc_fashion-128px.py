# MMSegmentation 1.x: UperNet on Fashion-MNIST scenes (128 px; background
# plus 10 classes, exact label maps in the ADE20K folder layout), with the
# Fashion bed's MDC-pretrained narrow ResNet-18
# (configs/mdc/resnet18-w32_fashion.py). Small enough for a CPU: the real
# MMSegmentation training loop, on data a tool writes (no download).
#
# Self-contained (no mmseg `_base_`), so it also parses where mmseg is not
# installed. Steps (docs/downstream.md, "Fashion scenes on CPU"):
#   python tools/misc/make_downstream_data.py data/fashion_downstream
#   python tools/model_converters/extract_backbone.py \
#       work_dirs/fashion/mdc_seed0/iter_1200.pth \
#       work_dirs/mdc_resnet18-w32_backbone.pth \
#       --config configs/mdc/resnet18-w32_fashion.py
#   # in the downstream environment (tools/misc/install_downstream.sh):
#   python tools/train.py THIS_CONFIG
#   # random-init reference at the same budget:
#   python tools/train.py THIS_CONFIG --cfg-options model.backbone.init_cfg=None
default_scope = 'mmseg'
# mmpretrain.models registers ResNet; mdc_plugin the strict, weights-only
# `Pretrained` initializer.
custom_imports = dict(
    imports=['mmpretrain.models', 'mdc_plugin'], allow_failed_imports=False)

pretrained = 'work_dirs/mdc_resnet18-w32_backbone.pth'  # extract_backbone.py
data_root = 'data/fashion_downstream/ade'  # make_downstream_data.py
# label 0 is a real class here (background), unlike ADE20K's "other"
classes = ('background', 'T-shirt/top', 'Trouser', 'Pullover', 'Dress',
           'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot')
num_classes = len(classes)
crop_size = (128, 128)
norm_cfg = dict(type='BN', requires_grad=True)

data_preprocessor = dict(
    type='SegDataPreProcessor',
    # the pretraining normalisation (configs/_base_/models/
    # resnet18-w32_64px.py); grayscale, so no channel swap
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    bgr_to_rgb=False,
    pad_val=0,
    seg_pad_val=255,
    size=crop_size)
model = dict(
    type='EncoderDecoder',
    data_preprocessor=data_preprocessor,
    pretrained=None,  # the backbone's init_cfg loads the weights
    backbone=dict(
        type='mmpretrain.ResNet',
        depth=18,
        stem_channels=32,
        base_channels=32,
        out_indices=(0, 1, 2, 3),  # strides 4-32, channels 32-256
        norm_eval=False,
        init_cfg=dict(type='Pretrained', checkpoint=pretrained,
                      strict=True)),
    decode_head=dict(
        type='UPerHead',
        in_channels=[32, 64, 128, 256],
        in_index=[0, 1, 2, 3],
        pool_scales=(1, 2, 3, 6),
        channels=64,
        dropout_ratio=0.1,
        num_classes=num_classes,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=128,
        in_index=2,
        channels=64,
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

# ---------------------------------------------------------------------- data
dataset_type = 'BaseSegDataset'
metainfo = dict(classes=classes)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackSegInputs'),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', reduce_zero_label=False),
    dict(type='PackSegInputs'),
]
dataset_common = dict(
    type=dataset_type,
    data_root=data_root,
    metainfo=metainfo,
    img_suffix='.png',
    seg_map_suffix='.png',
    reduce_zero_label=False)
train_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    dataset=dict(
        **dataset_common,
        data_prefix=dict(
            img_path='images/training', seg_map_path='annotations/training'),
        pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=8,
    num_workers=0,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(
        **dataset_common,
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='IoUMetric', iou_metrics=['mIoU'])
test_evaluator = val_evaluator

# ------------------------------------------------------------------ schedule
max_iters = 1000
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0,
         end=100),
    dict(type='PolyLR', eta_min=0.0, power=1.0, begin=100, end=max_iters,
         by_epoch=False),
]
train_cfg = dict(
    type='mmpretrain.ExactResumeIterBasedTrainLoop', max_iters=max_iters,
    val_interval=max_iters)
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
                    interval=max_iters, max_keep_ckpts=1),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    visualization=dict(type='SegVisualizationHook'))
env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='gloo'))
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(
    type='SegLocalVisualizer', vis_backends=vis_backends, name='visualizer')
log_processor = dict(by_epoch=False)
log_level = 'INFO'
randomness = dict(seed=0)
load_from = None
resume = False
