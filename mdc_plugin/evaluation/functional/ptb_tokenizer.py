"""PTB tokenization exactly as pycocoevalcap's ``PTBTokenizer`` does it.

The COCO caption toolkit lower-cases and tokenizes every caption with the
Stanford CoreNLP 3.4.1 ``PTBTokenizer`` (``-preserveLines -lowerCase``) and
then drops the tokens in :data:`PUNCTUATIONS`. :func:`ptb_tokenize` gives
the same strings, but

* tokenizes in Python every caption made only of "plain" whitespace-separated
  chunks (:func:`fast_tokenize`: ASCII words, numbers, hyphenated words,
  clitics such as ``'s``/``n't``, and surrounding brackets, quotes and
  punctuation in combinations checked against the jar); anything else
  (non-ASCII text, URLs, abbreviations such as ``Mr.``, decimals, ...)
  goes to the jar. ``tests/test_caption_metric_tokenizer.py`` checks the
  Python path against the jar on a large generated corpus;
* runs the jar once for all remaining captions (references and
  predictions) instead of twice, through a temp file outside the package
  folder;
* first replaces the characters the JVM treats as line breaks (``\\r``,
  ``\\v``, ``\\f``, U+2028, U+2029) by spaces. pycocoevalcap only replaces
  ``\\n``, so a caption holding one of them shifts every later caption onto
  the wrong image there; here each caption keeps its own line.

Tokens such as ``-lrb-``/``-rrb-`` (from parentheses) stay, as in the
toolkit: its punctuation list is upper-case while the tokenizer output is
lower-cased.
"""
import os
import re
import subprocess
import tempfile
from typing import List, Optional, Sequence

from .java import ptb_tokenizer_jar, require_java

#: Tokens pycocoevalcap removes after tokenization.
PUNCTUATIONS = frozenset([
    "''", "'", '``', '`', '-LRB-', '-RRB-', '-LCB-', '-RCB-', '.', '?', '!',
    ',', ':', '-', '--', '...', ';'
])

_JVM_LINE_BREAKS = re.compile('[\n\r\x0b\x0c\u2028\u2029]')


def remove_punctuation(line: str) -> str:
    """Drop :data:`PUNCTUATIONS` tokens from one tokenized line (str)."""
    return ' '.join(
        w for w in line.rstrip().split(' ') if w not in PUNCTUATIONS)


# --------------------------------------------------------------------------
# Python fast path
# --------------------------------------------------------------------------
#: Words after which the 3.4.1 lexer keeps a following period (abbreviations;
#: found by running the jar on every 1-4 letter string, WordNet's vocabulary
#: and the lexer's abbreviation lists, each lower/Capital/UPPER, at sentence
#: end and before lower-case, capitalised and numeric words). Single letters
#: (initials) keep it too.
_ABBREVIATIONS = frozenset("""
adj adm adv al ala alex apr ariz ark art assn assoc asst atty attys aug ave
az bancorp bhd bldg blvd brig bros ca calif capt cf cie cmdr co col colo
comdr conn corp cos cpl ct dak dec del dept det dr drs elec ens esq est etc
ext feb fig figs fla fri ft ga gen gov govs hon ill inc ind insp intl invt
jan jos jr jul jun kan kans ky la lieut lt ltd maj mar mass md messrs mfg
mich minn miss mlle mme mo mon mont mr mrs ms msgr mt mtg natl neb nev no
nos nov oct okla op ore pa penn pfc ph plc pp ppte ppty pres prof profs prop
pte ptes pty ptys pvt rd rep reps rev rt sen sens sep sept seq sfc sgt spc
sq sr st ste supt supts sys tel tenn tex thu thurs treas tue tues univ va vs
vt wash wed wis wisc wm wyo""".split())
#: Words the lexer splits although they hold only letters (``can not``, ...).
_ASSIMILATIONS = frozenset(
    ['cannot', 'gonna', 'gotta', 'lemme', 'gimme', 'wanna'])
#: lead ( "  |  word with hyphens  |  clitic  |  trailing punctuation
_CHUNK = re.compile(r"""
    (?P<lead>[("]{0,2})
    (?:(?P<stem>[A-Za-z]+?)(?P<neg>[nN]'[tT])
      |(?P<body>[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*)
       (?P<clitic>'(?:[sSmMdD]|[rR][eE]|[vV][eE]|[lL][lL]))?)
    (?P<trail>[.,;:!?)"']{0,3})
    """, re.X)
#: Trailing punctuation the lexer does not split char by char (``?!``,
#: ``...``, smileys such as ``;)``, ...).
_BAD_TRAIL = re.compile(r"\.[.,;:]|[!?][!?]|''|[:;]'?\)")
#: Lone chunks and what survives punctuation removal.
_LONE = {
    '&': '&', '(': '-lrb-', ')': '-rrb-', '-': '', '--': '', '.': '',
    ',': '', ';': '', ':': '', '!': '', '?': '', '"': '', "'": ''
}
_PLAIN_TEXT = re.compile(r'[ !-~]*')  # printable ASCII, space the only blank


