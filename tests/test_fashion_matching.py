"""The Fashion minimal-pair matching benchmark and the matching tool
(issue 22): each edit is what it says, the captions tell the truth about
their own scene, a blind model scores exactly 50%, and the tool runs real
configs end to end on the Fashion pairs and on ARO-format files."""
import json
import os.path as osp
import sys
from collections import Counter

import numpy as np
import pytest
from mmengine.registry import init_default_scope
from mmpretrain.registry import DATASETS

import mdc_plugin  # noqa: F401
from mdc_plugin.datasets.fashion import NAMES, read_split
from mdc_plugin.datasets.fashion.idx import locate_split
from mdc_plugin.datasets.fashion.matching import (NEGATIVE_TYPES,
                                                  items_by_class, make_pair)
from mdc_plugin.datasets.fashion.scenes import CELL_NAMES, compose_scene
from mdc_plugin.models.tokenizers import FashionTokenizer

pytestmark = pytest.mark.usefixtures('one_thread')
ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, osp.join(ROOT, 'tools', 'analysis'))
import image_text_matching as tool  # noqa: E402

#: noun (singular or plural) -> class
NOUN_CLASS = {form: label for label, names in enumerate(NAMES)
              for phrase in names for form in phrase}


@pytest.fixture(scope='module')
def pool():
    """The embedded test items (the val scenes' pool) and their classes."""
    images, labels = read_split(locate_split('embedded', 'test'), 'test')
    return images, labels, items_by_class(labels)


def pairs(pool, kind, count=60):
    _, labels, by_class = pool
    out = []
    for i in range(count):
        scene = compose_scene(np.random.default_rng([0, 1, i]), labels)
        pair = make_pair(np.random.default_rng([9, i]), scene, kind,
                         by_class)
        if pair is not None:
            out.append(pair)
    assert len(out) > count // 3
    return out


def read_positions(caption):
    """'a coat in the top left and two ...' -> {(class, cell), ...}."""
    out = set()
    for part in caption.replace(' and ', ', ').split(', '):
        words, cell = part.split(' in the ')
        noun = words.split(' ', 1)[1]
        out.add((NOUN_CLASS[noun], CELL_NAMES.index(cell)))
    return out


def layout(scene):
    return {(p.label, p.cell) for p in scene}


def relation_holds(scene, caption):
    """Whether the caption's lead relation 'a X WHERE a Y' is true in
    ``scene`` for some pair of items."""
    from mdc_plugin.datasets.fashion.scenes import where_phrase
    relation = caption.split(', with ')[0]
    for p in scene:
        for q in scene:
            if p.cell == q.cell:
                continue
            where = where_phrase(p.cell, q.cell)
            for first in NAMES[p.label]:
                for second in NAMES[q.label]:
                    for a in ('a ', 'an '):
                        for b in ('a ', 'an '):
                            if relation == (f'{a}{first[0]} {where} '
                                            f'{b}{second[0]}'):
                                return True
    return False


def test_swap_captions_are_true_of_one_scene_only(pool):
    for pair in pairs(pool, 'swap', 400):
        assert relation_holds(pair.scene_a, pair.caption_a)
        assert relation_holds(pair.scene_b, pair.caption_b)
        assert not relation_holds(pair.scene_a, pair.caption_b), pair
        assert not relation_holds(pair.scene_b, pair.caption_a), pair


def test_swap_exchanges_two_classes_and_keeps_the_words(pool):
    for pair in pairs(pool, 'swap'):
        a, b = layout(pair.scene_a), layout(pair.scene_b)
        moved = a ^ b
        assert len(moved) == 4  # two items, each in the other's cell
        split = FashionTokenizer.split
        assert sorted(split(pair.caption_a)) == sorted(split(pair.caption_b))
        assert pair.caption_a != pair.caption_b


