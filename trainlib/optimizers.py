"""fastai's optimizer algorithms that ``torch.optim`` lacks, as ``torch.optim.Optimizer`` subclasses.

Their param-group keys are fastai's hyper-parameter names (``lr, mom, sqr_mom, eps, beta, nu_1,
nu_2``) and their per-parameter state uses fastai's names (``grad_avg``, ``sqr_avg``, ``step``), so
:class:`~trainlib.optim.OptimWrapper` needs no translation. Weight decay is not here: the wrapper
applies it (decoupled or L2) before ``step``, as fastai's ``weight_decay``/``l2_reg`` come first.

* :class:`RMSPropOptimizer`: RMSProp with fastai's momentum (the averaged gradient is divided by the
  current denominator; ``torch.optim.RMSprop`` divides each gradient by its own).
* :class:`RAdamOptimizer`: fastai's RAdam (``eps`` added to the debiased root, threshold ``r > 5``,
  optional SAdam ``beta``); ``torch.optim.RAdam`` adds ``eps`` before debiasing and has no ``beta``.
* :class:`QHAdamOptimizer`, :class:`LambOptimizer` (fastai's Lamb: RMS ratios, trust ratio capped at 10).
* :class:`LookaheadOptimizer`: wraps any torch optimizer; every ``k`` steps the slow weights move
  ``alpha`` of the way to the fast ones, and the fast weights restart from there.

No step reads a tensor back to the host: per-parameter ratios stay on the device.
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F

__all__ = ['RMSPropOptimizer', 'RAdamOptimizer', 'QHAdamOptimizer', 'LambOptimizer', 'LookaheadOptimizer']


def _debias(mom: float, damp: float, step: int) -> float:
    "The sum of the weights an average with ``mom`` and dampening ``damp`` has after ``step`` steps."
    return damp * (1 - mom ** step) / (1 - mom)


def _check_hypers(cls_name: str, lr: Any, **betas: float) -> None:
    if isinstance(lr, (int, float)) and lr < 0:
        raise ValueError(f'{cls_name}: lr must be >= 0, got {lr}')
    for name, v in betas.items():
        if not 0 <= v < 1: raise ValueError(f'{cls_name}: {name} must be in [0, 1), got {v}')


class _FastaiOptimizer(torch.optim.Optimizer):
    "The loop shared by fastai-style optimizers: gather the parameters with a gradient, group by group."

    def _with_grads(self, group: dict) -> tuple[list, list, list]:
        ps, grads, states = [], [], []
        for p in group['params']:
            if p.grad is None: continue
            if p.grad.is_sparse: raise RuntimeError(f'{type(self).__name__} does not support sparse gradients')
            ps.append(p); grads.append(p.grad); states.append(self.state[p])
        return ps, grads, states

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> Any:
        "Update every parameter that has a gradient (``closure`` re-evaluates the loss, as in torch)."
        loss = None
        if closure is not None:
            with torch.enable_grad(): loss = closure()
        for group in self.param_groups:
            ps, grads, states = self._with_grads(group)
            if ps: self._group_step(group, ps, grads, states)
        return loss

    def _group_step(self, group: dict, ps: list, grads: list, states: list) -> None:
        raise NotImplementedError


def _averages(states: list, ps: list, names: Iterable[str]) -> list[list[torch.Tensor]]:
    "The running averages ``names`` of each parameter, created as zeros on first use."
    for s, p in zip(states, ps):
        for n in names:
            if n not in s: s[n] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return [[s[n] for s in states] for n in names]


def _adam_moments(group: dict, ps: list, grads: list, states: list) -> None:
    """Dampened averages of the gradient (``mom``) and of its square (``sqr_mom``), and the step count."""
    grad_avgs, sqr_avgs = _averages(states, ps, ('grad_avg', 'sqr_avg'))
    mom, sqr_mom = group['mom'], group['sqr_mom']
    torch._foreach_mul_(grad_avgs, mom)
    torch._foreach_add_(grad_avgs, grads, alpha=1 - mom)
    torch._foreach_mul_(sqr_avgs, sqr_mom)
    torch._foreach_addcmul_(sqr_avgs, grads, grads, value=1 - sqr_mom)
    for s in states: s['step'] = s.get('step', 0) + 1


class RMSPropOptimizer(_FastaiOptimizer):
    """fastai's RMSProp with momentum: ``grad_avg = mom*grad_avg + grad``,
    ``p -= lr * grad_avg / (sqrt(sqr_avg) + eps)``."""

    def __init__(self, params: Any, lr: float = 1e-2, mom: float = 0.9, sqr_mom: float = 0.99,
                 eps: float = 1e-8) -> None:
        _check_hypers(type(self).__name__, lr, mom=mom, sqr_mom=sqr_mom)
        super().__init__(params, dict(lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps))

    def _group_step(self, group: dict, ps: list, grads: list, states: list) -> None:
        grad_avgs, sqr_avgs = _averages(states, ps, ('grad_avg', 'sqr_avg'))
        torch._foreach_mul_(grad_avgs, group['mom'])
        torch._foreach_add_(grad_avgs, grads)
        sqr_mom = group['sqr_mom']
        torch._foreach_mul_(sqr_avgs, sqr_mom)
        torch._foreach_addcmul_(sqr_avgs, grads, grads, value=1 - sqr_mom)
        denoms = torch._foreach_sqrt(sqr_avgs)
        torch._foreach_add_(denoms, group['eps'])
        torch._foreach_addcdiv_(ps, grad_avgs, denoms, value=-group['lr'])


class RAdamOptimizer(_FastaiOptimizer):
    """fastai's RAdam (rectified Adam): a plain momentum step while the variance estimate is unreliable
    (``r <= 5``), then Adam scaled by the rectification ``v``; ``beta > 0`` smooths the denominator
    with ``softplus(denom, beta)`` (SAdam)."""

    def __init__(self, params: Any, lr: float = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99,
                 eps: float = 1e-5, beta: float = 0.) -> None:
        _check_hypers(type(self).__name__, lr, mom=mom, sqr_mom=sqr_mom)
        super().__init__(params, dict(lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, beta=beta))

    def _group_step(self, group: dict, ps: list, grads: list, states: list) -> None:
        _adam_moments(group, ps, grads, states)
        lr, mom, sqr_mom, eps, beta = group['lr'], group['mom'], group['sqr_mom'], group['eps'], group['beta']
        r_inf = 2 / (1 - sqr_mom) - 1
        for p, s in zip(ps, states):
            step = s['step']
            debias1, debias2 = _debias(mom, 1 - mom, step), _debias(sqr_mom, 1 - sqr_mom, step)
            r = r_inf - 2 * step * sqr_mom ** step / (1 - sqr_mom ** step)
            if r <= 5:
                p.add_(s['grad_avg'], alpha=-lr / debias1)
                continue
            v = math.sqrt(((r - 4) * (r - 2) * r_inf) / ((r_inf - 4) * (r_inf - 2) * r))
            denom = (s['sqr_avg'] / debias2).sqrt()
            if eps: denom += eps
            if beta: denom = F.softplus(denom, beta)
            p.addcdiv_(s['grad_avg'], denom, value=-lr * v / debias1)


class QHAdamOptimizer(_FastaiOptimizer):
    """fastai's QHAdam (quasi-hyperbolic Adam): the step mixes the raw gradient with its debiased
    average (``nu_1``), and the squared gradient with its debiased average (``nu_2``)."""

    def __init__(self, params: Any, lr: float = 1e-3, mom: float = 0.999, sqr_mom: float = 0.999,
                 nu_1: float = 0.7, nu_2: float = 1.0, eps: float = 1e-8) -> None:
        _check_hypers(type(self).__name__, lr, mom=mom, sqr_mom=sqr_mom)
        super().__init__(params, dict(lr=lr, mom=mom, sqr_mom=sqr_mom, nu_1=nu_1, nu_2=nu_2, eps=eps))

    def _group_step(self, group: dict, ps: list, grads: list, states: list) -> None:
        _adam_moments(group, ps, grads, states)
        lr, mom, sqr_mom, eps = group['lr'], group['mom'], group['sqr_mom'], group['eps']
        nu_1, nu_2 = group['nu_1'], group['nu_2']
        for p, g, s in zip(ps, grads, states):
            step = s['step']
            debias1, debias2 = _debias(mom, 1 - mom, step), _debias(sqr_mom, 1 - sqr_mom, step)
            num = ((1 - nu_1) * g) + (nu_1 * (s['grad_avg'] / debias1))
            denom = (((1 - nu_2) * g ** 2) + (nu_2 * (s['sqr_avg'] / debias2))).sqrt() + eps
            p.addcdiv_(num, denom, value=-lr)


class LambOptimizer(_FastaiOptimizer):
    """fastai's LAMB: the Adam step of each parameter tensor is rescaled by the trust ratio
    ``rms(p) / rms(step)`` (capped at 10; 1 when either is zero)."""

    def __init__(self, params: Any, lr: float = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99,
                 eps: float = 1e-5) -> None:
        _check_hypers(type(self).__name__, lr, mom=mom, sqr_mom=sqr_mom)
        super().__init__(params, dict(lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps))

    def _group_step(self, group: dict, ps: list, grads: list, states: list) -> None:
        _adam_moments(group, ps, grads, states)
        lr, mom, sqr_mom, eps = group['lr'], group['mom'], group['sqr_mom'], group['eps']
        for p, s in zip(ps, states):
            step = s['step']
            debias1, debias2 = _debias(mom, 1 - mom, step), _debias(sqr_mom, 1 - sqr_mom, step)
            r1 = p.pow(2).mean().sqrt()
            upd = (s['grad_avg'] / debias1) / ((s['sqr_avg'] / debias2).sqrt() + eps)
            r2 = upd.pow(2).mean().sqrt()
            q = torch.where((r1 == 0) | (r2 == 0), torch.ones_like(r1), (r1 / r2).clamp(max=10))
            p.addcmul_(upd, -lr * q)


class LookaheadOptimizer(torch.optim.Optimizer):
    """Lookahead around any torch ``optimizer``: it steps the fast weights; every ``k`` steps the slow
    weights (a copy taken at the first step) move ``alpha`` of the way to them and the fast weights
    restart from the slow ones. ``param_groups`` and ``state`` are the inner optimizer's."""

    def __init__(self, optimizer: torch.optim.Optimizer, k: int = 6, alpha: float = 0.5) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(f'LookaheadOptimizer: optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}')
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f'LookaheadOptimizer: k must be a positive int (steps between syncs), got {k!r}')
        if not 0 <= alpha <= 1: raise ValueError(f'LookaheadOptimizer: alpha must be in [0, 1], got {alpha!r}')
        self.optimizer, self.k, self.alpha = optimizer, k, alpha
        self.count, self.slow_weights = 0, None
        # torch's own unpickling path sets up the hook tables without adding parameter groups.
        torch.optim.Optimizer.__setstate__(self, {'defaults': optimizer.defaults})

    @property
    def param_groups(self) -> list[dict]:
        "The inner optimizer's parameter groups."
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, v: list[dict]) -> None: self.optimizer.param_groups = v

    @property
    def state(self) -> defaultdict:
        "The inner optimizer's per-parameter state."
        return self.optimizer.state

    @state.setter
    def state(self, v: Any) -> None:
        "A new state is a fresh start: the slow weights and the step count are reset too."
        self.optimizer.state = v
        self.count, self.slow_weights = 0, None

    def __getstate__(self) -> dict: return dict(self.__dict__)

    def _params(self) -> list[torch.Tensor]: return [p for g in self.param_groups for p in g['params']]

    def prepare_step(self) -> None:
        "Take the slow weights at the first step, before anything (the wrapper's weight decay) changes the weights."
        if self.slow_weights is None: self.slow_weights = {p: p.detach().clone() for p in self._params()}

    @torch.no_grad()
    def step(self, closure: Callable | None = None) -> Any:
        "One step of the inner optimizer; every ``k``-th also syncs the slow and the fast weights."
        self.prepare_step()
        loss = self.optimizer.step(closure) if closure is not None else self.optimizer.step()
        self.count += 1
        if self.count % self.k: return loss
        fast = [p for p in self._params() if p in self.slow_weights]
        slow = [self.slow_weights[p] for p in fast]
        torch._foreach_add_(slow, torch._foreach_sub(fast, slow), alpha=self.alpha)
        torch._foreach_copy_(fast, slow)
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        "Zero (or drop) the gradients, as the inner optimizer does."
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        "The inner optimizer's state dict, plus ``'lookahead': {count, slow_weights}`` (in parameter order)."
        sd = self.optimizer.state_dict()
        slow = None if self.slow_weights is None else [self.slow_weights[p] for p in self._params()]
        sd['lookahead'] = {'count': self.count, 'slow_weights': slow}
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        "Load a state dict saved by :meth:`state_dict` (a plain inner state dict restarts the lookahead)."
        sd = dict(state_dict)
        la = sd.pop('lookahead', None) or {'count': 0, 'slow_weights': None}
        self.optimizer.load_state_dict(sd)
        self.count, slow = la['count'], la['slow_weights']
        params = self._params()
        if slow is not None and len(slow) != len(params):
            raise ValueError(f'LookaheadOptimizer.load_state_dict: {len(slow)} slow weights for {len(params)} parameters')
        self.slow_weights = None if slow is None else {p: w.to(p) for p, w in zip(params, slow)}

    def __repr__(self) -> str:
        return f'LookaheadOptimizer(k={self.k}, alpha={self.alpha}, {self.optimizer!r})'
