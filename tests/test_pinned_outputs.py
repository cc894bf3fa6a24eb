"""Pinned outputs: today's numbers, so that a refactor can prove it changed
nothing (issue 15, step 1: "pin today's outputs ... before moving code").

Every expected value below was RECORDED from commit
45340c84384e31add1cd3cd84ec2d61ae8a8809a (45340c8) by running the code of
this file once (CPU, torch 2.14.1); none was derived by hand. A
behaviour-preserving refactor (moving modules, renaming files, sharing the
diffusion pieces) must keep every one of them green WITHOUT editing the
expected values. If a value has to change, that is a behaviour change: say
so in its own commit.

What is pinned:

* each caption head family (MDC, Cap, MC-Diffusion D3PM, Prefix-diffusion),
  built from its REAL shipped shapes config under a fixed torch seed and
  ``init_weights()`` (the frozen VQ / contrastive checkpoints those configs
  read are themselves seeded fresh models saved to a temporary file): the
  training losses and log values on 4 images of the tiny shapes test split,
  the gradient norm of the summed loss, and the predicted captions (greedy
  where the config decodes greedily, seeded where it samples);
* ``CaptionMetric`` (BLEU-1..4, ROUGE-L, CIDEr, diversity) on a fixed set of
  predictions and references;
* ``probe_accuracy`` (the LinearProbeHook's L-BFGS probe) on seeded Gaussian
  clusters: accuracies and the chosen weight decay.

Notes for whoever moves code: the seeded-build pins also pin the ORDER in
which modules draw their initial weights from the global RNG; reordering
submodule construction changes them even when every checkpoint still loads.
The models are untrained, so their captions are word salad (the D3PM one
almost all 'large'); they still pin the decoding paths token for token.
Losses are compared at ``rel=1e-5`` (float32 on CPU, room for summation
order), captions exactly, metric values at ``1e-9``.
"""
import math

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import default_collate
from mmpretrain.registry import DATASETS, METRICS, MODELS

import mdc_plugin  # noqa: F401
from mdc_plugin.utils import hardened_checkpoints  # noqa: E402
from fixtures_data import load_repo_config
from mdc_plugin.engine.hooks.linear_probe_hook import probe_accuracy

MDC_CFG = 'configs/mdc/vit-tiny_shapes.py'
CAP_CFG = 'configs/baselines/cap_vit-tiny_shapes.py'
VQ_CFG = 'configs/mc_diffusion/vq-vit-tiny_shapes.py'
MCS_CFG = 'configs/mc_diffusion/mcs_vit-tiny-vq_shapes.py'
CLIP_CFG = 'configs/baselines/clip_vit-tiny_shapes.py'
PREFIX_CFG = 'configs/prefix_diffusion/clip-tiny_shapes.py'

REL = 1e-5       # float32 losses
EXACT = 1e-9     # metric values (float64)


def approx(value, rel=REL):
    """Relative tolerance, with an absolute floor for values near 0."""
    return pytest.approx(value, rel=rel, abs=1e-8)


# one thread: values are the same with 1 and 2, and it is faster here
pytestmark = pytest.mark.usefixtures('one_thread')


# ------------------------------------------------------------- helpers


def seeded_checkpoint(rel_path: str, path: str, seed: int = 0) -> str:
    """A freshly initialised model of a shipped config saved as a
    checkpoint (stands in for the stage-1 / contrastive weights)."""
    torch.manual_seed(seed)
    model = MODELS.build(load_repo_config(rel_path).model)
    model.init_weights()
    torch.save({'state_dict': model.state_dict()}, path)
    return path


def shapes_batch(cfg: Config, model, root: str, num: int = 4) -> dict:
    """The first ``num`` test images of the tiny shapes set (conftest's
    ``tiny_shapes_root``), through the config's test pipeline (first
    caption of each image, no random pick) and the model's preprocessor."""
    dataset = DATASETS.build(dict(
        type='SyntheticShapesCaption', data_root=root, split='test',
        pipeline=cfg.test_pipeline, test_mode=True,
        num_images=dict(train=24, val=8, test=8), img_size=64, seed=0))
    batch = default_collate([dataset[i] for i in range(num)])
    return model.data_preprocessor(batch, False)


