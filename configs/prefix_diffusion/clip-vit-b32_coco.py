# Prefix-diffusion at paper scale: a frozen open_clip ViT-B/32 image tower
# (weights from a local file, never downloaded), a 2-layer MLP to 10 prefix
# vectors, a 6-layer embedding-diffusion denoiser (48-d word embeddings,
# truncated linear schedule, T=2000), 5 candidates reranked by CLIP.
#   python tools/train.py configs/prefix_diffusion/clip-vit-b32_coco.py \
#       --cfg-options model.encoder.checkpoint=/path/ViT-B-32.pt \
#       model.scorer.checkpoint=/path/ViT-B-32.pt
_base_ = [
    '../_base_/datasets/coco_karpathy_caption.py',
    '../_base_/schedules/coco_adamw_bs1024.py',
    '../_base_/default_runtime.py',
]

clip_checkpoint = 'data/clip/ViT-B-32.pt'  # an open_clip state dict
prefix_length = 10
denoiser_dims = 768

model = dict(
    type='PrefixDiffusionCaptioner',
    # CLIP's normalisation (0-255 scale), images loaded BGR by mmcv.
    data_preprocessor=dict(
        type='ClsDataPreprocessor',
        mean=[122.770938, 116.7460125, 104.09373615],
        std=[68.5005327, 66.6321579, 70.32316305],
        to_rgb=True),
    encoder=dict(type='OpenCLIPImageEncoder', model_name='ViT-B-32',
                 checkpoint=clip_checkpoint),
    mapper=dict(type='PrefixMapper', in_dims=512, out_dims=denoiser_dims,
                prefix_length=prefix_length),
    head=dict(
        type='PrefixDiffusionHead',
        tokenizer={{_base_.caption_tokenizer}},
        max_length={{_base_.max_caption_length}},
        prefix_length=prefix_length,
        word_dims=48,
        embed_dims=denoiser_dims,
        num_layers=6,
        num_heads=12,
        num_timesteps=2000,
        noise_schedule='trunc_linear',
        sampler=dict(steps=50, eta=1.0, clamp=True),
    ),
    num_candidates=5,
    scorer=dict(type='OpenCLIPScorer', model_name='ViT-B-32',
                checkpoint=clip_checkpoint),
    keep_candidates=True,
)

optim_wrapper = dict(constructor='TrainableParamsOptimWrapperConstructor',
                     optimizer=dict(lr=1e-4))
val_evaluator = dict(type='CaptionMetric',
                     scores=['BLEU', 'METEOR', 'ROUGE-L', 'CIDEr'],
                     diversity=True)
test_evaluator = val_evaluator
