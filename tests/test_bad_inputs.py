"""Bad-input catalogue (docs/bad_inputs.md): the cases not already covered
by the component tests. Each case expects a clear error naming the problem
(file, entry, field) or a documented handling."""
import json
import os.path as osp
import sys

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, MODELS, TRANSFORMS
from PIL import Image

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))

import mdc_plugin  # noqa: E402,F401
from fixtures_data import make_cub, write_image  # noqa: E402
from mdc_plugin.datasets.base_caption import CorruptEntryError  # noqa: E402
from mdc_plugin.datasets.transforms.load_caption_image import \
    ImageLoadError  # noqa: E402

init_default_scope('mmpretrain')


def load_image(**kwargs):
    return TRANSFORMS.build(dict(type='LoadCaptionImage', **kwargs))


# ------------------------------------------------------------------ images
@pytest.mark.parametrize('shape', [(0, 0, 3), (5, 0, 3), (0, 7)])
def test_zero_size_in_memory_image(shape):
    """Inferencers hand arrays, not files: a 0-pixel one is refused."""
    with pytest.raises(ImageLoadError, match='zero size'):
        load_image()(dict(img=np.zeros(shape, np.uint8)))


@pytest.mark.parametrize('mode, suffix', [('CMYK', '.jpg'), ('P', '.png'),
                                          ('1', '.png'), ('LA', '.png')])
def test_other_image_modes_become_3_channel_uint8(tmp_path, mode, suffix):
    path = str(tmp_path / f'img{suffix}')
    Image.new(mode, (5, 4)).save(path)
    img = load_image()(dict(img_path=path))['img']
    assert img.shape == (4, 5, 3) and img.dtype == np.uint8


def test_one_pixel_image_loads(tmp_path):
    path = write_image(tmp_path / 'px.png', (1, 1))
    assert load_image()(dict(img_path=path))['img'].shape == (1, 1, 3)


@pytest.mark.parametrize('make', ['directory', 'float_tiff'])
def test_undecodable_inputs_name_the_path(tmp_path, make):
    if make == 'directory':
        path = tmp_path / 'looks_like.png'
        path.mkdir()
    else:
        path = tmp_path / 'float.tiff'
        Image.new('F', (4, 4)).save(path)
    with pytest.raises(ImageLoadError, match=str(path)):
        load_image()(dict(img_path=str(path)))
    assert load_image(on_error='skip')(dict(img_path=str(path))) is None


# -------------------------------------------------------------- annotations
def coco_from(tmp_path, annotations, raw=None, **kwargs):
    path = tmp_path / 'ann.json'
    path.write_text(raw if raw is not None else json.dumps(
        annotations, ensure_ascii=False), encoding='utf-8')
    return DATASETS.build(dict(type='COCOKarpathyCaption',
                               data_root=str(tmp_path), ann_file='ann.json',
                               data_prefix=dict(img_path='')))


@pytest.mark.parametrize('raw, match', [
    ('[{"image": "a.jpg", "capt', 'is not valid JSON'),
    ('', 'is not valid JSON'),
    ('[]', 'no usable samples'),
    ('3', 'unknown annotation format'),
])
def test_broken_annotation_files(tmp_path, raw, match):
    with pytest.raises(ValueError, match=match) as err:
        coco_from(tmp_path, None, raw=raw)
    assert 'ann.json' in str(err.value)


@pytest.mark.parametrize('annotations, match', [
    ([dict(image=5, caption='a')], r"entry \[0\]: field 'image' must be"),
    ([dict(image=None, caption='a')], r"field 'image' must be a non-empty"),
    ([dict(image='a.jpg', image_id=[1], caption='a')],
     r'entry \[0\].*image id must be an int or a str, got list'),
    ([dict(image='a.jpg', caption=3)], 'captions must be a str'),
    ([dict(image='a.jpg', caption=['ok', None])], 'caption None is not a str'),
    (dict(images=[dict(filename=None, sentences=[dict(raw='a')])]),
     r"images\[0\]: field 'filename' must be"),
    (dict(images=[dict(filename='a.jpg', sentences=[dict(tokens=5)])]),
     r'images\[0\].*"tokens" must be a list of str'),
    (dict(images=[dict(filename='a.jpg', cocoid=1.5,
                       sentences=[dict(raw='a')])]),
     'image id must be an int or a str, got float'),
    (dict(images=['a.jpg']), r'images\[0\]: expected a dict'),
])
def test_wrong_typed_annotation_fields_name_the_entry(tmp_path, annotations,
                                                      match):
    with pytest.raises(CorruptEntryError, match=match):
        coco_from(tmp_path, annotations)


