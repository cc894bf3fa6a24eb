"""tools/benchmarks/decoding_speed.py and collect_decoding_speed.py end to
end on the Fashion configs (embedded data, untrained weights saved as
checkpoints): every decoder row gets quality, pass counts, decoder
positions and speed ratios, and the collector's tables over seeds."""
import json
import os.path as osp

import pytest
import torch

from fixtures_data import REPO, load_repo_config, load_tool

pytestmark = pytest.mark.usefixtures('one_thread')

MDC_CFG = osp.join(REPO, 'configs/mdc/resnet18-w32_fashion_embedded.py')
CAP_CFG = osp.join(REPO, 'configs/baselines/cap_resnet18-w32_fashion.py')


def _checkpoint(config: str, path) -> str:
    from mmpretrain.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(load_repo_config(config).model)
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


@pytest.fixture(scope='module')
def models(tmp_path_factory) -> list:
    """The tool's --mdc and --ar arguments: Fashion configs on 8 embedded
    val scenes and their untrained weights as checkpoints."""
    tmp = tmp_path_factory.mktemp('decoding_speed')
    cap_cfg = tmp / 'cap_embedded.py'
    cap_cfg.write_text(
        f"_base_ = ['{CAP_CFG}']\n"
        "val_dataloader = dict(batch_size=8, dataset=dict("
        "data_root='embedded', num_scenes=8))\n")
    mdc_cfg = tmp / 'mdc_embedded.py'
    mdc_cfg.write_text(
        f"_base_ = ['{MDC_CFG}']\n"
        "val_dataloader = dict(batch_size=8, dataset=dict(num_scenes=8))\n")
    return ['--mdc', str(mdc_cfg), _checkpoint(str(mdc_cfg), tmp / 'mdc.pth'),
            '--ar', str(cap_cfg), _checkpoint(str(cap_cfg), tmp / 'cap.pth')]


@pytest.fixture(scope='module')
def report(models, tmp_path_factory):
    out = tmp_path_factory.mktemp('report') / 'report.json'
    load_tool('tools/benchmarks/decoding_speed.py').main(models + [
        '--batch-sizes', '1', '4', '--rounds', '1', '--single-images', '2',
        '--out', str(out)])
    return out, json.loads(out.read_text())


def test_every_decoder_gets_quality_cost_and_speed(report):
    _, data = report
    rows = data['rows']
    assert 'AR greedy + KV cache' in rows
    for name, row in rows.items():
        assert row['images'] == 8, name
        assert row['decoder_positions_per_caption'] > 0, name
        for batch in ('batch1', 'batch4'):
            assert row[batch]['captions_per_s'] > 0, name
    assert rows['AR greedy + KV cache']['batch4']['ratio_vs_AR'] == 1.0
    slow = next(r for n, r in rows.items() if 'one token per step' in n)
    assert slow['cider_vs_one_token_per_step_pct'] == (
        0.0 if slow['cider'] else None)  # undefined against a CIDEr of 0
    # 35 full passes over 36 positions
    assert slow['decoder_positions_per_caption'] == 35 * 36
    full = rows['MDC threshold 0.7 + early stop + block cache']
    committed = rows['MDC threshold 0.7 + early stop + block cache, '
                     'committed refresh']
    assert committed['decoder_passes_batch64'] == 1
    assert committed['decoder_positions_per_caption'] < \
        full['decoder_positions_per_caption']


def test_collector_reports_the_spread_over_seeds(report, tmp_path, capsys):
    path, data = report
    second = json.loads(json.dumps(data))
    for row in second['rows'].values():
        row['batch4']['ratio_vs_AR'] += 0.2
    other = tmp_path / 'seed1.json'
    other.write_text(json.dumps(second))
    out = tmp_path / 'summary.json'
    load_tool('tools/benchmarks/collect_decoding_speed.py').main(
        ['--group', '1x', str(path), str(other), '--out', str(out)])
    summary = json.loads(out.read_text())['1x']['rows']
    ratio = summary['AR greedy + KV cache']['batch4_ratio_vs_AR']
    assert ratio == pytest.approx(dict(mean=1.1, half_range=0.1, n=2))
    table = out.with_suffix('.md').read_text()
    assert '### 1x (2 seeds)' in table and '1.10 ± 0.10' in table
    assert table in capsys.readouterr().out + '\n'


def test_collector_refuses_reports_of_different_decoders(report, tmp_path):
    path, data = report
    other = json.loads(json.dumps(data))
    other['rows'].pop('AR greedy + KV cache')
    bad = tmp_path / 'other.json'
    bad.write_text(json.dumps(other))
    with pytest.raises(ValueError, match='same decoders'):
        load_tool('tools/benchmarks/collect_decoding_speed.py').main(
            ['--group', '1x', str(path), str(bad)])


def test_bf16_runs_under_autocast_and_says_so(models, tmp_path):
    """--dtype bf16 (the GPU table's setting) runs here on the CPU too; the
    report names the device and the precision, and too few val images
    for a batch size is refused before any timing."""
    from mdc_plugin.models.layers.caption_transformer import \
        CaptionTransformer
    tool = load_tool('tools/benchmarks/decoding_speed.py')
    out = tmp_path / 'bf16.json'
    dtypes = set()
    original = CaptionTransformer.forward

    def recording(self, *args, **kwargs):
        hidden, cache = original(self, *args, **kwargs)
        dtypes.add(cache[0][0].dtype)  # keys/values: the linear outputs
        return hidden, cache
    CaptionTransformer.forward = recording
    try:
        tool.main(models + ['--dtype', 'bf16', '--batch-sizes', '4',
                            '--rounds', '1', '--max-batches', '1',
                            '--out', str(out)])
    finally:
        CaptionTransformer.forward = original
    assert dtypes == {torch.bfloat16}  # every decoder pass under autocast
    data = json.loads(out.read_text())
    assert data['dtype'] == 'bf16' and data['device'].startswith('CPU')
    assert all(row['batch4']['captions_per_s'] > 0
               for row in data['rows'].values())
    with pytest.raises(SystemExit, match='fewer than 32 images'):
        tool.main(models + ['--batch-sizes', '32', '--rounds', '1'])
