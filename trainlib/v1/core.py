"""The plain-Python helpers fastai-1 code gets from ``fastai.core``: lists, defaults, arguments, paths.

They behave as in fastai 1.0.61 (tests/golden/fa1_helpers.txt records the oracle's answers); where fastai
fails on an edge case (``even_mults`` with one step, ``func_args`` on a ``partial``) these work instead.
``noop``, ``camel2snake`` and ``even_mults`` are :mod:`trainlib.utils`'. ``listify`` and ``is_listy`` differ
from the core's on purpose: fastai-1 code relies on ``listify`` splitting a 1-d tensor or array into its
items (``add_metrics`` makes one column per element) and on ``listify(p, q)`` repeating ``p`` to ``q``'s
length; ``is_listy`` is True for lists and tuples only (the core's also for a range).
"""
from __future__ import annotations

import functools
import importlib
import inspect
import os
import tempfile
from collections.abc import Iterable, Sized
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np

from ..utils import camel2snake, default_device, even_mults, noop

__all__ = ['num_cpus', 'defaults', 'is_listy', 'is_tuple', 'is_dict', 'is_pathlike', 'noop', 'PrePostInitMeta',
           'chunks', 'recurse', 'recurse_eq', 'first_el', 'ifnone', 'listify', 'camel2snake', 'even_mults',
           'func_args', 'has_arg', 'split_kwargs_by_func', 'range_of', 'arange_of', 'array', 'show_some',
           'get_tmp_file', 'compose', 'PrettyString', 'join_path', 'join_paths', 'working_directory',
           'try_import', 'ItemBase']


def num_cpus() -> int:
    "The number of CPUs this process may run on."
    try: return len(os.sched_getaffinity(0))
    except AttributeError: return os.cpu_count()


# fastai-1's ``defaults`` as user code sees it once fastai.basic_train is imported. It is its own namespace,
# separate from ``trainlib.defaults`` (whose ``lr`` is the v2 default).
defaults = SimpleNamespace(
    cpus=min(16, num_cpus()), cmap='viridis', return_fig=False, silent=False, device=default_device(),
    lr=slice(3e-3), wd=1e-2, extra_callbacks=None, extra_callback_fns=None)


def is_listy(x: Any) -> bool:
    "True for a list or a tuple (fastai-1: not a range, not a tensor)."
    return isinstance(x, (tuple, list))


def is_tuple(x: Any) -> bool:
    "True for a tuple."
    return isinstance(x, tuple)


def is_dict(x: Any) -> bool:
    "True for a dict."
    return isinstance(x, dict)


def is_pathlike(x: Any) -> bool:
    "True for a str or a Path."
    return isinstance(x, (str, Path))


class PrePostInitMeta(type):
    "Metaclass: an instance's ``__pre_init__`` runs before its ``__init__`` and ``__post_init__`` after it."
    def __call__(cls, *args, **kwargs):
        obj = cls.__new__(cls)
        getattr(obj, '__pre_init__', noop)()
        obj.__init__(*args, **kwargs)
        getattr(obj, '__post_init__', noop)()
        return obj


def chunks(items: Any, n: int) -> Iterator[Any]:
    "Successive slices of ``n`` items of ``items``."
    for i in range(0, len(items), n): yield items[i:i + n]


def recurse(func: Callable, x: Any, *args, **kwargs) -> Any:
    "``func`` applied to every leaf of nested lists/tuples (which come back as lists) and dicts."
    if is_listy(x): return [recurse(func, o, *args, **kwargs) for o in x]
    if is_dict(x): return {k: recurse(func, v, *args, **kwargs) for k, v in x.items()}
    return func(x, *args, **kwargs)


def recurse_eq(a: Any, b: Any) -> bool:
    "Element-wise equality of two nested lists/tuples of arrays, tensors or scalars."
    if is_listy(a): return is_listy(b) and len(a) == len(b) and all(recurse_eq(x, y) for x, y in zip(a, b))
    return bool(np.all(np.atleast_1d(a == b)))


def first_el(x: Any) -> Any:
    "The first leaf of nested lists/tuples/dicts (``x`` itself for anything else)."
    while True:
        if is_listy(x): x = x[0]
        elif is_dict(x): x = next(iter(x.values()))
        else: return x


def ifnone(a: Any, b: Any) -> Any:
    "``a`` unless it is None, else ``b``."
    return b if a is None else a


def _as_items(p: Any) -> Any:
    if p is None: return []
    if isinstance(p, str) or not isinstance(p, Iterable): return [p]
    try: len(p)
    except TypeError: return [p]              # 0-d tensors and arrays, generators: one item
    return p


