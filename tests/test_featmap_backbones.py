"""Any MMPretrain backbone composes with the caption heads: token sequences,
feature maps and multi-stage outputs each train one step and caption."""
import pytest
import torch
from mmengine.registry import init_default_scope
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample

from mdc_plugin.models.captioners.utils import (image_tokens_from_backbone,
                                                sincos_pos_embed_2d)
from mdc_plugin.models.tokenizers import ShapesTokenizer

init_default_scope('mmpretrain')
TINY_VIT = dict(embed_dims=32, num_layers=1, num_heads=2,
                feedforward_channels=64)
BACKBONES = {
    'vit_raw': (dict(type='VisionTransformer', arch=TINY_VIT, img_size=64,
                     patch_size=16, out_type='raw'), 32),
    'vit_featmap': (dict(type='VisionTransformer', arch=TINY_VIT,
                         img_size=64, patch_size=16, out_type='featmap'), 32),
    'deit3': (dict(type='DeiT3', arch=TINY_VIT, img_size=64, patch_size=16,
                   out_type='featmap'), 32),
    'swin': (dict(type='SwinTransformer', img_size=64, window_size=4,
                  arch=dict(embed_dims=16, depths=[1, 1], num_heads=[1, 2]),
                  out_indices=(1, )), 32),
    'convnext': (dict(type='ConvNeXt', arch=dict(depths=[1, 1],
                                                 channels=[16, 32]),
                      out_indices=(1, ), gap_before_final_norm=False), 32),
    'resnet': (dict(type='ResNet', depth=18, stem_channels=16,
                    base_channels=16, out_indices=(3, )), 128),
}
CAPTIONS = ['a red circle left of a blue square', 'a small green triangle']


def samples(tok, max_length=16):
    out = []
    for text in CAPTIONS:
        ids, _ = tok.encode_padded(text, max_length)
        sample = DataSample()
        sample.set_field(ids, 'caption_ids', field_type='data')
        out.append(sample)
    return out


def captioner(backbone: dict, dims: int, **kwargs):
    return MODELS.build(dict(
        type='ImageCaptioner', backbone=backbone,
        head=dict(type='MaskedDiffusionCaptionHead',
                  tokenizer=dict(type='ShapesTokenizer'), max_length=16,
                  image_dims=dims, embed_dims=32, num_layers=1, num_heads=2,
                  sampler=dict(steps=2)), **kwargs))


@pytest.mark.parametrize('name', sorted(BACKBONES))
def test_backbone_trains_one_step_and_captions(name):
    torch.manual_seed(0)
    cfg, dims = BACKBONES[name]
    model = captioner(cfg, dims)
    inputs = torch.randn(2, 3, 64, 64)
    losses = model(inputs, samples(ShapesTokenizer()), mode='loss')
    loss = sum(v for k, v in losses.items() if k.startswith('loss'))
    loss.backward()
    grads = [p.grad for p in model.backbone.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in grads), name
    model.eval()
    preds = model(inputs, mode='predict')
    assert len(preds) == 2 and all(isinstance(p.pred_caption, str)
                                   for p in preds)


def test_multi_stage_output_picks_the_configured_stage():
    cfg = dict(type='ResNet', depth=18, stem_channels=16, base_channels=16,
               out_indices=(2, 3))
    model = captioner(cfg, 64, backbone_stage=0)
    tokens = model.extract_feat(torch.randn(2, 3, 64, 64))
    assert tokens.shape == (2, 16, 64)  # stage 2: 64 channels at 4 x 4
    with pytest.raises(ValueError, match='backbone_stage=5'):
        captioner(cfg, 64, backbone_stage=5).extract_feat(
            torch.randn(1, 3, 64, 64))


def test_feature_maps_flatten_row_major_with_position_codes():
    fmap = torch.arange(2 * 8 * 2 * 3, dtype=torch.float).reshape(2, 8, 2, 3)
    plain = image_tokens_from_backbone((fmap, ), 'X')
    assert plain.shape == (2, 6, 8)
    assert torch.equal(plain[1, 4], fmap[1, :, 1, 1])  # row 1, column 1
    coded = image_tokens_from_backbone(fmap, 'X', pos_embed='sincos')
    assert torch.allclose(coded - plain, sincos_pos_embed_2d(2, 3, 8)[None],
                          atol=1e-4)
    codes = sincos_pos_embed_2d(2, 3, 8)
    assert len({tuple(c.tolist()) for c in codes}) == 6  # distinct places
    assert image_tokens_from_backbone(torch.ones(2, 5), 'X').shape == \
        (2, 1, 5)
    with pytest.raises(ValueError, match=r'returned \(2, 3, 4, 5, 6\)'):
        image_tokens_from_backbone(torch.ones(2, 3, 4, 5, 6), 'X')
