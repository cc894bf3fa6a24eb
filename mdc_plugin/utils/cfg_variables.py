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
from typing import (Any, Dict, FrozenSet, Iterator, List, NamedTuple,
                    Optional, Set, Tuple)

__all__ = ['copied_variables', 'resolve_variable_overrides',
           'CopiedVariableError', 'derived_entries',
           'resolve_budget_overrides']

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


def _config_chain(config_path: str) -> Iterator[Tuple[str, str, ast.Module]]:
    """``(path, text, tree)`` of a config file and every file of its
    ``_base_`` chain, each once (missing files are skipped)."""
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
        yield path, text, tree
        todo.extend(_base_files(tree, path))


def copied_variables(config_path: str) -> Dict[str, Set[str]]:
    """Top-level variables copied into other top-level entries at load.

    Args:
        config_path (str): a Python config file.

    Returns:
        dict: variable name -> names of the top-level entries that copy it
        (``'*'`` for a ``{{_base_.name}}`` reference).
    """
    out: Dict[str, Set[str]] = {}
    for _, text, tree in _config_chain(config_path):
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
        copied: Dict[str, Set[str]],
        derived: Optional[Dict[str, List['Derived']]] = None
) -> Tuple[Dict[str, Any], List[str]]:
    """Add to ``options`` the keys that hold a copied variable's value.

    A string, list or dict variable (a path, a pipeline) is unambiguous:
    every key under the entries that copy it that holds the old value gets
    the new one too. A number or bool may equal unrelated keys, so its
    override is refused with the keys to set instead.

    Args:
        root (dict): the loaded config as a plain dict.
        options (dict): ``--cfg-options`` (``+`` marks already stripped).
        copied (dict): :func:`copied_variables` of the config file.
        derived (dict, optional): :func:`derived_entries` of the config
            file; a refused budget variable (``max_iters``) then names the
            key whose override carries it everywhere.

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
            budget = _budget_key(root, parts[0], derived or {}, copied) \
                if not parts[1:] else None
            if budget:
                follow = ', '.join(_derived_keys(root, parts[0],
                                                 derived, copied))
                errors.append(
                    f'--cfg-options {key}={new!r} would change nothing: the '
                    f'config copied {parts[0]}={old!r} into other keys when '
                    f'it was read; set {budget}={new!r} instead: every entry '
                    f'derived from {parts[0]} follows it '
                    f'({follow}), or write +{key}=... to set only the '
                    'variable')
                continue
            errors.append(
                f'--cfg-options {key}={new!r} would change nothing: the '
                f'config copied {parts[0]}={old!r} into other keys when it '
                f'was read; set those instead (e.g. '
                f'{" ".join(t + "=" + repr(new) for t in targets)}), or '
                f'write +{key}=... to set only the variable')
    if errors:
        raise CopiedVariableError('\n'.join(errors))
    return merged, notes


# ----------------------------------------------------------------------
# Keys derived from a budget variable (``train_cfg.max_iters=N``)
# ----------------------------------------------------------------------
#: Variables whose copies, when one is overridden, carry the override to
#: every entry the config derived from the variable. Only iteration budgets:
#: ``train_cfg.max_epochs=N`` keeps its documented meaning (the schedule is
#: left as written).
BUDGET_VARIABLES = ('max_iters', )
#: Iteration boundaries of a parameter scheduler that keep their fraction
#: of the budget when it changes.
SCHEDULER_KEYS = ('begin', 'end', 'T_max', 'milestones')


class Derived(NamedTuple):
    """An entry of a config file computed from variables: ``top`` (the
    top-level name assigned), ``path`` (keys / indices inside it), ``expr``
    (its expression) and ``names`` (the variables it reads)."""
    top: str
    path: Tuple[str, ...]
    expr: ast.expr
    names: FrozenSet[str]


def _derived_in(node: ast.AST, path: Tuple[str, ...]):
    """(path, expression, names) of every leaf of a literal dict/list
    structure whose value is computed from names."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == 'dict':
        for kw in node.keywords:
            if kw.arg is not None:
                yield from _derived_in(kw.value, path + (kw.arg, ))
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield from _derived_in(value, path + (key.value, ))
    elif isinstance(node, ast.List):  # a tuple is one value (a pair...)
        for i, elt in enumerate(node.elts):
            yield from _derived_in(elt, path + (str(i), ))
    else:
        names = frozenset(n.id for n in ast.walk(node)
                          if isinstance(n, ast.Name))
        if names:
            yield path, node, names


def derived_entries(config_path: str) -> Dict[str, List[Derived]]:
    """Entries computed from each top-level variable, through the
    ``_base_`` chain (``interval=max_iters // 4`` is an entry of
    ``max_iters``).

    Returns:
        dict: variable name -> its :class:`Derived` entries.
    """
    out: Dict[str, List[Derived]] = {}
    for _, _, tree in _config_chain(config_path):
        for node in tree.body:
            if not isinstance(node, ast.Assign):
                continue
            for target in node.targets:
                if not isinstance(target, ast.Name) or target.id == '_base_':
                    continue
                for sub, expr, names in _derived_in(node.value, ()):
                    entry = Derived(target.id, sub, expr, names)
                    for name in names - {target.id}:
                        out.setdefault(name, []).append(entry)
    return out


