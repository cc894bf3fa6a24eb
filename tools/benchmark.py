"""Caption-head benchmarks: training step, memory, sampling, quality, data.

    python tools/benchmark.py [--sections train memory sample quality data
        gpu] [--rounds 15] [--out docs/results_data/benchmarks/cpu.json]
        [--profile]

Every head is an entry of :data:`CASES` (MDC, AR, D3PM, Prefix); all of
them get the same backbone (the tiny ViT of ``configs/mdc/vit-tiny_shapes.py``,
65 tokens of width 192), the same initial backbone weights and the same
batch. MDC and AR attend to the 65 tokens. D3PM (``MCDiffusionCaptioner``)
quantises them with a frozen ``VQTokenizerNeck`` to 65 discrete codes and
its head attends to their embeddings; as in MC-Diffusion the encoder and
codebook are frozen (the codes are discrete, so no gradient could reach
them anyway). Prefix (``PrefixDiffusionCaptioner``) mean-pools them in a
frozen ``BackboneImageEncoder`` (no backbone backward, by design) and maps
the 192-d embedding to 4 prefix vectors. Ratios are measured side by
side in one process: every case is warmed up, then the timed repetitions
of the cases are interleaved round by round and the per-round ratios are
summarised by their median.

Sections:

* ``train``: samples/s of ``model.train_step`` (forward, backward, AdamW
  with the config's grad clipping) per head.
* ``memory``: peak memory of a training step. CUDA:
  ``torch.cuda.max_memory_allocated``. CPU: each case runs in a fresh
  subprocess; after the model, optimizer and batch are built, the peak
  resident set size (``VmHWM``) is reset through ``/proc/self/clear_refs``
  and its growth over three training steps is reported (activations,
  gradients, optimizer state, allocator growth).
* ``sample``: captions/s of the heads' ``sample`` at caption length 32
  (untrained heads rebuilt with ``max_length=32``; eos is forbidden so that
  every caption has the full length and greedy AR decoding cannot stop
  early), MDC at 4, 8, 16 and 31 (= length - 1, one token per step) steps,
  AR greedy with its key/value cache, D3PM at T = 100 and skipped
  schedules, with and without guidance (a doubled batch), and Prefix at
  its configured steps with n = 1 and n = 5 candidates (reranking by the
  contrastive scorer included). Image tokens (and D3PM's codes, Prefix's
  pooled embedding) are computed once; the backbone is not timed. One
  table per tokenizer (the shapes vocabulary, 33 ids, and CLIP BPE, 49,410
  ids as in the COCO config) and batch size.
* ``quality``: CIDEr (``CaptionMetric``) on the embedded val split of the
  trained checkpoints at their own caption length (16), MDC per step count,
  AR greedy and D3PM per step count (its own VQ encoder, 64 codes).
* ``data``: share of step time spent waiting for data in a short real
  ``tools/train.py`` run of ``configs/mdc/vit-tiny_shapes.py``
  (``data_time / time`` of MMEngine's logs).
* ``gpu`` (CUDA only): ``configs/mdc/vit-b_coco.py`` training images/s in
  bf16 autocast and model FLOPs utilisation, with FLOPs counted by
  ``torch.utils.flop_counter.FlopCounterMode`` on one training step.
"""
import argparse
import contextlib
import copy
import json
import os
import os.path as osp
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmpretrain.registry import MODELS
from rich.progress import Progress

import mdc_plugin  # noqa: F401
from mdc_plugin.utils.atomic_io import atomic_dump_json

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))

MDC_CONFIG = 'configs/mdc/vit-tiny_shapes.py'
SAMPLE_LENGTH = 32
MDC_STEPS = (4, 8, 16, SAMPLE_LENGTH - 1)
# Dense bf16 tensor-core peak (TFLOP/s) per device name fragment.
BF16_PEAK_TFLOPS = {'H200': 989.0, 'H100': 989.0, 'A100': 312.0,
                    'L40S': 362.0, 'A10': 125.0, 'V100': 125.0}


