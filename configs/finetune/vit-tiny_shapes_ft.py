# Full fine-tuning (MMPretrain ImageClassifier) of an MDC-pretrained tiny
# ViT on the shapes set classes, with MAE's layer-wise lr decay: block i of
# the 6-block ViT trains at lr * 0.75 ** (6 - i), the patch embedding,
# pos_embed and cls_token at lr * 0.75 ** 7, the final norm and the
# classifier at lr. Give the pretraining checkpoint (strict: every backbone
# weight must load, or the run stops before training):
#   python tools/train.py configs/finetune/vit-tiny_shapes_ft.py \
#       --cfg-options model.backbone.init_cfg.checkpoint=CKPT
# CKPT is an MDC / Cap / CLIP checkpoint (work_dirs/vit-tiny_shapes/
# epoch_8.pth, keys "backbone.*"); for a backbone written by
# tools/model_converters/extract_backbone.py add
#   model.backbone.init_cfg.prefix=None
_base_ = [
    '../_base_/models/vit-tiny-p8_64px.py',
    '../_base_/datasets/shapes_caption.py',
    '../_base_/default_runtime.py',
]

num_layers = 6
model = dict(
    type='ImageClassifier',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone=dict(
        type='VisionTransformer',
        arch=dict(embed_dims=192, num_layers=num_layers, num_heads=3,
                  feedforward_channels=768),
        img_size=64,
        patch_size=8,
        out_type='avg_featmap',
        final_norm=True,  # pretrained; ln2 (after pooling) is new
        drop_path_rate=0.1,
        init_cfg=dict(type='Pretrained', checkpoint='', prefix='backbone.',
                      strict=True, ignore_keys=[r'^ln2\.'])),
    neck=None,
    head=dict(
        type='LinearClsHead',
        num_classes=10,
        in_channels=192,
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1,
                  mode='original'),
        init_cfg=[dict(type='TruncNormal', layer='Linear', std=2e-5)]),
)

# The shape-set label ignores position, so horizontal flips keep it (unlike
# the captions, which name left and right).
train_pipeline = [
    dict(type='LoadCaptionImage'),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadCaptionImage'), dict(type='PackInputs')]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(pipeline=test_pipeline))
test_dataloader = dict(dataset=dict(pipeline=test_pipeline))
val_evaluator = dict(_delete_=True, type='Accuracy', topk=(1, ))
test_evaluator = val_evaluator

max_epochs = 20
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=5e-4, betas=(0.9, 0.999),
                   weight_decay=0.05),
    constructor='LearningRateDecayOptimWrapperConstructor',
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        layer_decay_rate=0.75,
        custom_keys={
            '.ln': dict(decay_mult=0.0),
            '.bias': dict(decay_mult=0.0),
            '.cls_token': dict(decay_mult=0.0),
            '.pos_embed': dict(decay_mult=0.0),
        }))
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=2,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=32)
