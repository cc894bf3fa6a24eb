"""Config variables that other config entries copy when the file is read.

An MMEngine config such as ::

    vq_checkpoint = 'checkpoints/vqkd_encoder.pth'
    model = dict(neck=dict(checkpoint=vq_checkpoint), ...)

copies ``vq_checkpoint`` into ``model.neck.checkpoint`` while it is parsed,
so ``--cfg-options vq_checkpoint=PATH`` changes the variable and nothing
that uses it. :func:`copied_variables` finds such variables (Python names
and ``{{_base_.name}}`` references, through the ``_base_`` chain) and
:func:`resolve_variable_overrides` turns an override of one into overrides
of the keys that hold its value, or refuses it naming those keys.
"""
import ast
import os.path as osp
import re
from typing import Any, Dict, List, Set, Tuple

__all__ = ['copied_variables', 'resolve_variable_overrides',
           'CopiedVariableError']

_BASE_REF = re.compile(r'\{\{\s*_base_\.(\w+)')
ANY = '*'  # a {{_base_.name}} reference: the using entry is not known


class CopiedVariableError(ValueError):
    """An override of a copied variable that cannot be applied safely."""


def _base_files(tree: ast.Module, path: str) -> List[str]:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == '_base_'
                for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return []
            names = [value] if isinstance(value, str) else list(value)
            return [osp.normpath(osp.join(osp.dirname(path), n))
                    for n in names if isinstance(n, str) and '::' not in n]
    return []


def copied_variables(config_path: str) -> Dict[str, Set[str]]:
    """Top-level variables copied into other top-level entries at load.

    Args:
        config_path (str): a Python config file.

    Returns:
        dict: variable name -> names of the top-level entries that copy it
        (``'*'`` for a ``{{_base_.name}}`` reference).
    """
    out: Dict[str, Set[str]] = {}
    todo, seen = [osp.abspath(config_path)], set()
    while todo:
        path = todo.pop()
        if path in seen or not osp.isfile(path):
            continue
        seen.add(path)
        with open(path, encoding='utf-8') as f:
            text = f.read()
        try:
            tree = ast.parse(text)
        except SyntaxError:  # {{ }} placeholders outside strings
            tree = ast.parse(_BASE_REF.sub('_base_ref_', text).replace(
                '}}', ''))
        for name in _BASE_REF.findall(text):
            out.setdefault(name, set()).add(ANY)
        assigns = [(t.id, node) for node in tree.body
                   if isinstance(node, ast.Assign) for t in node.targets
                   if isinstance(t, ast.Name)]
        tops = {name for name, _ in assigns}
        for name, node in assigns:
            for sub in ast.walk(node.value):
                if isinstance(sub, ast.Name) and sub.id in tops \
                        and sub.id not in (name, '_base_'):
                    out.setdefault(sub.id, set()).add(name)
        todo.extend(_base_files(tree, path))
    return out


def _get(root: Any, parts: List[str]) -> Any:
    for part in parts:
        root = root[int(part)] if isinstance(root, (list, tuple)) \
            else root[part]
    return root


def _find_equal(node: Any, value: Any, suffix: List[str],
                prefix: str = '') -> List[str]:
    """Dotted paths under ``node`` ending in ``suffix`` whose value equals
    ``value`` (same type)."""
    found = []
    items = node.items() if isinstance(node, dict) else enumerate(node) \
        if isinstance(node, (list, tuple)) else ()
    for key, child in items:
        path = f'{prefix}{key}'
        if type(child) is type(value) and child == value and (
                not suffix or path.split('.')[-len(suffix):] == suffix):
            found.append(path)
        else:
            found.extend(_find_equal(child, value, suffix, path + '.'))
    return found


def _users(copied: Dict[str, Set[str]], name: str) -> Set[str]:
    """Entries that copy ``name``, directly or through other variables."""
    out: Set[str] = set()
    todo = [name]
    while todo:
        for user in copied.get(todo.pop(), ()):
            if user not in out:
                out.add(user)
                todo.append(user)
    return out


def resolve_variable_overrides(
        root: Dict[str, Any], options: Dict[str, Any],
        copied: Dict[str, Set[str]]) -> Tuple[Dict[str, Any], List[str]]:
    """Add to ``options`` the keys that hold a copied variable's value.

    A string, list or dict variable (a path, a pipeline) is unambiguous:
    every key under the entries that copy it that holds the old value gets
    the new one too. A number or bool may equal unrelated keys, so its
    override is refused with the keys to set instead.

    Args:
        root (dict): the loaded config as a plain dict.
        options (dict): ``--cfg-options`` (``+`` marks already stripped).
        copied (dict): :func:`copied_variables` of the config file.

    Returns:
        tuple: the options to merge and one log line per propagation.

    Raises:
        CopiedVariableError: an ambiguous override, naming the keys.
    """
    merged = dict(options)
    notes, errors = [], []
    for key, new in options.items():
        parts = key.split('.')
        users = _users(copied, parts[0])
        if not users or parts[0] not in root:
            continue
        try:
            old = _get(root, parts)
        except (KeyError, IndexError, ValueError, TypeError):
            continue
        scopes = [k for k in root if k != parts[0] and
                  (ANY in users or k in users)]
        targets = [f'{s}.{p}' if p else s for s in scopes
                   for p in ([''] if root[s] == old and
                             type(root[s]) is type(old) and not parts[1:]
                             else _find_equal(root[s], old, parts[1:]))]
        targets = [t for t in targets if t not in options]
        if not targets:
            continue
        if isinstance(old, (str, list, tuple, dict)) or parts[1:]:
            merged.update({t: new for t in targets})
            notes.append(f'--cfg-options {key}: also set '
                         f'{", ".join(targets)} (copied from {parts[0]} '
                         'when the config was read)')
        else:
            errors.append(
                f'--cfg-options {key}={new!r} would change nothing: the '
                f'config copied {parts[0]}={old!r} into other keys when it '
                f'was read; set those instead (e.g. '
                f'{" ".join(t + "=" + repr(new) for t in targets)}), or '
                f'write +{key}=... to set only the variable')
    if errors:
        raise CopiedVariableError('\n'.join(errors))
    return merged, notes