@dataclass
class HeadCase:
    """One caption head in the benchmark.

    ``config`` is the head's own config; ``shared`` rewrites its ``model``
    onto the shared backbone (None: the config already uses it);
    ``checkpoint`` is the trained weights of ``config`` (a file, or a
    directory whose latest ``epoch_*.pth`` is used; quality section);
    ``decoders`` maps a label to keyword arguments of the sampler (see
    :func:`sampling_fns`); ``quality_decoders`` (default ``decoders``) the
    ones scored on the checkpoint; ``kind`` what the head reads:
    ``'tokens'`` (B, N, C) image tokens, ``'codes'`` (B, N) VQ codes or
    ``'prefix'`` a pooled (B, C) embedding.
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


D3PM_STEPS = (100, 50, 25, 10)
GUIDANCE_SCALE = 3.0
D3PM_QUALITY = {f'steps={s}': dict(steps=s, scale=1.0) for s in D3PM_STEPS}
D3PM_DECODERS = dict(D3PM_QUALITY, **{
    f'steps={s} guided': dict(steps=s, scale=GUIDANCE_SCALE)
    for s in D3PM_STEPS})

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


# ----------------------------------------------------------------- helpers
def device() -> torch.device:
    return torch.device('cuda' if torch.cuda.is_available() else 'cpu')


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def load_cfg(path: str) -> Config:
    return Config.fromfile(osp.join(ROOT, path))


def model_cfg(case: HeadCase) -> dict:
    """The case's model config on the shared backbone."""
    cfg = load_cfg(case.config)
    return case.shared(cfg) if case.shared else copy.deepcopy(cfg.model)


def build_model(case: HeadCase, seed: int = 0,
                cfg: Optional[dict] = None) -> torch.nn.Module:
    """The case's training model; the same seed gives the same backbone
    (it is the first module with parameters every model builds)."""
    torch.manual_seed(seed)
    model = MODELS.build(cfg if cfg is not None else model_cfg(case))
    return model.to(device())


def latest_checkpoint(path: str) -> Optional[str]:
    """``path`` if a file, else its highest ``epoch_N.pth`` (None if none).
    """
    full = osp.join(ROOT, path)
    if osp.isfile(full):
        return path
    if not osp.isdir(full):
        return None
    epochs = [(int(m.group(1)), name) for name in os.listdir(full)
              for m in [re.fullmatch(r'epoch_(\d+)\.pth', name)] if m]
    return osp.join(path, max(epochs)[1]) if epochs else None


def train_batch(batch_size: int) -> dict:
    """One collated batch of the embedded train split (fixed order)."""
    cfg = load_cfg(MDC_CONFIG)
    loader_cfg = dict(cfg.train_dataloader, batch_size=batch_size,
                      num_workers=0, persistent_workers=False,
                      sampler=dict(type='DefaultSampler', shuffle=False))
    with chdir(ROOT):
        loader = Runner.build_dataloader(loader_cfg, seed=0)
        return next(iter(loader))


@contextlib.contextmanager
def chdir(path: str):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def build_optim(model: torch.nn.Module, cfg_path: str):
    from mmengine.optim import build_optim_wrapper
    return build_optim_wrapper(model, load_cfg(cfg_path).optim_wrapper)


def active_cases(progress_log: List[str],
                 selected: Optional[List[str]] = None) -> List[HeadCase]:
    """Cases whose head is registered and configured; others are noted."""
    cases = []
    for case in CASES:
        if selected and case.name not in selected:
            continue
        if not case.registered():
            progress_log.append(f'{case.name}: not yet benchmarked '
                                f'({case.head_type} is not registered)')
        elif case.config is None:
            progress_log.append(f'{case.name}: not yet benchmarked '
                                f'({case.head_type} is registered but has '
                                'no shared-backbone config in CASES)')
        else:
            cases.append(case)
    return cases