_BINOPS = {
    ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b, ast.Div: lambda a, b: a / b,
    ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b,
    ast.Pow: lambda a, b: a ** b,
}
_CALLS = dict(int=int, round=round, min=min, max=max, abs=abs)


def _evaluate(expr: ast.expr, env: Dict[str, Any]) -> Any:
    """Arithmetic on numbers and names of ``env``; ValueError otherwise."""
    if isinstance(expr, ast.Constant) and isinstance(
            expr.value, (int, float)) and not isinstance(expr.value, bool):
        return expr.value
    if isinstance(expr, ast.Name) and expr.id in env and isinstance(
            env[expr.id], (int, float)) and not isinstance(
                env[expr.id], bool):
        return env[expr.id]
    if isinstance(expr, ast.BinOp) and type(expr.op) in _BINOPS:
        return _BINOPS[type(expr.op)](_evaluate(expr.left, env),
                                      _evaluate(expr.right, env))
    if isinstance(expr, ast.UnaryOp) and isinstance(expr.op, ast.USub):
        return -_evaluate(expr.operand, env)
    if isinstance(expr, (ast.Tuple, ast.List)):
        values = [_evaluate(e, env) for e in expr.elts]
        return tuple(values) if isinstance(expr, ast.Tuple) else values
    if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) \
            and expr.func.id in _CALLS and not expr.keywords:
        return _CALLS[expr.func.id](*[_evaluate(a, env) for a in expr.args])
    raise ValueError(ast.unparse(expr))


