"""Rewrite fastai-1 callbacks as trainlib.v2 (fastai-2 style) callbacks: ``python -m trainlib.migrate PATH...``.

A codemod on libcst (``pip install 'trainlib[migrate]'``). For every class deriving from fastai-1's
``Callback``/``LearnerCallback`` it renames the ``on_*`` methods to their v2 events, turns the state
arguments into ``self.learn`` attributes, return values into assignments and stop/skip flags into
``Cancel*Exception``s; it also rewrites the fastai imports, ``_order``, ``callback_fns=`` and
``callbacks=``. What it cannot translate faithfully is left untouched, marked with a
``# TODO(trainlib.migrate): <why>`` comment, and listed in the report. The rules: MIGRATION.md and
:mod:`trainlib.migrate.mapping`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .report import Todo

__all__ = ['Migration', 'migrate_source', 'Todo']


@dataclass
class Migration:
    "The result of migrating one source: the new code and what was left for a human."
    path: str
    source: str
    code: str
    todos: list[Todo] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        "Whether the migration changes the source."
        return self.code != self.source


def _transformer():
    try:
        from . import transformer
    except ImportError as e:
        if getattr(e, 'name', None) != 'libcst' and 'libcst' not in str(e): raise
        raise ImportError("trainlib.migrate needs libcst, an optional dependency: "
                          "pip install 'trainlib[migrate]' (or pip install libcst)") from e
    return transformer


def migrate_source(source: str, path: str = '<string>') -> Migration:
    "Migrate the fastai-1 callbacks in ``source`` (Python code); ``path`` names it in the report."
    code, todos = _transformer().migrate_module(source, path)
    return Migration(path, source, code, todos)
