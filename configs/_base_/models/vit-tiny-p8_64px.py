# A small ViT for 64x64 images (8x8 patches -> 64 tokens + cls), sized for
# CPU training on the embedded shapes data. `out_type='raw'` hands every
# token (cls + patches) to the caption decoder.
backbone = dict(
    type='VisionTransformer',
    arch=dict(embed_dims=192, num_layers=6, num_heads=3,
              feedforward_channels=768),
    img_size=64,
    patch_size=8,
    out_type='raw',
    drop_path_rate=0.0,
)
backbone_dims = 192
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    mean=[127.5, 127.5, 127.5],
    std=[63.75, 63.75, 63.75],
    to_rgb=True,
)
