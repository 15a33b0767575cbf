"""After the rewrite: import what fastai-1's star imports provided and ``from trainlib.v2 import *`` does not.

``from fastai.basic_train import *`` also brought ``torch``, ``nn``, ``F``, ``np``, ``partial``,
``dataclass``, the ``typing`` names...; trainlib.v2 exports only its own API. A second pass over the
migrated code finds the names it reads but never defines, adds the standard imports for the ones in
:data:`STAR_EXTRAS`, and reports the rest.
"""
from __future__ import annotations

import builtins

import libcst as cst
from libcst.metadata import MetadataWrapper, ScopeProvider

from .mapping import v2_names

__all__ = ['STAR_EXTRAS', 'free_names', 'add_star_extras']

_TYPING = ('Any', 'Callable', 'Collection', 'Dict', 'Iterable', 'Iterator', 'List', 'Mapping', 'Optional',
           'Sequence', 'Tuple', 'Union')
STAR_EXTRAS: dict[str, tuple[str, str]] = {
    'torch': ('import torch', ''), 'np': ('import numpy as np', ''), 'math': ('import math', ''),
    'F': ('import torch.nn.functional as F', ''),
    'nn': ('from torch', 'nn'), 'optim': ('from torch', 'optim'), 'Tensor': ('from torch', 'Tensor'),
    'partial': ('from functools', 'partial'), 'dataclass': ('from dataclasses', 'dataclass'),
    'field': ('from dataclasses', 'field'), 'Path': ('from pathlib', 'Path'), 'warn': ('from warnings', 'warn'),
    'DataLoader': ('from torch.utils.data', 'DataLoader'), 'TensorDataset': ('from torch.utils.data', 'TensorDataset'),
    **{n: ('from typing', n) for n in _TYPING},
}
"Names fastai-1's star imports provided -> (import statement, or ``from`` module and the name to import)."


def free_names(module: cst.Module | MetadataWrapper) -> set[str]:
    "Names ``module`` reads but never defines or imports (builtins aside)."
    wrapper = module if isinstance(module, MetadataWrapper) else MetadataWrapper(module, unsafe_skip_copy=True)
    free = set()
    for scope in {s for s in wrapper.resolve(ScopeProvider).values() if s is not None}:
        for access in scope.accesses:
            node = access.node
            if isinstance(node, cst.Name) and not access.referents and not hasattr(builtins, node.value):
                free.add(node.value)
    return free


def _import_lines(names: list[str]) -> list[str]:
    plain = sorted({STAR_EXTRAS[n][0] for n in names if not STAR_EXTRAS[n][1]})
    froms: dict[str, list[str]] = {}
    for n in names:
        mod, name = STAR_EXTRAS[n]
        if name: froms.setdefault(mod, []).append(name)
    return plain + [f'{mod} import {", ".join(sorted(ns))}' for mod, ns in sorted(froms.items())]


def add_star_extras(module: cst.Module) -> tuple[cst.Module, set[str]]:
    """Add the imports the migrated ``module`` needs that fastai's star import used to provide, before
    its ``from trainlib.v2 import *``. Returns the new module and the free names still unresolved."""
    free = {n for n in free_names(module) if n not in v2_names()}
    extras = sorted(n for n in free if n in STAR_EXTRAS)
    body = list(module.body)
    at = next((i for i, st in enumerate(body) if isinstance(st, cst.SimpleStatementLine)
               and isinstance(st.body[0], cst.ImportFrom) and isinstance(st.body[0].names, cst.ImportStar)
               and cst.Module([]).code_for_node(st.body[0].module) == 'trainlib.v2'), None)
    if not extras or at is None: return module, free
    lines = [cst.parse_statement(src + '\n') for src in _import_lines(extras)]
    return module.with_changes(body=body[:at] + lines + body[at:]), free - set(extras)
