#!/usr/bin/env python
"""Inventory of the names fastai-1 callback code gets from fastai's star imports.

Run with the fastai 1.0.61 oracle venv:
    /tmp/trainlib-oracle/fa1/bin/python tests/oracle_scripts/inventory_fa1_names.py > tests/golden/fa1_star_names.txt

Part 1 (used_by given): static analysis of the scanned fastai modules.  Each is parsed (ast + symtable,
nothing executed) for the global names it reads but does not bind itself, plus the names it imports
explicitly from other fastai modules (a user module whose fastai import lines become
`from trainlib.v1 import *` loses those too).  Imports of non-fastai modules (`from time import time`)
stay in a user's module and are not inventoried.
Part 2 (used_by '-'): the rest of the namespace `from fastai.torch_core import *` gives (the generic
namespace every fastai-1 module and most user code star-imports), plus the `__all__` of the v1 modules.

Only the *resolution* of a name imports fastai, to read `module.__dict__`.  A scanned module that fails to
import (no torchvision/mlflow here) is resolved through what its star and explicit fastai imports give.

Columns (tab separated): name  kind  origin  via  section  used_by  note
kind     module / class / function / typing alias / constant
origin   where the object really lives (functools, typing, torch, fastai.core, ...)
via      the fastai module whose own top-level binding puts it into fastai's namespace
section  generic       provided by trainlib.v1.imports
         v1            provided by trainlib.v1 proper (the v1 API classes and functions, other helpers)
         out-of-scope  fastai data_block/layers/vision/utils names
         not-provided  generic names trainlib.v1.imports leaves out on purpose (note says why)
         fastai-bug    a name fastai reads that exists nowhere (NameError if reached)
"""
import ast
import builtins
import contextlib
import importlib
import inspect
import io
import symtable
import sys
import typing
from collections import defaultdict
from pathlib import Path

import fastai
import fastai.version

PKG = Path(fastai.__file__).parent
TARGETS = (sorted((PKG / 'callbacks').glob('*.py')) +
           [PKG / f for f in ('callback.py', 'basic_train.py', 'train.py', 'metrics.py', 'basic_data.py')])
V1_MODULES = ('fastai.callback', 'fastai.basic_train', 'fastai.basic_data', 'fastai.callbacks',
              'fastai.metrics', 'fastai.train')
GENERIC_FASTAI = ('fastai.core', 'fastai.torch_core', 'fastai.imports')
BUILTINS = set(dir(builtins))
ORDER = ['fastai.imports.core', 'fastai.imports.torch', 'fastai.core', 'fastai.torch_core']

# trainlib's decision (not a fact about fastai): generic names trainlib.v1.imports does not provide.
_PANDAS = 'pandas type or pandas helper (pandas is not a trainlib dependency)'
_DATA = 'dataset preparation helper of fastai.core, not callback code'
_ITEM = 'data-block label item class (fastai data API)'
NOT_PROVIDED = {
    **dict.fromkeys(['DataFrame', 'Series', 'OptDataFrame', 'DataFrameOrChunks', 'series2cat', 'df_names_to_idx',
                     'index_row', 'pd_max_colwidth'], _PANDAS),
    **dict.fromkeys(['find_classes', 'arrays_split', 'random_split', 'loadtxt_str', 'save_texts', 'bunzip',
                     'download_url', 'one_hot', 'text2html_table', 'parallel', 'subplots', 'idx_dict',
                     'uniqueify', 'is1d', 'float_or_x', 'to_int', 'partition', 'partition_by_cores',
                     'extract_kwargs'], _DATA),
    **dict.fromkeys(['Category', 'EmptyLabel', 'FloatItem', 'MultiCategory'], _ITEM),
    'requests': 'network client, not installed with trainlib',
    'pkg_resources': 'packaging internals (removed from setuptools >= 81)',
    'have_min_pkg_version': 'packaging internals (needs pkg_resources)',
    'fastai_types': "fastai's documentation table of its own type aliases",
    'np_address': 'memory address helper for fastai tests',
    'patches': 'matplotlib.patches: import it where a plot needs it',
    'patheffects': 'matplotlib.patheffects: import it where a plot needs it',
    'Patch': 'matplotlib.patches.Patch: import it where a plot needs it',
    'model_type': 'numpy-dtype to torch-dtype helper of the data block API',
    'np2model_tensor': 'numpy-to-tensor helper of the data block API',
    'DistributedDataParallel': 'import it from torch.nn.parallel (distributed training is out of scope)',
}
BUGS = {'raiseValueError': 'typo for `raise ValueError(...)` in FlatCosAnnealScheduler (a NameError if reached)'}