def _keeps_period(word: str) -> bool:
    """Whether the lexer may keep a period after ``word`` (abbreviation).

    Only hyphen-joined parts that are numbers or words of two or more
    letters outside :data:`_ABBREVIATIONS` are known to lose it.
    """
    for part in word.split('-'):
        if part.isdigit():
            continue
        if part.isalpha() and len(part) > 1 and \
                part.lower() not in _ABBREVIATIONS:
            continue
        return True
    return False


_CHUNK_CACHE: dict = {}
_CHUNK_CACHE_SIZE = 500_000


def _chunk_tokens(chunk: str):
    """Tokens (str, maybe empty) of one plain chunk, or None if not plain."""
    lone = _LONE.get(chunk)
    if lone is not None:
        return lone
    m = _CHUNK.fullmatch(chunk)
    if m is None:
        return None
    lead, trail = m.group('lead'), m.group('trail')
    if trail and _BAD_TRAIL.search(trail):
        return None
    word = m.group('body') or m.group('stem')
    lower = word.lower()
    if m.group('neg') and lower.endswith('n'):
        return None  # "...nn't" is not split before n't
    if trail.startswith("'") and not (word.isalpha() and len(word) > 1
                                      and lower.endswith('s')):
        return None  # "l'", "goin'": the apostrophe may stay attached
    if any(p in _ASSIMILATIONS for p in lower.split('-')):
        return None
    if trail.startswith('.') and _keeps_period(word):
        return None
    out = ['-lrb-'] * lead.count('(')
    out.append(lower)
    if m.group('neg'):
        out.append("n't")
    elif m.group('clitic'):
        out.append(m.group('clitic').lower())
    out.extend(['-rrb-'] * trail.count(')'))
    return ' '.join(out)


def fast_tokenize(caption: str) -> Optional[str]:
    """Tokenize a plain caption in Python, or return None if it is not plain.

    Returns exactly what the jar plus punctuation removal gives for the
    captions it accepts (str), and None for every other caption.
    """
    if not _PLAIN_TEXT.fullmatch(caption):
        return None
    out = []
    prev = ''
    cache = _CHUNK_CACHE
    for chunk in caption.split(' '):
        if not chunk:
            continue
        if prev[-1:].isdigit() and chunk[0].isdigit():
            return None  # "545 181795" becomes one token
        prev = chunk
        tokens = cache.get(chunk, cache)
        if tokens is cache:
            tokens = _chunk_tokens(chunk)
            if len(cache) >= _CHUNK_CACHE_SIZE:
                cache.clear()
            cache[chunk] = tokens
        if tokens is None:
            return None
        if tokens:
            out.append(tokens)
    return ' '.join(out)


# --------------------------------------------------------------------------
# Java path
# --------------------------------------------------------------------------
def java_tokenize(captions: Sequence[str],
                  timeout: float = 600.0) -> List[str]:
    """Tokenize with the jar (one JVM call), as pycocoevalcap does."""
    captions = list(captions)
    if not captions:
        return []
    java = require_java('PTB tokenization (used by BLEU/METEOR/ROUGE-L/CIDEr)')
    jar = ptb_tokenizer_jar()
    text = ''.join(_JVM_LINE_BREAKS.sub(' ', c) + '\n' for c in captions)
    fd, path = tempfile.mkstemp(prefix='mdc_ptb_', suffix='.txt')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(text.encode())
        cmd = [
            java, '-cp', jar, 'edu.stanford.nlp.process.PTBTokenizer',
            '-preserveLines', '-lowerCase', path
        ]
        proc = subprocess.run(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            timeout=timeout, check=False)
    finally:
        os.remove(path)
    if proc.returncode != 0:
        raise RuntimeError(
            'the Stanford PTBTokenizer failed (exit code '
            f'{proc.returncode}): '
            f'{proc.stderr.decode(errors="replace")[-2000:]}')
    lines = proc.stdout.decode().split('\n')
    # The JVM writes one line per input line; empty trailing lines may be
    # dropped, so pad. More lines than captions means misalignment.
    if len(lines) > len(captions) + 1 or (len(lines) == len(captions) + 1
                                           and lines[-1] != ''):
        raise RuntimeError(
            f'PTBTokenizer returned {len(lines)} lines for {len(captions)} '
            'captions; a caption holds a line break the JVM splits on')
    lines = lines[:len(captions)]
    lines += [''] * (len(captions) - len(lines))
    return [remove_punctuation(line) for line in lines]


def ptb_tokenize(captions: Sequence[str],
                 timeout: float = 600.0,
                 use_python: bool = True) -> List[str]:
    """Tokenize captions like pycocoevalcap's ``PTBTokenizer.tokenize``.

    Args:
        captions (Sequence[str]): Raw captions, any length (may be empty).
        timeout (float): Seconds to wait for the JVM.
        use_python (bool): Use :func:`fast_tokenize` where it applies;
            False sends every caption to the jar.

    Returns:
        list[str]: One lower-cased, space-joined, punctuation-free string per
        caption, in input order.
    """
    captions = [str(c) for c in captions]
    out: List[Optional[str]] = (
        [fast_tokenize(c) for c in captions] if use_python else
        [None] * len(captions))
    todo = [i for i, tok in enumerate(out) if tok is None]
    if todo:
        for i, tok in zip(todo, java_tokenize([captions[i] for i in todo],
                                              timeout)):
            out[i] = tok
    return out  # type: ignore[return-value]
