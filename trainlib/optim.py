"""``OptimWrapper``: any torch optimizer behind fastai's hyper-parameter names.

fastai names ``lr, mom, sqr_mom, eps, wd`` map onto torch's param-group keys (``momentum``,
``betas[0]``, ``betas[1]``, ``alpha``, ``weight_decay``). One hyper-parameter group per group of
the splitter. Weight decay is either torch's own (``decouple_wd=None``) or applied by the wrapper,
decoupled (``p *= 1 - lr*wd``, AdamW style, fastai's default) or as L2 (``grad += wd*p``), in which
case parameters flagged ``state[p]['do_wd'] = False`` (norm layers and biases, by default) are spared.
"""
from __future__ import annotations

import warnings
from collections import defaultdict
from functools import partial
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch

from .utils import even_mults, is_listy

__all__ = ['OptimWrapper', 'Adam', 'SGD', 'RMSProp', 'AdamW', 'pytorch_hp_map', 'params_groups']

pytorch_hp_map = {'momentum': 'mom', 'weight_decay': 'wd', 'alpha': 'sqr_mom', 'betas__0': 'mom',
                  'betas__1': 'sqr_mom'}
"torch param-group key -> fastai hyper-parameter name (tuples are split as ``key__i``)."

_HIDDEN_KEYS = frozenset(('params', 'initial_lr'))


def params_groups(params: Any) -> list[list]:
    "Normalise ``params`` (tensors, a list of them, or a list of lists) into a list of groups."
    params = list(params)
    if not params: return [[]]
    if isinstance(params[0], dict): return [list(g['params']) for g in params]
    if isinstance(params[0], torch.Tensor): return [params]
    return [list(g) for g in params]


_TORCH_ZERO_GRAD = torch.optim.Optimizer.zero_grad


def _zero_grads(param_groups: list[dict], set_to_none: bool) -> None:
    """What ``torch.optim.Optimizer.zero_grad`` does without foreach, minus its per-call profiler
    scope (about 10 µs a batch): used when no profiler runs and the optimizer keeps torch's method."""
    for g in param_groups:
        for p in g['params']:
            grad = p.grad
            if grad is None: continue
            if set_to_none:
                p.grad = None
                continue
            if grad.grad_fn is not None: grad.detach_()
            elif grad.requires_grad: grad.requires_grad_(False)
            grad.zero_()


