"""The benchmarked caption heads (:data:`CASES`) and their models.

Every head gets the same backbone (the tiny ViT of
``configs/mdc/vit-tiny_shapes.py``, 65 tokens of width 192), the same
initial backbone weights and the same batch. MDC and AR attend to the 65
tokens. D3PM (``MCDiffusionCaptioner``) quantises them with a frozen
``VQTokenizerNeck`` to 65 discrete codes and its head attends to their
embeddings; as in MC-Diffusion the encoder and codebook are frozen.
Prefix (``PrefixDiffusionCaptioner``) mean-pools them in a frozen
``BackboneImageEncoder`` and maps the 192-d embedding to 4 prefix vectors.
"""
import copy
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmpretrain.registry import MODELS

from .common import MDC_CONFIG, device, load_cfg

#: Caption length of the sample section.
SAMPLE_LENGTH = 32
MDC_STEPS = (4, 8, 16, SAMPLE_LENGTH - 1)
D3PM_STEPS = (100, 50, 25, 10)
GUIDANCE_SCALE = 3.0
D3PM_QUALITY = {f'steps={s}': dict(steps=s, scale=1.0) for s in D3PM_STEPS}
D3PM_DECODERS = dict(D3PM_QUALITY, **{
    f'steps={s} guided': dict(steps=s, scale=GUIDANCE_SCALE)
    for s in D3PM_STEPS})


@dataclass
class HeadCase:
    """One caption head in the benchmark.

    ``config`` is the head's own config; ``shared`` rewrites its ``model``
    onto the shared backbone (None: the config already uses it);
    ``checkpoint`` is the trained weights of ``config`` (a file, or a
    directory whose latest ``epoch_*.pth`` is used; quality section);
    ``decoders`` maps a label to keyword arguments of the sampler (see
    :func:`~.sampling.sampling_fns`); ``quality_decoders`` (default
    ``decoders``) the ones scored on the checkpoint; ``kind`` what the head
    reads: ``'tokens'`` (B, N, C) image tokens, ``'codes'`` (B, N) VQ codes
    or ``'prefix'`` a pooled (B, C) embedding.
    """

    name: str
    head_type: str
    config: Optional[str]
    checkpoint: Optional[str]
    decoders: Dict[str, dict] = field(default_factory=dict)
    kind: str = 'tokens'
    shared: Optional[Callable[[Config], dict]] = None
    quality_decoders: Optional[Dict[str, dict]] = None

    def registered(self) -> bool:
        return MODELS.get(self.head_type) is not None