def interleave(fns: Dict[str, Callable[[], float]], rounds: int,
               progress: Progress, label: str) -> Dict[str, List[float]]:
    """Run each fn once per round, in rotating order; collect results."""
    names = list(fns)
    out: Dict[str, List[float]] = {n: [] for n in names}
    task = progress.add_task(label, total=rounds * len(names))
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            out[name].append(fns[name]())
            progress.advance(task)
    return out


def median_ratio(num: List[float], den: List[float]) -> float:
    return statistics.median(a / b for a, b in zip(num, den))


# ------------------------------------------------------------------- train
def bench_train(cases, args, progress) -> dict:
    batch = train_batch(args.batch_size)
    runs = {}
    for case in cases:
        model = build_model(case)
        model.train()
        optim = build_optim(model, case.config)
        for _ in range(args.warmup):
            model.train_step(batch, optim)

        def step(model=model, optim=optim) -> float:
            sync()
            start = time.perf_counter()
            for _ in range(args.steps):
                model.train_step(batch, optim)
            sync()
            return args.batch_size * args.steps / (time.perf_counter()
                                                   - start)
        runs[case.name] = step
    samples = interleave(runs, args.rounds, progress, 'train step')
    result = {n: dict(samples_per_s=statistics.median(v), rounds=v)
              for n, v in samples.items()}
    for name in samples:
        if name != 'AR' and 'AR' in samples:
            result[name]['ratio_vs_AR'] = median_ratio(samples[name],
                                                       samples['AR'])
    return result


# ------------------------------------------------------------------ memory
def _read_status(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f'{key} not in /proc/self/status')


def memory_probe(case_name: str, batch_size: int) -> dict:
    """Peak memory growth of three training steps (this process)."""
    case = next(c for c in CASES if c.name == case_name)
    init_default_scope('mmpretrain')
    batch = train_batch(batch_size)
    model = build_model(case)
    model.train()
    optim = build_optim(model, case.config)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        for _ in range(3):
            model.train_step(batch, optim)
        torch.cuda.synchronize()
        return dict(method='torch.cuda.max_memory_allocated',
                    peak_bytes=torch.cuda.max_memory_allocated() - base)
    with open('/proc/self/clear_refs', 'w') as f:
        f.write('5')  # reset VmHWM (peak RSS) to the current RSS
    base = _read_status('VmRSS')
    for _ in range(3):
        model.train_step(batch, optim)
    return dict(method='VmHWM growth after clear_refs (fresh process)',
                peak_bytes=_read_status('VmHWM') - base)


def bench_memory(cases, args, progress) -> dict:
    result = {}
    task = progress.add_task('memory', total=len(cases))
    for case in cases:
        if torch.cuda.is_available():
            result[case.name] = memory_probe(case.name, args.batch_size)
        else:
            out = subprocess.run(
                [sys.executable, __file__, '--memory-probe', case.name,
                 '--batch-size', str(args.batch_size)],
                check=True, capture_output=True, text=True, cwd=ROOT)
            result[case.name] = json.loads(out.stdout.strip().splitlines()[-1])
        progress.advance(task)
    return result


# ------------------------------------------------------------------ sample
def sample_model(case: HeadCase, length: int,
                 tokenizer: str = 'shapes') -> torch.nn.Module:
    """The case's untrained shared-backbone model with caption length
    ``length`` and a tokenizer of :data:`SAMPLE_TOKENIZERS`."""
    cfg = model_cfg(case)
    cfg.head.max_length = length
    cfg.head.tokenizer = SAMPLE_TOKENIZERS[tokenizer]
    model = build_model(case, cfg=cfg).eval()
    head = model.head
    if hasattr(head, 'forbidden_mask'):
        # Forbid eos so every caption runs to the full length (an untrained
        # AR head would otherwise stop at a random early eos). The
        # diffusion heads denoise all positions whatever the ids.
        base_mask = head.forbidden_mask

        def forbidden_mask(dev, base_mask=base_mask,
                           eos=head.tokenizer.eos_id):
            mask = base_mask(dev)
            mask[eos] = True
            return mask
        head.forbidden_mask = forbidden_mask
    return model


