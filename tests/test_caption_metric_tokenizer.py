"""The Python PTB tokenizer path against the Stanford jar pycocoevalcap uses.

Every caption the Python path accepts must come out exactly as the jar
(plus pycocoevalcap's punctuation removal) gives it; everything else goes
to the jar. The corpus below is random but seeded, built from WordNet's
vocabulary (shipped inside the METEOR jar), abbreviations, numbers,
hyphenated words, clitics, brackets, quotes and punctuation runs.
"""
import random
import re
import shutil
import zipfile

import pytest

from mdc_plugin.evaluation.functional.java import meteor_jar
from mdc_plugin.evaluation.functional.ptb_tokenizer import (
    _ABBREVIATIONS, fast_tokenize, java_tokenize, ptb_tokenize)

needs_java = pytest.mark.skipif(
    shutil.which('java') is None,
    reason='Java not found: the PTB jar cannot run, so the Python tokenizer '
    'cannot be compared with it')


def _wordnet_words():
    with zipfile.ZipFile(meteor_jar()) as z:
        text = z.read('synonym/english.synsets').decode('latin-1')
    return sorted({
        w
        for w in re.split(r'[_\s]+', text) if w.isalpha() and w.isascii()
    })


def _random_sentences(num: int, seed: int, plain: bool):
    """Random captions; ``plain`` keeps mostly Python-path chunks."""
    words = _wordnet_words()
    abbrevs = sorted(_ABBREVIATIONS)
    rng = random.Random(seed)
    odd = [
        '&', '-', '--', '(', ')', '"', "'", '.', ',', ';', ':', '!', '?',
        '...', '$5', '3.5', '1,000', 'a.m.', 'U.S.', 'www.x.com', '50%',
        'w/', 'café', '"hi"', "'60s", "o'clock", "y'all", "rock'n'roll", '#1',
        '@x', '*', 'c++', ':)', ';)', '<b>', '1/2', 'naïve', '“quoted”', '—',
        'x\u00a0y', 'tab\there'
    ]

    def case(w):
        r = rng.random()
        return w.upper() if r < .1 else w.capitalize() if r < .35 else w

    def word():
        r = rng.random()
        if r < .6:
            return case(rng.choice(words))
        if r < .65:
            return case(rng.choice(abbrevs))
        if r < .7:
            return case(rng.choice('abcdefghijklmnopqrstuvwxyz'))
        if r < .75:
            return case(
                rng.choice([
                    'cannot', 'gonna', 'gotta', 'lemme', 'gimme', 'wanna',
                    'dunno', 'aint', 'dont', 'tis', 'twas', 'em', 'cause'
                ]))
        if r < .87:
            return str(rng.randrange(10**rng.randint(1, 6)))
        return rng.choice(
            ['3d', '2nd', '1st', '4x4', '1960s', 'mp3', 'a5', 'b2b', '10th'])

    def body():
        r = rng.random()
        if r < .6:
            return word()
        if r < .75:
            return '-'.join(word() for _ in range(rng.randint(2, 3)))
        if r < .85:
            return case(rng.choice(words)) + rng.choice(
                ["'s", "'S", "'re", "'ve", "'ll", "'d", "'m", "'LL", "'"])
        if r < .92:
            return case(rng.choice(words)) + rng.choice(["n't", "N'T"])
        return case(rng.choice(words)) if plain else rng.choice(odd)

    def chunk():
        lead = rng.choice([''] * 8 + ['(', '"', '("', '"(', '((', '`', "'"])
        trail = ''.join(
            rng.choice('.,;:!?)"\'')
            for _ in range(rng.choice([0, 0, 0, 1, 1, 1, 2, 3])))
        return lead + body() + trail

    out = []
    for _ in range(num):
        n = rng.randint(1, 12)
        text = ''.join(chunk() + (' ' if rng.random() < .95 else '  ')
                       for _ in range(n)).strip()
        out.append(' ' + text + ' ' if rng.random() < .1 else text)
    return out


@needs_java
@pytest.mark.parametrize('seed,plain', [(0, False), (1, True)])
def test_python_path_matches_jar(seed, plain):
    sentences = _random_sentences(15000, seed, plain)
    fast = [fast_tokenize(s) for s in sentences]
    jar = java_tokenize(sentences)
    covered = [i for i, tok in enumerate(fast) if tok is not None]
    assert len(covered) > 1500  # the Python path is really exercised
    wrong = [(sentences[i], fast[i], jar[i]) for i in covered
             if fast[i] != jar[i]]
    assert not wrong, wrong[:5]


@needs_java
def test_ptb_tokenize_equals_pycocoevalcap():
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from synthetic_captions import make_corpus
    refs, preds, _ = make_corpus(300, 5, seed=3)
    captions = [preds[i] for i in refs] + [r for i in refs for r in refs[i]]
    captions += [
        '', ' ', 'A dog.', 'Mr. Smith\'s café costs $5.50 (approx.)!',
        'naïve “quotes” — and … ellipsis', '日本語のキャプション',
        'ALL CAPS!!',
        "rock 'n' roll won't stop", 'a b.c d'
    ]
    ref = PTBTokenizer().tokenize(
        {i: [{
            'caption': c
        }]
         for i, c in enumerate(captions)})
    assert ptb_tokenize(captions) == [ref[i][0] for i in range(len(captions))]


@needs_java
def test_line_breaks_do_not_shift_captions():
    # \r, \v, \f, U+2028/9 are line breaks for the JVM; each caption must
    # still get its own tokens.
    captions = ['a dog\rruns', 'a cat\x0bsits', 'x\u2028y', 'last one.']
    assert ptb_tokenize(captions) == [
        'a dog runs', 'a cat sits', 'x y', 'last one'
    ]


def test_fast_path_examples():
    assert fast_tokenize('A man riding a wave on top of a surfboard.') == \
        'a man riding a wave on top of a surfboard'
    assert fast_tokenize("There's a dog (brown) that isn't happy.") == \
        "there 's a dog -lrb- brown -rrb- that is n't happy"
    assert fast_tokenize('  two  black-and-white cats, "sleeping"! ') == \
        'two black-and-white cats sleeping'
    # abbreviations, non-ASCII and decimals go to the jar
    assert fast_tokenize('Dr. Who') is None
    assert fast_tokenize('a café') is None
    assert fast_tokenize('3.5 apples') is None
    assert fast_tokenize('wow?!') is None