def shared_backbone() -> Tuple[dict, int, int]:
    """The benchmark's backbone config, its width and its token count."""
    cfg = load_cfg(MDC_CONFIG)
    backbone = copy.deepcopy(cfg.model.backbone)
    tokens = (backbone.img_size // backbone.patch_size)**2 + 1  # + cls
    return backbone, cfg.backbone_dims, tokens


def mdc_decoder() -> dict:
    """Decoder shape of the MDC head (the AR head has the same)."""
    head = load_cfg(MDC_CONFIG).model.head
    return dict(embed_dims=head.embed_dims, num_layers=head.num_layers,
                num_heads=head.num_heads)


def d3pm_shared(cfg: Config) -> dict:
    """MC-Diffusion on the shared backbone: frozen ViT -> frozen learned
    VQ codebook over all 65 tokens -> D3PM head with MDC's decoder shape
    and the config's guidance (train-time condition masking on)."""
    backbone, dims, tokens = shared_backbone()
    model = copy.deepcopy(cfg.model)
    model.backbone = dict(backbone,
                          frozen_stages=backbone.arch['num_layers'])
    model.neck = dict(type='VQTokenizerNeck', source='learned',
                      in_dims=dims, num_codes=cfg.vq_codes,
                      code_dims=cfg.vq_code_dims, num_prefix_tokens=0,
                      num_tokens=tokens, frozen=True)
    model.head.update(condition_length=tokens, **mdc_decoder())
    if not model.head.get('guidance'):
        raise ValueError(f'{cfg.filename}: the D3PM case needs a head with '
                         'guidance (train-time condition masking)')
    return model


def prefix_shared(cfg: Config) -> dict:
    """Prefix-diffusion on the shared backbone: frozen ViT mean-pooled to
    one 192-d embedding -> mapper -> diffusion head (encoder recomputed
    every step: no embedding cache); n = 1 in training."""
    backbone, dims, _ = shared_backbone()
    model = copy.deepcopy(cfg.model)
    model.encoder = dict(type='BackboneImageEncoder', backbone=backbone,
                         embed_dims=dims, pool='mean')
    model.mapper.in_dims = dims
    model.update(num_candidates=1, scorer=None, keep_candidates=False,
                 cache_embeddings=False)
    return model


CASES: List[HeadCase] = [
    HeadCase('MDC', 'MaskedDiffusionCaptionHead', MDC_CONFIG,
             'work_dirs/results/mdc/epoch_8.pth',
             {f'steps={s}': dict(steps=s) for s in MDC_STEPS}),
    HeadCase('AR', 'AutoregressiveCaptionHead',
             'configs/baselines/cap_vit-tiny_shapes.py',
             'work_dirs/results/cap/epoch_8.pth',
             {'greedy+kv': dict(temperature=0.0)}),
    # Issue #5: D3PM mask-and-replace head; guidance (MCS) doubles the
    # batch whenever scale != 1. Quality: the trained MCS model with its
    # own frozen VQ encoder (64 codes), at scale 1.
    HeadCase('D3PM', 'D3PMCaptionHead',
             'configs/mc_diffusion/mcs_vit-tiny-vq_shapes.py',
             'work_dirs/mc_diffusion/mcs', D3PM_DECODERS, kind='codes',
             shared=d3pm_shared, quality_decoders=D3PM_QUALITY),
    # Issue #6: continuous embedding diffusion on an image prefix; n > 1
    # candidates are reranked by the config's contrastive scorer.
    HeadCase('Prefix', 'PrefixDiffusionHead',
             'configs/prefix_diffusion/clip-tiny_shapes.py', None,
             {'steps=20 n=1': dict(steps=20, n=1),
              'steps=20 n=5 rerank': dict(steps=20, n=5)},
             kind='prefix', shared=prefix_shared),
]


def case_by_name(name: str) -> HeadCase:
    """The entry of :data:`CASES` called ``name``."""
    return next(c for c in CASES if c.name == name)


def active_cases(notes: List[str],
                 selected: Optional[List[str]] = None) -> List[HeadCase]:
    """Cases whose head is registered and configured (of ``selected``, all
    if None); the others are noted in ``notes``."""
    cases = []
    for case in CASES:
        if selected and case.name not in selected:
            continue
        if not case.registered():
            notes.append(f'{case.name}: not yet benchmarked '
                         f'({case.head_type} is not registered)')
        elif case.config is None:
            notes.append(f'{case.name}: not yet benchmarked '
                         f'({case.head_type} is registered but has '
                         'no shared-backbone config in CASES)')
        else:
            cases.append(case)
    return cases


def model_cfg(case: HeadCase) -> dict:
    """The case's model config on the shared backbone."""
    cfg = load_cfg(case.config)
    return case.shared(cfg) if case.shared else copy.deepcopy(cfg.model)


def build_model(case: HeadCase, seed: int = 0,
                cfg: Optional[dict] = None) -> torch.nn.Module:
    """The case's training model (``cfg``: another model config) on
    :func:`~.common.device`; the same seed gives the same backbone (it is
    the first module with parameters every model builds)."""
    torch.manual_seed(seed)
    model = MODELS.build(cfg if cfg is not None else model_cfg(case))
    return model.to(device())
