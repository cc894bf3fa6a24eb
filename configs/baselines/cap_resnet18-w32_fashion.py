# Cap baseline on Fashion scenes: the same backbone, data, budget and seed
# handling as configs/mdc/resnet18-w32_fashion.py, autoregressive decoder.
_base_ = ['../mdc/resnet18-w32_fashion.py']

model = dict(
    head=dict(
        _delete_=True,
        type='AutoregressiveCaptionHead',
        tokenizer={{_base_.caption_tokenizer}},
        max_length={{_base_.max_caption_length}},
        image_dims={{_base_.backbone_dims}},
        embed_dims=256,
        num_layers=2,
        num_heads=4,
        parallel_prob=0.0,
    ))
