"""The installed ``mdc_plugin`` never locates the repository checkout.

Tool code (the benchmark harness ``tools/benchmarks/harness/``, the
scripts under ``tools/``) may read the checkout's ``configs/``,
``work_dirs/`` and ``tools/``; the library may only read its own package
data (``mdc_plugin/assets``). So no path built from a module's
``__file__`` may climb above the ``mdc_plugin/`` folder, nor name those
checkout folders.
"""
import ast
import importlib.util
import os
import os.path as osp
from typing import Iterator, List, Tuple

import mdc_plugin

PACKAGE = osp.dirname(osp.abspath(mdc_plugin.__file__))
#: Folders of the checkout that only tools may read.
CHECKOUT_DIRS = ('configs', 'work_dirs', 'tools')


def library_files() -> List[str]:
    return sorted(
        osp.join(root, name) for root, _, files in os.walk(PACKAGE)
        for name in files if name.endswith('.py'))


def with_parents(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            child.parent = node
    return tree


def is_dirname(node: ast.AST) -> bool:
    func = node.func if isinstance(node, ast.Call) else None
    name = getattr(func, 'attr', getattr(func, 'id', None))
    return name == 'dirname'


def dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f'{dotted(node.value)}.{node.attr}'
    return getattr(node, 'id', '?')


def file_uses(path: str, depth: int
              ) -> Iterator[Tuple[int, int, int, ast.AST]]:
    """Every ``__file__`` in ``path`` (a module ``depth`` folders below
    mdc_plugin/, itself 1; ``pkg.__file__`` too): its line, how many
    folders up a path built from it climbs (``dirname`` calls,
    ``.parent``, ``.parents[k]``, ``'..'``), how many stay inside
    mdc_plugin/, and its statement."""
    tree = with_parents(ast.parse(open(path).read(), path))
    nodes = sorted(ast.walk(tree), key=lambda n: (getattr(n, 'lineno', 0),
                                                  getattr(n, 'col_offset',
                                                          0)))
    for node in nodes:
        if isinstance(node, ast.Name) and node.id == '__file__':
            allowed = depth
        elif isinstance(node, ast.Attribute) and node.attr == '__file__':
            # mdc_plugin.x.__file__: mdc_plugin/x/__init__.py (2 folders
            # below); any other module: nothing above its own folder
            module = dotted(node.value).split('.')
            allowed = len(module) if module[0] == 'mdc_plugin' else 1
        else:
            continue
        up, cur = 0, node
        while not isinstance(getattr(cur, 'parent', None), ast.stmt):
            parent = cur.parent
            if is_dirname(parent):
                up += 1
            elif isinstance(parent, ast.Attribute) and \
                    parent.attr == 'parent':
                up += 1
            elif isinstance(parent, ast.Subscript) and isinstance(
                    getattr(parent.value, 'attr', None), str) and \
                    parent.value.attr == 'parents':
                index = parent.slice
                up += (index.value + 1 if isinstance(index, ast.Constant)
                       else 99)
            cur = parent
        stmt = cur.parent
        up += sum(isinstance(n, ast.Constant) and n.value == '..'
                  for n in ast.walk(stmt))
        yield node.lineno, up, allowed, stmt


def violations(path: str, rel: str) -> List[str]:
    """What in ``path`` (``mdc_plugin/{rel}``) locates the checkout: a
    path from ``__file__`` climbing above mdc_plugin/, or one joined with
    a folder of :data:`CHECKOUT_DIRS`."""
    found = []
    for line, up, allowed, stmt in file_uses(path, len(rel.split('/'))):
        where = f'mdc_plugin/{rel}:{line}'
        if up > allowed:
            found.append(f'{where}: a path {up} folders up from __file__ '
                         f'leaves mdc_plugin/ ({allowed} up)')
        named = [n.value for n in ast.walk(stmt)
                 if isinstance(n, ast.Constant) and isinstance(n.value, str)
                 and n.value.strip('/').split('/')[0] in CHECKOUT_DIRS]
        if named:
            found.append(f'{where}: __file__ joined with checkout folders '
                         f'{named}')
    return found


def test_the_benchmark_harness_is_not_in_the_package():
    assert importlib.util.find_spec('mdc_plugin.benchmarking') is None
    assert not osp.exists(osp.join(PACKAGE, 'benchmarking'))


def test_no_path_from_file_reaches_the_checkout():
    """The checkout's configs/, work_dirs/ and tools/ are read by tool
    code (tools/), never by the library."""
    files = library_files()
    assert len(files) > 50  # the whole package was scanned
    found = [v for path in files for v in violations(
        path, osp.relpath(path, PACKAGE).replace(os.sep, '/'))]
    assert found == []


def test_the_check_catches_the_old_harness(tmp_path):
    """The check flags what ``mdc_plugin/benchmarking/common.py`` did
    (three dirnames from two levels in) and the like, and passes the
    package's asset lookups."""
    old = tmp_path / 'common.py'
    old.write_text('import os.path as osp\n'
                   'ROOT = osp.dirname(osp.dirname(osp.dirname('
                   'osp.abspath(__file__))))\n'
                   'CFG = osp.join(osp.dirname(__file__), "..", "configs")\n'
                   'from pathlib import Path\n'
                   'TOOLS = Path(__file__).parents[2]\n'
                   'import mdc_plugin.models\n'
                   'R = osp.dirname(osp.dirname(osp.dirname('
                   'mdc_plugin.models.__file__)))\n')
    found = violations(str(old), 'benchmarking/common.py')
    assert [f.split(':')[1] for f in found] == ['2', '3', '5', '7']
    assert "['configs']" in found[1]
    asset = tmp_path / 'hf.py'
    asset.write_text('import os.path as osp\n'
                     'D = osp.join(osp.dirname(osp.dirname(osp.dirname('
                     'osp.abspath(__file__)))), "assets", "x")\n')
    assert violations(str(asset), 'models/tokenizers/hf.py') == []
