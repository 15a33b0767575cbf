"Small helpers the whole library shares: lists, batches, devices, names, settings."
from __future__ import annotations

import re
import sys
from functools import lru_cache
from types import SimpleNamespace
from typing import Any, Iterable, Iterator

import numpy as np
import torch

__all__ = ['defaults', 'noop', 'listify', 'is_listy', 'detuplify', 'tuplify', 'default_device',
           'on_device', 'to_device', 'to_detach', 'to_cpu', 'find_bs', 'camel2snake', 'class2attr', 'replacing_yield',
           'tensor', 'even_mults', 'slice_values', 'is_number', 'check_hyper', 'add_note', 'params_of', 'norm_types',
           'norm_bias_params', 'trainable_params']

defaults = SimpleNamespace(
    lr=1e-3,             # the Learner's default learning rate
    callbacks=None,      # the default callbacks of a new Learner (set by trainlib.learner)
    show_progress=True,  # global switch for progress bars (see trainlib.progress)
)
"Library-wide settings, as ``fastai``'s ``defaults``."


def noop(x: Any = None, *args, **kwargs) -> Any:
    "Do nothing and return the first argument."
    return x


def is_listy(x: Any) -> bool:
    "True for a list, tuple, range or generator-free sequence of items (not a str or a tensor)."
    return isinstance(x, (list, tuple, range))


def listify(o: Any) -> list:
    "Turn ``o`` into a list: None gives ``[]``, a single item ``[o]``, an iterable its items."
    if o is None: return []
    if isinstance(o, list): return o
    if isinstance(o, (str, bytes, dict, torch.Tensor, np.ndarray)) or callable(o) and not is_listy(o): return [o]
    if is_listy(o): return list(o)
    try: return list(o)
    except TypeError: return [o]


def detuplify(x: Any) -> Any:
    "A one-element tuple or list gives its element; anything else is returned as it is."
    return x[0] if isinstance(x, (tuple, list)) and len(x) == 1 else x


def tuplify(x: Any) -> tuple:
    "A tuple of ``x``'s items (a single item gives a one-element tuple)."
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def default_device() -> torch.device:
    "CUDA when available, else the CPU."
    return torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')


def on_device(b: Any, device: Any) -> bool:
    "True when ``to_device(b, device)`` would change nothing but the sequence: a tuple or list of plain tensors already there."
    if type(b) is not tuple and type(b) is not list: return False
    for t in b:
        if type(t) is not torch.Tensor or t.device != device: return False
    return True


def to_device(b: Any, device: torch.device | str | None) -> Any:
    "Move every tensor in the (nested) batch ``b`` to ``device``, without blocking the host."
    if device is None: return b
    if isinstance(b, torch.Tensor): return b if b.device == device else b.to(device, non_blocking=True)
    if isinstance(b, tuple): return tuple(to_device(o, device) for o in b)
    if isinstance(b, list): return [to_device(o, device) for o in b]
    if isinstance(b, dict): return {k: to_device(v, device) for k, v in b.items()}
    return b


def to_detach(b: Any, cpu: bool = True) -> Any:
    "Detach every tensor in the nested ``b`` (and move it to the CPU when ``cpu``)."
    if isinstance(b, torch.Tensor):
        b = b.detach()
        return b.cpu() if cpu else b
    if isinstance(b, tuple): return tuple(to_detach(o, cpu) for o in b)
    if isinstance(b, list): return [to_detach(o, cpu) for o in b]
    if isinstance(b, dict): return {k: to_detach(v, cpu) for k, v in b.items()}
    return b


def to_cpu(b: Any) -> Any:
    "Move every tensor in the nested ``b`` to the CPU."
    return to_detach(b, cpu=True)


def find_bs(b: Any) -> int:
    "The batch size: the first dimension of the first tensor found in ``b`` (nested tuples, lists, dicts)."
    if type(b) is tuple and b and type(b[0]) is torch.Tensor and b[0].dim(): return b[0].shape[0]   # the usual yb
    bs = _first_bs(b)
    if bs is None: raise ValueError(f'no tensor found in the batch {type(b).__name__} to read the batch size from')
    return bs


def _first_bs(b: Any) -> int | None:
    if isinstance(b, torch.Tensor): return b.shape[0] if b.dim() else 1
    if isinstance(b, dict): b = list(b.values())
    if not isinstance(b, (list, tuple)): return None
    return next((bs for bs in map(_first_bs, b) if bs is not None), None)


_camel_re1 = re.compile('(.)([A-Z][a-z]+)')
_camel_re2 = re.compile('([a-z0-9])([A-Z])')


def camel2snake(name: str) -> str:
    "``HTTPServerCallback`` -> ``http_server_callback``."
    return _camel_re2.sub(r'\1_\2', _camel_re1.sub(r'\1_\2', name)).lower()


def class2attr(obj: Any, suffix: str) -> str:
    "The snake-case class name of ``obj`` with a trailing ``suffix`` removed (``'callback'`` if nothing is left)."
    return _attr_name(type(obj).__name__ if not isinstance(obj, type) else obj.__name__, suffix)