def listify(p: Any = None, q: Any = None) -> list:
    """``p`` as a list: None gives ``[]``, a str or a non-iterable one item, a sized iterable (list, tuple,
    1-d tensor, dict keys...) its items. With ``q`` (an int or a collection) the result has that length:
    a single item is repeated, any other length mismatch raises ValueError."""
    items = list(_as_items(p))
    n = q if type(q) is int else len(items) if q is None else len(q)
    if len(items) == 1: items = items * n
    if len(items) != n: raise ValueError(f'listify: got {len(items)} items where {n} were expected (list length mismatch)')
    return items


def func_args(func: Callable) -> tuple:
    "The names of the positional-or-keyword parameters of ``func`` (``self`` included for methods)."
    code = getattr(func, '__code__', None)
    if code is not None: return code.co_varnames[:code.co_argcount]
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return tuple(n for n, p in inspect.signature(func).parameters.items() if p.kind in kinds)


def has_arg(func: Callable, arg: str) -> bool:
    "True if ``func`` has a positional-or-keyword parameter named ``arg``."
    return arg in func_args(func)


def split_kwargs_by_func(kwargs: dict, func: Callable) -> tuple:
    "``(kwargs func accepts, the rest)``; the accepted ones are popped from ``kwargs``, which is the rest."
    accepted = {a: kwargs.pop(a) for a in func_args(func) if a in kwargs}
    return accepted, kwargs


def range_of(x: Any) -> list:
    "``[0, 1, ..., len(x)-1]``."
    return list(range(len(x)))


def arange_of(x: Any) -> np.ndarray:
    "``np.arange(len(x))``."
    return np.arange(len(x))


def array(a: Any, dtype: Any = None, **kwargs) -> np.ndarray:
    "``np.array`` that also takes generators and keeps Python ints as int64 on every platform."
    if not isinstance(a, Sized) and not getattr(a, '__array_interface__', False): a = list(a)
    if dtype is None and is_listy(a) and a and isinstance(a[0], int) and np.dtype(int) != np.int64: dtype = np.int64
    return np.array(a, dtype=dtype, **kwargs)


def show_some(items: Any, n_max: int = 5, sep: str = ',') -> str:
    "The first ``n_max`` items joined by ``sep``, with ``...`` when there are more."
    if items is None or len(items) == 0: return ''
    res = sep.join(f'{o}' for o in items[:n_max])
    return res + '...' if len(items) > n_max else res


def get_tmp_file(dir: str | Path | None = None) -> str:
    "The name of a new empty temporary file (the caller removes it)."
    with tempfile.NamedTemporaryFile(delete=False, dir=dir) as f: return f.name


def compose(funcs: Any) -> Callable:
    "A function applying each of ``funcs`` in turn: ``compose([f, g])(x, *a) == g(f(x, *a), *a)``."
    return functools.partial(_compose, listify(funcs))


def _compose(funcs: list, x: Any, *args, **kwargs) -> Any:
    for f in funcs: x = f(x, *args, **kwargs)
    return x


class PrettyString(str):
    "A str whose repr is itself (shows multi-line text properly in a notebook)."
    def __repr__(self) -> str: return self


def join_path(fname: str | Path, path: str | Path = '.') -> Path:
    "``Path(path)/fname``."
    return Path(path) / Path(fname)


def join_paths(fnames: Any, path: str | Path = '.') -> list:
    "``path`` joined to every name of ``fnames``."
    return [join_path(o, path) for o in fnames]


@contextmanager
def working_directory(path: str | Path) -> Iterator[None]:
    "Run the ``with`` block in the directory ``path``, then go back."
    prev = Path.cwd()
    os.chdir(path)
    try: yield
    finally: os.chdir(prev)


def try_import(module: str) -> Any:
    "The module named ``module``, or None when it cannot be imported."
    try: return importlib.import_module(module)
    except Exception: return None


class ItemBase:
    "fastai-1's base data item: wraps ``data`` (also reachable as ``obj``)."
    def __init__(self, data: Any): self.data = self.obj = data

    def __repr__(self) -> str: return f'{type(self).__name__} {self.data}'

    def show(self, ax: Any, **kwargs) -> None:
        "Show the item on the matplotlib axes ``ax`` (its repr as the title)."
        ax.set_title(str(self))

    def apply_tfms(self, tfms: Any, **kwargs) -> 'ItemBase':
        "Data augmentation hook: a base item accepts no transforms."
        if tfms: raise NotImplementedError(f"{type(self).__name__} does not implement apply_tfms: "
                                           "you can't apply transforms to this type of item")
        return self

    def __eq__(self, other: Any) -> bool: return recurse_eq(self.data, other.data)