def head_outputs(cfg: Config, root: str, **predict_kwargs) -> dict:
    """Seed 0 -> build + init_weights; seed 1 -> one training-mode loss
    (and the gradient norm of the summed ``loss*`` terms); seed 2 ->
    eval-mode ``predict``."""
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    with hardened_checkpoints():  # as the runs' SafeCheckpointLoadingHook
        model.init_weights()
    data = shapes_batch(cfg, model, root)

    model.train()
    torch.manual_seed(1)
    losses = model(data['inputs'], data['data_samples'], mode='loss')
    total = sum(v for k, v in losses.items() if 'loss' in k)
    total.backward()
    grads = [p.grad.flatten() for p in model.parameters()
             if p.grad is not None]
    grad_norm = torch.cat(grads).norm().item()

    model.eval()
    torch.manual_seed(2)
    samples = model.predict(data['inputs'], **predict_kwargs)
    return dict(losses={k: float(torch.as_tensor(v).detach())
                        for k, v in losses.items()},
                grad_norm=grad_norm,
                captions=[s.pred_caption for s in samples],
                samples=samples, model=model, data=data)


def check(out: dict, expected: dict) -> None:
    assert set(out['losses']) == set(expected['losses'])
    for key, value in expected['losses'].items():
        assert out['losses'][key] == approx(value), key
    assert out['grad_norm'] == approx(expected['grad_norm'])
    assert out['captions'] == expected['captions']


# ------------------------------------------------------ recorded values
MDC_EXPECTED = dict(
    losses={
        'loss': 2.3829054832458496,
        'mask_acc': 0.0,
        'mask_ratio': 0.359375},
    grad_norm=7.943861484527588,
    captions=[
        'one one blue one one a a one one one one one a a one',
        'one one one one one one bottom one one one one one one one one',
        'one a blue one a a a one one one one one a a one',
        'one bottom bottom one bottom bottom bottom one one one one one bottom bottom one',  # noqa: E501
    ])

CAP_EXPECTED = dict(
    losses={
        'loss': 3.4546189308166504,
        'token_acc': 0.05000000074505806},
    grad_norm=5.907137870788574,
    captions=[
        'blue a a a a a a a a a a a a a a',
        'blue one one one one one one one one one one one one one one',
        'blue a a a a a a a a a a a a a a',
        'blue one one one one one one one one one one one one one one'])

D3PM_EXPECTED = dict(
    losses={
        'loss_vb': 3.947319746017456,
        'loss_aux': 4.766582489013672,
        'x0_acc': 0.3499999940395355,
        'vq_perplexity': 1.9721118211746216,
        'vq_used_codes': 15.0,
        'vq_dead_codes': 0.0},
    grad_norm=18.34678077697754,
    captions=[
        'large large large large large large large large large large large large large a large',  # noqa: E501
        'large large large large large large large large large large large large large large large',  # noqa: E501
        'large large large large large large large large large large large large large large large',  # noqa: E501
        'large large large large large large large large large large large large large large large',  # noqa: E501
    ])

# guided sampling (scale 3, seed 3) of the same model
D3PM_GUIDED_CAPTIONS = [
    'large large large large large large large large large large large large a large large',  # noqa: E501
    'large large large large large large large large large large large large large large large',  # noqa: E501
    'large large large large large large large large large large large large large large large',  # noqa: E501
    'large large large large large large large large large large large large large large large',  # noqa: E501
]

PREFIX_EXPECTED = dict(
    losses={
        'loss_mse': 1.330371618270874,
        'loss_round': 22.007333755493164,
        'loss_prior': 1.6938515035036517e-09,
        'word_acc': 0.0},
    grad_norm=67.42388916015625,
    captions=[
        ',, below,,,,,,,,,, below,,',
        ',,, below,, to, below,, below, to,,',
        ',,,,,,,,,,,,,,,,',
        ',,,, below,,,,,,,,, cross,'])

