"""Argument checks shared by the v1 stock callbacks: a bad argument fails at construction, naming the
callback, the argument and what was expected (fastai 1 accepted it and failed later, or never)."""
from __future__ import annotations

from typing import Any

__all__ = ['check_arg', 'is_count']


def is_count(v: Any, minimum: int = 0) -> bool:
    "True for an int (not a bool) >= ``minimum``."
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum


def check_arg(ok: bool, who: str, arg: str, expected: str, got: Any) -> None:
    "Raise ``ValueError('<who>: <arg> must be <expected>, got <got>')`` unless ``ok``."
    if not ok: raise ValueError(f'{who}: {arg} must be {expected}, got {got!r}')
