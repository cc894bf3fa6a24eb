"""Reproducible, COCO-like synthetic caption corpora.

A benchmark/test fixture, kept beside ``benchmark_caption_metric.py`` (which
imports it as a sibling) and put on ``sys.path`` by ``tests/conftest.py``;
not part of the installed package.

Used by the parity tests and the benchmark: the same ``seed`` always gives
the same images, references and predictions, so figures can be re-measured.
The captions mimic MS-COCO references: mixed case, optional final period,
commas, contractions and possessives, hyphenated and numeric words, the
odd quote or parenthesis, double spaces and a little non-ASCII text.
"""
import random
from typing import Dict, List, Tuple

_DETS = ['a', 'the', 'one', 'a', 'a', 'an old', 'a small', 'a large']
_SUBJECTS = [
    'man', 'woman', 'boy', 'girl', 'child', 'person', 'dog', 'cat', 'horse',
    'cow', 'sheep', 'elephant', 'giraffe', 'zebra', 'bear', 'bird', 'train',
    'bus', 'truck', 'car', 'motorcycle', 'bicycle', 'airplane', 'boat',
    'skier', 'surfer', 'skateboarder', 'player', 'chef', 'baby', 'couple',
    'teddy bear', 'clock tower', 'fire hydrant', 'stop sign', 'pizza',
    'sandwich', 'plate of food', 'kitchen', 'bathroom', 'living room',
    'tennis player', 'baseball player', 'police officer', 'group of people',
    'herd of cattle', 'flock of birds', 'pair of scissors', 'laptop',
    'computer monitor', 'cell phone', 'vase of flowers', 'bowl of fruit',
]
_ADJS = [
    'young', 'old', 'little', 'big', 'white', 'black', 'brown', 'red', 'blue',
    'green', 'yellow', 'orange', 'gray', 'colorful', 'wooden', 'empty',
    'crowded', 'busy', 'cute', 'happy', 'tall', 'long', 'large', 'small',
    'black-and-white', 'three-story', 'double-decker', 'well-lit',
    'half-eaten', 'snow-covered', 'grassy', 'sunny', 'dirty', 'clean',
]
_VERBS = [
    'sitting on', 'standing next to', 'riding', 'holding', 'walking down',
    'looking at', 'eating', 'playing with', 'flying over', 'parked near',
    'laying on', 'jumping over', 'carrying', 'throwing', 'catching',
    'driving down', 'waiting at', 'leaning against', 'hanging from',
    'grazing in', 'swimming in', 'resting under', 'covered with',
    'surrounded by', 'filled with', 'in front of', 'on top of', 'inside',
]
_OBJECTS = [
    'table', 'bench', 'street', 'field', 'beach', 'wave', 'surfboard',
    'skateboard', 'frisbee', 'kite', 'umbrella', 'bed', 'couch', 'chair',
    'window', 'building', 'tree', 'fence', 'road', 'sidewalk', 'river',
    'lake', 'snow', 'hill', 'mountain', 'grass', 'water', 'cake', 'donut',
    'banana', 'broccoli', 'hot dog', 'tennis racket', 'baseball bat', 'ball',
    'train station', 'parking lot', 'city street', 'dirt road', 'zoo',
    'toilet', 'sink', 'refrigerator', 'oven', 'microwave', 'television',
    'airport runway', 'traffic light', 'crowd', 'brick wall', 'pond',
]
_PLACES = [
    'in a park', 'on a sunny day', 'at night', 'in the snow', 'near the water',
    'in a kitchen', 'on the beach', 'in the city', 'next to a building',
    'on a field', 'at the zoo', 'in the background', 'by the road',
    'under a tree', 'in a room', 'outside', 'during the day', 'at a table',
]
_NUMBERS = ['two', 'three', 'four', 'several', 'many', 'some', '2', '3',
            '10', 'a couple of', 'a few']
_THERE = ["There's", 'There is', 'This is', "It's", 'Here is', 'A photo of',
          'An image of', 'A picture of', 'A close up of', 'A view of']
_POSSESSORS = ["man's", "woman's", "dog's", "child's", "girls'", "players'"]
_EXTRAS = [
    ', and', ' with', ' while', ' as', ', which is', ' that is', ' and',
]
_RARE = ['café', 'naïve', 'crème brûlée', 'piñata', 'jalapeño', '“fresh”',
         '(blurry)', '"vintage"', 'U.S.', 'Mr. Smith', '1,000', '3.5',
         '10:30', 'a.m.', 'don\'t', "isn't", "can't", 'etc.', 'T-shirt',
         '$5', '50%', 'w/', '&', 'e.g.', '--', '...', ';', ':', '!', '?']