# the reranked candidates (num_candidates=5 of the config), best first,
# and the best candidate's scorer similarity
PREFIX_CANDIDATES = [
    [
        ',, below,,,,,,,,,, below,,',
        ',, to,,,, below,,,,,,, cross',
        ',,,,,, cross cross, cross, below, cross cross,',
        ',,, cross below,,,,, cross,, below,,',
        ',,,,, cross,,, cross,,,,,,'],
    [
        ',,, below,, to, below,, below, to,,',
        ',,,,,,,, to,,,, below,,',
        'below cross,, cross,,,,, cross, blue below,,',
        ', below,,,,, cross cross,,,, to,,',
        'cross cross, cross,,,, cross,,,,,,,'],
    [
        ',,,,,,,,,,,,,,,,',
        ',,,,, below,,,,,,, to below cross',
        ', cross below,,,,, below, cross,, cross, below',
        'to cross below,, cross,, cross,,,,,, cross',
        ',,, cross below, cross,,, cross cross,,,,'],
    [
        ',,,, below,,,,,,,,, cross,',
        ', below cross cross,,,, cross, cross,,,, below',
        ',, cross,,,, cross,, below, cross blue,,',
        ', cross,,,, to,,,,,,,,,',
        ',,, cross,, cross,,,,,, cross,,']]
PREFIX_SCORES = [-0.007388535887002945, 0.012304238975048065,
                 0.07202108949422836, -0.04254160821437836]


# ---------------------------------------------------------- caption heads
def test_mdc_head_pinned(tiny_shapes_root):
    """The recorded captions were decoded surest-first over the whole
    caption, the config's sampler until issue 21; one block as long as the
    caption (block_length = 15) still gives them token for token."""
    cfg = load_repo_config(MDC_CFG)
    assert cfg.model.head.type == 'MaskedDiffusionCaptionHead'
    check(head_outputs(cfg, tiny_shapes_root, block_length=15), MDC_EXPECTED)


#: The config's sampler since issue 21 (surest-first in blocks of 2),
#: recorded at its change (the losses are MDC_EXPECTED's, unchanged).
MDC_BLOCKS_CAPTIONS = [
    'one one one one one one one one one one one a a a a',
    'one one one one one one one one one one one one bottom one one',
    'one one one one one one one one one blue one a a a a',
    'one one one one one one bottom one bottom one bottom bottom bottom '
    'bottom bottom',
]


def test_mdc_head_pinned_with_the_config_sampler(tiny_shapes_root):
    cfg = load_repo_config(MDC_CFG)
    assert cfg.model.head.sampler.block_length == 2
    check(head_outputs(cfg, tiny_shapes_root),
          dict(MDC_EXPECTED, captions=MDC_BLOCKS_CAPTIONS))


def test_cap_head_pinned(tiny_shapes_root):
    cfg = load_repo_config(CAP_CFG)
    assert cfg.model.head.type == 'AutoregressiveCaptionHead'
    check(head_outputs(cfg, tiny_shapes_root), CAP_EXPECTED)


@pytest.fixture(scope='module')
def vq_ckpt(tmp_path_factory) -> str:
    return seeded_checkpoint(
        VQ_CFG, str(tmp_path_factory.mktemp('vq') / 'vq.pth'))


def mcs_cfg(vq_ckpt: str) -> Config:
    cfg = load_repo_config(MCS_CFG)
    assert cfg.model.head.type == 'D3PMCaptionHead'
    cfg.merge_from_dict({'model.backbone.init_cfg.checkpoint': vq_ckpt,
                         'model.neck.init_cfg.checkpoint': vq_ckpt})
    return cfg


def d3pm_guided_captions(out: dict) -> list:
    """The same model sampled with guidance scale 3 (seed 3)."""
    torch.manual_seed(3)
    samples = out['model'].predict(out['data']['inputs'], scale=3.0)
    return [s.pred_caption for s in samples]


def test_d3pm_head_pinned(tiny_shapes_root, vq_ckpt):
    out = head_outputs(mcs_cfg(vq_ckpt), tiny_shapes_root)
    check(out, D3PM_EXPECTED)
    assert d3pm_guided_captions(out) == D3PM_GUIDED_CAPTIONS


@pytest.fixture(scope='module')
def clip_ckpt(tmp_path_factory) -> str:
    return seeded_checkpoint(
        CLIP_CFG, str(tmp_path_factory.mktemp('clip') / 'clip.pth'))


