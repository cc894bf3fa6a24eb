"""CaptionMetric: COCO caption scores, CLIPScore and diversity in MMEngine."""
import logging
import math
import os.path as osp
from typing import Any, Dict, Hashable, List, Optional, Sequence, Union

import numpy as np
from mmengine.dist import is_main_process
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmpretrain.registry import METRICS, MODELS

from mdc_plugin.models.scorers import ImageTextScorer

from ...utils.atomic_io import atomic_dump_json, json_safe
from ..functional import (REFERENCE_SCORES, coco_caption_scores,
                          corpus_diversity, ptb_tokenize, sample_diversity,
                          shared_meteor_scorer, spice_unavailable_reason)
from ..functional.java import java_executable
from .references import (as_caption_list, load_caption_annotations,
                         normalize_image_id)

#: Names accepted in ``scores`` (case-insensitive), in result order.
VALID_SCORES = ('BLEU', 'METEOR', 'ROUGE-L', 'CIDEr', 'SPICE', 'CLIPScore',
                'RefCLIPScore', 'Diversity')
_ALIASES = {
    'rouge': 'ROUGE-L', 'rouge_l': 'ROUGE-L', 'cider-d': 'CIDEr',
    'clip-s': 'CLIPScore', 'refclip-s': 'RefCLIPScore'
}
_CLIP_SCORES = ('CLIPScore', 'RefCLIPScore')
_RESULT_ORDER = ('BLEU-1', 'BLEU-2', 'BLEU-3', 'BLEU-4', 'METEOR', 'ROUGE-L',
                 'CIDEr', 'SPICE', 'CLIPScore', 'RefCLIPScore', 'Dist-1',
                 'Dist-2', 'Dist-3', 'Vocab', 'MeanLength', 'Self-BLEU-4',
                 'Div-1', 'Div-2')
_WARNED: set = set()


def _warn_once(message: str) -> None:
    """Log a warning once per process."""
    if message not in _WARNED:
        _WARNED.add(message)
        print_log(message, logger='current', level=logging.WARNING)


def _canonical_scores(scores: Union[str, Sequence[str]]) -> List[str]:
    if isinstance(scores, str):
        scores = [scores]
    by_lower = {name.lower(): name for name in VALID_SCORES}
    by_lower.update(_ALIASES)
    out = []
    for name in scores:
        canon = by_lower.get(str(name).lower())
        if canon is None:
            raise ValueError(f'CaptionMetric: unknown score {name!r}; valid '
                             f'names: {", ".join(VALID_SCORES)}')
        if canon not in out:
            out.append(canon)
    return out


