# The VQ image tokenizer of the embedded shapes configs, shared by the VQ
# stage (vq-vit-tiny_shapes.py, trains it) and the caption configs (load it
# frozen from the VQ stage's checkpoint).
#
# The encoder keeps the base tiny ViT's patching (64 px, 8x8 patches, see
# ../../_base_/models/vit-tiny-p8_64px.py) with 2 blocks at width 96
# instead of 6 at 192: a code only has to describe its own patch, and the
# shared 2-core machine has to train both stages in minutes.
vq_backbone = dict(
    type='VisionTransformer',
    arch=dict(embed_dims=96, num_layers=2, num_heads=3,
              feedforward_channels=384),
    img_size=64,
    patch_size=8,
    out_type='raw',
    drop_path_rate=0.0,
)
vq_backbone_dims = 96
vq_codes = 128        # codebook size K; the condition mask id is K
vq_code_dims = 64
vq_tokens = 64        # (64 / 8)^2 patch codes per image (cls dropped)
vq_neck = dict(
    type='VQTokenizerNeck', source='learned', in_dims=vq_backbone_dims,
    num_codes=vq_codes, code_dims=vq_code_dims, num_tokens=vq_tokens,
    num_prefix_tokens=1, ema_decay=0.95, commitment_weight=0.25,
    dead_threshold=0.03, restart_dead=True)

# Stage 2: the same encoder and codebook, frozen, read from the checkpoint
# of the VQ stage (override both init_cfg.checkpoint keys to use another).
vq_checkpoint = 'work_dirs/mc_diffusion/vq/epoch_2.pth'
vq_frozen_backbone = dict(
    vq_backbone, frozen_stages=2,
    init_cfg=dict(type='Pretrained', checkpoint=vq_checkpoint,
                  prefix='backbone.', strict=True))
vq_frozen_neck = dict(
    vq_neck, frozen=True,
    init_cfg=dict(type='Pretrained', checkpoint=vq_checkpoint,
                  prefix='neck.', strict=True))