@lru_cache(maxsize=1024)
def _attr_name(name: str, suffix: str) -> str:         # callbacks' and metrics' ``name``, read in every add_cb/remove_cb
    if name.endswith(suffix): name = name[:-len(suffix)] or suffix.lower()
    return camel2snake(name)


def _replacing(o: Any, attr: str, val: Any) -> Iterator[None]:
    old = getattr(o, attr)
    try:
        setattr(o, attr, val)
        yield
    finally: setattr(o, attr, old)


class replacing_yield:
    """Set ``o.attr = val`` for the duration of a ``with`` block, then restore the old value.

    It is also the generator fastcore's ``replacing_yield`` is, so a ``@contextmanager`` function
    may ``return replacing_yield(...)``."""
    def __init__(self, o: Any, attr: str, val: Any) -> None: self._gen = _replacing(o, attr, val)
    def __enter__(self) -> None: return next(self._gen)
    def __exit__(self, *exc: Any) -> bool:
        self._gen.close()
        return False

    def __iter__(self) -> Iterator[None]: return self
    def __next__(self) -> None: return next(self._gen)
    def send(self, v: Any) -> Any:
        "Generator protocol: send ``v``."
        return self._gen.send(v)

    def throw(self, *args: Any) -> Any:
        "Generator protocol: throw into it."
        return self._gen.throw(*args)

    def close(self) -> None:
        "Generator protocol: close."
        self._gen.close()


def tensor(x: Any, *rest, **kwargs) -> torch.Tensor:
    "A tensor from ``x`` (or from ``(x, *rest)``); lists of tensors are stacked."
    if rest: x = (x,) + rest
    if isinstance(x, torch.Tensor): return x if not kwargs else x.to(**kwargs)
    if isinstance(x, (list, tuple)) and x and isinstance(x[0], torch.Tensor): return torch.stack(list(x))
    return torch.as_tensor(np.asarray(x) if isinstance(x, (list, tuple)) else x, **kwargs)


def even_mults(start: float, stop: float, n: int) -> np.ndarray:
    "``n`` values from ``start`` to ``stop``, evenly spaced on a log scale."
    if n == 1: return np.array([stop])
    mult = stop / start
    step = mult ** (1 / (n - 1))
    return np.array([start * (step ** i) for i in range(n)])


def slice_values(s: slice, n: int) -> list:
    "One value per group from a slice: ``slice(stop)`` gives stop/10 for all but the last, ``slice(start, stop)`` even_mults."
    if s.start: return list(even_mults(s.start, s.stop, n))
    return [s.stop / 10] * (n - 1) + [s.stop]


def is_number(v: Any) -> bool:
    "Is ``v`` one number: a Python or numpy number, a 0-d tensor or array (not a bool)?"
    if isinstance(v, torch.Tensor): return v.dim() == 0 and v.dtype != torch.bool
    if isinstance(v, np.ndarray): return v.ndim == 0 and np.issubdtype(v.dtype, np.number)
    return isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))


def check_hyper(where: str, name: str, v: Any) -> None:
    """Raise TypeError naming ``where`` and ``name`` unless ``v`` is None or a hyper-parameter value: a number,
    a slice of numbers, or one number per parameter group."""
    if v is None or is_number(v): return
    if isinstance(v, slice):
        if v.step is None and v.stop is not None and all(x is None or is_number(x) for x in (v.start, v.stop)): return
    elif isinstance(v, (list, tuple)) or (isinstance(v, (np.ndarray, torch.Tensor)) and v.ndim == 1):
        if len(v) and all(is_number(x) for x in v): return
    raise TypeError(f'{where}: {name} must be a number, a slice(start, stop) or one number per parameter group, '
                    f'got {v!r}')


def add_note(exc: BaseException, note: str) -> None:
    "Attach ``note`` to ``exc`` (PEP 678; also kept in ``__notes__`` on Python 3.10)."
    if sys.version_info >= (3, 11): exc.add_note(note)
    else: exc.__notes__ = [*getattr(exc, '__notes__', []), note]


def params_of(m: torch.nn.Module) -> list:
    "The parameters of ``m``, as a list."
    return list(m.parameters())


norm_types = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.BatchNorm3d, torch.nn.InstanceNorm1d,
              torch.nn.InstanceNorm2d, torch.nn.InstanceNorm3d, torch.nn.LayerNorm, torch.nn.GroupNorm)


def norm_bias_params(model: torch.nn.Module, with_bias: bool = True) -> list:
    "The parameters of the normalisation layers of ``model``, plus every ``.bias`` when ``with_bias``."
    out, seen = [], set()
    for m in model.modules():
        ps = list(m.parameters(recurse=False)) if isinstance(m, norm_types) else []
        if with_bias and isinstance(getattr(m, 'bias', None), torch.nn.Parameter): ps.append(m.bias)
        for p in ps:
            if id(p) not in seen: seen.add(id(p)); out.append(p)
    return out


def trainable_params(model: torch.nn.Module) -> list:
    "The default splitter: every parameter of ``model`` that requires a gradient, in one group."
    return [p for p in model.parameters() if p.requires_grad]