@METRICS.register_module()
class CaptionMetric(BaseMetric):
    """Captioning metric for any model that fills ``pred_caption``.

    Reference-based scores (BLEU-1..4, METEOR, ROUGE-L, CIDEr (the COCO
    toolkit's CIDEr-D), SPICE) equal pycocoevalcap's ``COCOEvalCap`` (same
    PTB tokenization and definitions; 0-1 scale, CIDEr 0-10) and are
    computed faster (see :mod:`mdc_plugin.evaluation.functional`).
    CLIPScore / RefCLIPScore come from an image-text scorer
    (:mod:`mdc_plugin.models.scorers`), diversity scores from
    :mod:`mdc_plugin.evaluation.functional.diversity`.

    ``process`` reads from each data sample (DataSample or dict):

    * ``pred_caption`` (str): the scored prediction; None or ``''`` is
      scored as the empty string (counted and warned about);
    * ``gt_caption`` (str or list of str), else the references of
      ``image_id`` in ``ann_file`` (as MMPretrain's ``COCOCaption``);
    * ``image_id``: duplicates (e.g. distributed-sampler padding) are
      dropped, the first kept;
    * ``pred_captions`` (list of str, optional): several samples for the
      image, for Self-BLEU / Div-n;
    * for CLIPScore, the raw images in ``data_batch['inputs']``.

    Predictions without references are left out of the reference-based
    scores (and RefCLIPScore) with a logged count; they still count for
    CLIPScore and diversity. If no prediction has references, a
    ``ValueError`` says so.

    Java is needed for METEOR, for SPICE and for captions the Python PTB
    tokenizer does not cover. Without Java, METEOR and SPICE are skipped
    with a warning; SPICE is also skipped (warned once, never downloaded)
    when its Stanford CoreNLP jars are absent.

    Args:
        scores (str | Sequence[str]): Any of :data:`VALID_SCORES`. ``'BLEU'``
            gives BLEU-1..BLEU-4; ``'Diversity'`` equals ``diversity=True``.
        ann_file (str, optional): COCO-format caption annotations.
        clip_scorer (dict | ImageTextScorer, optional): Config of the
            image-text scorer (``type='OpenCLIPScorer'`` or
            ``'PluginModelScorer'``) for CLIPScore / RefCLIPScore.
        diversity (bool): Add Dist-1/2/3, Vocab, MeanLength and, with
            ``pred_captions``, Self-BLEU-4 and Div-1/2.
        dump_per_image (str, optional): JSON file to write per-image
            predictions, references and scores to (atomically).
        meteor_workers (int): METEOR JVMs (each ~1 GB RAM).
        meteor_warmup (int): Synthetic segments scored when the METEOR JVM
            starts (at construction, in the background).
        collect_device (str): ``'cpu'`` or ``'gpu'``.
        prefix (str): Result key prefix, e.g. ``caption/BLEU-4``.
        collect_dir (str, optional): Folder for CPU result collection.
    """
    default_prefix: Optional[str] = 'caption'

    def __init__(self,
                 scores: Union[str, Sequence[str]] = ('BLEU', 'METEOR',
                                                      'ROUGE-L', 'CIDEr'),
                 ann_file: Optional[str] = None,
                 clip_scorer: Union[dict, ImageTextScorer, None] = None,
                 diversity: bool = False,
                 dump_per_image: Optional[str] = None,
                 meteor_workers: int = 1,
                 meteor_warmup: int = 3000,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = 'caption',
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        self.scores = _canonical_scores(scores)
        if 'Diversity' in self.scores:
            diversity = True
            self.scores.remove('Diversity')
        self.diversity = bool(diversity)
        self.ann_file = ann_file
        self._annotations: Optional[Dict[Hashable, List[str]]] = None
        self.dump_per_image = dump_per_image
        self.meteor_workers = meteor_workers
        self.meteor_warmup = meteor_warmup
        self._skipped: Dict[str, str] = {}

        java = java_executable()
        for name in ('METEOR', 'SPICE'):
            if name in self.scores and java is None:
                self._skip(name, 'no `java` executable on PATH')
        if 'SPICE' in self.scores and 'SPICE' not in self._skipped:
            reason = spice_unavailable_reason()
            if reason is not None:
                self._skip('SPICE', reason)
        if 'METEOR' in self.ref_scores and is_main_process():
            # start the JVM now so it is warm when compute_metrics runs
            shared_meteor_scorer(meteor_workers, meteor_warmup)

        self.clip_scorer: Optional[ImageTextScorer] = None
        wants_clip = [n for n in _CLIP_SCORES if n in self.scores]
        if wants_clip and clip_scorer is None:
            raise ValueError(
                f'CaptionMetric: {" and ".join(wants_clip)} need clip_scorer, '
                "e.g. clip_scorer=dict(type='OpenCLIPScorer', "
                "model_name='ViT-B-32', checkpoint='/path/to/weights.pt')")
        if clip_scorer is not None and not wants_clip:
            _warn_once('CaptionMetric: clip_scorer is set but scores has '
                       'neither CLIPScore nor RefCLIPScore; it is not used')
        elif wants_clip:
            self.clip_scorer = self._build_scorer(clip_scorer)

    # ------------------------------------------------------------------
    @property
    def ref_scores(self) -> List[str]:
        """Reference-based scores that will run."""
        return [n for n in REFERENCE_SCORES
                if n in self.scores and n not in self._skipped]

    def _skip(self, name: str, reason: str) -> None:
        self._skipped[name] = reason
        _warn_once(f'CaptionMetric: {name} is skipped: {reason}. The other '
                   'scores are still computed.')

    @staticmethod
    def _build_scorer(cfg: Union[dict, ImageTextScorer]) -> ImageTextScorer:
        if isinstance(cfg, ImageTextScorer):
            return cfg
        try:
            scorer = MODELS.build(cfg)
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f'CaptionMetric(clip_scorer={cfg!r}): {e}') from e
        if not isinstance(scorer, ImageTextScorer):
            raise TypeError('CaptionMetric: clip_scorer must build an '
                            f'ImageTextScorer, got {type(scorer).__name__}')
        return scorer

    @property
    def annotations(self) -> Dict[Hashable, List[str]]:
        """``image id -> references`` from ``ann_file`` (loaded once)."""
        if self._annotations is None:
            self._annotations = (load_caption_annotations(self.ann_file)
                                 if self.ann_file is not None else {})
        return self._annotations

    def _references(self, record: dict) -> Optional[List[str]]:
        if record['refs'] is not None:
            return record['refs'] or None
        if self.ann_file is None or record['image_id'] is None:
            return None
        return self.annotations.get(record['image_id']) or None

    # ------------------------------------------------------------------
    def process(self, data_batch: Any, data_samples: Sequence) -> None:
        """Store the prediction (and CLIP scores) of each sample.

        Args:
            data_batch (dict | None): The batch; ``data_batch['inputs']``
                (Tensor[B, 3, H, W] or list of Tensor[3, H, W], raw 0-255)
                is read only for CLIPScore / RefCLIPScore.
            data_samples (Sequence[DataSample | dict]): Model outputs.
        """
        records = [self._record(s) for s in data_samples]
        if self.clip_scorer is not None and records:
            self._add_clip_scores(data_batch, records)
        self.results.extend(records)

    def _record(self, sample: Any) -> dict:
        get = sample.get
        pred = get('pred_caption', None)
        if pred is None:
            pred = ''
        if not isinstance(pred, str):
            raise TypeError('CaptionMetric: pred_caption must be a str, got '
                            f'{type(pred).__name__}: {pred!r:.80}')
        samples = as_caption_list(get('pred_captions', None), 'pred_captions')
        return dict(
            image_id=normalize_image_id(get('image_id', None)),
            pred=pred,
            refs=as_caption_list(get('gt_caption', None), 'gt_caption'),
            samples=samples,
        )

    def _add_clip_scores(self, data_batch: Any, records: List[dict]) -> None:
        inputs = data_batch.get('inputs') if isinstance(data_batch,
                                                        dict) else None
        if inputs is None or len(inputs) != len(records):
            raise ValueError(
                'CaptionMetric: CLIPScore needs the raw images in '
                "data_batch['inputs'], one per data sample (got "
                f'{"none" if inputs is None else len(inputs)} for '
                f'{len(records)} samples)')
        refs = None
        if 'RefCLIPScore' in self.scores:
            refs = [self._references(r) for r in records]
        clip_s, ref_clip = self.clip_scorer.score(
            inputs, [r['pred'] for r in records], refs)
        for k, record in enumerate(records):
            record['CLIPScore'] = float(clip_s[k])
            if ref_clip is not None:
                record['RefCLIPScore'] = float(ref_clip[k])

    # ------------------------------------------------------------------
    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Scores of all (gathered) predictions; keys as in ``_RESULT_ORDER``.

        Args:
            results (list[dict]): Records from :meth:`process` of all ranks.

        Returns:
            dict: score name (``'BLEU-4'``, ``'CIDEr'``, ...) -> float.
        """
        logger = MMLogger.get_current_instance()
        records = self._unique(results, logger)
        if not records:
            logger.warning('CaptionMetric: no predictions to score')
            return {}
        metrics: Dict[str, float] = {}
        per_image: List[Dict[str, Any]] = [{} for _ in records]

        empty = sum(1 for r in records if not r['pred'].strip())
        if empty:
            logger.warning(
                f'CaptionMetric: {empty} of {len(records)} predictions are '
                "empty; they are scored as the empty string ''")
        refs = [self._references(r) for r in records]
        with_refs = [i for i, rs in enumerate(refs) if rs]
        if self.ref_scores:
            missing = len(records) - len(with_refs)
            if not with_refs:
                raise ValueError(
                    f'CaptionMetric: none of the {len(records)} predictions '
                    'has references; give gt_caption in the data samples or '
                    'an ann_file whose image ids match the samples\' image_id')
            if missing:
                logger.warning(
                    f'CaptionMetric: {missing} of {len(records)} predictions '
                    'have no references (no gt_caption and image_id not in '
                    f'ann_file); they are left out of '
                    f'{"/".join(self.ref_scores)}')
            corpus, per = coco_caption_scores(
                [records[i]['pred'] for i in with_refs],
                [refs[i] for i in with_refs],
                scores=self.ref_scores,
                meteor=(shared_meteor_scorer(self.meteor_workers,
                                             self.meteor_warmup)
                        if 'METEOR' in self.ref_scores else None))
            metrics.update(corpus)
            for name, values in per.items():
                for i, value in zip(with_refs, values):
                    per_image[i][name] = value

        for name in _CLIP_SCORES:
            if name in self.scores:
                values = np.array([r.get(name, math.nan) for r in records],
                                  dtype=np.float64)
                for i, value in enumerate(values):
                    per_image[i][name] = float(value)
                valid = values[~np.isnan(values)]
                if len(valid) < len(values):
                    logger.warning(
                        f'CaptionMetric: {len(values) - len(valid)} of '
                        f'{len(values)} predictions have no {name} (no '
                        'references); the mean leaves them out')
                metrics[name] = float(valid.mean()) if len(valid) else \
                    math.nan

        if self.diversity:
            metrics.update(self._diversity(records))

        metrics = {k: float(metrics[k]) for k in _RESULT_ORDER
                   if k in metrics}
        if self.dump_per_image:
            self._dump(records, refs, per_image)
        logger.info('CaptionMetric on %d images: %s', len(records), ', '.join(
            f'{k}: {v:.4f}' for k, v in metrics.items()))
        for name, reason in self._skipped.items():
            logger.warning('CaptionMetric: %s was not computed (%s)', name,
                           reason)
        return metrics

    @staticmethod
    def _unique(results: List[dict], logger: MMLogger) -> List[dict]:
        seen = set()
        records = []
        for r in results:
            key = r['image_id']
            if key is not None:
                if key in seen:
                    continue
                seen.add(key)
            records.append(r)
        if len(records) < len(results):
            dropped = len(results) - len(records)
            logger.info(f'CaptionMetric: dropped {dropped} '
                        'repeated predictions for the same image_id (first '
                        'kept)')
        return records

    @staticmethod
    def _diversity(records: List[dict]) -> Dict[str, float]:
        out = corpus_diversity(ptb_tokenize([r['pred'] for r in records]))
        groups = [r['samples'] for r in records if r['samples']]
        if groups:
            flat = ptb_tokenize([s for g in groups for s in g])
            tokenized, pos = [], 0
            for g in groups:
                tokenized.append(flat[pos:pos + len(g)])
                pos += len(g)
            out.update(sample_diversity(tokenized))
        return out

    def _dump(self, records: List[dict], refs: List[Optional[List[str]]],
              per_image: List[Dict[str, Any]]) -> None:
        rows = []
        for r, rs, scores in zip(records, refs, per_image):
            row = dict(image_id=r['image_id'], pred_caption=r['pred'],
                       references=rs or [])
            if r['samples']:
                row['pred_captions'] = r['samples']
            row.update({k: scores[k] for k in _RESULT_ORDER if k in scores})
            rows.append(row)
        atomic_dump_json(json_safe(rows), self.dump_per_image, indent=1,
                         ensure_ascii=False, allow_nan=False)
        MMLogger.get_current_instance().info(
            'CaptionMetric: per-image scores written to '
            f'{osp.abspath(self.dump_per_image)}')



# MMEngine's own METRICS registry too, so that a bare
# ``Evaluator([dict(type='CaptionMetric')])`` outside a runner (default
# scope unset) finds it; inside MMPretrain's scope the registry above wins.
if 'CaptionMetric' not in MMENGINE_METRICS.module_dict:
    MMENGINE_METRICS.register_module(name='CaptionMetric',
                                     module=CaptionMetric)
