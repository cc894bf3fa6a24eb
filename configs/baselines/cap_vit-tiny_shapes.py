# Cap baseline: the same backbone, data and schedule as
# configs/mdc/vit-tiny_shapes.py with an autoregressive (causal) decoder.
# Set model.head.parallel_prob=0.75 for CapPa's parallel-prediction mix.
_base_ = ['../mdc/vit-tiny_shapes.py']

model = dict(
    head=dict(
        _delete_=True,
        type='AutoregressiveCaptionHead',
        tokenizer={{_base_.caption_tokenizer}},
        max_length={{_base_.max_caption_length}},
        image_dims={{_base_.backbone_dims}},
        embed_dims=192,
        num_layers=2,
        num_heads=3,
        parallel_prob=0.0,
    ))
