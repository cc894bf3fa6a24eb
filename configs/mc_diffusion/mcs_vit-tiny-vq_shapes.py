# MC-Diffusion on the embedded shapes data, stage 2: a D3PM mask-and-replace
# caption decoder conditioned on the frozen VQ codes of stage 1, trained with
# the Masked Condition Strategy (P_cond = P_mask = 0.1, as in the paper).
#   python tools/train.py configs/mc_diffusion/mcs_vit-tiny-vq_shapes.py \
#       --work-dir work_dirs/mc_diffusion/mcs
# Needs the stage-1 checkpoint (vq_checkpoint in _base_/vq_shapes.py; from
# configs/mc_diffusion/vq-vit-tiny_shapes.py). Guidance scale at test time:
# --cfg-options model.predict_cfg.scale=S.
_base_ = [
    '../_base_/models/vit-tiny-p8_64px.py',
    '../_base_/datasets/shapes_caption.py',
    '../_base_/schedules/shapes_adamw.py',
    '../_base_/default_runtime.py',
    './_base_/vq_shapes.py',
]

model = dict(
    type='MCDiffusionCaptioner',
    data_preprocessor={{_base_.data_preprocessor}},
    # the stage-1 encoder and codebook, frozen
    backbone={{_base_.vq_frozen_backbone}},
    neck={{_base_.vq_frozen_neck}},
    head=dict(
        type='D3PMCaptionHead',
        tokenizer={{_base_.caption_tokenizer}},
        max_length={{_base_.max_caption_length}},
        num_codes={{_base_.vq_codes}},
        condition_length={{_base_.vq_tokens}},
        embed_dims=192,
        num_layers=3,
        num_heads=3,
        num_timesteps=100,
        # At this budget the x0 cross-entropy carries most of the signal;
        # the paper-scale config keeps VQ-Diffusion's 5e-4.
        aux_weight=1.0,
        adaptive_aux=True,
        guidance=dict(type='MaskedConditionGuidance', mode='mcs',
                      p_cond=0.1, p_mask=0.1, scale=1.0),
        sampler=dict(steps=20, temperature=1.0),
    ),
    predict_cfg=dict(scale=1.0),
)

caption_epochs = 4
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=1,
         convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', eta_min_ratio=0.01, by_epoch=True,
         begin=1, end=caption_epochs, convert_to_iter_based=True),
]
train_cfg = dict(type='ExactResumeEpochBasedTrainLoop',
                 max_epochs=caption_epochs,
                 val_interval=caption_epochs)
