"""TokenizeCaption and LoadCaptionImage with real tokenizers and files."""
import random

import numpy as np
import pytest
from mmpretrain.registry import TRANSFORMS
from PIL import Image

from fixtures_data import write_image
from mdc_plugin.datasets.transforms import ImageLoadError
from mdc_plugin.models.tokenizers import ShapesTokenizer

SHAPES = dict(type='ShapesTokenizer')


def tokenize(**kwargs):
    cfg = dict(type='TokenizeCaption', tokenizer=SHAPES, max_length=10)
    cfg.update(kwargs)
    return TRANSFORMS.build(cfg)


# ----------------------------------------------------------- TokenizeCaption
def test_layout_bos_content_eos_pad():
    t = tokenize()
    tok = t.tokenizer
    refs = ['a red circle above a blue square']
    out = t(dict(gt_caption=list(refs), img_path='x.png'))
    ids = out['caption_ids']
    assert ids.dtype == np.int64 and ids.shape == (10, )
    content = tok.encode(refs[0])
    assert ids.tolist() == [tok.bos_id, *content, tok.eos_id] + \
        [tok.pad_id] * (10 - 2 - len(content))
    assert out['gt_caption'] == refs  # references untouched
    assert tok.decode(ids) == refs[0]


def test_str_caption_and_custom_keys():
    t = tokenize(caption_key='text', out_key='ids', max_length=5)
    out = t(dict(text='a red circle'))
    assert out['text'] == 'a red circle'
    assert t.tokenizer.decode(out['ids']) == 'a red circle'


def test_truncation_keeps_bos_eos_and_is_counted(mm_log_messages):
    t = tokenize(max_length=5, log_interval=3)
    tok = t.tokenizer
    long_cap = 'a large red circle to the left of a small blue square'
    for i in range(4):
        ids = t(dict(gt_caption=long_cap, image_id=f'img{i}'))['caption_ids']
        assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
        assert tok.decode(ids) == 'a large red'
    t(dict(gt_caption='a red circle', image_id='short'))  # fits exactly
    assert (t.num_truncated, t.num_seen) == (4, 5)
    logged = [m for m in mm_log_messages if 'truncated' in m]
    # the first truncation, then every log_interval-th one
    assert len(logged) == 2
    assert "image_id='img0'" in logged[0] and '1 of 1' in logged[0]
    assert "image_id='img2'" in logged[1] and '3 of 3' in logged[1]


@pytest.mark.parametrize('caption', ['', '   \n', [], ['ok', '  ']])
def test_empty_caption_names_sample(caption):
    t = tokenize(random_pick=False)
    if isinstance(caption, list) and caption:
        caption = caption[::-1]  # the blank one comes first
    with pytest.raises(ValueError, match='bad.png'):
        t(dict(gt_caption=caption, img_path='bad.png', image_id=7))


def test_random_pick_is_uniform_and_first_without_it():
    refs = ['a red circle', 'a blue square', 'a green cross', 'a white one']
    tok = ShapesTokenizer()
    expect = {tuple(tok.encode(r)): r for r in refs}
    t = tokenize(tokenizer=tok)
    random.seed(0)
    counts = dict.fromkeys(refs, 0)
    n = 2000
    for _ in range(n):
        ids = t(dict(gt_caption=refs))['caption_ids']
        counts[expect[tuple(tok.strip_specials(ids))]] += 1
    for r in refs:  # 4-sigma band around n/4
        assert abs(counts[r] - n / 4) < 4 * np.sqrt(n * 0.25 * 0.75), counts
    t = tokenize(tokenizer=tok, random_pick=False)
    for _ in range(20):
        ids = t(dict(gt_caption=refs))['caption_ids']
        assert tok.decode(ids) == refs[0]


def test_max_length_too_small():
    with pytest.raises(ValueError, match='max_length'):
        tokenize(max_length=2)


# ---------------------------------------------------------- LoadCaptionImage
def load(on_error='raise', **kwargs):
    return TRANSFORMS.build(
        dict(type='LoadCaptionImage', on_error=on_error, **kwargs))


def test_rgb_is_bgr_uint8(tmp_path):
    path = str(tmp_path / 'rgb.png')
    rgb = np.zeros((6, 8, 3), np.uint8)
    rgb[..., 0] = 200  # red
    Image.fromarray(rgb).save(path)
    out = load()(dict(img_path=path))
    img = out['img']
    assert img.shape == (6, 8, 3) and img.dtype == np.uint8
    assert (img[..., 2] == 200).all() and (img[..., :2] == 0).all()  # BGR
    assert out['img_shape'] == out['ori_shape'] == (6, 8)
    img_rgb = load(to_rgb=True)(dict(img_path=path))['img']
    assert (img_rgb[..., 0] == 200).all()


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'I;16'])
def test_gray_rgba_16bit_become_3_channel_uint8(tmp_path, mode):
    path = write_image(tmp_path / f'{mode.replace(";", "")}.png', (9, 7),
                       mode=mode, seed=3)
    img = load()(dict(img_path=path))['img']
    assert img.shape == (7, 9, 3) and img.dtype == np.uint8
    src = np.asarray(Image.open(path))
    if mode == 'L':
        assert (img == src[..., None]).all()
    elif mode == 'RGBA':
        assert (img == src[..., 2::-1]).all()  # alpha dropped, BGR order
    else:
        expect = (src.astype(np.int64) >> 8)
        assert np.abs(img[..., 0].astype(int) - expect).max() <= 1
        assert img.std() > 10  # not clipped to a constant


def _truncated(tmp_path, suffix):
    path = write_image(tmp_path / f'full{suffix}', (40, 30), seed=1)
    data = open(path, 'rb').read()
    bad = tmp_path / f'truncated{suffix}'
    bad.write_bytes(data[:len(data) // 2])
    return str(bad)


def bad_files(tmp_path):
    zero = tmp_path / 'zero.jpg'
    zero.write_bytes(b'')
    garbage = tmp_path / 'garbage.png'
    garbage.write_bytes(b'this is not an image')
    return {
        'missing': (str(tmp_path / 'missing.jpg'), FileNotFoundError),
        'zero': (str(zero), ImageLoadError),
        'garbage': (str(garbage), ImageLoadError),
        'trunc_png': (_truncated(tmp_path, '.png'), ImageLoadError),
        'trunc_jpg': (_truncated(tmp_path, '.jpg'), ImageLoadError),
    }


@pytest.mark.parametrize(
    'case', ['missing', 'zero', 'garbage', 'trunc_png', 'trunc_jpg'])
def test_bad_file_raise_names_path(tmp_path, case):
    path, error = bad_files(tmp_path)[case]
    with pytest.raises(error) as err:
        load('raise')(dict(img_path=path))
    assert path in str(err.value)


def test_bad_files_skip_returns_none_and_counts(tmp_path, mm_log_messages):
    t = load('skip')
    files = bad_files(tmp_path)
    for path, _ in files.values():
        assert t(dict(img_path=path)) is None
    good = write_image(tmp_path / 'good.jpg')
    assert t(dict(img_path=good))['img'].shape == (24, 32, 3)
    assert t.num_skipped == len(files)
    skipped = [m for m in mm_log_messages if 'skipped' in m]
    assert len(skipped) == len(files)
    assert files['zero'][0] in skipped[1]
    assert f'{len(files)} image(s) skipped' in skipped[-1]


def test_on_error_validated():
    with pytest.raises(ValueError, match='on_error'):
        load('ignore')
