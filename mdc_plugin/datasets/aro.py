"""ARO benchmarks (Yuksekgonul et al., ICLR 2023) as image-text matching
data sets: VG-Relation, VG-Attribution, COCO-Order and Flickr30k-Order.

Each test case is one image and K >= 2 caption options, exactly one of them
true. Every data_info holds (the contract the matching scorer relies on):

* ``img_path`` (str): the image, loaded by ``LoadCaptionImage``;
* ``caption_options`` (list[str]): the K options, in ARO's order;
* ``true_index`` (int): index of the true option (1 for VG, 0 for Order);
* ``group`` (str): what the macro accuracy averages over;
* ``sample_id`` (str): names the entry in messages, e.g.
  ``'visual_genome_relation.json[17] (image 2345.jpg)'``;
* VG only: ``crop_bbox`` ``(x, y, w, h)``, applied by ``CropToBox``.

The official files are read from a local folder; nothing is downloaded.
See the "ARO (image-text matching benchmarks)" section of
``docs/data_preparation.md``.
"""
import logging
import math
import os.path as osp
import re
from numbers import Real
from typing import Any, Dict, List, Optional, Sequence, Tuple

import mmengine
import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.fileio import join_path
from mmengine.logging import print_log
from mmpretrain.registry import DATASETS

from .base_caption import (ON_CORRUPT, BaseCaptionDataset, CorruptEntryError,
                           check_file, raise_or_count_corrupt)

#: ARO's four order perturbations, in ARO's option order.
ARO_PERTURBATIONS = ('shuffle_nouns_and_adj', 'shuffle_allbut_nouns_and_adj',
                     'shuffle_within_trigrams', 'shuffle_trigrams')
#: The perturbations that need part-of-speech tags (spaCy).
POS_PERTURBATIONS = ARO_PERTURBATIONS[:2]
#: What to pass when spaCy's model is not installed.
TRIGRAM_PERTURBATIONS = ARO_PERTURBATIONS[2:]
SPACY_MODEL = 'en_core_web_sm'
NOUN_TAGS = ('NN', 'NNS', 'NNP', 'NNPS')
ADJ_TAGS = ('JJ', 'JJR', 'JJS')
#: Random redraws before a shuffle that returned the caption unchanged is
#: changed deterministically instead.
MAX_REDRAWS = 100

# ARO's ``pre_caption`` blanks these characters (commas, apostrophes,
# hyphens and question marks stay).
_PUNCT = re.compile(r'[.!"()*#:;~]')
_SPACE_RUNS = re.compile(r'\s{2,}')


class SpacyModelMissingError(ImportError):
    """spaCy or its ``en_core_web_sm`` model cannot be loaded."""


def aro_pre_caption(caption: str, max_words: int = 30) -> str:
    """ARO's caption normalisation (BLIP's ``pre_caption``).

    Lower-cases, blanks ``. ! " ( ) * # : ; ~``, turns runs of two or more
    whitespace characters into one space, strips the ends and keeps the
    first ``max_words`` space-separated words.

    Args:
        caption (str): raw caption.
        max_words (int): words kept.

    Returns:
        str: the normalised caption (``''`` when nothing is left).
    """
    text = _SPACE_RUNS.sub(' ', _PUNCT.sub(' ', caption.lower()))
    text = text.rstrip('\n').strip(' ')
    return ' '.join(text.split(' ')[:max_words])


def trigram_blocks(num_words: int) -> List[List[int]]:
    """Positions ``0..num_words-1`` cut into consecutive groups of 3 (the
    last one may be shorter)."""
    return [list(range(i, min(i + 3, num_words)))
            for i in range(0, num_words, 3)]


def _can_change(items: Sequence, groups: Sequence[Sequence[int]]) -> bool:
    return any(len({items[i] for i in g}) > 1 for g in groups)