SAMPLE_TOKENIZERS = dict(shapes=dict(type='ShapesTokenizer'),
                         clip=dict(type='CLIPBPETokenizer'))


def rerank_scorer(case: HeadCase, notes: List[str]):
    """The reranking scorer of the case's config (its trained weights when
    they exist, else an untrained model of the same size: same cost)."""
    from mdc_plugin.models.scorers.rerank import build_scorer
    cfg = copy.deepcopy(load_cfg(case.config).model.scorer)
    ckpt = cfg.get('checkpoint')
    if ckpt and not osp.isabs(ckpt):
        ckpt = osp.join(ROOT, ckpt)
    if ckpt and not osp.isfile(ckpt):
        notes.append(f'{case.name}: rerank scorer checkpoint {ckpt} not '
                     'found; timed with an untrained scorer of the same '
                     'size')
        ckpt = None
    cfg.checkpoint = ckpt
    with chdir(ROOT):
        return build_scorer(cfg)


def sampling_fns(case: HeadCase, model, tokens: torch.Tensor,
                 images: torch.Tensor, tokenizer: str,
                 notes: List[str]) -> Dict[str, Callable[[], torch.Tensor]]:
    """Timed closures ``label -> () -> (B, L) ids`` of one case.

    ``tokens``: (B, N, C) image tokens of the shared backbone; ``images``:
    (B, 3, H, W) raw images (for reranking). What a closure times: MDC /
    AR / D3PM ``head.sample`` on the precomputed tokens / codes; Prefix
    the mapper and ``head.sample`` on the precomputed pooled embedding,
    and for n > 1 also decoding to text, scoring every candidate against
    its image (scorer image and text towers) and picking the best.
    """
    head, fns = model.head, {}
    if case.kind == 'tokens':
        cond = tokens
    elif case.kind == 'codes':
        with torch.no_grad():
            cond = model.neck(tokens).codes  # (B, N) long
    elif case.kind == 'prefix':
        cond = tokens.mean(1)  # BackboneImageEncoder(pool='mean'): (B, C)
    else:
        raise ValueError(f'{case.name}: unknown kind {case.kind!r}')
    scorer = None
    for label, kwargs in case.decoders.items():
        if case.kind != 'prefix':
            fns[label] = (lambda kw=kwargs: head.sample(cond, **kw))
            continue
        kwargs = dict(kwargs)
        n = kwargs.pop('n', 1)
        if n > 1 and tokenizer != 'shapes':
            notes.append(f'{case.name} {label}: skipped with the '
                         f'{tokenizer} tokenizer (the rerank scorer reads '
                         'the shapes vocabulary)')
            continue
        if n > 1 and scorer is None:
            scorer = rerank_scorer(case, notes)
        fns[label] = (lambda kw=kwargs, n=n, sc=scorer: prefix_sample(
            model, cond, images, n, sc, kw))
    return fns


def prefix_sample(model, embed: torch.Tensor, images: torch.Tensor, n: int,
                  scorer, kwargs: dict) -> torch.Tensor:
    """Prefix-diffusion captioning of (B, C) embeddings with n candidates
    per image, reranked when n > 1: -> (B, L) ids of the chosen ones."""
    from mdc_plugin.models.scorers.rerank import candidate_scores, rerank
    prefix = model.mapper(embed).repeat_interleave(n, dim=0)
    ids = model.head.sample(prefix, **kwargs)
    if n == 1:
        return ids
    captions = model.head.decode(ids)
    scores = candidate_scores(scorer, images, captions, n)
    rerank(scores, captions)
    best = scores.argmax(1)
    return ids.view(len(embed), n, -1)[torch.arange(len(embed)), best]


def bench_sample(cases, args, progress, notes) -> dict:
    """One table per (tokenizer, batch size)."""
    tables = {}
    for name in args.sample_tokenizers:
        sizes = (args.sample_batch_sizes if name == 'shapes'
                 else args.clip_sample_batch_sizes)
        for bsz in sizes:
            tables[f'{name}/batch{bsz}'] = bench_sample_batch(
                cases, args, progress, bsz, name, notes)
    return tables


