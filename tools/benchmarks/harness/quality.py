"""The ``quality`` section: CIDEr and BLEU-4 (``CaptionMetric``, x100) on
the embedded val split of each case's trained checkpoint, with its own
config and encoder (not the shared backbone), at its own caption length
(16), through :func:`mdc_plugin.evaluation.caption_and_score` (the decode
entry ``model.predict``): MDC per step count, AR greedy, D3PM per step
count at scale 1."""
import copy
import os.path as osp
from typing import List

from mmengine.runner import Runner, load_checkpoint

from mdc_plugin.utils.safe_checkpoint import hardened_checkpoints
from rich.progress import Progress

from mdc_plugin.evaluation import caption_and_score
from .cases import SAMPLE_LENGTH, HeadCase, build_model
from .common import ROOT, chdir, latest_checkpoint, load_cfg
from .options import BenchmarkOptions

METRIC = dict(type='CaptionMetric', scores=['BLEU', 'CIDEr'])


def score(model, loader, decode: dict) -> dict:
    """One decoder on the loader, torch seed 0 (stochastic samplers
    repeatable): ``images``, ``captions_per_s``, ``CIDEr``, ``BLEU_4``."""
    out = caption_and_score(model, loader, METRIC, decode=decode, seed=0)
    metrics = out['metrics']
    return dict(images=out['images'],
                captions_per_s=out['images'] / out['seconds'],
                CIDEr=100 * metrics['caption/CIDEr'],
                BLEU_4=100 * metrics['caption/BLEU-4'])


def bench_quality(cases: List[HeadCase], opts: BenchmarkOptions,
                  progress: Progress, notes: List[str]) -> dict:
    """``split``, ``caption_length``, ``checkpoints`` (name -> path) and
    ``cases``: ``'{head} {label}'`` -> :func:`score`'s dict (and
    ``CIDEr_vs_ref``: vs MDC at L-1 steps, D3PM at 100 steps)."""
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
        with hardened_checkpoints():
            load_checkpoint(model, osp.join(ROOT, ckpt), map_location='cpu',
                            strict=True, logger='silent')
        checkpoints[case.name] = ckpt
        decoders = dict(case.quality_decoders or case.decoders)
        if case.name == 'MDC':
            # At the trained length (16) one token per step is 15 steps.
            length = model.head.max_length
            decoders.pop(f'steps={SAMPLE_LENGTH - 1}', None)
            decoders[f'steps={length - 1} (=L-1)'] = dict(steps=length - 1)
        for label, decode in decoders.items():
            result[f'{case.name} {label}'] = score(model, loader, decode)
            progress.advance(task)
    for name, ref_key in (('MDC', '(=L-1)'), ('D3PM', 'steps=100')):
        rows = {k: v for k, v in result.items() if k.startswith(name + ' ')}
        ref = next((v for k, v in rows.items() if ref_key in k), None)
        if ref:
            for value in rows.values():
                value['CIDEr_vs_ref'] = value['CIDEr'] / ref['CIDEr']
    return dict(split='val', caption_length=16, checkpoints=checkpoints,
                cases=result)