def _same(a: Any, b: Any) -> bool:
    """Equal config values (a tuple in the file is a list once loaded)."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _locations(root: Dict[str, Any], entry: Derived, old: Any,
               copied: Dict[str, Set[str]]) -> List[str]:
    """Dotted keys of the loaded config that hold ``entry`` with its value
    ``old``: the entry itself, and copies of its top-level variable (found
    by key suffix and value, as for copied variables)."""
    found = []
    key = '.'.join((entry.top, ) + entry.path)
    try:
        if _same(_get(root, key.split('.')), old):
            found.append(key)
    except (KeyError, IndexError, ValueError, TypeError):
        pass
    users = _users(copied, entry.top)
    if entry.path and users:
        scopes = [k for k in root if k != entry.top and
                  (ANY in users or k in users)]
        for scope in scopes:
            found += [f'{scope}.{p}' for p in _find_equal(
                root[scope], old, list(entry.path[-2:]))
                if f'{scope}.{p}' not in found]
    return found


def _scaled(value: Any, ratio: float) -> Any:
    if isinstance(value, list):
        return [_scaled(v, ratio) for v in value]
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        return value
    return max(1, round(value * ratio))


def _scale_schedulers(root: Dict[str, Any], options: Dict[str, Any],
                      ratio: float) -> Dict[str, Any]:
    """Every iteration boundary of ``param_scheduler`` scaled by ``ratio``
    (the same fraction of the new budget); ``end`` stays above ``begin``."""
    out: Dict[str, Any] = {}
    schedulers = root.get('param_scheduler')
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
        prefix = ['param_scheduler']
    else:
        prefix = [f'param_scheduler.{i}' for i in range(len(schedulers))]
    for key, sched in zip(prefix, schedulers):
        if not isinstance(sched, dict) or sched.get('by_epoch', True):
            continue
        new = {k: _scaled(sched[k], ratio) for k in SCHEDULER_KEYS
               if k in sched}
        if 'begin' in new and 'end' in new and new['end'] <= new['begin']:
            new['end'] = new['begin'] + 1
        out.update({f'{key}.{k}': v for k, v in new.items()
                    if v != sched[k]})
    return out


def _whole_lists(root: Dict[str, Any],
                 changes: Dict[str, Any]) -> Dict[str, Any]:
    """``a.b.0=x`` -> ``a.b=[x, ...]``: MMEngine's merge sets list items
    only when they are dicts."""
    out = dict(changes)
    while True:
        items = [k for k in out if k.split('.')[-1].isdigit()]
        if not items:
            return out
        key = items[0]
        parent, index = key.rsplit('.', 1)
        value = list(out.get(parent, _get(root, parent.split('.'))))
        value[int(index)] = out.pop(key)
        out[parent] = value


def resolve_budget_overrides(
        root: Dict[str, Any], options: Dict[str, Any],
        derived: Dict[str, List[Derived]],
        copied: Dict[str, Set[str]]) -> Tuple[Dict[str, Any], List[str]]:
    """Carry ``train_cfg.max_iters=N`` to every entry derived from the
    same ``max_iters`` variable.

    A key that holds a copy of a budget variable (``train_cfg.max_iters``
    written as ``max_iters=max_iters``) is overridden: every other entry
    the config computed from the variable is computed again with the new
    value (``val_interval=max_iters``, ``interval=max_iters // 4``), and
    when the parameter schedule uses the variable, every iteration
    boundary of ``param_scheduler`` (warm-up included) keeps its fraction
    of the budget. Keys given in ``options`` are never changed, and a
    schedule with any key given there is left as given.

    Args:
        root (dict): the loaded config as a plain dict.
        options (dict): ``--cfg-options`` (``+`` marks already stripped).
        derived (dict): :func:`derived_entries` of the config file.
        copied (dict): :func:`copied_variables` of the config file.

    Returns:
        tuple: the options to merge and one log line per propagation.

    Raises:
        CopiedVariableError: an entry derived from the variable cannot be
            computed again (it is named, with the key to set).
    """
    merged = dict(options)
    notes, errors = [], []
    for key, new in options.items():
        for var in BUDGET_VARIABLES:
            entries = derived.get(var, ())
            old = root.get(var)
            if not isinstance(old, int) or isinstance(old, bool) or \
                    not isinstance(new, int) or isinstance(new, bool) or \
                    new <= 0 or new == old or key in (var, ):
                continue
            exact = [e for e in entries
                     if isinstance(e.expr, ast.Name) and e.expr.id == var
                     and key.split('.')[-1] == var
                     and key in _locations(root, e, old, copied)]
            if not exact:
                continue
            env = {k: v for k, v in root.items() if k != var}
            changes: Dict[str, Any] = {var: new}
            sched_uses_var, sched_given = False, any(
                k.split('.')[0] == 'param_scheduler' for k in options)
            for entry in entries:
                try:
                    before = _evaluate(entry.expr, dict(env, **{var: old}))
                    after = _evaluate(entry.expr, dict(env, **{var: new}))
                except (ValueError, TypeError, ZeroDivisionError) as err:
                    where = '.'.join((entry.top, ) + entry.path)
                    errors.append(
                        f'--cfg-options {key}={new!r}: {where} = {err} is '
                        f'derived from {var}; set it too')
                    continue
                for loc in _locations(root, entry, before, copied):
                    if loc.split('.')[0] == 'param_scheduler':
                        sched_uses_var = True
                    elif loc not in options:
                        changes[loc] = after
            if sched_uses_var and not sched_given:
                changes.update(_scale_schedulers(root, options, new / old))
            changes = _whole_lists(root, {k: v for k, v in changes.items()
                                          if k not in options})
            merged.update(changes)
            shown = ', '.join(  # not the helper variables that copy var
                f'{k} {_get(root, k.split("."))!r} -> {v!r}'
                for k, v in changes.items()
                if k == var or k.split('.')[0] not in copied)
            note = (f'--cfg-options {key}={new}: the config derived other '
                    f'entries from {var}={old}; they follow the new budget '
                    f'(the same fraction of it): {shown}')
            if sched_uses_var and sched_given:
                note += ('; param_scheduler left as given (the options set '
                         'keys of it)')
            notes.append(note + '. Set any of them with --cfg-options to '
                         'keep another value.')
            break
    if errors:
        raise CopiedVariableError('\n'.join(errors))
    return merged, notes


def _budget_key(root: Dict[str, Any], var: str,
                derived: Dict[str, List[Derived]],
                copied: Dict[str, Set[str]]) -> Optional[str]:
    """The key whose override :func:`resolve_budget_overrides` carries to
    every entry derived from budget variable ``var`` (e.g.
    ``train_cfg.max_iters``), or None."""
    old = root.get(var)
    if var not in BUDGET_VARIABLES or not isinstance(old, int):
        return None
    for entry in derived.get(var, ()):
        if isinstance(entry.expr, ast.Name) and entry.expr.id == var \
                and entry.path and entry.path[-1] == var:
            key = '.'.join((entry.top, ) + entry.path)
            if key in _locations(root, entry, old, copied):
                return key
    return None


def _derived_keys(root: Dict[str, Any], var: str,
                  derived: Dict[str, List[Derived]],
                  copied: Dict[str, Set[str]]) -> List[str]:
    """Keys of the loaded config that hold entries derived from ``var``
    (the parameter schedule as one)."""
    env = dict(root)
    out: List[str] = []
    for entry in derived.get(var, ()):
        try:
            value = _evaluate(entry.expr, env)
        except (ValueError, TypeError, ZeroDivisionError):
            value = None
        locs = _locations(root, entry, value, copied) if value is not None \
            else ['.'.join((entry.top, ) + entry.path)]
        for loc in locs:
            loc = 'param_scheduler' if loc.startswith('param_scheduler') \
                else loc
            if loc not in out and loc.split('.')[0] not in copied and \
                    loc.split('.')[-1] != var:
                out.append(loc)
    return out
