"""Every relative link in docs/*.md and README.md resolves: the file (or
folder) exists, and a ``#anchor`` names a heading of the target page as
GitHub computes heading anchors. Web links (http, https, mailto) are not
fetched."""
import glob
import os.path as osp
import re
from functools import lru_cache
from urllib.parse import unquote

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
PAGES = sorted(glob.glob(osp.join(REPO, 'docs', '*.md'))) + \
    [osp.join(REPO, 'README.md')]

_FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})')
_HEADING = re.compile(r'^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$')
_HTML_ID = re.compile(r'<a\s[^>]*\b(?:name|id)\s*=\s*["\']([^"\']+)["\']',
                      re.I)
# [text](target) and ![alt](target); the target may be <...>-wrapped and
# followed by a "title".
_LINK = re.compile(r'!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*(<[^>]*>|[^)\s]*)'
                   r'(?:\s+"[^"]*")?\s*\)')
_INLINE_CODE = re.compile(r'(`+)(?:(?!\1).)+?\1')
_WEB = re.compile(r'^[a-z][a-z0-9+.-]*:', re.I)  # http:, https:, mailto: ...


def _prose_lines(text):
    """The lines outside fenced code blocks, with their line numbers."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        m = _FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)[0] * len(m.group(1))
            continue
        if fence is not None:
            if m and m.group(1).startswith(fence) and \
                    not line.strip()[len(m.group(1)):].strip():
                fence = None
            continue
        yield number, line


def github_slug(heading):
    """The anchor GitHub gives a heading (before duplicate suffixes): the
    rendered text, lower-cased, with everything but letters, digits,
    spaces, hyphens and underscores dropped, and spaces turned into
    hyphens."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links
    text = re.sub(r'<[^>]+>', '', text)  # inline html
    text = text.replace('`', '')
    text = re.sub(r'(\*+|(?<!\w)_+|_+(?!\w))', '', text)  # emphasis marks
    text = text.strip().lower()
    text = ''.join(c for c in text
                   if c.isalnum() or c in ' -_' or c.isspace())
    return re.sub(r'\s', '-', text)


@lru_cache(maxsize=None)
def anchors(path):
    """Every anchor of a markdown page: headings (duplicates get -1, -2,
    ... as on GitHub) and explicit <a name=...> / id=... targets."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    found, seen = set(), {}
    for _, line in _prose_lines(text):
        m = _HEADING.match(line)
        if m:
            slug = github_slug(m.group(2))
            if slug in seen:
                seen[slug] += 1
                slug = f'{slug}-{seen[slug]}'
            else:
                seen[slug] = 0
            found.add(slug)
        found.update(_HTML_ID.findall(line))
    return frozenset(found)


def links(path):
    """(line number, target) of every markdown link outside code."""
    with open(path, encoding='utf-8') as f:
        text = f.read()
    for number, line in _prose_lines(text):
        for m in _LINK.finditer(_INLINE_CODE.sub('', line)):
            target = m.group(1)
            if target.startswith('<') and target.endswith('>'):
                target = target[1:-1]
            yield number, target


def broken_links(path):
    bad = []
    for number, target in links(path):
        if not target or _WEB.match(target):
            continue
        where = f'{osp.relpath(path, REPO)}:{number}: ({target})'
        file_part, _, anchor = target.partition('#')
        if file_part:
            dest = osp.normpath(osp.join(osp.dirname(path),
                                         unquote(file_part)))
            if not osp.exists(dest):
                bad.append(f'{where} {osp.relpath(dest, REPO)} does not '
                           'exist')
                continue
        else:
            dest = path
        if anchor and dest.endswith('.md') and osp.isfile(dest):
            if unquote(anchor) not in anchors(dest):
                bad.append(f'{where} no heading with the anchor #{anchor} '
                           f'in {osp.relpath(dest, REPO)}')
    return bad


def test_slugs_follow_github():
    assert github_slug('2. Fine-tune with layer-wise lr decay') == \
        '2-fine-tune-with-layer-wise-lr-decay'
    assert github_slug('The full MAP head (attention + MLP)') == \
        'the-full-map-head-attention--mlp'
    assert github_slug('Decoding options: one entry, declared keys') == \
        'decoding-options-one-entry-declared-keys'
    assert github_slug('Cap (autoregressive; `parallel_prob=0.75`)') == \
        'cap-autoregressive-parallel_prob075'
    assert github_slug('MC-Diffusion (VQ codes -> D3PM)') == \
        'mc-diffusion-vq-codes---d3pm'
    assert github_slug('**Bold** and [a link](x.md)') == 'bold-and-a-link'


def test_duplicate_headings_get_numbered(tmp_path):
    page = tmp_path / 'page.md'
    page.write_text('# Setup\n\n## Results\n\n```\n# Results\n```\n\n'
                    '## Results\n\n### Results\n\n<a name="here"></a>\n',
                    encoding='utf-8')
    assert anchors(str(page)) == {'setup', 'results', 'results-1',
                                  'results-2', 'here'}


def test_checker_finds_broken_links(tmp_path):
    (tmp_path / 'other.md').write_text('# A title\n', encoding='utf-8')
    page = tmp_path / 'page.md'
    page.write_text(
        '# Top\n[ok](other.md#a-title) [ok](#top) [web](https://x.org/#q)\n'
        '[missing](nope.md) [bad anchor](other.md#b-title) [self](#nope)\n'
        '`[code](ignored.md)`\n```\n[fenced](ignored.md)\n```\n',
        encoding='utf-8')
    bad = broken_links(str(page))
    assert len(bad) == 3, bad
    assert 'nope.md' in bad[0] and '#b-title' in bad[1] and '#nope' in bad[2]


@pytest.mark.parametrize('path', PAGES,
                         ids=[osp.relpath(p, REPO) for p in PAGES])
def test_relative_links_resolve(path):
    bad = broken_links(path)
    assert not bad, '\n'.join(bad)
