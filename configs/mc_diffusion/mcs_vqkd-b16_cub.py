# MC-Diffusion at paper scale on CUB-200 (GPUs): frozen discrete image codes
# -> D3PM mask-and-replace caption decoder (18 blocks, d = 512, T = 100)
# with the Masked Condition Strategy (P_cond = P_mask = 0.1), AdamW
# betas (0.9, 0.96), lr warm-up from 1e-6 to 4.5e-4 over 1000 steps,
# batch 128, 200 epochs (the paper's setting).
#
# Image codes: the paper uses a VQGAN (K = 2886, 32 x 32 codes at 256 px).
# MMPretrain ships no VQGAN; the closest tokenizer it ships is BEiT v2's VQKD
# (K = 8192, 14 x 14 codes at 224 px, 32-d l2-normalised codebook), used
# here frozen: its ViT-B/16 encoder is the backbone and its task layer and
# codebook are VQTokenizerNeck(source='frozen').
#
# Weights: MMPretrain's BEiT v2 target generator, vqkd_encoder.pth (the
# checkpoint MMPretrain's beitv2 pretraining configs name as the
# target_generator init_cfg: download.openmmlab.com/mmselfsup/1.x/
# target_generator_ckpt/vqkd_encoder.pth; keys encoder.*,
# encode_task_layer.*, quantize.*). A BEiT v2 pretraining checkpoint holds
# the same under target_generator.*: add
# model.backbone.init_cfg.prefix=target_generator.encoder.
# model.neck.checkpoint_prefix=target_generator. to the options below.
# Put it at checkpoints/vqkd_encoder.pth, or pass the path:
#   python tools/train.py configs/mc_diffusion/mcs_vqkd-b16_cub.py \
#       --cfg-options vq_checkpoint=PATH
# (vq_checkpoint is copied into model.backbone.init_cfg.checkpoint and
# model.neck.checkpoint; tools/train.py sets both from it.)
_base_ = [
    '../_base_/datasets/cub_caption.py',
    '../_base_/default_runtime.py',
]

vq_checkpoint = 'checkpoints/vqkd_encoder.pth'
vq_codes = 8192
vq_tokens = 196  # (224 / 16)^2

model = dict(
    type='MCDiffusionCaptioner',
    # the normalisation MMPretrain's BEiT v2 feeds its VQKD target
    # generator (second_mean / second_std: pixels to [-1, 1])
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True),
    # VQKD's encoder (mmpretrain.models.selfsup.VQKD's encoder_config)
    backbone=dict(
        type='BEiTViT', arch='base', img_size=224, patch_size=16,
        out_type='raw', final_norm=True, with_cls_token=True,
        use_abs_pos_emb=True, use_rel_pos_bias=False,
        use_shared_rel_pos_bias=False, layer_scale_init_value=0.0,
        norm_cfg=dict(type='LN', eps=1e-6), frozen_stages=12,
        init_cfg=dict(type='Pretrained', checkpoint=vq_checkpoint,
                      prefix='encoder.')),
    neck=dict(
        type='VQTokenizerNeck', source='frozen', vq_model='vqkd',
        checkpoint=vq_checkpoint, in_dims=768, num_codes=vq_codes,
        code_dims=32, num_tokens=vq_tokens, num_prefix_tokens=1),
    head=dict(
        type='D3PMCaptionHead',
        tokenizer={{_base_.caption_tokenizer}},
        max_length={{_base_.max_caption_length}},
        num_codes=vq_codes,
        condition_length=vq_tokens,
        embed_dims=512,
        num_layers=18,
        num_heads=8,
        num_timesteps=100,
        aux_weight=5e-4,          # VQ-Diffusion's auxiliary weight
        adaptive_aux=True,
        guidance=dict(type='MaskedConditionGuidance', mode='mcs',
                      p_cond=0.1, p_mask=0.1, scale=1.0),
        sampler=dict(steps=100, temperature=1.0),
        with_cp=False,
    ),
    predict_cfg=dict(scale=1.0),
)

train_dataloader = dict(batch_size=128)
val_dataloader = dict(batch_size=64)
test_dataloader = dict(batch_size=64)

max_epochs = 200
optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=4.5e-4, betas=(0.9, 0.96),
                   weight_decay=4.5e-2),
    clip_grad=dict(max_norm=1.0),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'.pos_embed': dict(decay_mult=0.0),
                                    '.condition_pos': dict(decay_mult=0.0)}),
)
param_scheduler = [
    # 1e-6 -> 4.5e-4 over the first 1000 iterations, then cosine
    dict(type='LinearLR', start_factor=1e-6 / 4.5e-4, by_epoch=False,
         begin=0, end=1000),
    dict(type='CosineAnnealingLR', eta_min=1e-6, by_epoch=True, begin=0,
         end=max_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop',
                 max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)
