"""The contrastive baseline: InfoNCE learns, features are unit vectors,
retrieval never returns the image's own references."""
import numpy as np
import pytest
import torch
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

import mdc_plugin  # noqa: F401

L = 12


def build():
    return MODELS.build(dict(
        type='ContrastiveImageText',
        backbone=dict(type='VisionTransformer',
                      arch=dict(embed_dims=32, num_layers=1, num_heads=4,
                                feedforward_channels=64),
                      img_size=32, patch_size=8, out_type='raw'),
        tokenizer=dict(type='ShapesTokenizer'), max_length=L, image_dims=32,
        embed_dims=16, text_dims=32, text_layers=1, text_heads=4))


CAPTIONS = ['a large red circle left of a small blue square',
            'a small green triangle above a large yellow circle',
            'there is a white cross and a purple square',
            'a small red square below a large green cross']


def samples(model):
    out = []
    for text in CAPTIONS:
        ids, _ = model.tokenizer.encode_padded(text, L)
        out.append(DataSample(caption_ids=ids, gt_caption=[text]))
    return out


def test_infonce_learns_and_features_are_normalised():
    torch.manual_seed(0)
    model = build()
    images = torch.randn(4, 3, 32, 32)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = model(images, samples(model), mode='loss')
        opt.zero_grad()
        loss['loss'].backward()
        opt.step()
        first = first if first is not None else loss['loss'].item()
    assert loss['loss'].item() < 0.5 * first and loss['i2t_acc'] == 1
    model.eval()
    feats = model.encode_text(CAPTIONS)
    assert torch.allclose(feats.norm(dim=-1), torch.ones(4), atol=1e-5)
    assert torch.allclose(model.encode_image(images).norm(dim=-1),
                          torch.ones(4), atol=1e-5)


def test_retrieval_leaves_out_own_references():
    model = build().eval()
    out = model.predict(torch.randn(4, 3, 32, 32), samples(model))
    for sample, own in zip(out, CAPTIONS):
        assert sample.pred_caption in CAPTIONS
        assert sample.pred_caption != own
        assert np.isfinite(sample.image_text_score)


def test_batch_of_one_retrieves_from_the_previous_batch():
    model = build().eval()
    lone = samples(model)[:1]
    with pytest.raises(ValueError, match='batch of one image'):
        model.predict(torch.randn(1, 3, 32, 32), lone)
    model.predict(torch.randn(3, 3, 32, 32), samples(model)[1:])
    out = model.predict(torch.randn(1, 3, 32, 32), samples(model)[:1])
    # never its own reference: only the previous batch's captions
    assert out[0].pred_caption in CAPTIONS[1:]
    assert np.isfinite(out[0].image_text_score)