def modname(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def short(mod: str) -> str:
    return mod[len('fastai.'):]


def is_package(mod: str) -> bool:
    return (PKG.parent / mod.replace('.', '/') / '__init__.py').exists()


def resolve_from(mod: str, node: ast.ImportFrom) -> str:
    "The absolute module name of `from X import ...` inside module `mod`."
    if not node.level: return node.module
    parts = mod.split('.') if is_package(mod) else mod.split('.')[:-1]
    parts = parts[:len(parts) - node.level + 1]
    return '.'.join(parts + ([node.module] if node.module else []))


def free_names(src: str, path: Path, mod: str) -> set:
    "Global names read anywhere in the module and not bound at its top level (builtins excluded)."
    top = symtable.symtable(src, str(path), 'exec')
    bound = {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    used = {s.get_name() for s in top.get_symbols() if s.is_referenced()}

    def walk(t):
        for s in t.get_symbols():
            if s.is_referenced() and s.is_global(): used.add(s.get_name())
        for c in t.get_children(): walk(c)
    for c in top.get_children(): walk(c)
    if is_package(mod):                      # a package's submodules are bound by the import system
        bound |= {p.stem for p in path.parent.glob('*.py')}
    return used - bound - BUILTINS


def fastai_imports(mod: str, tree: ast.Module):
    "(star sources, {name: source module}) of the module's fastai imports."
    stars, explicit = [], {}
    for node in tree.body:
        if not isinstance(node, ast.ImportFrom): continue
        src = resolve_from(mod, node)
        if not src.startswith('fastai'): continue
        for a in node.names:
            if a.name == '*': stars.append(src)
            else: explicit[a.asname or a.name] = src
    return stars, explicit


def try_import(mod: str):
    "The module, or None when it cannot be imported (what it prints while failing is dropped)."
    try:
        with contextlib.redirect_stdout(io.StringIO()): return importlib.import_module(mod)
    except Exception: return None


def namespace(mod: str, stars, explicit) -> dict:
    m = try_import(mod)
    if m is not None: return vars(m)
    ns = {}
    for s in stars:
        sm = try_import(s)
        if sm is not None: ns.update({k: v for k, v in vars(sm).items() if not k.startswith('_')})
    for name, s in explicit.items():
        sm = try_import(s)
        if sm is not None and hasattr(sm, name): ns[name] = getattr(sm, name)
    return ns


def top_bindings() -> dict:
    "{name: [(fastai module, how)]} for every non-star top-level binding in the package."
    out = defaultdict(list)
    for path in sorted(PKG.rglob('*.py')):
        mod = modname(path)
        try: tree = ast.parse(path.read_text())
        except SyntaxError: continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)): found = [(node.name, 'def')]
            elif isinstance(node, ast.Assign): found = [(t.id, 'assign') for t in node.targets if isinstance(t, ast.Name)]
            elif isinstance(node, ast.Import): found = [(a.asname or a.name.split('.')[0], 'import') for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                found = [(a.asname or a.name, f'from {resolve_from(mod, node)}') for a in node.names if a.name != '*']
            else: found = []
            for n, how in found: out[n].append((mod, how))
    return out


BINDINGS = top_bindings()


def via(name: str, obj):
    "(fastai module, how) whose own top-level binding of `name` is the object fastai code sees."
    cands = sorted(BINDINGS.get(name, []), key=lambda b: (ORDER.index(b[0]) if b[0] in ORDER else len(ORDER), b[0]))
    for m, how in cands:
        mm = try_import(m)
        if mm is not None and getattr(mm, name, None) is obj: return m, how
    return cands[0] if cands else ('?', '?')


def is_typing(obj) -> bool:
    return type(obj).__module__ == 'typing' or obj is typing.Any


def kind_of(name: str, obj, how: str) -> str:
    if inspect.ismodule(obj): return 'module'
    if is_typing(obj): return 'typing alias'
    if isinstance(obj, type): return 'typing alias' if how == 'assign' and obj.__name__ != name else 'class'
    if callable(obj): return 'function'
    return 'constant'


def origin_of(name: str, obj, mod: str, how: str) -> str:
    if inspect.ismodule(obj): return obj.__name__
    if how.startswith('from '): return how[5:]                       # e.g. `from torch import as_tensor`
    if how in ('def', 'assign') and mod.startswith('fastai') and not isinstance(obj, type): return mod
    home = getattr(obj, '__module__', None)
    return home if isinstance(home, str) and home else mod


def v1_all() -> set:
    "Every name in the `__all__` of the v1 modules (some, like the Interpretation classes, live elsewhere)."
    return {n for m in V1_MODULES for n in importlib.import_module(m).__all__}


V1_ALL = v1_all()


def section(name: str, origin: str, mod: str) -> str:
    if name in BUGS: return 'fastai-bug'
    if name in V1_ALL: return 'v1'
    home = origin if origin.startswith('fastai') else mod
    if not home.startswith('fastai'): home = 'fastai.imports'
    if home.startswith(V1_MODULES): return 'v1'
    if not home.startswith(GENERIC_FASTAI): return 'out-of-scope'
    return 'not-provided' if name in NOT_PROVIDED else 'generic'


def describe(name: str, where: dict, fallback: dict) -> tuple:
    "(kind, origin, via, section, note) of `name`."
    if name in BUGS: return ('?', '?', '?', 'fastai-bug', BUGS[name])
    if name not in where:                                             # explicit import of an unimportable module
        src = fallback.get(name, '?')
        return ('?', src, src, section(name, src, src), 'needs a package the oracle lacks (torchvision)')
    obj = where[name]
    mod, how = via(name, obj)
    origin = origin_of(name, obj, mod, how)
    sec = section(name, origin, mod)
    return (kind_of(name, obj, how), origin, mod, sec, NOT_PROVIDED.get(name, '') if sec == 'not-provided' else '')


def scan() -> tuple:
    "({name: set of short module names reading it}, {name: object}, {name: explicit source module})."
    users, where, explicit_src = defaultdict(set), {}, {}
    for path in TARGETS:
        mod = modname(path)
        src = path.read_text()
        stars, explicit = fastai_imports(mod, ast.parse(src))
        explicit_src.update(explicit)
        ns = namespace(mod, stars, explicit)
        for name in free_names(src, path, mod) | set(explicit):
            users[name].add(short(mod))
            if name in ns: where.setdefault(name, ns[name])
    return users, where, explicit_src


def rest_of_namespace(users: dict) -> dict:
    "{name: object} of the star namespaces (torch_core, the v1 modules' __all__) not read by the scanned modules."
    tc = importlib.import_module('fastai.torch_core')
    out = {n: getattr(tc, n) for n in dir(tc) if not n.startswith('_')}
    for m in V1_MODULES:
        mm = importlib.import_module(m)
        out.update({n: getattr(mm, n) for n in mm.__all__})
    return {n: o for n, o in out.items() if n not in users}


def main():
    users, where, explicit_src = scan()
    rest = rest_of_namespace(users)
    rows = [(n, *describe(n, where, explicit_src), ','.join(sorted(users[n]))) for n in users]
    rows += [(n, *describe(n, rest, {}), '-') for n in rest]
    rows.sort(key=lambda r: (r[0].lower(), r[0]))
    print(f'# fastai {fastai.version.__version__}: names fastai-1 code gets from fastai star imports '
          f'(python {sys.version.split()[0]})')
    print('# produced by tests/oracle_scripts/inventory_fa1_names.py with /tmp/trainlib-oracle/fa1/bin/python')
    print(f'# scanned: {", ".join(short(modname(p)) for p in TARGETS)}')
    print('# name\tkind\torigin\tvia\tsection\tused_by\tnote')
    for name, kind, origin, mod, sec, note, used in rows:
        print('\t'.join((name, kind, origin, mod, sec, used, note)))
    counts = defaultdict(int)
    for r in rows: counts[(r[4], r[6] != '-')] += 1
    print('# totals (read by scanned modules / rest of the namespace): ' +
          ', '.join(f'{s}={counts[(s, True)]}/{counts[(s, False)]}' for s in sorted({k[0] for k in counts})) +
          f'; inventory={len(users)}, all={len(rows)}')


if __name__ == '__main__':
    main()
