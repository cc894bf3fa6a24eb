# Contrastive (CLIP-style) baseline on Fashion scenes: the same backbone,
# data, budget and seed handling as configs/mdc/resnet18-w32_fashion.py; the
# image embedding is the mean of the backbone's feature map.
_base_ = ['../mdc/resnet18-w32_fashion.py']

model = dict(
    _delete_=True,
    type='ContrastiveImageText',
    data_preprocessor={{_base_.data_preprocessor}},
    backbone={{_base_.backbone}},
    tokenizer={{_base_.caption_tokenizer}},
    max_length={{_base_.max_caption_length}},
    image_dims={{_base_.backbone_dims}},
    embed_dims=256,
    text_dims=256,
    text_layers=2,
    text_heads=4,
    pool='mean',
)