def test_duplicate_image_ids_in_karpathy_file(tmp_path):
    images = [dict(filename=f'{n}.jpg', cocoid=7, sentences=[dict(raw=n)])
              for n in ('a', 'b')]
    with pytest.raises(ValueError, match=r'duplicate image_id 7.*a\.jpg.*'
                       r'b\.jpg'):
        coco_from(tmp_path, dict(images=images))


def test_unicode_captions_and_file_names_load(tmp_path):
    caption = 'Un café à Zürich — 猫が 🐱 sits'
    ds = coco_from(tmp_path, [dict(image='café/猫.jpg', caption=caption)])
    info = ds.get_data_info(0)
    assert info['gt_caption'] == [caption]
    assert info['img_path'].endswith('café/猫.jpg')
    assert info['image_id'] == '猫'


def test_cub_caption_file_not_utf8_raise_or_skip(tmp_path):
    info = make_cub(tmp_path)
    img_id = next(i for i, c in info['image_classes'].items()
                  if c in info['trainval_classes'])
    rel = info['image_paths'][img_id]
    cap = osp.join(info['data_root'], 'text_c10',
                   osp.splitext(rel)[0] + '.txt')
    with open(cap, 'wb') as f:
        f.write('a bird\n'.encode('utf-8') + b'\xff\xfe caf\xe9\n')
    build = dict(type='CUBCaption', data_root=info['data_root'],
                 split='trainval')
    with pytest.raises(CorruptEntryError, match=r'not UTF-8 text.*\.txt'):
        DATASETS.build(build)
    ds = DATASETS.build(dict(build, on_corrupt='skip'))
    assert ds.num_skipped == 1
    assert img_id not in {ds.get_data_info(i)['image_id']
                          for i in range(len(ds))}


# ---------------------------------------------------------------- captions
def tokenize(tokenizer, caption, max_length=16):
    t = TRANSFORMS.build(dict(type='TokenizeCaption', max_length=max_length,
                              tokenizer=dict(type=tokenizer)))
    return t(dict(gt_caption=[caption], img_path='x.jpg'))['caption_ids']


def test_unicode_caption_round_trips_through_clip_bpe():
    from mdc_plugin.models.tokenizers import build_caption_tokenizer
    tok = build_caption_tokenizer(dict(type='CLIPBPETokenizer'))
    caption = 'un café à zürich 🐱 猫'
    ids = tokenize('CLIPBPETokenizer', caption, max_length=32)
    assert tok.batch_decode([ids.tolist()]) == [caption]


def test_unicode_caption_with_word_level_tokenizer_maps_to_unk():
    """Documented: the shapes tokenizer encodes out-of-vocabulary words
    (any non-grammar word, unicode included) as its unknown id."""
    from mdc_plugin.models.tokenizers import build_caption_tokenizer
    tok = build_caption_tokenizer(dict(type='ShapesTokenizer'))
    ids = tokenize('ShapesTokenizer', 'a red circle café 🐱').tolist()
    words = ids[1:ids.index(tok.eos_id)]
    unk = tok.encode('café')
    assert len(unk) == 1 and unk[0] not in tok.special_ids
    assert tok.encode('🐱') == tok.encode('\u200b') == unk
    assert words == tok.encode('a red circle') + unk + unk


@pytest.mark.parametrize('caption', ['\u00a0\u3000', ' \t\n'])
def test_unicode_whitespace_only_caption_is_empty(caption):
    with pytest.raises(ValueError, match=r'(empty caption|no tokens).*x\.jpg'):
        tokenize('ShapesTokenizer', caption)


# ------------------------------------------------------------------ configs
def test_unknown_component_name_is_named():
    with pytest.raises(KeyError, match='NoSuchCaptionHead'):
        MODELS.build(dict(type='NoSuchCaptionHead'))


# -------------------------------------------------------------- checkpoints
@pytest.mark.parametrize('cut', [0, 100, 0.5])
def test_truncated_checkpoint_is_named(tmp_path, cut):
    import torch
    from mmengine.runner import save_checkpoint

    from mdc_plugin.utils import load_checkpoint_safely
    path = tmp_path / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.ones(64, 64)}}, str(path))
    data = path.read_bytes()
    path.write_bytes(data[:int(cut * len(data)) if cut < 1 else cut])
    with pytest.raises(RuntimeError, match='truncated') as err:
        load_checkpoint_safely(str(path))
    assert str(path) in str(err.value)