def image_tokens(batch: dict, case: HeadCase) -> torch.Tensor:
    """(B, N, C) tokens of the shared backbone (the MDC model's)."""
    torch.manual_seed(0)
    encoder = build_model(case).eval()
    with torch.no_grad():
        data = encoder.data_preprocessor(batch, False)
        return encoder.extract_feat(data['inputs'])


def raw_batch_images(batch: dict) -> torch.Tensor:
    """The loader's raw (B, 3, H, W) images as floats (scorer input)."""
    inputs = batch['inputs']
    if isinstance(inputs, (list, tuple)):
        inputs = torch.stack(list(inputs))
    return inputs.float().to(device())


def bench_sample_batch(cases, args, progress, batch_size: int,
                       tokenizer: str, notes: List[str]) -> dict:
    batch = train_batch(batch_size)
    mdc = next(c for c in CASES if c.name == 'MDC')
    tokens = image_tokens(batch, mdc)
    images = raw_batch_images(batch)
    fns, vocab = {}, None
    for case in cases:
        model = sample_model(case, SAMPLE_LENGTH, tokenizer)
        vocab = model.head.vocab_size
        for label, fn in sampling_fns(case, model, tokens, images,
                                      tokenizer, notes).items():
            with torch.no_grad():
                for _ in range(args.warmup):
                    fn()
            key = f'{case.name} {label}'
            fns[key] = sampling_timer(key, fn, tokens.shape[0])
    samples = interleave(fns, args.rounds, progress,
                         f'sampling, {tokenizer}, batch {batch_size}')
    result = {k: dict(captions_per_s=statistics.median(v), rounds=v)
              for k, v in samples.items()}
    ar = next((k for k in samples if k.startswith('AR ')), None)
    for key in samples:
        if ar and key != ar:
            result[key]['ratio_vs_AR'] = median_ratio(samples[key],
                                                      samples[ar])
    return dict(caption_length=SAMPLE_LENGTH, batch=tokens.shape[0],
                tokenizer=tokenizer, vocab_size=vocab,
                image_tokens=list(tokens.shape), cases=result)


def sampling_timer(key: str, fn: Callable[[], torch.Tensor],
                   batch: int) -> Callable[[], float]:
    """A closure timing ``fn()`` (-> (B, L) ids); returns captions/s."""
    def run() -> float:
        sync()
        start = time.perf_counter()
        with torch.no_grad():
            ids = fn()
        sync()
        seconds = time.perf_counter() - start
        if tuple(ids.shape) != (batch, SAMPLE_LENGTH):
            raise RuntimeError(f'{key}: sampled ids of shape '
                               f'{tuple(ids.shape)}, expected '
                               f'({batch}, {SAMPLE_LENGTH})')
        return batch / seconds
    return run


# ----------------------------------------------------------------- quality
def evaluate(model, loader, kwargs: dict) -> dict:
    from mmengine.evaluator import Evaluator
    evaluator = Evaluator(dict(type='CaptionMetric',
                               scores=['BLEU', 'CIDEr']))
    model.eval()
    images, start = 0, time.perf_counter()
    with torch.no_grad():
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            samples = model.predict(data['inputs'], data['data_samples'],
                                    **kwargs)
            evaluator.process(samples, batch)
            images += len(samples)
    seconds = time.perf_counter() - start
    metrics = evaluator.evaluate(images)
    return dict(images=images, captions_per_s=images / seconds,
                CIDEr=100 * metrics['caption/CIDEr'],
                BLEU_4=100 * metrics['caption/BLEU-4'])


