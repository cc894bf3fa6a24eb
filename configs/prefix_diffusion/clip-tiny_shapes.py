# Prefix-diffusion on the embedded shapes data (CPU, minutes): the frozen
# image encoder is the plugin's contrastive baseline (train it first with
# configs/baselines/clip_vit-tiny_shapes.py); a 2-layer MLP maps its 192-d
# embedding to 4 prefix vectors; a 2-layer embedding-diffusion denoiser
# (truncated linear schedule, T=1000, 20 sampling steps) writes the caption;
# 5 candidates per image are reranked by the same contrastive model.
#   python tools/train.py configs/prefix_diffusion/clip-tiny_shapes.py
# Another encoder checkpoint: --cfg-options
#   model.encoder.checkpoint=PATH model.scorer.checkpoint=PATH
_base_ = [
    '../_base_/models/vit-tiny-p8_64px.py',
    '../_base_/datasets/shapes_caption.py',
    '../_base_/schedules/shapes_adamw.py',
    '../_base_/default_runtime.py',
]

clip_config = '{{ fileDirname }}/../baselines/clip_vit-tiny_shapes.py'
clip_checkpoint = 'work_dirs/results/clip/epoch_8.pth'
encoder_dims = 192   # ContrastiveImageText embed_dims of that config
prefix_length = 4
denoiser_dims = 192

model = dict(
    type='PrefixDiffusionCaptioner',
    data_preprocessor={{_base_.data_preprocessor}},
    encoder=dict(type='ContrastiveImageEncoder', config=clip_config,
                 checkpoint=clip_checkpoint),
    mapper=dict(type='PrefixMapper', in_dims=encoder_dims,
                out_dims=denoiser_dims, prefix_length=prefix_length),
    head=dict(
        type='PrefixDiffusionHead',
        tokenizer={{_base_.caption_tokenizer}},
        max_length={{_base_.max_caption_length}},
        prefix_length=prefix_length,
        word_dims=32,
        embed_dims=denoiser_dims,
        num_layers=2,
        num_heads=3,
        num_timesteps=1000,
        noise_schedule='trunc_linear',
        sampler=dict(steps=20, eta=1.0, clamp=True),
    ),
    num_candidates=5,
    scorer=dict(type='PluginModelScorer', config=clip_config,
                checkpoint=clip_checkpoint),
    keep_candidates=True,
    # The shapes train pipeline is deterministic: encode each image once.
    cache_embeddings=True,
)

# Only the mapper and the denoiser are optimised; the encoder is left out.
optim_wrapper = dict(constructor='TrainableParamsOptimWrapperConstructor')

val_evaluator = dict(type='CaptionMetric',
                     scores=['BLEU', 'ROUGE-L', 'CIDEr'], diversity=True)
test_evaluator = val_evaluator
