# MC-Diffusion, stage 1 on the embedded shapes data: learn the VQ codebook
# VQ-VAE style: a small ViT encodes the 8x8-pixel patches, VQTokenizerNeck
# quantises them to K=128 codes (straight-through, EMA codebook, commitment
# loss, dead-code restart), a 2-layer decoder reconstructs the patches.
# CPU, a few minutes:
#   python tools/train.py configs/mc_diffusion/vq-vit-tiny_shapes.py \
#       --work-dir work_dirs/mc_diffusion/vq
# The caption configs load `backbone.` and `neck.` from its last checkpoint.
_base_ = [
    '../_base_/models/vit-tiny-p8_64px.py',
    '../_base_/datasets/shapes_caption.py',
    '../_base_/schedules/shapes_adamw.py',
    '../_base_/default_runtime.py',
    './_base_/vq_shapes.py',
]

model = dict(
    type='VQImageTokenizer',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone={{_base_.vq_backbone}},
    neck={{_base_.vq_neck}},
    patch_size=8,
    decoder_layers=2,
    decoder_heads=4,
)

vq_epochs = 2
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True,
         begin=1, end=vq_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop', max_epochs=vq_epochs)
# Reconstruction only: no caption validation for this stage.
val_dataloader = None
val_evaluator = None
val_cfg = None
test_dataloader = None
test_evaluator = None
test_cfg = None