def shuffle_within_groups(items: Sequence, groups: Sequence[Sequence[int]],
                          rng: np.random.Generator) -> list:
    """Permute ``items`` at the positions of each group among themselves.

    When some group holds two different items the result differs from
    ``items``: a draw that changes nothing is redrawn (up to
    :data:`MAX_REDRAWS` times, then the first such group is rotated by one).

    Args:
        items: the sequence (words, or word trigrams).
        groups: disjoint lists of positions into ``items``.
        rng: the random generator.

    Returns:
        list: a new list, a permutation of ``items``.
    """
    items = list(items)
    changeable = _can_change(items, groups)
    out = list(items)
    for _ in range(MAX_REDRAWS):
        out = list(items)
        for group in groups:
            if len(group) > 1:
                order = rng.permutation(len(group))
                for pos, k in zip(group, order):
                    out[pos] = items[group[k]]
        if not changeable or out != items:
            return out
    group = next(g for g in groups if len({items[i] for i in g}) > 1)
    out = list(items)
    for pos, src in zip(group, group[1:] + group[:1]):
        out[pos] = items[src]
    return out


def perturb_words(words: Sequence[str], name: str, rng: np.random.Generator,
                  tags: Optional[Sequence[str]] = None) -> List[str]:
    """Apply ARO's perturbation ``name`` to a caption's words.

    * ``shuffle_nouns_and_adj``: nouns swap places among themselves, and
      adjectives among themselves;
    * ``shuffle_allbut_nouns_and_adj``: every word that is neither a noun nor
      an adjective swaps places with the others of its kind;
    * ``shuffle_within_trigrams``: the words of each consecutive trigram are
      shuffled in place;
    * ``shuffle_trigrams``: the trigrams (kept intact) are shuffled.

    Args:
        words: the caption's words.
        name: one of :data:`ARO_PERTURBATIONS`.
        rng: the random generator.
        tags: Penn Treebank tags, one per word (the first two only).

    Returns:
        list[str]: a permutation of ``words``, different from it whenever
        the perturbation can change it.
    """
    words = list(words)
    if name == 'shuffle_within_trigrams':
        return shuffle_within_groups(words, trigram_blocks(len(words)), rng)
    if name == 'shuffle_trigrams':
        blocks = [tuple(words[i] for i in b)
                  for b in trigram_blocks(len(words))]
        shuffled = shuffle_within_groups(blocks, [list(range(len(blocks)))],
                                         rng)
        return [w for block in shuffled for w in block]
    if name not in POS_PERTURBATIONS:
        raise ValueError(f'unknown perturbation {name!r}; allowed: '
                         f'{ARO_PERTURBATIONS}')
    if tags is None or len(tags) != len(words):
        raise ValueError(f'{name} needs one part-of-speech tag per word')
    nouns = [i for i, t in enumerate(tags) if t in NOUN_TAGS]
    adjs = [i for i, t in enumerate(tags) if t in ADJ_TAGS]
    if name == 'shuffle_nouns_and_adj':
        groups = [nouns, adjs]
    else:
        keep = set(nouns) | set(adjs)
        groups = [[i for i in range(len(words)) if i not in keep]]
    return shuffle_within_groups(words, groups, rng)


def load_spacy_tagger(owner: str, perturbations: Sequence[str]) -> Any:
    """``spacy.load('en_core_web_sm')`` or a :class:`SpacyModelMissingError`
    saying how to do without it."""
    try:
        import spacy
        nlp = spacy.load(SPACY_MODEL)
    except (ImportError, OSError) as e:
        needing = tuple(p for p in perturbations if p in POS_PERTURBATIONS)
        raise SpacyModelMissingError(
            f'{owner}: perturbations {needing} tag nouns and adjectives with '
            f"spaCy's English model '{SPACY_MODEL}', which cannot be loaded "
            f'here ({type(e).__name__}: {e}). Either install it (pip install '
            f'spacy && python -m spacy download {SPACY_MODEL}), or pass '
            f'perturbations={TRIGRAM_PERTURBATIONS} (or a precomputed '
            'test-case file, see docs/data_preparation.md)') from e
    for unused in ('parser', 'ner'):  # only the tags are read
        if unused in getattr(nlp, 'pipe_names', ()):
            nlp.disable_pipe(unused)
    return nlp


