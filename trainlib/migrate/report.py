"""The codemod's report: every construct it could not translate, where it is and why."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ['Todo', 'format_todos', 'summary']


@dataclass(frozen=True, order=True)
class Todo:
    "One construct left untouched (and marked with a TODO comment): file, line in the original, reason."
    path: str
    line: int
    why: str

    def __str__(self) -> str: return f'{self.path}:{self.line}: {self.why}'


def format_todos(todos: list[Todo]) -> str:
    "One ``path:line: why`` line per untranslated construct, sorted by file and line."
    return ''.join(f'{t}\n' for t in sorted(todos))


def summary(n_files: int, n_changed: int, n_todos: int, verb: str) -> str:
    "The last line of the report: how many files changed (or would), how many constructs need a human."
    left = f'; {n_todos} construct(s) left for you (marked `TODO(trainlib.migrate)`)' if n_todos else ''
    return f'trainlib.migrate: {n_changed} of {n_files} file(s) {verb}{left}\n'
