# Contrastive (CLIP-style) baseline: the same image backbone, data and
# schedule as configs/mdc/vit-tiny_shapes.py, a 2-layer text transformer and
# the symmetric InfoNCE loss. Validation "captions" by retrieving the best
# caption in the batch. Its checkpoint is also the plugin's offline
# image-text scorer (CaptionMetric's PluginModelScorer).
_base_ = ['../mdc/vit-tiny_shapes.py']

model = dict(
    _delete_=True,
    type='ContrastiveImageText',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone={{_base_.backbone}},
    tokenizer={{_base_.caption_tokenizer}},
    max_length={{_base_.max_caption_length}},
    image_dims={{_base_.backbone_dims}},
    embed_dims=192,
    text_dims=192,
    text_layers=2,
    text_heads=3,
    pool='cls',
)