def bench_quality(cases, args, progress, notes) -> dict:
    """CIDEr on the val split of each case's trained checkpoint (its own
    config and encoder, not the shared backbone)."""
    result, todo = {}, []
    for case in cases:
        ckpt = latest_checkpoint(case.checkpoint) if case.checkpoint \
            else None
        if case.checkpoint and ckpt is None:
            notes.append(f'{case.name}: no checkpoint at {case.checkpoint}; '
                         'quality not measured')
        if ckpt:
            todo.append((case, ckpt))
    task = progress.add_task('quality', total=sum(
        len(c.quality_decoders or c.decoders) for c, _ in todo))
    checkpoints = {}
    for case, ckpt in todo:
        cfg = load_cfg(case.config)
        with chdir(ROOT):
            loader = Runner.build_dataloader(
                dict(cfg.val_dataloader, num_workers=0,
                     persistent_workers=False), seed=0)
        model = build_model(case, cfg=copy.deepcopy(cfg.model))
        # strict: quality numbers from a half-loaded model would mislead
        load_checkpoint(model, osp.join(ROOT, ckpt), map_location='cpu',
                        strict=True, logger='silent')
        checkpoints[case.name] = ckpt
        decoders = dict(case.quality_decoders or case.decoders)
        if case.name == 'MDC':
            # At the trained length (16) one token per step is 15 steps.
            length = model.head.max_length
            decoders.pop(f'steps={SAMPLE_LENGTH - 1}', None)
            decoders[f'steps={length - 1} (=L-1)'] = dict(steps=length - 1)
        for label, kwargs in decoders.items():
            torch.manual_seed(0)  # stochastic samplers (D3PM) repeatable
            result[f'{case.name} {label}'] = evaluate(model, loader, kwargs)
            progress.advance(task)
    for name, ref_key in (('MDC', '(=L-1)'), ('D3PM', 'steps=100')):
        rows = {k: v for k, v in result.items() if k.startswith(name + ' ')}
        ref = next((v for k, v in rows.items() if ref_key in k), None)
        if ref:
            for value in rows.values():
                value['CIDEr_vs_ref'] = value['CIDEr'] / ref['CIDEr']
    return dict(split='val', caption_length=16, checkpoints=checkpoints,
                cases=result)


# -------------------------------------------------------------------- data
def bench_data(args, progress) -> dict:
    """data_time / time over a short real training run."""
    task = progress.add_task('data loading (tools/train.py)', total=1)
    with tempfile.TemporaryDirectory() as work_dir:
        cmd = [sys.executable, 'tools/train.py', MDC_CONFIG, '--work-dir',
               work_dir, '--no-validate', '--cfg-options',
               'train_cfg.max_epochs=1', 'default_hooks.logger.interval=10',
               'default_hooks.checkpoint.interval=-1',
               f'+train_dataloader.dataset.indices={args.data_iters * 32}']
        subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True)
        rows = []
        for root, _, files in os.walk(work_dir):
            if 'scalars.json' in files:
                with open(osp.join(root, 'scalars.json')) as f:
                    rows = [json.loads(line) for line in f]
    progress.advance(task)
    rows = [r for r in rows if 'data_time' in r]
    if not rows:
        raise RuntimeError('training run logged no data_time')
    # Skip the first window (worker start-up, first-batch warm-up).
    steady = rows[1:] or rows
    data_time = sum(r['data_time'] for r in steady)
    step_time = sum(r['time'] for r in steady)
    return dict(command=' '.join(cmd[1:]).replace(work_dir, 'TMP'),
                windows=len(steady), data_time_s=data_time / len(steady),
                step_time_s=step_time / len(steady),
                data_share=data_time / step_time,
                first_window_data_share=rows[0]['data_time'] / rows[0]['time'])