def word_tags(nlp: Any, texts: Sequence[str]) -> List[List[str]]:
    """One Penn Treebank tag per space-separated word of each text.

    spaCy may split a word (``"man's"`` -> ``man``, ``'s``); the word takes
    the tag of its first token that is not punctuation.

    Args:
        nlp: a loaded spaCy pipeline with a tagger.
        texts: captions.

    Returns:
        list[list[str]]: ``len(text.split(' '))`` tags per text.
    """
    out = []
    for text, doc in zip(texts, nlp.pipe(texts, batch_size=256)):
        tokens = list(doc)
        tags, start, t = [], 0, 0
        for word in text.split(' '):
            end = start + len(word)
            while t < len(tokens) and tokens[t].idx < start:
                t += 1
            inside = []
            while t < len(tokens) and tokens[t].idx < end:
                inside.append(tokens[t])
                t += 1
            words = [tok for tok in inside if not tok.is_punct] or inside
            tags.append(words[0].tag_ if words else '')
            start = end + 1
        out.append(tags)
    return out


def _is_number(value: Any) -> bool:
    return (isinstance(value, Real) and not isinstance(value, bool)
            and math.isfinite(value))


class BaseImageTextMatching(BaseDataset):
    """Shared loading and checks of the ARO matching data sets.

    Args:
        on_corrupt (str): for an entry with an empty caption, a bounding box
            of non-positive size or a missing image: ``'raise'`` (default) an
            error naming it, or ``'skip'`` it (counted, logged, listed in
            :attr:`skipped_entries`). Structural problems (not a dict, a
            missing key, a non-str caption) always raise.
        check_images (bool): check at load time that every image file exists
            (a cheap ``isfile``, no decoding). Defaults to True.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.
    """
    #: ARO's name for the benchmark.
    BENCHMARK = ''

    def __init__(self, *args, on_corrupt: str = 'raise',
                 check_images: bool = True, **kwargs) -> None:
        if on_corrupt not in ON_CORRUPT:
            raise ValueError(f'{type(self).__name__}: on_corrupt must be one '
                             f'of {ON_CORRUPT}, got {on_corrupt!r}')
        self.on_corrupt = on_corrupt
        self.check_images = bool(check_images)
        self.num_skipped = 0
        self.skipped_entries: List[str] = []
        super().__init__(*args, **kwargs)

    # -- helpers ---------------------------------------------------------
    @property
    def ann_name(self) -> str:
        """The annotation file's base name (used in ``sample_id``)."""
        return osp.basename(self.ann_file)

    def corrupt(self, message: str) -> None:
        """Raise :class:`CorruptEntryError`, or count the entry as skipped."""
        raise_or_count_corrupt(self, message)

    def load_entries(self) -> list:
        """The annotation JSON, which must be a non-empty list."""
        name = type(self).__name__
        check_file(self.ann_file, f'{name} annotation file')
        try:
            entries = mmengine.load(self.ann_file, file_format='json')
        except ValueError as e:
            raise ValueError(f'{name}: {self.ann_file} is not valid JSON: '
                             f'{e}') from e
        if not isinstance(entries, list):
            raise ValueError(f'{name}: {self.ann_file} must hold a JSON list '
                             'of test cases, got a '
                             f'{type(entries).__name__}')
        if not entries:
            raise ValueError(f'{name}: {self.ann_file} holds no test cases')
        return entries

    def where(self, entry: Any, idx: int, image_key: str) -> str:
        """``'<ann_file>[idx]'``, plus ``' (image <name>)'`` when the entry
        names its image."""
        where = f'{self.ann_file}[{idx}]'
        image = entry.get(image_key) if isinstance(entry, dict) else None
        return f'{where} (image {image})' if isinstance(image, str) else where

    def image_path(self, image: str) -> str:
        """``image`` joined to ``data_prefix['img_path']``."""
        prefix = self.data_prefix.get('img_path', '')
        return join_path(prefix, image) if prefix else image

    def check_captions(self, values: Sequence[Any],
                       names: Sequence[str]) -> Optional[List[str]]:
        """``list(values)`` if every value is a non-blank str.

        A value that is not a str raises :class:`CorruptEntryError` (never
        skipped); else the first blank one goes to :meth:`corrupt` (raise,
        or one skip for the entry) and None is returned.

        Args:
            values: the captions of one test case.
            names: one label per value for messages (entry and field).
        """
        for value, label in zip(values, names):
            if not isinstance(value, str):
                raise CorruptEntryError(
                    f'{type(self).__name__}: {label} must be a str caption, '
                    f'got {type(value).__name__}: {value!r:.200}')
        for value, label in zip(values, names):
            if not value.strip():
                self.corrupt(f'{label} is an empty caption')
                return None
        return list(values)

    def finish(self, data_list: List[dict]) -> List[dict]:
        """Check the images exist (``check_images``), log skipped entries
        and refuse an empty result."""
        name = type(self).__name__
        if self.check_images:
            data_list = self._drop_missing_images(data_list)
        if self.num_skipped:
            print_log(f'{name}: skipped {self.num_skipped} unusable entries '
                      f'of {self.ann_file}, e.g. {self.skipped_entries[:5]}',
                      logger='current', level=logging.WARNING)
        if not data_list:
            raise ValueError(f'{name}: no usable test cases in '
                             f'{self.ann_file}')
        return data_list

    def _drop_missing_images(self, data_list: List[dict]) -> List[dict]:
        exists: Dict[str, bool] = {}
        for info in data_list:
            path = info['img_path']
            if path not in exists:
                exists[path] = osp.isfile(path)
        missing = [info for info in data_list if not exists[info['img_path']]]
        if not missing:
            return data_list
        if self.on_corrupt == 'raise':
            folder = self.data_prefix.get('img_path', '')
            hint = (f' (the image folder {folder} does not exist)'
                    if folder and not osp.isdir(folder) else '')
            examples = '\n'.join(f'  {info["sample_id"]}: {info["img_path"]}'
                                 for info in missing[:5])
            more = (f'\n  ... and {len(missing) - 5} more'
                    if len(missing) > 5 else '')
            raise FileNotFoundError(
                f'{type(self).__name__}: {len(missing)} of {len(data_list)} '
                f'test cases of {self.ann_file} name an image file that does '
                f'not exist{hint}:\n{examples}{more}\n(set on_corrupt="skip" '
                'to evaluate without them, or check_images=False to defer '
                'the check to loading)')
        for info in missing:
            self.corrupt(f'{info["sample_id"]}: image file not found: '
                         f'{info["img_path"]}')
        return [info for info in data_list if exists[info['img_path']]]