@pytest.mark.parametrize('kind', ['move', 'replace'])
def test_positions_captions_tell_the_truth_about_their_scene(pool, kind):
    for pair in pairs(pool, kind):
        assert read_positions(pair.caption_a) == layout(pair.scene_a)
        assert read_positions(pair.caption_b) == layout(pair.scene_b)
        a, b = pair.scene_a, pair.scene_b
        assert len(a) == len(b)
        if kind == 'move':  # one item into a cell that was empty
            assert sorted(p.label for p in a) == sorted(p.label for p in b)
            assert len({p.cell for p in b} - {p.cell for p in a}) == 1
        else:  # one item becomes a class the scene did not have
            new = {p.label for p in b} - {p.label for p in a}
            assert len(new) == 1 and len(layout(a) ^ layout(b)) == 2


def test_count_changes_one_class_by_one(pool):
    for pair in pairs(pool, 'count'):
        before = Counter(p.label for p in pair.scene_a)
        after = Counter(p.label for p in pair.scene_b)
        diff = {k: after[k] - before[k] for k in before | after
                if after[k] != before[k]}
        assert len(diff) == 1 and abs(next(iter(diff.values()))) == 1


@pytest.mark.parametrize('kind', NEGATIVE_TYPES)
def test_captions_are_in_the_tokenizer_vocabulary(pool, kind):
    tok = FashionTokenizer()
    for pair in pairs(pool, kind, 30):
        for caption in (pair.caption_a, pair.caption_b):
            ids = tok.encode(caption)
            assert tok.unk_id not in ids and len(ids) <= 34, caption


def build_benchmark(**kwargs):
    init_default_scope('mmpretrain')
    return DATASETS.build(dict(type='FashionSceneMatching',
                               data_root='embedded', pipeline=[],
                               **kwargs))


def test_benchmark_cases_come_in_pairs_with_shared_captions():
    ds = build_benchmark(num_scenes=40, pairs_per_type=5)
    assert len(ds) == 2 * 5 * len(NEGATIVE_TYPES)
    for i in range(0, len(ds), 2):
        a, b = ds[i], ds[i + 1]
        assert a['caption_options'] == b['caption_options']
        assert (a['true_index'], b['true_index']) == (0, 1)
        assert a['group'] == b['group'] and a['img'].shape == (64, 64)
        assert not np.array_equal(a['img'], b['img'])
    again = build_benchmark(num_scenes=40, pairs_per_type=5)
    assert [again[i]['caption_options'] for i in range(len(ds))] == \
        [ds[i]['caption_options'] for i in range(len(ds))]
    with pytest.raises(ValueError, match='negative_types'):
        build_benchmark(negative_types=['shuffle'])


def run_tool(tmp_path, config, checkpoint, *extra):
    out = str(tmp_path / 'result.json')
    tool.main([config, checkpoint, '--benchmark', 'fashion',
               '--data-root', 'embedded', '--dataset-options',
               'pairs_per_type=6', 'num_scenes=60', '--batch-size', '8',
               '--out', out, *extra])
    with open(out) as f:
        return json.load(f)


def test_a_blind_model_scores_exactly_half(tmp_path, capsys):
    """Every caption is true for one image of its pair and false for the
    other: a model that does not see the image is right exactly once per
    pair, whatever it thinks of the words."""
    cfg = osp.join(ROOT, 'configs/baselines/cap_resnet18-w32_fashion_blind.py')
    report = run_tool(tmp_path, cfg, 'random')
    m = report['metrics']
    assert m['matching/ties'] == 0
    assert m['matching/accuracy'] == 50.0
    for kind in NEGATIVE_TYPES:
        assert m[f'matching/accuracy/{kind}'] == 50.0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith('fashion | AutoregressiveCaptionHead')
    assert 'accuracy 50.00%' in line and 'ms/pair' in line


