"""Helpers for tests and docs: a synthetic regression Learner and fastcore-style assertions.

``synth_learner`` draws exactly what fastai's ``synth_learner`` draws (data, then the model's two
parameters) and shuffles its training set with fastai's RNG scheme, so runs can be compared
number for number with fastai.
"""
from __future__ import annotations

import io
import random
import re
from contextlib import redirect_stdout
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset

from .data import DataLoaders
from .learner import Learner
from .losses import MSELossFlat
from .optim import SGD

__all__ = ['RegModel', 'synth_dbunch', 'synth_learner', 'FastaiShuffleSampler', 'test_eq', 'test_ne',
           'test_close', 'test_stdout', 'test_fail']


class RegModel(nn.Module):
    "``y = a*x + b`` with two scalar parameters."
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Parameter(torch.randn(1)), nn.Parameter(torch.randn(1))
    def forward(self, x: torch.Tensor) -> torch.Tensor: return x * self.a + self.b


class FastaiShuffleSampler(Sampler):
    """Shuffles like fastai's DataLoader: a ``random.Random`` seeded from the global ``random`` when
    created, re-seeded from itself at every pass, then ``sample(range(n), n)``."""
    def __init__(self, n: int) -> None:
        self.n = n
        self.rng = random.Random(random.randint(0, 2 ** 32 - 1))
    def __iter__(self) -> Iterator[int]:
        self.rng = random.Random(self.rng.randint(0, 2 ** 32 - 1))
        return iter(self.rng.sample(range(self.n), self.n))
    def __len__(self) -> int: return self.n


def synth_dbunch(a: float = 2, b: float = 3, bs: int = 16, n_train: int = 10, n_valid: int = 2,
                 cuda: bool = False, shuffle: bool = True) -> DataLoaders:
    "Loaders for ``y = a*x + b + noise``: ``n_train`` and ``n_valid`` batches of ``bs`` items."
    def get_data(n: int) -> TensorDataset:
        x = torch.randn(bs * n, 1)
        return TensorDataset(x, a * x + b + 0.1 * torch.randn(bs * n, 1))
    train_ds, valid_ds = get_data(n_train), get_data(n_valid)
    sampler = FastaiShuffleSampler(len(train_ds)) if shuffle else None
    random.randint(0, 2 ** 32 - 1)     # fastai's valid loader draws its own seed too
    train_dl = DataLoader(train_ds, batch_size=bs, sampler=sampler, num_workers=0)
    valid_dl = DataLoader(valid_ds, batch_size=bs, num_workers=0)
    device = torch.device('cuda') if cuda and torch.cuda.is_available() else torch.device('cpu')
    return DataLoaders(train_dl, valid_dl, device=device)


def synth_learner(n_trn: int = 10, n_val: int = 2, cuda: bool = False, lr: float = 1e-3, data: Any = None,
                  model: nn.Module | None = None, n_train: int | None = None, **kwargs: Any) -> Learner:
    "A Learner on :func:`synth_dbunch` with :class:`RegModel`, MSE and SGD(mom=0.9) (``n_train`` = ``n_trn``)."
    if n_train is not None: n_trn = n_train
    if data is None: data = synth_dbunch(n_train=n_trn, n_valid=n_val, cuda=cuda)
    if model is None: model = RegModel()
    return Learner(data, model, lr=lr, loss_func=MSELossFlat(), opt_func=partial(SGD, mom=0.9), **kwargs)


def _equal(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = torch.as_tensor(a), torch.as_tensor(b)
        return a.shape == b.shape and bool(torch.equal(a.to(b.dtype) if a.dtype != b.dtype else a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray): return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def test_eq(a: Any, b: Any) -> None:
    "Assert ``a == b`` (tensors, arrays and nested containers compared element-wise)."
    assert _equal(a, b), f'==:\n{a!r}\n{b!r}'


def test_ne(a: Any, b: Any) -> None:
    "Assert ``a != b``."
    assert not _equal(a, b), f'!=:\n{a!r}\n{b!r}'


def test_close(a: Any, b: Any, eps: float = 1e-5) -> None:
    "Assert ``a`` and ``b`` are equal within ``eps`` (element-wise for tensors and containers)."
    if isinstance(a, (list, tuple)) and not isinstance(a, torch.Tensor):
        assert len(a) == len(b), f'close: lengths {len(a)} != {len(b)}'
        for x, y in zip(a, b): test_close(x, y, eps)
        return
    ta, tb = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    assert ta.shape == tb.shape or ta.numel() == tb.numel(), f'close: shapes {ta.shape} != {tb.shape}'
    assert bool((ta.reshape(-1) - tb.reshape(-1)).abs().max() <= eps) if ta.numel() else True, f'close:\n{a!r}\n{b!r}'


def test_stdout(f: Callable, exp: str, regex: bool = False) -> None:
    "Assert that ``f()`` prints ``exp`` (a regular expression matched at the start when ``regex``)."
    buf = io.StringIO()
    with redirect_stdout(buf): f()
    out = buf.getvalue().rstrip('\n')
    if regex: assert re.search(exp, out) is not None, f'stdout {out!r} does not match {exp!r}'
    else: assert out == exp, f'stdout:\n{out!r}\nexpected:\n{exp!r}'


def test_fail(f: Callable, contains: str = '', exc: type = Exception) -> None:
    "Assert that ``f()`` raises ``exc`` with ``contains`` in its message."
    try: f()
    except exc as e:
        assert contains in str(e), f'{contains!r} not in {str(e)!r}'
        return
    raise AssertionError('expected an exception, none raised')


for _f in (test_eq, test_ne, test_close, test_stdout, test_fail):
    _f.__test__ = False     # helpers, not tests: pytest must not collect them where they are imported
