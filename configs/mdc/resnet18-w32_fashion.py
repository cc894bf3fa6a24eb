# MDC on real images: masked-diffusion captioning of Fashion-MNIST scenes
# with a narrow ResNet-18, the paper's masking range t in [0.5, 1]. Fits in
# about 15-20 min on 2 CPU cores; after validation the official
# Fashion-MNIST probe runs beside a random-init and a pixel probe.
#   python tools/train.py configs/mdc/resnet18-w32_fashion.py
# MDLM's range instead: configs/mdc/resnet18-w32_fashion_mdlm-t.py
_base_ = [
    '../_base_/models/resnet18-w32_64px.py',
    '../_base_/datasets/fashion_scene_caption.py',
    '../_base_/schedules/fashion_adamw_iter.py',
    '../_base_/fashion_probe_hook.py',
    '../_base_/default_runtime.py',
]

model = dict(
    type='ImageCaptioner',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone={{_base_.backbone}},
    head=dict(
        type='MaskedDiffusionCaptionHead',
        tokenizer={{_base_.caption_tokenizer}},
        max_length={{_base_.max_caption_length}},
        image_dims={{_base_.backbone_dims}},
        embed_dims=256,
        num_layers=2,
        num_heads=4,
        t_range=(0.5, 1.0),
        loss_weighting='elbo',
        # Random-order remasking: on this bed it lifts 8-step val CIDEr from
        # 18.0 to 95.0 (mean of 2 seeds) over low-confidence remasking,
        # which commits the surest words first and repeats them
        # (docs/results.md, "MDC decoding"); the runs of the results table
        # validated with low_confidence during training.
        sampler=dict(steps=8, temperature=0.0, schedule='uniform',
                     remasking='random', block_length=None),
    ),
)
default_hooks = {{_base_.fashion_default_hooks}}
log_processor = {{_base_.fashion_log_processor}}
