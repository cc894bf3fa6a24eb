# CapPa-style schedule for ViT-B/16 captioning on COCO (GPUs):
# AdamW (lr 1e-3 at batch 1024), linear warm-up then cosine,
# gradient clipping at 1.0. For bf16 mixed precision on GPUs train with
# `tools/train.py CONFIG --amp --amp-dtype bfloat16` (MMEngine's
# AmpOptimWrapper); the plain wrapper here also runs on CPU.
max_epochs = 20
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, betas=(0.9, 0.98),
                   weight_decay=0.05),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(
        norm_decay_mult=0.0, bias_decay_mult=0.0,
        custom_keys={'.pos_embed': dict(decay_mult=0.0),
                     '.cls_token': dict(decay_mult=0.0)}),
)
param_scheduler = [
    dict(type='LinearLR', start_factor=1e-3, by_epoch=True, begin=0, end=2,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=2,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=1024)
