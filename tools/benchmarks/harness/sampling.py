"""The ``sample`` section: captions/s of each head's sampler at caption
length :data:`~.cases.SAMPLE_LENGTH` (32).

This is a deliberate per-head timing of the sampler, not of the decode
entry: the image tokens (B, N, C) of the shared backbone (and D3PM's
(B, N) codes, Prefix's pooled (B, C) embedding) are computed once,
untimed, and the closures call ``head.sample`` on them directly (Prefix:
its mapper too and, for n > 1, reranking), so the backbone is excluded.
``model.predict(inputs, data_samples, num_samples=N, **options)`` is what
the quality section runs. Heads are untrained, rebuilt with
``max_length=32`` and eos forbidden, so every caption has the full length
(greedy AR cannot stop early). Decoders: MDC at 4, 8, 16 and 31 steps
(with CLIP's BPE also 8 and 16 steps with the block cache and its committed
refresh, and the caption-vocabulary rows), AR
greedy with its key/value cache, D3PM at T = 100 and skipped schedules with
and without guidance (a doubled batch), Prefix with n = 1 and n = 5
candidates (reranking by the contrastive scorer included). One table per
tokenizer (shapes, 33 ids; CLIP BPE, 49,410 ids) and batch size.
"""
import copy
import os.path as osp
import statistics
from typing import Callable, Dict, List

import torch
from rich.progress import Progress

from .cases import (SAMPLE_LENGTH, HeadCase, build_model, case_by_name,
                    model_cfg)
from .common import ROOT, chdir, device, load_cfg, train_batch
from .options import BenchmarkOptions
from .timing import interleave, median_ratio, sampling_timer

SAMPLE_TOKENIZERS = dict(shapes=dict(type='ShapesTokenizer'),
                         clip=dict(type='CLIPBPETokenizer'))
#: Caption-vocabulary sizes timed with the CLIP tokenizer, and the decoders
#: of each case that get them.
VOCABULARY_SIZES = (1000, 10000)
VOCABULARY_DECODERS = {'MDC': ('steps=4', 'steps=8'), 'AR': ('greedy+kv', )}
#: Decoders timed with the CLIP tokenizer only: MDC's block cache with the
#: committed refresh (the config's blocks, one step each at 8 steps).
CLIP_ONLY_DECODERS = {'MDC': {
    f'steps={s} cache=committed': dict(steps=s, block_cache=True,
                                       cache_refresh='committed')
    for s in (8, 16)}}


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


def rerank_scorer(case: HeadCase, notes: List[str]) -> torch.nn.Module:
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


def sampling_fns(case: HeadCase, model: torch.nn.Module,
                 tokens: torch.Tensor, images: torch.Tensor, tokenizer: str,
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
    decoders = dict(case.decoders)
    if tokenizer != 'shapes':
        decoders.update(CLIP_ONLY_DECODERS.get(case.name, {}))
    if tokenizer != 'shapes' and case.name in VOCABULARY_DECODERS:
        # the caption-vocabulary lever: the output layer restricted to the
        # first N ids (a stand-in of that size for a corpus vocabulary)
        for size in VOCABULARY_SIZES:
            for label in VOCABULARY_DECODERS[case.name]:
                decoders[f'{label} vocab={size}'] = dict(
                    decoders[label], vocabulary=list(range(size)))
    for label, kwargs in decoders.items():
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


def prefix_sample(model: torch.nn.Module, embed: torch.Tensor,
                  images: torch.Tensor, n: int, scorer,
                  kwargs: dict) -> torch.Tensor:
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


def image_tokens(batch: dict, case: HeadCase) -> torch.Tensor:
    """(B, N, C) tokens of the shared backbone (``case``'s model)."""
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


def bench_sample(cases: List[HeadCase], opts: BenchmarkOptions,
                 progress: Progress, notes: List[str]) -> Dict[str, dict]:
    """``'{tokenizer}/batch{B}'`` -> :func:`bench_sample_batch`'s table."""
    tables = {}
    for name in opts.sample_tokenizers:
        sizes = (opts.sample_batch_sizes if name == 'shapes'
                 else opts.clip_sample_batch_sizes)
        for bsz in sizes:
            tables[f'{name}/batch{bsz}'] = bench_sample_batch(
                cases, opts, progress, bsz, name, notes)
    return tables


def bench_sample_batch(cases: List[HeadCase], opts: BenchmarkOptions,
                       progress: Progress, batch_size: int, tokenizer: str,
                       notes: List[str]) -> dict:
    """One table: ``caption_length``, ``batch``, ``tokenizer``,
    ``vocab_size``, ``image_tokens`` (shape) and ``cases``: ``'{head}
    {label}'`` -> ``captions_per_s``, ``rounds`` (, ``ratio_vs_AR``)."""
    batch = train_batch(batch_size)
    tokens = image_tokens(batch, case_by_name('MDC'))
    images = raw_batch_images(batch)
    fns, vocab = {}, None
    for case in cases:
        model = sample_model(case, SAMPLE_LENGTH, tokenizer)
        vocab = model.head.vocab_size
        for label, fn in sampling_fns(case, model, tokens, images,
                                      tokenizer, notes).items():
            with torch.no_grad():
                for _ in range(opts.warmup):
                    fn()
            key = f'{case.name} {label}'
            fns[key] = sampling_timer(key, fn, tokens.shape[0],
                                      SAMPLE_LENGTH)
    samples = interleave(fns, opts.rounds, progress,
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