def test_prefix_diffusion_head_pinned(tiny_shapes_root, clip_ckpt):
    cfg = load_repo_config(PREFIX_CFG)
    assert cfg.model.head.type == 'PrefixDiffusionHead'
    cfg.merge_from_dict({'model.encoder.checkpoint': clip_ckpt,
                         'model.scorer.checkpoint': clip_ckpt})
    out = head_outputs(cfg, tiny_shapes_root)
    check(out, PREFIX_EXPECTED)
    assert [s.pred_captions for s in out['samples']] == PREFIX_CANDIDATES
    assert [s.pred_score for s in out['samples']] == [
        approx(v, rel=1e-4) for v in PREFIX_SCORES]


# ------------------------------------------------------------ caption metric
METRIC_REFS = {
    1: ['a small blue square above a small red circle',
        'a small red circle is below a small blue square',
        'there is a red circle and a blue square'],
    2: ['A man riding a wave on top of a surfboard.',
        'A surfer rides a large wave in the ocean.'],
    3: ['Two dogs playing with a frisbee in the park',
        'Dogs run after a red frisbee on the grass.'],
    4: ['a large yellow square above a large green circle',
        'the large circle is below the large square'],
    5: ['A kitchen with a stove, a sink and a refrigerator.',
        'An empty kitchen with white cabinets.'],
}
METRIC_PREDS = {1: 'a small blue square above a red circle',
                2: 'a man surfing a big wave',
                3: 'two dogs play in a park',
                4: 'a green circle below a yellow square',
                5: 'a white kitchen with a sink'}
METRIC_EXPECTED = {
    'caption/BLEU-1': 0.7133847218238155,
    'caption/BLEU-2': 0.5290602694692627,
    'caption/BLEU-3': 0.3855227995808024,
    'caption/BLEU-4': 0.29422451795664495,
    'caption/ROUGE-L': 0.5835569221555998,
    'caption/CIDEr': 2.144544438621781,
    'caption/Dist-1': 0.696969696969697,
    'caption/Dist-2': 1.0,
    'caption/Dist-3': 1.0,
    'caption/Vocab': 23.0,
    'caption/MeanLength': 6.6}


def metric_values() -> dict:
    metric = METRICS.build(dict(type='CaptionMetric',
                                scores=['BLEU', 'ROUGE-L', 'CIDEr'],
                                diversity=True))
    metric.process(None, [
        dict(image_id=i, pred_caption=p, gt_caption=METRIC_REFS[i])
        for i, p in METRIC_PREDS.items()])
    return metric.evaluate(len(METRIC_PREDS))


def test_caption_metric_pinned():
    values = metric_values()
    assert set(values) == set(METRIC_EXPECTED)
    for key, value in METRIC_EXPECTED.items():
        assert values[key] == pytest.approx(value, rel=EXACT, abs=EXACT), key


# -------------------------------------------------------------- linear probe
def gaussian_clusters(n: int, seed: int, classes: int = 5, dims: int = 12,
                      spread: float = 1.6):
    """Overlapping Gaussian clusters (fixed means; ``seed`` draws the
    points), so the probe's accuracy is neither chance nor 100%."""
    means = torch.randn(classes, dims,
                        generator=torch.Generator().manual_seed(1234))
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n, ), generator=gen)
    x = means[y] + spread * torch.randn(n, dims, generator=gen)
    return x, y


PROBE_EXPECTED = {'accuracy': 66.00000262260437,
                  'train_accuracy': 69.9999988079071,
                  'weight_decay': 0.01}


def probe_values() -> dict:
    return probe_accuracy(gaussian_clusters(200, 0),
                          gaussian_clusters(100, 1), 5)


def test_linear_probe_pinned():
    result = probe_values()
    assert set(result) == set(PROBE_EXPECTED)
    # accuracies are k / N: exact up to float rounding
    assert result['accuracy'] == pytest.approx(PROBE_EXPECTED['accuracy'],
                                               abs=1e-6)
    assert result['train_accuracy'] == pytest.approx(
        PROBE_EXPECTED['train_accuracy'], abs=1e-6)
    assert result['weight_decay'] == PROBE_EXPECTED['weight_decay']
    assert not math.isnan(result['accuracy'])
