"""Join the word pieces of a space-dropping tokenizer back into caption text.

CLIP BPE, BERT-style WordPiece and word-level tokenizers split ``t-shirt``,
``doesn't``, ``3:30`` and ``p.m.`` into separate pieces and forget where the
spaces were, so joining the pieces with spaces (``t - shirt``, ``doesn 't``,
``3 : 3 0``, ``p. m.``) gives text the COCO toolkit's PTB tokenizer splits
differently from the caption that was encoded. :func:`join_pieces` puts the
pieces together the way English captions write them, so that for ordinary
COCO-style text ``ptb_tokenize(join_pieces(pieces(text)))`` equals
``ptb_tokenize(text)`` (``tests/test_tokenizer_round_trip.py`` checks this
with the jar on a caption corpus).

Known limits (the pieces hold no spacing, so one reading has to be chosen):
a dash written with spaces between two words (``laptop - it``) comes back as
a hyphen (``laptop-it``); with ``split_digits`` (CLIP BPE, which encodes
every digit separately) numbers written with spaces between them
(``3 4``) come back as one number (``34``); single quotes used as quotation
marks are read as apostrophes when the quotation ends
inside a word (``'n'`` in ``rock 'n' roll`` stays attached).
"""
import re
from typing import List, Sequence

#: Clitics the PTB tokenizer splits off (``dog's`` -> ``dog 's``).
_CLITICS = frozenset(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"])
#: Pieces joining two words without spaces (``t-shirt``, ``1/2``).
_JOINERS = frozenset(['-', '/', '+', '_'])
#: Suffixes written onto a number (``2nd``, ``1950s``).
_NUMBER_SUFFIXES = frozenset(['st', 'nd', 'rd', 'th', 's'])
#: Characters that close onto the word before them.
_CLOSERS = frozenset('.,;:!?%)]}')
#: Characters that open onto the word after them.
_OPENERS = frozenset('([{$#£€¥')
_WORDLIKE = re.compile(r'\w', re.UNICODE)
#: Apostrophes other than ``'`` (normalised before joining).
_APOSTROPHES = str.maketrans({'\u2019': "'", '\u2018': "'"})
_CJK_RANGES = ((0x3040, 0x30ff), (0x3400, 0x4dbf), (0x4e00, 0x9fff),
               (0xac00, 0xd7af), (0xf900, 0xfaff))


def _is_word(piece: str) -> bool:
    return bool(_WORDLIKE.search(piece))


def _is_cjk(char: str) -> bool:
    """CJK ideographs, kana and hangul (written without spaces)."""
    return any(lo <= ord(char) <= hi for lo, hi in _CJK_RANGES)


def _is_letter(piece: str) -> bool:
    return len(piece) == 1 and piece.isalpha()


def _merge_digits(pieces: List[str]) -> List[str]:
    """Join runs of digit pieces (``3 0`` -> ``30``)."""
    out: List[str] = []
    for piece in pieces:
        if out and piece.isdigit() and out[-1].isdigit():
            out[-1] += piece
        else:
            out.append(piece)
    return out


def _merge_clitics(pieces: List[str]) -> List[str]:
    """``doesn ' t`` -> ``doesn 't`` (WordPiece / word-level pieces)."""
    out: List[str] = []
    i = 0
    while i < len(pieces):
        piece = pieces[i]
        if (piece == "'" and out and _is_word(out[-1])
                and i + 1 < len(pieces)
                and "'" + pieces[i + 1].lower() in _CLITICS):
            out.append("'" + pieces[i + 1])
            i += 2
            continue
        out.append(piece)
        i += 1
    return out


def _merge_initialisms(pieces: List[str]) -> List[str]:
    """``p . m .`` -> ``p.m.``: two or more single letters each followed by
    a period form one piece (the last period piece may carry more marks,
    e.g. ``.,``)."""
    out: List[str] = []
    i = 0
    while i < len(pieces):
        j = i
        while (j + 1 < len(pieces) and _is_letter(pieces[j])
               and pieces[j + 1].startswith('.')):
            j += 2
            if pieces[j - 1] != '.':
                break
        if j - i >= 4:
            out.append(''.join(pieces[i:j]))
            i = j
        else:
            out.append(pieces[i])
            i += 1
    return out


def _closes_single(piece: str) -> bool:
    """``'`` possibly followed by closing marks (``'.``)."""
    return piece[:1] == "'" and all(c in _CLOSERS for c in piece[1:])


def _closes_quote_later(pieces: Sequence[str], start: int) -> bool:
    """Whether a ``'`` after ``start`` ends a quotation: a word before it
    and none after it, or more than one letter quoted (``'n'`` in
    ``rock'n'roll`` is no quotation)."""
    for j in range(start + 1, len(pieces)):
        if _closes_single(pieces[j]) and _is_word(pieces[j - 1]):
            return (j + 1 == len(pieces) or not _is_word(pieces[j + 1])
                    or len(''.join(pieces[start + 1:j])) > 1)
    return False


def _glue_inside_number(left: str, mark: str, right: str) -> bool:
    """Whether ``left mark right`` is one token (``3:30``, ``2.50``,
    ``1,000``, ``4x4``, ``AT&T``)."""
    if mark == '&':
        return 0 < len(left) <= 2 and 0 < len(right) <= 2 and \
            left.isalpha() and right.isalpha()
    if not (left[-1:].isdigit() and right.isdigit()):
        return False
    if mark.lower() == 'x':
        return True
    if mark == ':':
        return len(right) == 2
    if mark == ',':
        return len(right) == 3
    return mark == '.'


def join_pieces(pieces: Sequence[str], split_digits: bool = False) -> str:
    """Join tokenizer pieces (words, numbers, punctuation runs, clitics)
    into caption text.

    Args:
        pieces (Sequence[str]): the pieces in order, none holding spaces.
        split_digits (bool): the tokenizer encodes each digit as its own
            piece (CLIP BPE): adjacent digit pieces form one number.

    Returns:
        str: the caption, single-spaced.
    """
    pieces = [p if _is_word(p) else p.translate(_APOSTROPHES)
              for p in pieces if p]
    if split_digits:
        pieces = _merge_digits(pieces)
    pieces = _merge_initialisms(_merge_clitics(pieces))
    out: List[str] = []
    glue_next = True  # no space before the first piece
    quote_open = single_open = False
    n = len(pieces)
    for i, piece in enumerate(pieces):
        prev = pieces[i - 1] if i else ''
        nxt = pieces[i + 1] if i + 1 < n else ''
        glue_before = glue_next
        glue_next = False
        if piece.lower() in _CLITICS:
            glue_before = True
        elif piece.lower() == 'x' and _glue_inside_number(prev, piece, nxt):
            glue_before = glue_next = True
        elif _is_word(piece):
            if prev.isdigit() and piece.lower() in _NUMBER_SUFFIXES:
                glue_before = True
            elif prev and _is_cjk(prev[-1]) and _is_cjk(piece[0]):
                glue_before = True
        elif single_open and _closes_single(piece):
            glue_before, single_open = True, False
        elif (piece == "'" and _is_word(nxt)
              and (not _is_word(prev) or not prev.lower().endswith('s'))
              and _closes_quote_later(pieces, i)):
            glue_next = single_open = True
        elif piece in _JOINERS and _is_word(prev) and _is_word(nxt):
            glue_before = glue_next = True
        elif piece == "'":
            glue_before = True
            glue_next = (_is_word(prev) and _is_word(nxt)
                         and not prev.lower().endswith('s'))
        elif piece in ('.', ':', ',', '&') and \
                _glue_inside_number(prev, piece, nxt):
            glue_before = glue_next = True
        elif piece == '"':
            if quote_open:
                glue_before = True
            else:
                glue_next = True
            quote_open = not quote_open
        else:
            if piece[0] in _CLOSERS or (piece[0] == '"' and quote_open):
                glue_before = True
            if piece[-1] in _OPENERS:
                glue_next = True
            quote_open ^= piece.count('"') % 2 == 1
        if out and not glue_before:
            out.append(' ')
        out.append(piece)
    return ''.join(out)