class _AROVisualGenome(BaseImageTextMatching):
    """VG-Relation / VG-Attribution: ``[false_caption, true_caption]`` on a
    crop of a Visual Genome (GQA) image."""
    #: the entry key holding what ``group`` is made from
    GROUP_KEY = ''
    BBOX_KEYS = ('bbox_x', 'bbox_y', 'bbox_w', 'bbox_h')
    #: the default ``ann_file``: ARO's file name
    ANN_FILE = ''

    def __init__(self, data_root: str = '', ann_file: Optional[str] = None,
                 data_prefix: dict = dict(img_path='images'),
                 **kwargs) -> None:
        super().__init__(data_root=data_root,
                         ann_file=self.ANN_FILE if ann_file is None
                         else ann_file,
                         data_prefix=dict(data_prefix), **kwargs)

    def make_group(self, value: Any, where: str) -> str:
        """``group`` from ``entry[GROUP_KEY]``."""
        raise NotImplementedError

    def load_data_list(self) -> List[dict]:
        """One data_info per JSON entry, in file order."""
        keys = ['image_path', 'true_caption', 'false_caption',
                self.GROUP_KEY, *self.BBOX_KEYS]
        data_list = []
        for idx, entry in enumerate(self.load_entries()):
            info = self._parse(entry, idx, keys)
            if info is not None:
                data_list.append(info)
        return self.finish(data_list)

    def _parse(self, entry: Any, idx: int, keys: List[str]
               ) -> Optional[dict]:
        name = type(self).__name__
        where = self.where(entry, idx, 'image_path')
        BaseCaptionDataset.require(entry, keys, f'{name}: {where}')
        image = BaseCaptionDataset.require_str(entry, 'image_path',
                                               f'{name}: {where}')
        sample_id = f'{self.ann_name}[{idx}] (image {image})'
        group = self.make_group(entry[self.GROUP_KEY], where)
        box = [entry[k] for k in self.BBOX_KEYS]
        bad = [f'{k}={v!r}' for k, v in zip(self.BBOX_KEYS, box)
               if not _is_number(v)]
        if bad:
            raise CorruptEntryError(f'{name}: {where}: bounding box values '
                                    f'must be finite numbers, got '
                                    f'{", ".join(bad)}')
        keys = ('false_caption', 'true_caption')
        options = self.check_captions([entry[k] for k in keys],
                                      [f'{where}: field {k!r}' for k in keys])
        if options is None:
            return None
        if box[2] <= 0 or box[3] <= 0:
            self.corrupt(f'{where}: bounding box has non-positive size '
                         f'(bbox_w={box[2]!r}, bbox_h={box[3]!r})')
            return None
        info = dict(img_path=self.image_path(image),
                    caption_options=options, true_index=1, group=group,
                    sample_id=sample_id, crop_bbox=tuple(box))
        if 'image_id' in entry:
            info['image_id'] = entry['image_id']
        return info