# --------------------------------------------------------------------- gpu
def bench_gpu(args, progress) -> dict:
    """ViT-B/16 MDC training images/s and MFU in bf16 (CUDA only).

    With ``--vitb-on-cpu`` (no CUDA) the same code runs in fp32 on the CPU
    for a FLOP count and a smoke test of this section; no MFU is given.
    """
    cuda = torch.cuda.is_available()
    if not cuda and not args.vitb_on_cpu:
        return dict(skipped='no CUDA device: unmeasured')
    from mmengine.optim import build_optim_wrapper
    from mmpretrain.structures import DataSample
    from torch.utils.flop_counter import FlopCounterMode
    cfg = load_cfg('configs/mdc/vit-b_coco.py')
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).to(device()).train()
    optim_cfg = dict(cfg.optim_wrapper)
    if cuda:
        optim_cfg.update(type='AmpOptimWrapper', dtype='bfloat16')
    optim = build_optim_wrapper(model, optim_cfg)
    bsz, length = args.gpu_batch_size, model.head.max_length
    size = cfg.model.backbone.get('img_size', 224)
    gen = torch.Generator().manual_seed(0)
    batch = dict(
        inputs=[torch.randint(0, 255, (3, size, size), dtype=torch.uint8,
                              generator=gen) for _ in range(bsz)],
        data_samples=[DataSample(caption_ids=torch.randint(
            4, model.head.vocab_size, (length,), generator=gen))
            for _ in range(bsz)])
    with FlopCounterMode(display=False) as counter:
        model.train_step(batch, optim)
    flops = counter.get_total_flops()
    for _ in range(args.warmup):
        model.train_step(batch, optim)
    task = progress.add_task('vit-b_coco train step', total=args.rounds)
    rates = []
    for _ in range(args.rounds):
        sync()
        start = time.perf_counter()
        for _ in range(args.steps):
            model.train_step(batch, optim)
        sync()
        rates.append(bsz * args.steps / (time.perf_counter() - start))
        progress.advance(task)
    ips = statistics.median(rates)
    achieved = flops / bsz * ips / 1e12
    result = dict(device=torch.cuda.get_device_name() if cuda else 'cpu',
                  precision='bf16 autocast' if cuda else 'fp32', batch=bsz,
                  images_per_s=ips, train_flops_per_image=flops / bsz,
                  achieved_tflops=achieved)
    if cuda:
        name = result['device']
        peak = args.peak_tflops or next(
            (v for k, v in BF16_PEAK_TFLOPS.items() if k in name), None)
        result.update(peak_bf16_tflops=peak,
                      mfu=achieved / peak if peak else None,
                      peak_memory_bytes=torch.cuda.max_memory_allocated())
    return result


# ----------------------------------------------------------------- profile
def profile(cases, args) -> None:
    """Print torch.profiler's top ops of a train step and of sampling."""
    from torch.profiler import ProfilerActivity, profile as tprofile
    batch = train_batch(args.batch_size)
    for case in cases:
        model = build_model(case).train()
        optim = build_optim(model, case.config)
        for _ in range(args.warmup):
            model.train_step(batch, optim)
        with tprofile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                model.train_step(batch, optim)
        print(f'== {case.name} train step ==')
        print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                        row_limit=15))
        model = sample_model(case, SAMPLE_LENGTH)
        mdc = next(c for c in CASES if c.name == 'MDC')
        tokens = image_tokens(batch, mdc)
        images = raw_batch_images(batch)
        label, fn = next(iter(sampling_fns(case, model, tokens, images,
                                           'shapes', []).items()))
        for bsz in args.sample_batch_sizes:
            sub = sampling_fns(case, model, tokens[:bsz], images[:bsz],
                               'shapes', [])[label]
            with torch.no_grad():
                sub()
                with tprofile(activities=[ProfilerActivity.CPU]) as prof:
                    sub()
            print(f'== {case.name} sample {label}, batch {bsz} ==')
            print(prof.key_averages().table(sort_by='self_cpu_time_total',
                                            row_limit=15))


