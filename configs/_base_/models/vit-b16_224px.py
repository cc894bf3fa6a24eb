# ViT-B/16 at 224 px (CapPa's image encoder), all tokens out.
backbone = dict(
    type='VisionTransformer',
    arch='b',
    img_size=224,
    patch_size=16,
    out_type='raw',
    drop_path_rate=0.0,
)
backbone_dims = 768
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    mean=[122.770938, 116.7460125, 104.09373615],
    std=[68.5005327, 66.6321579, 70.32316305],
    to_rgb=True,
)