@DATASETS.register_module()
class AROVGRelation(_AROVisualGenome):
    """ARO's VG-Relation: 2 options ``[false_caption, true_caption]``
    (``true_index=1``), the false one swapping the relation's subject and
    object; ``group`` is ``relation_name``.

    Reads ARO's ``visual_genome_relation.json``, a list of dicts with
    ``image_path`` (a file name under ``data_prefix['img_path']``),
    ``relation_name``, ``bbox_x``, ``bbox_y``, ``bbox_w``, ``bbox_h``,
    ``true_caption``, ``false_caption`` (others, e.g. ``image_id``, are
    ignored; ``image_id`` is kept in the data_info when present). Each image
    is cropped to the box (``crop_bbox``) by ``CropToBox``, as ARO does.

    Args:
        data_root (str): folder holding ``ann_file`` and the image folder.
        ann_file (str): defaults to ``'visual_genome_relation.json'``.
        data_prefix (dict): ``dict(img_path='images')``, the image folder.
        on_corrupt, check_images: see :class:`BaseImageTextMatching`.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments
            (``pipeline``...).
    """
    BENCHMARK = 'VG_Relation'
    METAINFO = dict(benchmark=BENCHMARK)
    GROUP_KEY = 'relation_name'
    ANN_FILE = 'visual_genome_relation.json'

    def make_group(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise CorruptEntryError(f'{type(self).__name__}: {where}: field '
                                    "'relation_name' must be a non-empty "
                                    f'str, got {value!r:.200}')
        return value


@DATASETS.register_module()
class AROVGAttribution(_AROVisualGenome):
    """ARO's VG-Attribution: 2 options ``[false_caption, true_caption]``
    (``true_index=1``), the false one swapping the two attributes;
    ``group`` is ``f'{attributes[0]}_{attributes[1]}'`` as in ARO.

    Reads ARO's ``visual_genome_attribution.json``: as
    :class:`AROVGRelation` with ``attributes`` (a list of two str) instead
    of ``relation_name``. ARO's macro accuracy leaves out attribute pairs
    with fewer than 25 cases: ``ImageTextMatchingAccuracy(min_group_size=25)``.

    Args:
        data_root (str): folder holding ``ann_file`` and the image folder.
        ann_file (str): defaults to ``'visual_genome_attribution.json'``.
        data_prefix (dict): ``dict(img_path='images')``, the image folder.
        on_corrupt, check_images: see :class:`BaseImageTextMatching`.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.
    """
    BENCHMARK = 'VG_Attribution'
    METAINFO = dict(benchmark=BENCHMARK)
    GROUP_KEY = 'attributes'
    ANN_FILE = 'visual_genome_attribution.json'

    def make_group(self, value: Any, where: str) -> str:
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(a, str) and a.strip() for a in value)):
            raise CorruptEntryError(f'{type(self).__name__}: {where}: field '
                                    "'attributes' must be a list of two "
                                    f'non-empty str, got {value!r:.200}')
        return f'{value[0]}_{value[1]}'