def test_tool_scores_mdc_and_writes_every_case(tmp_path):
    cfg = osp.join(ROOT, 'configs/mdc/resnet18-w32_fashion.py')
    report = run_tool(tmp_path, cfg, 'random', '--score-options',
                      'method=elbo', 'draws=2')
    assert report['score_options'] == dict(method='elbo', draws=2, seed=0,
                                           normalize='sum', shared_masks=True)
    assert report['cost']['decoder_passes_per_pair'] == 2
    assert len(report['cases']) == 2 * 6 * len(NEGATIVE_TYPES)
    case = report['cases'][0]
    assert len(case['scores']) == len(case['caption_options']) == 2
    with pytest.raises(ValueError, match='unknown options'):
        run_tool(tmp_path, cfg, 'random', '--score-options', 'steps=4')


def test_tool_reads_aro_files_with_a_real_coco_config(tmp_path):
    from PIL import Image
    (tmp_path / 'images').mkdir()
    rng = np.random.default_rng(0)
    entries = []
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (50 + 10 * i, 70, 3),
                                     dtype=np.uint8)).save(
            tmp_path / 'images' / f'{i}.jpg')
        entries.append(dict(
            image_id=str(i), relation_name=['on', 'under', 'on'][i],
            bbox_x=3, bbox_y=2, bbox_w=40, bbox_h=30, image_path=f'{i}.jpg',
            true_caption='the cup is on the table',
            false_caption='the table is on the cup'))
    with open(tmp_path / 'visual_genome_relation.json', 'w') as f:
        json.dump(entries, f)
    out = str(tmp_path / 'aro.json')
    cfg = osp.join(ROOT, 'configs/mdc/vit-tiny_coco_cpu-smoke.py')
    tool.main([cfg, 'random', '--benchmark', 'aro-vg-relation',
               '--data-root', str(tmp_path), '--batch-size', '2',
               '--score-options', 'method=masked_once', '--out', out])
    report = json.load(open(out))
    assert report['metrics']['matching/num_cases'] == 3
    assert report['metrics']['matching/num_groups'] == 2
    assert [c['true_index'] for c in report['cases']] == [1, 1, 1]
    with pytest.raises(SystemExit, match='needs --data-root'):
        tool.main([cfg, 'random', '--benchmark', 'aro-vg-relation'])


def test_tool_refuses_models_without_a_likelihood_before_reading_data():
    cfg = osp.join(ROOT, 'configs/mc_diffusion/mcs_vit-tiny-vq_shapes.py')
    with pytest.raises(SystemExit, match='D3PMCaptionHead cannot score'):
        tool.main([cfg, 'random', '--benchmark', 'aro-vg-relation',
                   '--data-root', '/nonexistent'])
    with pytest.raises(SystemExit):
        tool.parse_args([cfg, 'random', '--benchmark', 'fashion',
                         '--max-cases', '0'])




def test_collector_gives_each_row_its_seed_spread(tmp_path):
    import collect_matching
    cfg = osp.join(ROOT, 'configs/baselines/cap_resnet18-w32_fashion.py')
    src = tmp_path / 'results'
    src.mkdir()
    for seed in (0, 1):
        report = run_tool(tmp_path, cfg, 'random', '--seed', str(seed))
        (src / f'random-cap_seed{seed}.json').write_text(json.dumps(report))
    rows = collect_matching.collect(str(src))
    row = rows['random-cap']
    accs = [report['metrics']['matching/accuracy'] for report in
            (json.loads((src / f'random-cap_seed{s}.json').read_text())
             for s in (0, 1))]
    assert sorted(row['seeds']) == [0, 1]
    assert row['accuracy']['mean'] == pytest.approx(sum(accs) / 2)
    assert row['accuracy']['half_range'] == pytest.approx(
        abs(accs[0] - accs[1]) / 2)
    collect_matching.add_cost(rows, str(src))
    assert rows['random-cap']['idle_cost']['ms_per_pair'] > 0
    assert 'random init, Cap decoder' in collect_matching.table(rows)
