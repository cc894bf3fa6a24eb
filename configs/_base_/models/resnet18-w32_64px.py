# A narrow ResNet-18 (channels 32-64-128-256, 2.8M parameters) for 64 px
# grayscale scenes on CPU: the Fashion-MNIST bed's backbone. Its last stage
# is a (B, 256, 2, 2) feature map; ImageCaptioner flattens it to 4 tokens
# (one per scene cell) with fixed 2-D position codes, the linear probe
# mean-pools it. A ViT from scratch does not clear the bed's validity gate
# within a CPU budget (docs/results.md, "Why a ResNet").
backbone = dict(
    type='ResNet',
    depth=18,
    stem_channels=32,
    base_channels=32,
    out_indices=(3, ),
)
backbone_dims = 256
# Grayscale product photos on black: the same statistics on every channel.
data_preprocessor = dict(
    type='ClsDataPreprocessor',
    mean=[127.5, 127.5, 127.5],
    std=[127.5, 127.5, 127.5],
    to_rgb=False,
)