class _AROOrder(BaseImageTextMatching):
    """COCO-Order / Flickr30k-Order (see :class:`AROCOCOOrder`)."""

    #: the default ``ann_file``: BLIP's Karpathy test list
    ANN_FILE = ''

    def __init__(self, data_root: str = '', ann_file: Optional[str] = None,
                 data_prefix: dict = dict(img_path=''),
                 perturbations: Sequence[str] = ARO_PERTURBATIONS,
                 seed: int = 0, max_words: int = 30, **kwargs) -> None:
        name = type(self).__name__
        if ann_file is None:
            ann_file = self.ANN_FILE
        if isinstance(perturbations, str):
            perturbations = (perturbations, )
        perturbations = tuple(perturbations)
        unknown = [p for p in perturbations if p not in ARO_PERTURBATIONS]
        if unknown:
            raise ValueError(f'{name}: unknown perturbation(s) {unknown}; '
                             f'allowed: {ARO_PERTURBATIONS}')
        if not perturbations:
            raise ValueError(f'{name}: perturbations is empty; choose from '
                             f'{ARO_PERTURBATIONS}')
        if len(set(perturbations)) != len(perturbations):
            raise ValueError(f'{name}: perturbations {perturbations} repeat '
                             'a name')
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f'{name}: seed must be an int >= 0, got '
                             f'{seed!r}')
        if (isinstance(max_words, bool) or not isinstance(max_words, int)
                or max_words < 1):
            raise ValueError(f'{name}: max_words must be an int >= 1, got '
                             f'{max_words!r}')
        self.perturbations = perturbations
        self.seed = seed
        self.max_words = max_words
        self.precomputed: Optional[bool] = None
        super().__init__(data_root=data_root, ann_file=ann_file,
                         data_prefix=dict(data_prefix), **kwargs)

    def load_data_list(self) -> List[dict]:
        """One data_info per (image, caption), or per precomputed case."""
        entries = self.load_entries()
        first = entries[0]
        self.precomputed = isinstance(first, dict) and \
            'caption_options' in first
        if self.precomputed:
            data_list = self._load_precomputed(entries)
            how = 'precomputed options'
        else:
            data_list = self._load_karpathy(entries)
            how = (f'original + {", ".join(self.perturbations)}, seed '
                   f'{self.seed}')
        data_list = self.finish(data_list)
        print_log(f'{type(self).__name__}: {len(data_list)} test cases from '
                  f'{self.ann_file} ({how})', logger='current')
        return data_list

    def _load_precomputed(self, entries: list) -> List[dict]:
        name = type(self).__name__
        data_list = []
        for idx, entry in enumerate(entries):
            where = self.where(entry, idx, 'image')
            BaseCaptionDataset.require(entry, ['image', 'caption_options'],
                                       f'{name}: {where} (precomputed format, '
                                       f'as {self.ann_name}[0])')
            image = BaseCaptionDataset.require_str(entry, 'image',
                                                   f'{name}: {where}')
            options = entry['caption_options']
            if not isinstance(options, list) or len(options) < 2:
                raise CorruptEntryError(
                    f'{name}: {where}: caption_options must be a list of at '
                    f'least 2 captions (true first), got {options!r:.200}')
            checked = self.check_captions(
                options, [f'{where}: caption_options[{k}]'
                          for k in range(len(options))])
            if checked is None:
                continue
            data_list.append(dict(
                img_path=self.image_path(image), caption_options=checked,
                true_index=0, group=self.BENCHMARK,
                sample_id=f'{self.ann_name}[{idx}] (image {image})'))
        return data_list

    def _load_karpathy(self, entries: list) -> List[dict]:
        name = type(self).__name__
        cases: List[Tuple[int, int, str, str]] = []  # idx, j, image, true
        for idx, entry in enumerate(entries):
            where = self.where(entry, idx, 'image')
            BaseCaptionDataset.require(entry, ['image', 'caption'],
                                       f'{name}: {where}')
            image = BaseCaptionDataset.require_str(entry, 'image',
                                                   f'{name}: {where}')
            captions = entry['caption']
            if isinstance(captions, str):
                captions = [captions]
            if not isinstance(captions, list) or not captions:
                raise CorruptEntryError(
                    f'{name}: {where}: field "caption" must be a str or a '
                    f'non-empty list of str, got {captions!r:.200}')
            for j, raw in enumerate(captions):
                if self.check_captions([raw], [f'{where}: caption[{j}]']) \
                        is None:
                    continue
                true = aro_pre_caption(raw, self.max_words)
                if not true:
                    self.corrupt(f'{where}: caption[{j}] {raw!r} is empty '
                                 'after normalisation')
                    continue
                cases.append((idx, j, image, true))
        tags: List[Optional[List[str]]] = [None] * len(cases)
        if any(p in POS_PERTURBATIONS for p in self.perturbations):
            nlp = load_spacy_tagger(name, self.perturbations)
            tags = word_tags(nlp, [c[3] for c in cases])
        names = ['original', *self.perturbations]
        data_list = []
        for (idx, j, image, true), case_tags in zip(cases, tags):
            words = true.split(' ')
            options = [true]
            for p in self.perturbations:
                rng = np.random.default_rng(
                    [self.seed, idx, j, ARO_PERTURBATIONS.index(p)])
                options.append(' '.join(perturb_words(words, p, rng,
                                                      case_tags)))
            data_list.append(dict(
                img_path=self.image_path(image), caption_options=options,
                true_index=0, group=self.BENCHMARK, option_names=names,
                sample_id=f'{self.ann_name}[{idx}] caption {j} (image '
                f'{image})'))
        return data_list