class OptimWrapper:
    """Wrap ``opt`` (a torch optimizer class or instance) so it speaks fastai's hyper-parameters."""

    def __init__(self, params: Any = None, opt: Any = torch.optim.Adam, hp_map: dict | None = None,
                 decouple_wd: bool | None = None, set_to_none: bool = False, **hypers: Any) -> None:
        self.fwd_map = dict(pytorch_hp_map if hp_map is None else hp_map)
        self.decouple_wd = decouple_wd
        self.set_to_none = set_to_none
        if isinstance(opt, torch.optim.Optimizer): self.opt = opt
        else:
            lr = hypers.get('lr')
            self.opt = opt([{'params': g} for g in params_groups(params)],
                           **({'lr': lr} if isinstance(lr, (int, float)) else {}))
        self.param_lists = [list(g['params']) for g in self.opt.param_groups]
        self.state: defaultdict = defaultdict(dict)      # per-parameter flags: do_wd, force_train
        self.frozen_idx = 0
        if self.decouple_wd is not None:
            for g in self.opt.param_groups:
                g.setdefault('wd', g.get('weight_decay', 0.) or 0.)
                if 'weight_decay' in g: g['weight_decay'] = 0.
        if hypers: self.set_hypers(**hypers)

    # ------------------------------------------------------------------ hyper-parameters
    @property
    def param_groups(self) -> list[dict]:
        "The torch optimizer's param groups."
        return self.opt.param_groups

    @property
    def n_groups(self) -> int: return len(self.opt.param_groups)

    def _to_fastai(self, key: str) -> str:
        if key == 'wd' and self.decouple_wd is not None: return 'wd'
        if key == 'weight_decay' and self.decouple_wd is not None: return '_torch_weight_decay'
        return self.fwd_map.get(key, key)

    @property
    def hypers(self) -> list[dict]:
        "One dict of fastai-named hyper-parameters per group (a snapshot, not a view)."
        out = []
        for g in self.opt.param_groups:
            h = {}
            for k, v in g.items():
                if k in _HIDDEN_KEYS: continue
                if isinstance(v, tuple):
                    for i, vi in enumerate(v): h[self._to_fastai(f'{k}__{i}')] = vi
                else: h[self._to_fastai(k)] = v
            h.pop('_torch_weight_decay', None)
            out.append(h)
        return out

    def get_hyper(self, name: str, group: int = -1) -> Any:
        "The value of hyper-parameter ``name`` in one group (fast: no dict is built)."
        g = self.opt.param_groups[group]
        if name not in self.fwd_map.values(): return g[name]      # a torch key under its own name ('lr')
        key, idx = self._torch_key(name, g)
        v = g[key]
        return v[idx] if idx is not None else v

    def _torch_key(self, name: str, g: dict) -> tuple[str, int | None]:
        if name == 'wd' and self.decouple_wd is not None: return 'wd', None
        for k, v in self.fwd_map.items():
            if v != name: continue
            base, _, idx = k.partition('__')
            if base in g: return base, (int(idx) if idx else None)
        return name, None

    def _broadcast(self, name: str, v: Any) -> list:
        n = self.n_groups
        if isinstance(v, slice):
            if v.start: return list(even_mults(v.start, v.stop, n))
            return [v.stop / 10] * (n - 1) + [v.stop]
        if isinstance(v, np.ndarray) and v.ndim == 0: v = v.item()
        if not is_listy(v) and not isinstance(v, np.ndarray): return [v] * n
        v = list(v)
        if len(v) == 1: return v * n
        if len(v) != n:
            raise ValueError(f'set_hyper({name!r}): got {len(v)} values for {n} parameter groups; '
                             f'pass one value, a slice, or exactly {n} values')
        return v

    def set_hyper(self, name: str, v: Any) -> None:
        "Set hyper-parameter ``name`` in every group: a scalar, a list (one per group) or a slice."
        for g, vi in zip(self.opt.param_groups, self._broadcast(name, v)):
            key, idx = self._torch_key(name, g)
            if idx is None: g[key] = vi
            else:
                t = list(g[key]); t[idx] = vi; g[key] = tuple(t)

    def set_hypers(self, **kwargs: Any) -> None:
        "Set several hyper-parameters, in the order given."
        for k, v in kwargs.items(): self.set_hyper(k, v)

    # ------------------------------------------------------------------ stepping
    def step(self, closure: Callable | None = None) -> Any:
        "Apply weight decay (if the wrapper owns it), then the torch optimizer's step."
        if self.decouple_wd is not None: self._weight_decay()
        return self.opt.step(closure) if closure is not None else self.opt.step()

    def _weight_decay(self) -> None:
        state = self.state
        for g in self.opt.param_groups:
            wd = g['wd']
            if not wd: continue
            ps = [p for p in g['params'] if p.grad is not None and state[p].get('do_wd', True)] if state \
                else [p for p in g['params'] if p.grad is not None]
            if not ps: continue
            with torch.no_grad():
                if self.decouple_wd: torch._foreach_mul_(ps, 1 - float(g['lr']) * float(wd))
                else: torch._foreach_add_([p.grad for p in ps], ps, alpha=float(wd))

    def zero_grad(self, set_to_none: bool | None = None) -> None:
        "Zero the gradients (in place by default, as fastai does; ``set_to_none`` as torch)."
        if set_to_none is None: set_to_none = self.set_to_none
        opt = self.opt
        if type(opt).zero_grad is not _TORCH_ZERO_GRAD or opt.defaults.get('foreach') or opt.defaults.get('fused') \
                or torch.autograd._profiler_enabled():
            opt.zero_grad(set_to_none=set_to_none)
        else: _zero_grads(opt.param_groups, set_to_none)

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        "The torch optimizer's state dict (hyper-parameters included)."
        return self.opt.state_dict()

    def load_state_dict(self, sd: dict) -> None:
        "Load a state dict saved by :meth:`state_dict`."
        self.opt.load_state_dict(sd)

    def clear_state(self) -> None:
        "Forget the optimizer's running state (momentum...), keep the per-parameter flags."
        self.opt.state = defaultdict(dict)

    # ------------------------------------------------------------------ freezing
    def freeze_to(self, n: int) -> None:
        "Train only the groups from ``n`` on (parameters flagged ``force_train`` stay trainable)."
        n_lists = len(self.param_lists)
        self.frozen_idx = n if n >= 0 else n_lists + n
        if self.frozen_idx >= n_lists:
            warnings.warn(f'freeze_to({n}): the optimizer has only {n_lists} parameter group(s), '
                          f'so the whole model is frozen')
        for i, ps in enumerate(self.param_lists):
            for p in ps: p.requires_grad_(i >= self.frozen_idx or bool(self.state[p].get('force_train', False)))

    def freeze(self) -> None:
        "Freeze every group but the last."
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        "Train every group."
        self.freeze_to(0)

    def __repr__(self) -> str:
        return f'OptimWrapper({type(self.opt).__name__}, {self.n_groups} group(s))'


def _wrapped(torch_cls: type, params: Any, lr: Any, decouple_wd: bool | None, **hypers: Any) -> OptimWrapper:
    hypers = {k: v for k, v in hypers.items() if v is not None}
    return OptimWrapper(params, opt=torch_cls, decouple_wd=decouple_wd, lr=lr, **hypers)


def Adam(params: Any, lr: Any = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
         wd: float = 0.01, decouple_wd: bool = True) -> OptimWrapper:
    "fastai's Adam (its defaults: ``sqr_mom=0.99, eps=1e-5``, decoupled ``wd=0.01``) on ``torch.optim.Adam``."
    return _wrapped(torch.optim.Adam, params, lr, decouple_wd, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


def AdamW(params: Any, lr: Any = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
          wd: float = 0.01) -> OptimWrapper:
    "Adam with decoupled weight decay (the same as :func:`Adam`'s default)."
    return Adam(params, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd, decouple_wd=True)


def SGD(params: Any, lr: Any = 1e-3, mom: float = 0., wd: float = 0., decouple_wd: bool = True) -> OptimWrapper:
    "fastai's SGD (momentum without dampening, decoupled weight decay) on ``torch.optim.SGD``."
    return _wrapped(torch.optim.SGD, params, lr, decouple_wd, mom=mom, wd=wd)


def RMSProp(params: Any, lr: Any = 1e-2, sqr_mom: float = 0.99, mom: float = 0., eps: float = 1e-8,
            wd: float = 0., decouple_wd: bool = True) -> OptimWrapper:
    "fastai's RMSProp defaults on ``torch.optim.RMSprop``."
    return _wrapped(torch.optim.RMSprop, params, lr, decouple_wd, sqr_mom=sqr_mom, mom=mom, eps=eps, wd=wd)