# -------------------------------------------------------------------- main
def print_tables(results: dict) -> None:
    if 'train' in results:
        print('\ntraining step (same backbone and batch)')
        print(f'{"head":<8}{"samples/s":>11}{"vs AR":>8}{"peak MB":>10}')
        mem = results.get('memory', {})
        for name, row in results['train'].items():
            peak = mem.get(name, {}).get('peak_bytes')
            print(f'{name:<8}{row["samples_per_s"]:>11.1f}'
                  f'{row.get("ratio_vs_AR", 1.0):>8.3f}'
                  f'{(peak or 0) / 2**20:>10.1f}')
    for key, table in results.get('sample', {}).items():
        print(f'\nsampling at caption length {SAMPLE_LENGTH} ({key}, '
              f'vocabulary {table["vocab_size"]})')
        for key, row in table['cases'].items():
            print(f'{key:<26}{row["captions_per_s"]:>10.1f} captions/s'
                  f'{row.get("ratio_vs_AR", 1.0):>8.2f}x AR')
    if 'quality' in results:
        print('\nquality on the val split (trained checkpoints, length 16)')
        for key, row in results['quality']['cases'].items():
            print(f'{key:<26} CIDEr {row["CIDEr"]:6.1f}  BLEU-4 '
                  f'{row["BLEU_4"]:5.1f}  {row["captions_per_s"]:7.1f} '
                  'captions/s')
    if 'data' in results:
        d = results['data']
        print(f'\ndata wait: {100 * d["data_share"]:.1f}% of step time '
              f'({d["data_time_s"] * 1e3:.1f} ms of '
              f'{d["step_time_s"] * 1e3:.1f} ms)')
    if 'gpu' in results:
        print(f'\ngpu: {results["gpu"]}')
    for note in results.get('notes', []):
        print(f'note: {note}')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sections', nargs='+',
                        default=['train', 'memory', 'sample', 'quality',
                                 'data', 'gpu'],
                        choices=['train', 'memory', 'sample', 'quality',
                                 'data', 'gpu'])
    parser.add_argument('--cases', nargs='+', choices=[c.name for c in CASES],
                        help='benchmark only these heads (default: all)')
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--sample-batch-sizes', type=int, nargs='+',
                        default=[1, 32])
    parser.add_argument('--sample-tokenizers', nargs='+',
                        default=['shapes', 'clip'],
                        choices=list(SAMPLE_TOKENIZERS))
    parser.add_argument('--clip-sample-batch-sizes', type=int, nargs='+',
                        default=[8])
    parser.add_argument('--gpu-batch-size', type=int, default=64)
    parser.add_argument('--rounds', type=int, default=15,
                        help='interleaved timed repetitions per case')
    parser.add_argument('--steps', type=int, default=2,
                        help='training steps per timed repetition')
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--data-iters', type=int, default=60,
                        help='training iterations of the data section')
    parser.add_argument('--vitb-on-cpu', action='store_true',
                        help='run the gpu section on the CPU (fp32): FLOP '
                        'count and smoke test')
    parser.add_argument('--peak-tflops', type=float,
                        help='bf16 peak of the GPU (default: from its name)')
    parser.add_argument('--profile', action='store_true',
                        help='print torch.profiler tables and exit')
    parser.add_argument('--out', help='write the results as JSON here')
    parser.add_argument('--memory-probe', help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    init_default_scope('mmpretrain')
    if args.memory_probe:
        print(json.dumps(memory_probe(args.memory_probe, args.batch_size)))
        return {}
    notes: List[str] = []
    cases = active_cases(notes, args.cases)
    if args.profile:
        profile(cases, args)
        return {}
    results: dict = dict(
        device=str(device()), torch=torch.__version__,
        load_average_start=os.getloadavg(),
        threads=torch.get_num_threads(), batch_size=args.batch_size,
        rounds=args.rounds, steps_per_round=args.steps,
        command='python tools/benchmark.py ' + ' '.join(
            sys.argv[1:] if argv is None else argv))
    sections = dict(train=bench_train, memory=bench_memory)
    with Progress(transient=False) as progress:
        for name in args.sections:
            if name in sections:
                results[name] = sections[name](cases, args, progress)
            elif name == 'sample':
                results[name] = bench_sample(cases, args, progress, notes)
            elif name == 'quality':
                results[name] = bench_quality(cases, args, progress, notes)
            elif name == 'data':
                results[name] = bench_data(args, progress)
            elif name == 'gpu':
                results[name] = bench_gpu(args, progress)
    results['load_average_end'] = os.getloadavg()
    results['notes'] = notes
    print_tables(results)
    if args.out:
        atomic_dump_json(results, args.out)
    return results


if __name__ == '__main__':
    main()