def _noun_phrase(rng: random.Random, nouns: List[str]) -> str:
    """Return e.g. ``'a big brown dog'`` or ``'two dogs'``."""
    noun = rng.choice(nouns)
    r = rng.random()
    if r < 0.15:
        plural = noun + ('es' if noun.endswith(('s', 'h')) else 's')
        return f'{rng.choice(_NUMBERS)} {plural}'
    if r < 0.22:
        return f'a {rng.choice(_POSSESSORS)} {noun}'
    adjs = rng.sample(_ADJS, k=rng.choice([0, 0, 1, 1, 1, 2]))
    det = rng.choice(_DETS)
    if det == 'a' and (adjs or [noun])[0][0] in 'aeiou':
        det = 'an'
    return ' '.join([det] + adjs + [noun])


def _clause(rng: random.Random, subject: str) -> str:
    """Return one subject-verb-object clause about ``subject``."""
    words = [subject, rng.choice(_VERBS), _noun_phrase(rng, _OBJECTS)]
    if rng.random() < 0.4:
        words.append(rng.choice(_PLACES))
    return ' '.join(words)


def _surface(rng: random.Random, text: str, rare_rate: float) -> str:
    """COCO-style surface noise: case, punctuation, spacing, rare words."""
    if rng.random() < rare_rate:
        words = text.split(' ')
        pos = rng.randrange(len(words) + 1)
        words.insert(pos, rng.choice(_RARE))
        text = ' '.join(words)
    if rng.random() < 0.75:
        text = text[0].upper() + text[1:]
    r = rng.random()
    if r < 0.5:
        text += '.'
    elif r < 0.55:
        text += ' .'
    elif r < 0.58:
        text += '!'
    if rng.random() < 0.05:
        text = text.replace(' ', '  ', 1)
    if rng.random() < 0.05:
        text = ' ' + text + ' '
    if rng.random() < 0.02:
        text = text.upper()
    return text


def make_caption(rng: random.Random, subject: str,
                 rare_rate: float = 0.08) -> str:
    """Return one synthetic caption about ``subject`` (str)."""
    r = rng.random()
    if r < 0.15:
        text = f'{rng.choice(_THERE)} {_clause(rng, subject)}'
    else:
        text = _clause(rng, subject)
    if rng.random() < 0.3:
        other = _noun_phrase(rng, _SUBJECTS)
        text += f'{rng.choice(_EXTRAS)} {_clause(rng, other)}'
    return _surface(rng, text, rare_rate)


def _perturb(rng: random.Random, text: str) -> str:
    """Drop, swap or replace a few words of ``text`` (a model-like guess)."""
    words = text.split()
    for _ in range(rng.randint(1, 3)):
        if len(words) < 3:
            break
        op = rng.random()
        i = rng.randrange(len(words))
        if op < 0.35:
            del words[i]
        elif op < 0.7:
            words[i] = rng.choice(_ADJS + _OBJECTS)
        else:
            j = rng.randrange(len(words))
            words[i], words[j] = words[j], words[i]
    return ' '.join(words)


def make_corpus(num_images: int = 500,
                refs_per_image: int = 5,
                seed: int = 0,
                samples_per_image: int = 0
                ) -> Tuple[Dict[int, List[str]], Dict[int, str],
                           Dict[int, List[str]]]:
    """Build a reproducible caption corpus.

    Args:
        num_images (int): Number of images.
        refs_per_image (int): References per image.
        seed (int): Random seed; equal seeds give equal corpora.
        samples_per_image (int): Extra predicted samples per image (for
            Self-BLEU / Div-n). 0 gives empty lists.

    Returns:
        tuple: ``(refs, preds, samples)`` where ``refs`` maps image id (int)
        to a list of ``refs_per_image`` str, ``preds`` maps image id to one
        predicted str and ``samples`` maps image id to a list of str.
    """
    rng = random.Random(seed)
    refs: Dict[int, List[str]] = {}
    preds: Dict[int, str] = {}
    samples: Dict[int, List[str]] = {}
    for k in range(num_images):
        image_id = 100000 + 7 * k
        subject = _noun_phrase(rng, _SUBJECTS)
        refs[image_id] = [make_caption(rng, subject)
                          for _ in range(refs_per_image)]
        r = rng.random()
        if r < 0.45:
            pred = _perturb(rng, rng.choice(refs[image_id]))
        elif r < 0.85:
            pred = make_caption(rng, subject, rare_rate=0.02)
        else:
            pred = make_caption(rng, _noun_phrase(rng, _SUBJECTS), 0.02)
        preds[image_id] = pred
        samples[image_id] = [
            make_caption(rng, subject, rare_rate=0.0)
            for _ in range(samples_per_image)
        ]
    return refs, preds, samples


def to_coco_format(refs: Dict[int, List[str]],
                   preds: Dict[int, str]) -> Tuple[dict, List[dict]]:
    """Return ``(annotation_dict, result_list)`` in COCO caption format."""
    images = [dict(id=i) for i in refs]
    annotations = []
    for image_id, captions in refs.items():
        for caption in captions:
            annotations.append(
                dict(id=len(annotations) + 1, image_id=image_id,
                     caption=caption))
    ann = dict(images=images, annotations=annotations, type='captions',
               info={}, licenses=[])
    results = [dict(image_id=i, caption=c) for i, c in preds.items()]
    return ann, results
