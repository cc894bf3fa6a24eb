"""ARO matching data sets (VG-Relation / VG-Attribution, COCO / Flickr30k
Order) and ``CropToBox``, on tiny files written in ARO's formats, built
through the registry with the real MMPretrain pipeline."""
import json
import os.path as osp
import re
import sys
import types

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS, TRANSFORMS
from PIL import Image

from mdc_plugin.datasets import (ARO_PERTURBATIONS, CorruptEntryError,
                                 SpacyModelMissingError, aro_pre_caption)

KEYS = ['caption_options', 'true_index', 'group', 'sample_id']
PIPELINE = [dict(type='LoadCaptionImage'), dict(type='CropToBox'),
            dict(type='PackInputs', algorithm_keys=KEYS)]
TRIGRAMS = ('shuffle_within_trigrams', 'shuffle_trigrams')


@pytest.fixture(autouse=True, scope='module')
def _scope():
    init_default_scope('mmpretrain')


def write_image(path: str, width: int = 40, height: int = 30,
                seed: int = 0) -> np.ndarray:
    """A random RGB PNG (or JPEG, by extension); returns its RGB pixels."""
    pixels = np.random.default_rng(seed).integers(
        0, 256, (height, width, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def write_json(path: str, obj) -> str:
    with open(path, 'w') as f:
        json.dump(obj, f)
    return path


def vg_entry(image: str, **over) -> dict:
    """One entry of ARO's visual_genome_relation.json."""
    entry = dict(image_id='2345', relation_name='on', subj='cup',
                 obj='table', bbox_x=5, bbox_y=4, bbox_w=20, bbox_h=12,
                 true_caption='the cup is on the table',
                 false_caption='the table is on the cup', image_path=image)
    entry.update(over)
    return entry


@pytest.fixture
def vg_root(tmp_path):
    """data_root with images/{1,2}.png and visual_genome_relation.json."""
    (tmp_path / 'images').mkdir()
    write_image(str(tmp_path / 'images' / '1.png'), seed=1)
    write_image(str(tmp_path / 'images' / '2.jpg'), 50, 60, seed=2)
    write_json(str(tmp_path / 'visual_genome_relation.json'), [
        vg_entry('1.png'),
        vg_entry('2.jpg', relation_name='behind', bbox_x=0, bbox_y=10,
                 bbox_w=30.4, bbox_h=25.6, true_caption='a dog behind a man',
                 false_caption='a man behind a dog'),
    ])
    return tmp_path


def build(type_: str, root, **kwargs):
    kwargs.setdefault('pipeline', PIPELINE)
    # mmengine's serialization runs gc.collect() (0.4 s a build); two
    # tests keep it on, to check the data infos serialize
    kwargs.setdefault('serialize_data', False)
    return DATASETS.build(dict(type=type_, data_root=str(root), **kwargs))


def test_vg_relation_parses_and_packs(vg_root):
    ds = build('AROVGRelation', vg_root, serialize_data=True)
    assert len(ds) == 2 and ds.metainfo['benchmark'] == 'VG_Relation'
    info = ds.get_data_info(1)
    assert info['img_path'] == osp.join(str(vg_root), 'images', '2.jpg')
    assert info['caption_options'] == ['a man behind a dog',
                                       'a dog behind a man']
    assert info['true_index'] == 1 and info['group'] == 'behind'
    assert info['sample_id'] == \
        'visual_genome_relation.json[1] (image 2.jpg)'
    assert info['crop_bbox'] == (0, 10, 30.4, 25.6)
    packed = ds[1]
    sample = packed['data_samples']
    for key in KEYS:
        assert sample.get(key) == info[key], key
    # PIL-style rounding: x 0..round(30.4)=30, y 10..round(35.6)=36
    assert tuple(packed['inputs'].shape) == (3, 26, 30)
    assert sample.img_shape == (26, 30) and sample.ori_shape == (60, 50)


def test_vg_attribution_group_joins_attributes(tmp_path):
    (tmp_path / 'images').mkdir()
    write_image(str(tmp_path / 'images' / '7.png'))
    entry = vg_entry('7.png', true_caption='the white dog and the black cat',
                     false_caption='the black dog and the white cat',
                     attributes=['white', 'black'])
    del entry['relation_name']
    write_json(str(tmp_path / 'visual_genome_attribution.json'), [entry])
    ds = build('AROVGAttribution', tmp_path)
    info = ds.get_data_info(0)
    assert info['group'] == 'white_black' and info['true_index'] == 1
    assert info['caption_options'][1] == 'the white dog and the black cat'
    assert ds[0]['data_samples'].group == 'white_black'


def test_crop_really_crops_pixels(tmp_path):
    (tmp_path / 'images').mkdir()
    rgb = write_image(str(tmp_path / 'images' / 'a.png'), 40, 30)
    write_json(str(tmp_path / 'visual_genome_relation.json'), [
        vg_entry('a.png', bbox_x=7, bbox_y=3, bbox_w=11, bbox_h=9),
        # runs past the right and bottom edges: clipped
        vg_entry('a.png', bbox_x=35, bbox_y=20, bbox_w=50, bbox_h=50),
        vg_entry('a.png', bbox_x=2.5, bbox_y=1.5, bbox_w=3, bbox_h=2)])
    ds = build('AROVGRelation', tmp_path)
    bgr = rgb[:, :, ::-1]
    expected = [bgr[3:12, 7:18], bgr[20:30, 35:40],
                bgr[2:4, 2:6]]  # round(2.5)=2, round(5.5)=6, round(1.5)=2
    for i, want in enumerate(expected):
        got = ds[i]['inputs'].permute(1, 2, 0).numpy()
        np.testing.assert_array_equal(got, want)


def test_crop_to_box_noop_and_empty_box():
    crop = TRANSFORMS.build(dict(type='CropToBox'))
    img = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    results = crop(dict(img=img, img_shape=(4, 5)))
    assert results['img'] is img and results['img_shape'] == (4, 5)
    with pytest.raises(ValueError, match=r'vg\.json\[3\].*empty'):
        crop(dict(img=img, crop_bbox=(10, 0, 5, 5), sample_id='vg.json[3]'))
    with pytest.raises(ValueError, match='four finite numbers'):
        crop(dict(img=img, crop_bbox=(0, 0, 5), sample_id='x'))


# -- COCO / Flickr30k Order -------------------------------------------------

CAPTIONS = [
    ['A man riding a red bicycle down a busy city street.',
     'Someone on a bike in traffic near tall buildings today'],
    ['Two dogs play with a ball on the green grass!',
     'dogs dogs dogs'],  # cannot change under shuffle_trigrams
]


@pytest.fixture
def coco_root(tmp_path):
    (tmp_path / 'val2014').mkdir()
    entries = []
    for i, caps in enumerate(CAPTIONS):
        name = f'val2014/COCO_val2014_{i:012d}.jpg'
        write_image(str(tmp_path / name), seed=i)
        entries.append(dict(image=name, caption=caps, image_id=i))
    write_json(str(tmp_path / 'coco_karpathy_test.json'), entries)
    return tmp_path


def test_pre_caption_matches_aro():
    assert aro_pre_caption(' A Dog.  Running!(fast) ~ "here"\n') == \
        'a dog running fast here'
    assert aro_pre_caption("A man's hat, red-ish?") == "a man's hat, red-ish?"
    assert aro_pre_caption('one two three four', max_words=2) == 'one two'
    assert aro_pre_caption('...') == ''


def test_order_cases_trigram_shuffles(coco_root):
    ds = build('AROCOCOOrder', coco_root, perturbations=TRIGRAMS,
               serialize_data=True)
    assert len(ds) == 4 and ds.metainfo['benchmark'] == 'COCO_Order'
    info = ds.get_data_info(0)
    true = aro_pre_caption(CAPTIONS[0][0])
    assert info['caption_options'][0] == true
    assert info['true_index'] == 0 and info['group'] == 'COCO_Order'
    assert info['sample_id'] == ('coco_karpathy_test.json[0] caption 0 '
                                 '(image val2014/COCO_val2014_000000000000'
                                 '.jpg)')
    assert info['option_names'] == ['original', *TRIGRAMS]
    assert info['img_path'] == osp.join(
        str(coco_root), 'val2014/COCO_val2014_000000000000.jpg')
    for i in range(len(ds)):
        options = ds.get_data_info(i)['caption_options']
        assert len(options) == 1 + len(TRIGRAMS)
        words = options[0].split(' ')
        within, across = (o.split(' ') for o in options[1:])
        assert sorted(within) == sorted(words)
        assert sorted(across) == sorted(words)
        # within: each trigram keeps its words; across: trigrams intact
        for k in range(0, len(words), 3):
            assert sorted(within[k:k + 3]) == sorted(words[k:k + 3])
        blocks = [tuple(words[k:k + 3]) for k in range(0, len(words), 3)]
        got = [tuple(across[k:k + 3]) for k in range(0, len(words), 3)]
        if len(words) % 3 == 0:
            assert sorted(got) == sorted(blocks)
        if options[0] != 'dogs dogs dogs':
            assert within != words and across != words
        else:
            assert options[1:] == [options[0]] * 2
    packed = ds[0]['data_samples']
    assert packed.caption_options == info['caption_options']
    assert packed.true_index == 0 and packed.group == 'COCO_Order'


def test_order_seeded_reproducible(coco_root):
    def options(**kw):
        ds = build('AROCOCOOrder', coco_root, perturbations=TRIGRAMS, **kw)
        return [ds.get_data_info(i)['caption_options']
                for i in range(len(ds))]

    assert options(seed=0) == options(seed=0)
    assert options(seed=0) != options(seed=1)
    # each perturbation has its own stream: a subset draws the same shuffle
    one = build('AROCOCOOrder', coco_root,
                perturbations=['shuffle_trigrams'])
    assert [one.get_data_info(i)['caption_options'][1] for i in range(4)] \
        == [o[2] for o in options(seed=0)]


def test_order_max_words_and_flickr(tmp_path):
    (tmp_path / 'flickr30k-images').mkdir()
    write_image(str(tmp_path / 'flickr30k-images' / '1007129816.jpg'))
    write_json(str(tmp_path / 'flickr30k_test.json'), [dict(
        image='flickr30k-images/1007129816.jpg',
        caption=['One two three four five six seven eight.'])])
    ds = build('AROFlickr30kOrder', tmp_path, perturbations=TRIGRAMS,
               max_words=5)
    info = ds.get_data_info(0)
    assert info['caption_options'][0] == 'one two three four five'
    assert info['group'] == 'Flickr30k_Order'
    assert all(sorted(o.split()) == sorted('one two three four five'.split())
               for o in info['caption_options'])


def test_order_precomputed_format(coco_root):
    write_json(str(coco_root / 'cases.json'), [
        dict(image='val2014/COCO_val2014_000000000000.jpg',
             caption_options=['a man on a bike', 'a bike on a man',
                              'man a on bike a']),
        dict(image='val2014/COCO_val2014_000000000001.jpg',
             caption_options=['Two dogs.', 'dogs two.'])])
    # precomputed files need no spaCy, whatever perturbations say
    ds = build('AROCOCOOrder', coco_root, ann_file='cases.json')
    assert ds.precomputed and len(ds) == 2
    assert ds.get_data_info(0)['caption_options'] == [
        'a man on a bike', 'a bike on a man', 'man a on bike a']
    info = ds.get_data_info(1)
    assert info['caption_options'] == ['Two dogs.', 'dogs two.']
    assert info['true_index'] == 0 and info['group'] == 'COCO_Order'
    assert info['sample_id'] == \
        'cases.json[1] (image val2014/COCO_val2014_000000000001.jpg)'
    assert ds[1]['data_samples'].caption_options == ['Two dogs.', 'dogs two.']


def test_spacy_missing_is_refused(coco_root, monkeypatch):
    monkeypatch.setitem(sys.modules, 'spacy', None)  # import fails
    with pytest.raises(SpacyModelMissingError) as err:
        build('AROCOCOOrder', coco_root)
    msg = str(err.value)
    assert 'en_core_web_sm' in msg and 'pip install' in msg
    assert "('shuffle_within_trigrams', 'shuffle_trigrams')" in msg
    assert 'shuffle_nouns_and_adj' in msg


class _Token:

    def __init__(self, text, idx, tag):
        self.text, self.idx, self.tag_ = text, idx, tag
        self.is_punct = not text[0].isalnum()


class _FakeNLP:
    """spaCy stand-in: splits off "'s" and ",", tags from word lists."""
    NOUNS = {'man', 'bicycle', 'street', 'dogs', 'ball', 'grass', 'city',
             'bike', 'traffic', 'buildings', 'someone'}
    ADJS = {'red', 'busy', 'green', 'tall', 'two'}
    pipe_names = ['tok2vec', 'tagger', 'parser']

    def __init__(self):
        self.disabled = []

    def disable_pipe(self, name):
        self.disabled.append(name)

    def pipe(self, texts, batch_size=1):
        for text in texts:
            yield [_Token(m.group(), m.start(), self._tag(m.group()))
                   for m in re.finditer(r"'s|\w+|[^\w\s]", text)]

    def _tag(self, word):
        return 'NN' if word in self.NOUNS else \
            'JJ' if word in self.ADJS else 'DT'


def test_noun_adj_shuffles_with_spacy(coco_root, monkeypatch):
    nlp = _FakeNLP()
    fake = types.SimpleNamespace(load=lambda name: nlp)
    monkeypatch.setitem(sys.modules, 'spacy', fake)
    ds = build('AROCOCOOrder', coco_root)
    assert nlp.disabled == ['parser']
    info = ds.get_data_info(0)
    options = info['caption_options']
    assert len(options) == 1 + len(ARO_PERTURBATIONS)
    assert info['option_names'] == ['original', *ARO_PERTURBATIONS]
    words = options[0].split(' ')
    nouns_adj, allbut = options[1].split(' '), options[2].split(' ')
    kind = [nlp._tag(w.strip(',')) for w in words]
    for shuffled in (nouns_adj, allbut):
        assert sorted(shuffled) == sorted(words) and shuffled != words
    for tag in ('NN', 'JJ'):  # nouns / adjectives swap among themselves
        assert sorted(w for w, k in zip(nouns_adj, kind) if k == tag) == \
            sorted(w for w, k in zip(words, kind) if k == tag)
    assert [w for w, k in zip(nouns_adj, kind) if k == 'DT'] == \
        [w for w, k in zip(words, kind) if k == 'DT']
    assert [w for w, k in zip(allbut, kind) if k != 'DT'] == \
        [w for w, k in zip(words, kind) if k != 'DT']


def test_word_tags_align_split_tokens():
    from mdc_plugin.datasets.aro import word_tags
    assert word_tags(_FakeNLP(), ["the man's red bike, today"]) == \
        [['DT', 'NN', 'JJ', 'NN', 'DT']]


def test_unknown_perturbation_refused(coco_root):
    with pytest.raises(ValueError, match=r"unknown perturbation.*'shuffle_"
                       r"all'.*allowed.*shuffle_within_trigrams"):
        build('AROCOCOOrder', coco_root, perturbations=['shuffle_all'])


# -- bad inputs ---------------------------------------------------------------

def _vg_with(root, entries):
    write_json(str(root / 'visual_genome_relation.json'), entries)


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match='visual_genome_relation'):
        build('AROVGRelation', tmp_path)


def test_json_not_a_list(vg_root):
    write_json(str(vg_root / 'visual_genome_relation.json'),
               dict(images=[]))
    with pytest.raises(ValueError, match='visual_genome_relation.json must '
                       'hold a JSON list'):
        build('AROVGRelation', vg_root)


@pytest.mark.parametrize('key', ['true_caption', 'false_caption', 'bbox_w',
                                 'relation_name'])
def test_missing_key_names_entry(vg_root, key):
    bad = vg_entry('2.jpg')
    del bad[key]
    _vg_with(vg_root, [vg_entry('1.png'), bad])
    with pytest.raises(CorruptEntryError,
                       match=rf"relation\.json\[1\] \(image 2\.jpg\).*"
                       rf"missing field.*'{key}'"):
        build('AROVGRelation', vg_root)


@pytest.mark.parametrize('value, match', [
    ('', 'empty caption'), ('   ', 'empty caption'),
    (5, 'must be a str caption'), (None, 'must be a str caption')])
def test_bad_caption_names_entry(vg_root, value, match):
    _vg_with(vg_root, [vg_entry('1.png', false_caption=value)])
    with pytest.raises(CorruptEntryError,
                       match=rf"relation\.json\[0\] \(image 1\.png\).*"
                       rf"false_caption.*{match}"):
        build('AROVGRelation', vg_root)


def test_skip_counts_an_entry_once(vg_root):
    _vg_with(vg_root, [vg_entry('1.png', true_caption='', false_caption=' '),
                       vg_entry('2.jpg')])
    ds = build('AROVGRelation', vg_root, on_corrupt='skip')
    assert len(ds) == 1 and ds.num_skipped == 1
    assert 'relation.json[0] (image 1.png)' in ds.skipped_entries[0]


@pytest.mark.parametrize('box', [dict(bbox_w=0), dict(bbox_h=-3)])
def test_non_positive_box_names_entry(vg_root, box):
    _vg_with(vg_root, [vg_entry('1.png'), vg_entry('2.jpg', **box)])
    with pytest.raises(CorruptEntryError, match=r'\[1\] \(image 2\.jpg\).*'
                       'non-positive size'):
        build('AROVGRelation', vg_root)
    # skip: counted and dropped
    ds = build('AROVGRelation', vg_root, on_corrupt='skip')
    assert len(ds) == 1 and ds.num_skipped == 1


def test_non_numeric_box(vg_root):
    _vg_with(vg_root, [vg_entry('1.png', bbox_x='5')])
    with pytest.raises(CorruptEntryError, match=r"\[0\].*bbox_x='5'"):
        build('AROVGRelation', vg_root)


def test_missing_image_file(vg_root):
    _vg_with(vg_root, [vg_entry('1.png'), vg_entry('nope.jpg')])
    with pytest.raises(FileNotFoundError,
                       match=r'(?s)1 of 2 .*visual_genome_relation\.json\[1\] '
                       r'\(image nope\.jpg\)'):
        build('AROVGRelation', vg_root)
    assert len(build('AROVGRelation', vg_root, on_corrupt='skip')) == 1
    assert len(build('AROVGRelation', vg_root, check_images=False)) == 2


def test_missing_image_folder_is_said(tmp_path):
    _vg_with(tmp_path, [vg_entry('1.png')])
    with pytest.raises(FileNotFoundError, match='image folder .*images does '
                       'not exist'):
        build('AROVGRelation', tmp_path)


@pytest.mark.parametrize('entry, err, match', [
    (dict(image='val2014/COCO_val2014_000000000000.jpg'), CorruptEntryError,
     r"\[1\] \(image val2014/.*missing field.*'caption'"),
    (dict(image='val2014/COCO_val2014_000000000000.jpg', caption=['ok', '']),
     CorruptEntryError, r'\[1\] \(image val2014/.*caption\[1\].*empty'),
    (dict(image='val2014/COCO_val2014_000000000000.jpg', caption=['...']),
     CorruptEntryError, r'\[1\] \(image val2014/.*empty after normal'),
    (dict(image='val2014/COCO_val2014_000000000000.jpg', caption=[3]),
     CorruptEntryError, r'\[1\] \(image val2014/.*must be a str caption'),
    (dict(image='val2014/missing.jpg', caption=['a dog']), FileNotFoundError,
     r'(?s)coco_karpathy_test\.json\[1\] caption 0 \(image val2014/missing'),
])
def test_order_bad_entries(coco_root, entry, err, match):
    good = dict(image='val2014/COCO_val2014_000000000000.jpg',
                caption=['a dog'])
    write_json(str(coco_root / 'coco_karpathy_test.json'), [good, entry])
    with pytest.raises(err, match=match):
        build('AROCOCOOrder', coco_root, perturbations=TRIGRAMS)


def test_precomputed_bad_options(coco_root):
    write_json(str(coco_root / 'cases.json'), [dict(
        image='val2014/COCO_val2014_000000000000.jpg',
        caption_options=['only one'])])
    with pytest.raises(CorruptEntryError, match=r'cases\.json\[0\].*at least '
                       '2 captions'):
        build('AROCOCOOrder', coco_root, ann_file='cases.json')