@DATASETS.register_module()
class AROCOCOOrder(_AROOrder):
    """ARO's COCO-Order: each (image, caption) of the COCO Karpathy test
    split against 4 word-order perturbations of that caption.

    Options: the caption normalised by :func:`aro_pre_caption` (true, index
    0), then one perturbed copy per name in ``perturbations`` (see
    :func:`perturb_words`). Each perturbed option is a permutation of the
    true option's words, different from it whenever the perturbation can
    change it, drawn from a generator seeded by ``(seed, image index,
    caption index, perturbation)``: the same seed gives the same cases on
    every machine. ``group`` is ``'COCO_Order'`` for every case (ARO
    reports one accuracy); data_infos also hold ``option_names``
    (``['original', *perturbations]``).

    Two annotation formats, detected from the first entry:

    * BLIP's ``coco_karpathy_test.json``: ``[{"image":
      "val2014/COCO_val2014_...jpg", "caption": [5 str], ...}]``;
    * precomputed cases, e.g. exported from ARO: ``[{"image": ...,
      "caption_options": [true, perturbed, ...]}]`` (true first, used
      verbatim; ``perturbations``, ``seed``, ``max_words`` unused).

    The noun/adjective perturbations need spaCy's ``en_core_web_sm``;
    without it the build raises :class:`SpacyModelMissingError` unless
    ``perturbations=TRIGRAM_PERTURBATIONS`` (or the file is precomputed).

    Args:
        data_root (str): folder holding ``ann_file`` and the images.
        ann_file (str): defaults to ``'coco_karpathy_test.json'``.
        data_prefix (dict): ``dict(img_path='')``: the ``image`` paths are
            relative to ``data_root``.
        perturbations (Sequence[str]): a subset of
            :data:`ARO_PERTURBATIONS` (default: all four, ARO's order).
        seed (int): seed of the shuffles (>= 0).
        max_words (int): words kept per caption (ARO: 30).
        on_corrupt, check_images: see :class:`BaseImageTextMatching`.
        **kwargs: :class:`~mmengine.dataset.BaseDataset` arguments.
    """
    BENCHMARK = 'COCO_Order'
    METAINFO = dict(benchmark=BENCHMARK)
    ANN_FILE = 'coco_karpathy_test.json'


@DATASETS.register_module()
class AROFlickr30kOrder(_AROOrder):
    """ARO's Flickr30k-Order: as :class:`AROCOCOOrder` on BLIP's
    ``flickr30k_test.json`` (``[{"image": "flickr30k-images/...jpg",
    "caption": [5 str]}]``); ``group`` is ``'Flickr30k_Order'``."""
    BENCHMARK = 'Flickr30k_Order'
    METAINFO = dict(benchmark=BENCHMARK)
    ANN_FILE = 'flickr30k_test.json'
