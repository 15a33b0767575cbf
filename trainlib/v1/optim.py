"""fastai-1's ``OptimWrapper`` face over the core :class:`trainlib.optim.OptimWrapper`.

Per layer group two torch param groups: ``[decayed, not decayed]`` (norm-layer params and biases).
``lr``/``mom``/``beta``/``wd`` read the last layer group and take a scalar or one value per layer
group. With ``true_wd`` the wrapper decays the weights itself (``p *= 1 - lr*wd``) before each step.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from ..optim import OptimWrapper as CoreOptimWrapper
from .torch_core import split_no_wd_params

__all__ = ['OptimWrapper']

def _per_group(v: Any, n: int) -> list:
    if isinstance(v, (list, tuple, np.ndarray)) and not (isinstance(v, np.ndarray) and v.ndim == 0):
        v = list(v)
        if len(v) == 1: return v * n
        assert len(v) == n, f'List len mismatch ({len(v)} vs {n})'
        return v
    return [v] * n


class OptimWrapper(CoreOptimWrapper):
    """fastai-1's optimizer wrapper: ``lr``, ``mom``, ``beta``, ``wd`` per layer group, ``true_wd``, ``bn_wd``."""

    def __init__(self, opt: torch.optim.Optimizer, wd: Any = 0., true_wd: bool = False, bn_wd: bool = True) -> None:
        super().__init__(opt=opt, set_to_none=True)
        self.true_wd, self.bn_wd = true_wd, bn_wd
        self.opt_func: Callable | None = None
        self._read_defaults()
        self.wd = wd

    @classmethod
    def create(cls, opt_func: Callable, lr: Any, layer_groups: Sequence[nn.Module], wd: Any = 0.,
               true_wd: bool = False, bn_wd: bool = True) -> 'OptimWrapper':
        "An optimizer from ``opt_func`` over ``layer_groups`` (two param groups each), at ``lr`` and ``wd``."
        opt = opt_func([{'params': ps, 'lr': 0} for ps in split_no_wd_params(layer_groups)])
        res = cls(opt, wd=wd, true_wd=true_wd, bn_wd=bn_wd)
        res.lr, res.opt_func = lr, opt_func
        return res

    def new(self, layer_groups: Sequence[nn.Module]) -> 'OptimWrapper':
        "A fresh optimizer of the same kind and settings over ``layer_groups``."
        opt_func = self.opt_func or partial(type(self.opt), **{k: v for k, v in self.opt.defaults.items()
                                                               if k not in ('lr', 'params')})
        return self.create(opt_func, self.lr, layer_groups, wd=self.wd, true_wd=self.true_wd, bn_wd=self.bn_wd)

    # ------------------------------------------------------------------ hyper-parameters, per layer group
    @property
    def n_layer_groups(self) -> int: return len(self.opt.param_groups) // 2

    def _read_defaults(self) -> None:
        groups = self.opt.param_groups[::2]
        self._lr = [g['lr'] for g in groups]
        first = groups[0] if groups else {}
        self._mom = [g['momentum'] for g in groups] if 'momentum' in first else \
            [g['betas'][0] for g in groups] if 'betas' in first else None
        self._beta = [g['alpha'] for g in groups] if 'alpha' in first else \
            [g['betas'][1] for g in groups] if 'betas' in first else None
        self._wd = [g.get('weight_decay', 0.) for g in groups]

    def _set(self, key: str, vals: list, idx: int | None = None, no_wd_too: bool = True) -> list:
        for v, g_wd, g_no in zip(vals, self.opt.param_groups[::2], self.opt.param_groups[1::2]):
            for g in ((g_wd, g_no) if no_wd_too else (g_wd,)):
                if idx is None: g[key] = v
                else:
                    t = list(g[key]); t[idx] = v; g[key] = tuple(t)
        return vals

    @property
    def lr(self) -> Any:
        "Learning rate of the last layer group (set: a scalar or one per layer group)."
        return self._lr[-1]

    @lr.setter
    def lr(self, v: Any) -> None: self._lr = self._set('lr', _per_group(v, self.n_layer_groups))

    @property
    def mom(self) -> Any:
        "Momentum (``momentum`` or ``betas[0]``) of the last layer group; None if the optimizer has none."
        return None if self._mom is None else self._mom[-1]

    @mom.setter
    def mom(self, v: Any) -> None:
        vals = _per_group(v, self.n_layer_groups)
        first = self.opt.param_groups[0]
        if 'momentum' in first: self._set('momentum', vals)
        elif 'betas' in first: self._set('betas', vals, idx=0)
        self._mom = vals

    @property
    def beta(self) -> Any:
        "``betas[1]`` (Adam) or ``alpha`` (RMSprop) of the last layer group."
        return None if self._beta is None else self._beta[-1]

    @beta.setter
    def beta(self, v: Any) -> None:
        if v is None: return
        vals = _per_group(v, self.n_layer_groups)
        first = self.opt.param_groups[0]
        if 'betas' in first: self._set('betas', vals, idx=1)
        elif 'alpha' in first: self._set('alpha', vals)
        self._beta = vals

    @property
    def wd(self) -> Any:
        "Weight decay of the last layer group (optimizer L2 unless ``true_wd``)."
        return self._wd[-1]

    @wd.setter
    def wd(self, v: Any) -> None:
        vals = _per_group(v, self.n_layer_groups)
        if not self.true_wd: self._set('weight_decay', vals, no_wd_too=self.bn_wd)
        self._wd = vals

    # ------------------------------------------------------------------ stepping
    def step(self, closure: Callable | None = None) -> Any:
        "Decay the weights (``true_wd``: every param, with or without a gradient), then the optimizer's step."
        if self.true_wd:
            groups = self.opt.param_groups
            for lr, wd, g_wd, g_no in zip(self._lr, self._wd, groups[::2], groups[1::2]):
                ps = g_wd['params'] + (g_no['params'] if self.bn_wd else [])
                if ps and wd:
                    with torch.no_grad(): torch._foreach_mul_(ps, float(1 - wd * lr))
            for g in groups:
                if 'weight_decay' in g: g['weight_decay'] = 0
        return self.opt.step(closure) if closure is not None else self.opt.step()

    def clear(self) -> None:
        "Forget the optimizer's running state (momentum and the like)."
        self.clear_state()

    @property
    def n_params(self) -> int:
        "Number of parameter tensors."
        return sum(len(g['params']) for g in self.opt.param_groups)

    def __repr__(self) -> str:
        return f'OptimWrapper over {self.opt!r}.\nTrue weight decay: {self.true_wd}'
