"""``OptimWrapper``: any torch optimizer behind fastai's hyper-parameter names, with two faces.

**One state.** Every hyper-parameter value lives in the torch optimizer's ``param_groups``; the
wrapper keeps no copy, only the layout: which torch groups make each *hyper-parameter group* (one
per group of the splitter, or per v1 layer group). A hyper-parameter group is a main torch group,
optionally followed by a *no-wd companion* (a torch group carrying the key ``'do_wd'``) that holds
the parameters excluded from weight decay (v1's ``[wd_params, no_wd_params]`` layout).

**v2 face** (fastai 2): ``hypers``, ``set_hyper(s)``, ``get_hyper``, ``param_lists``, ``state``
(per-parameter flags ``do_wd``/``force_train``), ``freeze_to``, ``state_dict``... fastai names
``lr, mom, sqr_mom, eps, wd`` map to torch's ``lr, momentum|betas[0], alpha|betas[1], eps,
weight_decay`` (:data:`pytorch_hp_map`).

**v1 face** (fastai 1): properties ``lr, mom, beta, wd`` (getters read the last group; ``beta`` is
``sqr_mom``), ``true_wd``, ``bn_wd``, :meth:`OptimWrapper.create`, ``new``, ``read_val``/``set_val``,
``get_stat``/``set_stat``, ``clear``, ``n_params`` and a passthrough to the torch optimizer that
gives None for unknown public names.

**Weight decay** is either torch's own (``decouple_wd=None``: ``weight_decay`` in the groups) or the
wrapper's, kept in the groups under ``'wd'`` and applied before the torch step: decoupled
(``p *= 1 - lr*wd``, fastai's default, v1's ``true_wd``) or as L2 (``grad += wd*p``); an optimizer
without ``weight_decay`` (trainlib's own algorithms) always gets the wrapper's. Parameters
flagged ``state[p]['do_wd'] = False`` (norm layers and biases unless ``Learner(wd_bn_bias=True)``)
are never decayed: the wrapper skips them, and when torch owns the decay they are moved, at the next
step, into the no-wd companion group whose ``weight_decay`` is 0. (fastai 2.8 ignores ``wd_bn_bias``
for a wrapped torch optimizer; trainlib honours it. The move changes ``len(param_groups)``, the
torch groups, not the number of hyper-parameter groups ``n_groups``.)

**Gradients.** fastai 2's optimizers zero gradients in place, so a parameter that once had a
gradient always has one: a step after a cancelled backward (or for a parameter this batch did not
use) still moves it through momentum and weight decay. Zeroing in place costs a write of every
gradient and makes backward add into it (about 3% of a small MLP's batch), so by default
(``set_to_none=None``) ``zero_grad`` drops the gradients, as torch does, and ``step`` first gives a
zero gradient back to each parameter that had one and has none now: the same updates, bit for bit,
at the cost of a look at each parameter's ``grad``. Between batches ``p.grad`` is therefore None
where fastai 2 shows zeros. ``set_to_none=False`` zeroes in place; ``set_to_none=True`` drops them
with torch's semantics (a parameter without a gradient is not stepped; fastai 1 on torch 2, and
the v1 face).

**Profiler scopes.** torch wraps every ``Optimizer.step`` and ``zero_grad`` in a profiler scope that
costs tens of µs per batch through Python even when no profiler runs. The wrapper calls the
optimizer's own functions without it when no profiler runs and no step hook or patched ``step``
(an LR scheduler's) would be skipped; under a profiler, torch's wrapped methods run as usual.
On that path the v1 face steps fastai 1's weights and their no-wd companion as one torch group when
their hyper-parameters are the same objects (what the wrapper's writes give them), for the torch
optimizers whose step only reads its groups (:data:`_JOINABLE`): the same updates, torch's per-group
work once instead of twice; ``param_groups`` is unchanged.

A list of values whose length is not ``n_groups`` raises :class:`HyperLengthError`, a ``ValueError``
that is also an ``AssertionError`` (what fastai 1 and 2 raised), with fastai 1's words first.
"""
from __future__ import annotations

import inspect
import warnings
from collections import defaultdict
from collections.abc import Iterator, MutableMapping
from operator import is_, itemgetter
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from torch.optim import optimizer as _torch_optimizer

from .optimizers import LambOptimizer, LookaheadOptimizer, QHAdamOptimizer, RAdamOptimizer, RMSPropOptimizer
from .utils import is_listy, slice_values

__all__ = ['OptimWrapper', 'HyperGroup', 'HyperLengthError', 'Adam', 'AdamW', 'SGD', 'RMSProp', 'RAdam', 'QHAdam',
           'Lamb', 'Lookahead', 'ranger', 'pytorch_hp_map', 'params_groups', 'split_no_wd_params']

pytorch_hp_map = {'momentum': 'mom', 'weight_decay': 'wd', 'alpha': 'sqr_mom', 'betas__0': 'mom',
                  'betas__1': 'sqr_mom'}
"torch param-group key -> fastai hyper-parameter name (tuples are split as ``key__i``)."

_HIDDEN_KEYS = frozenset(('params', 'initial_lr', 'do_wd'))
_SCALARS = frozenset((float, int, np.float64, np.float32))
_V1_NAMES = {'lr': 'lr', 'mom': 'mom', 'beta': 'sqr_mom', 'wd': 'wd'}
no_wd_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm)
"The layers whose parameters fastai 1 never decays (its ``no_wd_types``)."
bias_types = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
"The layers whose ``bias`` fastai 1 never decays (its ``bias_types``)."


class HyperLengthError(ValueError, AssertionError):
    "Hyper-parameter values whose number is not the number of parameter groups (an AssertionError in fastai)."


def params_groups(params: Any) -> list[list]:
    "Normalise ``params`` (tensors, a list of them, or a list of lists) into a list of groups."
    params = list(params)
    if not params: return [[]]
    if isinstance(params[0], dict): return [list(g['params']) for g in params]
    if isinstance(params[0], torch.Tensor): return [params]
    return [list(g) for g in params]


def _torch_groups(params: Any, convert_groups: bool) -> Any:
    "What a torch optimizer is built on: dict groups pass through, lists of lists become groups."
    if not convert_groups: return params
    params = list(params)
    if params and isinstance(params[0], dict): return params
    return [{'params': g} for g in params_groups(params)]


def _unique(ps: Iterable) -> list:
    seen: set = set()
    return [p for p in ps if not (id(p) in seen or seen.add(id(p)))]


def split_no_wd_params(layer_groups: Iterable[nn.Module]) -> list[list]:
    """fastai 1's split: for each layer group, ``[wd_params, no_wd_params]``. Only the direct children are
    scanned: BatchNorm/LayerNorm parameters and the ``bias`` of Linear/Conv layers (even a frozen one)
    go to ``no_wd_params``; every other trainable parameter to ``wd_params``."""
    out = []
    for lg in layer_groups:
        wd, no_wd = [], []
        for c in lg.children():
            trainable = [p for p in c.parameters() if p.requires_grad]
            if isinstance(c, no_wd_types): no_wd += trainable
            elif isinstance(c, bias_types):
                bias = getattr(c, 'bias', None)
                wd += [p for p in trainable if p is not bias]
                if bias is not None: no_wd.append(bias)
            else: wd += trainable
        out += [_unique(wd), _unique(no_wd)]
    return out


_TORCH_ZERO_GRAD = torch.optim.Optimizer.zero_grad


def _zero_grads(param_groups: list[dict], set_to_none: bool, kept: dict | None = None) -> None:
    """What ``torch.optim.Optimizer.zero_grad`` does without foreach, minus its per-call profiler
    scope (about 10 µs a batch): used when no profiler runs and the optimizer keeps torch's method.
    ``kept`` (id -> parameter) notes every parameter whose gradient is dropped."""
    for g in param_groups:
        for p in g['params']:
            grad = p.grad
            if grad is None: continue
            if set_to_none:
                p.grad = None
                if kept is not None and id(p) not in kept: kept[id(p)] = p
                continue
            if grad.grad_fn is not None: grad.detach_()
            elif grad.requires_grad: grad.requires_grad_(False)
            grad.zero_()


_GLOBAL_STEP_HOOKS = tuple(getattr(_torch_optimizer, n, None)
                           for n in ('_global_optimizer_pre_hooks', '_global_optimizer_post_hooks'))


def _unscoped_step(opt: torch.optim.Optimizer) -> Callable | None:
    """``opt``'s own step function without the wrapper torch puts around every ``Optimizer.step``, when
    that wrapper would do nothing but open its profiler scope (about 25 µs a batch on a small model):
    no profiler runs, no step hook is registered (globally or on ``opt``), no one patched ``opt.step``
    (as torch's LR schedulers do). None when any of these holds or the wrapper is not torch's."""
    wrapper = type(opt).step
    inner = _INNER_STEP.get(wrapper, _UNKNOWN)
    if inner is _UNKNOWN: inner = _INNER_STEP[wrapper] = _inner_step(type(opt))
    if inner is None or 'step' in opt.__dict__ or getattr(opt, '_optimizer_step_pre_hooks', True) \
            or getattr(opt, '_optimizer_step_post_hooks', True) or any(_GLOBAL_STEP_HOOKS) \
            or torch.autograd._profiler_enabled():
        return None
    return inner


_INNER_STEP: dict = {}          # torch's step wrapper of a class -> the function it wraps (or None)
_UNKNOWN = object()

_JOINABLE = frozenset((torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.RMSprop,
                       torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam))
"""torch optimizers whose step only reads its groups and keeps its state per parameter: stepping two
groups of the same hyper-parameters as one group gives each parameter the same update
(``tests/test_hot_path.py`` checks it, parameters and state, for each of them)."""


def _joined_groups(groups: list[dict], hypers: Callable[[dict], tuple]) -> list[dict] | None:
    """``groups`` with each run of adjacent ones whose hyper-parameters (``hypers(group)``) are the same objects
    made one group (a copy of the first, with the run's parameters); None when no two join, or a group lacks
    one of them (torch's step then says which). Stepping the joined list runs torch's per-group work
    (~30k instructions, 3 µs on CPU) once for fastai 1's weights and their no-wd companion."""
    joined, last = [], None
    try:
        for g in groups:
            h = hypers(g)
            if last is not None and all(map(is_, h, last)):
                top = joined[-1]
                joined[-1] = {**top, 'params': top['params'] + g['params']}
            else:
                joined.append(g)
                last = h
    except KeyError: return None
    return joined if len(joined) < len(groups) else None


def _inner_step(cls: type) -> Callable | None:
    "The function torch's step wrapper of optimizer class ``cls`` wraps, when that wrapper is torch's."
    wrapped = getattr(cls.step, '__wrapped__', None)
    if wrapped is None or not getattr(cls.step, 'hooked', False) or None in _GLOBAL_STEP_HOOKS \
            or getattr(cls, '_optimizer_step_code', None) is not torch.optim.Optimizer._optimizer_step_code:
        return None
    return wrapped


def _note_grads(param_groups: list[dict], kept: dict) -> None:
    "Note in ``kept`` the parameters that have a gradient now."
    for g in param_groups:
        for p in g['params']:
            if p.grad is not None and id(p) not in kept: kept[id(p)] = p


class _Flags(dict):
    "One parameter's flags (``do_wd``, ``force_train``): a dict that counts its changes in a shared tick."
    tick: list | None = None

    def _changed(self) -> None:
        if self.tick is not None: self.tick[0] += 1

    def __setitem__(self, k: Any, v: Any) -> None: super().__setitem__(k, v); self._changed()
    def __delitem__(self, k: Any) -> None: super().__delitem__(k); self._changed()
    def update(self, *a: Any, **kw: Any) -> None: super().update(*a, **kw); self._changed()
    def clear(self) -> None: super().clear(); self._changed()
    def pop(self, *a: Any) -> Any: self._changed(); return super().pop(*a)
    def popitem(self) -> Any: self._changed(); return super().popitem()

    def setdefault(self, k: Any, v: Any = None) -> Any:
        if k not in self: self[k] = v
        return self[k]

    def __reduce__(self) -> tuple: return (_Flags, (dict(self),))


class ParamState(dict):
    """Per-parameter flags, keyed by parameter (a missing one gets an empty dict, as a defaultdict).
    Every change bumps ``tick[0]``, so the wrapper re-derives its weight-decay layout only when needed."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__()
        self.tick = [0]
        for k, v in dict(items).items(): self[k] = v

    def _flags(self, v: Any) -> _Flags:
        f = v if isinstance(v, _Flags) else _Flags(v)
        f.tick = self.tick
        return f

    def __missing__(self, p: Any) -> _Flags:
        f = self._flags({})
        super().__setitem__(p, f)
        return f

    def __setitem__(self, p: Any, v: Any) -> None: super().__setitem__(p, self._flags(v)); self.tick[0] += 1
    def __delitem__(self, p: Any) -> None: super().__delitem__(p); self.tick[0] += 1
    def clear(self) -> None: super().clear(); self.tick[0] += 1

    def update(self, *a: Any, **kw: Any) -> None:
        for k, v in dict(*a, **kw).items(): self[k] = v

    def __reduce__(self) -> tuple: return (ParamState, ({k: dict(v) for k, v in self.items()},))


def _wd_of(group: dict) -> Any:
    "The weight decay a torch group holds (the wrapper's ``'wd'`` key, else torch's ``weight_decay``)."
    return group['wd'] if 'wd' in group else (group.get('weight_decay') or 0.)


class OptimWrapper:
    """Wrap ``opt`` (a torch optimizer class or instance) so it speaks fastai's hyper-parameters (v2) and
    fastai 1's ``OptimWrapper`` properties (v1). See the module docstring."""

    def __init__(self, params: Any = None, opt: Any = torch.optim.Adam, hp_map: dict | None = None,
                 decouple_wd: bool | None = None, set_to_none: bool | None = None, convert_groups: bool = True, *,
                 true_wd: bool | None = None, bn_wd: bool | None = None, **hypers: Any) -> None:
        if isinstance(params, torch.optim.Optimizer) and opt is torch.optim.Adam:
            params, opt = None, params                 # fastai 1: OptimWrapper(torch_opt, wd, true_wd, bn_wd)
        v1 = true_wd is not None or bn_wd is not None
        if v1:
            decouple_wd, set_to_none = (True if true_wd else None), True
            hypers.setdefault('wd', 0.)
        self.fwd_map = dict(pytorch_hp_map if hp_map is None else hp_map)
        self.set_to_none, self._v1 = set_to_none, v1
        self._kept: dict = {}       # id -> parameter: those fastai 2 would hold a (zero) gradient for
        self.state = ParamState()
        self.frozen_idx = 0
        self._keys: dict = {}
        self._plans: dict = {}
        self._decouple_wd: bool | None = None
        if isinstance(opt, torch.optim.Optimizer):
            if params is not None:
                raise ValueError('OptimWrapper: got both `params` and a built optimizer; pass only `opt=`')
            self.opt_func = type(opt)
        else:
            if params is None:
                raise ValueError('OptimWrapper: pass `params` (parameters or groups) to build `opt`, '
                                 'or pass a built torch optimizer as `opt`')
            self.opt_func = opt
            opt = opt(_torch_groups(params, convert_groups), **_constructor_args(opt, hypers))
        self._opt = opt
        self._relayout(mark_pairs=v1, bn_wd=True if bn_wd is None else bn_wd)
        self._set_wd_mode(decouple_wd)
        if hypers: self.set_hypers(**hypers)

    # ================================================================== layout
    @property
    def opt(self) -> torch.optim.Optimizer:
        "The torch optimizer (assigning another one re-reads the layout, as fastai 1's GAN trainer needs)."
        return self._opt

    @opt.setter
    def opt(self, v: torch.optim.Optimizer) -> None:
        if not hasattr(v, 'param_groups'):
            raise TypeError(f'OptimWrapper.opt: expected a torch optimizer, got {type(v).__name__}')
        bn_wd = self.bn_wd
        self._opt = v
        self._relayout(mark_pairs=self._v1 and not any('do_wd' in g for g in v.param_groups), bn_wd=bn_wd)
        self._set_wd_mode(self._decouple_wd)

    def _relayout(self, mark_pairs: bool = False, bn_wd: bool = True) -> None:
        "Derive the hyper-parameter groups from the torch groups: a group with ``'do_wd'`` joins the previous one."
        groups = self._opt.param_groups
        if mark_pairs:
            if len(groups) % 2:
                raise ValueError(f'OptimWrapper (fastai 1 style): expected two torch param groups per layer group '
                                 f'([wd_params, no_wd_params], as OptimWrapper.create makes), got {len(groups)}')
            for g in groups[1::2]: g['do_wd'] = bn_wd
        layout: list[list[int]] = []
        for i, g in enumerate(groups):
            if 'do_wd' in g and layout: layout[-1].append(i)
            else: layout.append([i])
        self._layout, self._main = layout, [idxs[0] for idxs in layout]
        self._n_torch, self._tick_seen = len(groups), -1
        self._keys.clear(); self._plans.clear(); self._kept.clear()

    def _groups(self) -> list[dict]:
        "The torch groups, after re-reading the layout if somebody added groups to the torch optimizer."
        groups = self._opt.param_groups
        if len(groups) != self._n_torch: self._relayout()
        return groups

    def _sync(self) -> None:
        "Re-derive what depends on the ``do_wd`` flags (cheap when nothing changed since the last call)."
        groups = self._groups()
        if self._tick_seen == self.state.tick[0]: return
        if self._decouple_wd is None and not self._v1 and self._split_no_wd(groups): groups = self._groups()
        flags = self.state
        self._decay = [[p for p in g['params'] if (flags.get(p) or {}).get('do_wd', True)] if g.get('do_wd', True)
                       else [] for g in groups]
        self._tick_seen = flags.tick[0]

    def _split_no_wd(self, groups: list[dict]) -> bool:
        "Torch owns the decay: move the parameters flagged ``do_wd=False`` into no-wd companion groups."
        flags, new = self.state, []
        for idxs in self._layout:
            main = groups[idxs[0]]
            comp = groups[idxs[1]] if len(idxs) > 1 else None
            ps = list(main['params']) + (list(comp['params']) if comp is not None else [])
            no_wd = [p for p in ps if not (flags.get(p) or {}).get('do_wd', True)]
            new.append(main)
            if not no_wd and comp is None: continue
            ids = {id(p) for p in no_wd}
            if comp is None:
                comp = {**{k: v for k, v in main.items() if k != 'params'}, 'do_wd': False, 'weight_decay': 0.}
            main['params'], comp['params'] = [p for p in ps if id(p) not in ids], no_wd
            new.append(comp)
        changed = len(new) != len(groups)
        if changed:
            groups[:] = new
            self._relayout()
        return changed

    @property
    def param_groups(self) -> list[dict]:
        "The torch optimizer's param groups (live; a hyper-parameter group may hold a no-wd companion)."
        self._sync()
        return self._opt.param_groups

    @property
    def param_lists(self) -> list[list]:
        "The parameters of each hyper-parameter group."
        groups = self._groups()
        return [[p for j in idxs for p in groups[j]['params']] for idxs in self._layout]

    def all_params(self, n: slice | int = slice(None), with_grad: bool = False) -> list[tuple]:
        """fastai 2's ``(param, its group's parameters, its state, its group's hypers)`` for the parameters of
        hyper-parameter groups ``n`` (a slice or an index), only those with a gradient if ``with_grad``."""
        lists, hypers = self.param_lists, self.hypers
        which = range(len(lists))[n] if isinstance(n, slice) else [range(len(lists))[n]]
        return [(p, lists[i], self.state[p], hypers[i]) for i in which for p in lists[i]
                if not with_grad or p.grad is not None]

    @property
    def n_groups(self) -> int:
        "The number of hyper-parameter groups (the splitter's groups, or v1 layer groups)."
        self._groups()
        return len(self._layout)

    @property
    def state(self) -> ParamState:
        "Per-parameter flags (``do_wd``, ``force_train``), keyed by parameter."
        return self._state

    @state.setter
    def state(self, v: Any) -> None:
        self._state = v if isinstance(v, ParamState) else ParamState(v)
        self._tick_seen = -1

    # ================================================================== hyper-parameters
    def _resolve(self, name: str) -> tuple[str, int | None]:
        "The torch key (and tuple index) that holds fastai hyper-parameter ``name``."
        r = self._keys.get(name)
        if r is not None: return r
        groups = self._groups()
        main = groups[self._main[0]] if groups else {}
        if name == 'wd': r = ('weight_decay' if self._decouple_wd is None else 'wd', None)
        else:
            r = (name, None)
            for k, v in self.fwd_map.items():
                base, _, idx = k.partition('__')
                if v == name and base in main:
                    r = (base, int(idx) if idx else None)
                    break
        self._keys[name] = r
        return r

    def _plan(self, g: dict) -> list[tuple[str, Any]]:
        "How a torch group with ``g``'s keys reads in fastai names: ``(key, name or tuple of names)``, cached per key set."
        keys = tuple(g)
        plan = self._plans.get(keys)
        if plan is not None: return plan
        fwd, plan = self.fwd_map, []
        for k in keys:
            if k in _HIDDEN_KEYS or (k == 'weight_decay' and self._decouple_wd is not None): continue
            if isinstance(g[k], tuple): plan.append((k, tuple(fwd.get(f'{k}__{j}', f'{k}__{j}') for j in range(len(g[k])))))
            else: plan.append((k, 'wd' if k == 'wd' else fwd.get(k, k)))
        self._plans[keys] = plan
        return plan

    @property
    def hypers(self) -> list[HyperGroup]:
        "One live mapping of fastai-named hyper-parameters per group: ``opt.hypers[-1]['lr'] = 0.1`` sets it."
        return [HyperGroup(self, i) for i in range(self.n_groups)]

    def _hyper_values(self, group: int) -> dict:
        "Group ``group``'s hyper-parameters under fastai's names, as a plain dict."
        g, h = self._groups()[self._main[group]], {}
        for k, name in self._plan(g):
            if isinstance(name, tuple): h.update(zip(name, g[k]))
            else: h[name] = g[k]
        return h

    def get_hyper(self, name: str, group: int = -1) -> Any:
        "The value of hyper-parameter ``name`` in one group (cheap: no dict is built)."
        key, idx = self._resolve(name)
        groups = self._opt.param_groups
        if len(groups) != self._n_torch: groups = self._groups()
        g = groups[self._main[group]]
        if key not in g:
            raise KeyError(f'get_hyper({name!r}): the optimizer has no hyper-parameter {name!r}; '
                           f'it has {", ".join(self.hypers[group])}')
        return g[key] if idx is None else g[key][idx]

    def _broadcast(self, name: str, v: Any) -> list:
        "One value per group: a scalar is repeated, a slice spread, a list checked."
        n = len(self._layout)
        if type(v) in _SCALARS: return [v] * n
        if isinstance(v, slice): return slice_values(v, n)
        if isinstance(v, np.ndarray): v = list(v) if v.ndim else v[()]     # numpy scalars, as fastai keeps them
        elif isinstance(v, torch.Tensor) and v.dim(): v = list(v)
        if not is_listy(v): return [v] * n
        if len(v) == 1: return list(v) * n
        if len(v) != n:
            raise HyperLengthError(f'List len mismatch ({len(v)} vs {n}): trying to set {len(v)} values for '
                                   f'{name!r} but there are {n} parameter groups; pass one value, a slice, '
                                   f'or exactly {n} values')
        return list(v)

    def set_hyper(self, name: str, v: Any) -> None:
        """Set hyper-parameter ``name`` in every group: a scalar, a list (one per group) or a slice. A name the
        optimizer lacks is added to its groups (as fastai's own Optimizer allows; the torch step ignores it)."""
        groups = self._groups()
        self._write_hyper(groups, name, self._layout, self._broadcast(name, v))

    def _write_hyper(self, groups: list[dict], name: str, layout: list, vals: list) -> None:
        """Write ``vals`` (one per hyper-parameter group of ``layout``, lists of indices into the torch ``groups``)
        for ``name``."""
        if name == 'wd':
            for idxs, vi in zip(layout, vals):
                for j in idxs: self._write_wd(groups[j], vi)
            return
        key, idx = self._resolve(name)
        old = new = None       # groups that held one tuple hold one again (their step can be joined: _joined_groups)
        for idxs, vi in zip(layout, vals):
            for j in idxs:
                g = groups[j]
                if idx is None: g[key] = vi
                else:
                    t = g[key]
                    if t is not old or vi is not new[idx]:
                        old = t
                        t = t if type(t) is tuple else tuple(t)
                        new = t[:idx] + (vi,) + t[idx + 1:]
                    g[key] = new

    def set_hypers(self, **kwargs: Any) -> None:
        "Set several hyper-parameters, in the order given."
        for k, v in kwargs.items(): self.set_hyper(k, v)

    # ================================================================== weight decay
    def _write_wd(self, g: dict, v: Any) -> None:
        "Store weight decay ``v`` in torch group ``g`` where the current mode keeps it."
        if self._decouple_wd is None:
            g.pop('wd', None)
            g['weight_decay'] = v if g.get('do_wd', True) else 0.
        else:
            g['wd'] = v
            if 'weight_decay' in g: g['weight_decay'] = 0.

    def _set_wd_mode(self, mode: bool | None) -> None:
        "Who applies weight decay: torch (None), the wrapper decoupled (True) or as L2 (False); values move along."
        groups = self._groups()
        if mode is None and groups and 'weight_decay' not in groups[0]: mode = True
        values = [_wd_of(groups[i]) for i in self._main]
        self._decouple_wd = mode
        for idxs, v in zip(self._layout, values):
            for j in idxs: self._write_wd(groups[j], v)
        self._keys.clear(); self._plans.clear()
        self._tick_seen = -1

    @property
    def decouple_wd(self) -> bool | None:
        "None: torch's own ``weight_decay``; True: decoupled decay by the wrapper; False: L2 by the wrapper."
        return self._decouple_wd

    @decouple_wd.setter
    def decouple_wd(self, mode: bool | None) -> None: self._set_wd_mode(mode)

    def _apply_wd(self) -> None:
        "Decoupled decay or L2 on the parameters that may be decayed (with a gradient, except in v1)."
        groups = self._opt.param_groups
        if self._v1:                      # fastai 1 zeroes torch's weight_decay before every step
            for g in groups:
                if g.get('weight_decay'): g['weight_decay'] = 0.
        for g, ps in zip(groups, self._decay):
            wd = g['wd']
            if not ps or not wd: continue
            if not self._v1:              # fastai 1 decays every parameter; fastai 2 those with a gradient
                ps = [p for p in ps if p.grad is not None]
                if not ps: continue
            with torch.no_grad():
                if self._decouple_wd: torch._foreach_mul_(ps, 1 - g['lr'] * wd)
                else: torch._foreach_add_([p.grad for p in ps], ps, alpha=wd)

    # ================================================================== stepping
    def step(self, closure: Callable | None = None) -> Any:
        """Apply weight decay (if the wrapper owns it), then the torch optimizer's step. A torch optimizer
        may define ``prepare_step()``: it runs first. (With a ``closure`` the wrapper's L2 term is lost, as
        the closure recomputes the gradients: fastai optimizers do not take closures at all.)"""
        for p in self._kept.values():          # fastai 2 would hold a zero gradient for these
            if p.grad is None: p.grad = torch.zeros_like(p)
        if self._tick_seen != self._state.tick[0] or len(self._opt.param_groups) != self._n_torch: self._sync()
        opt = self._opt
        prepare = getattr(opt, 'prepare_step', None)   # e.g. Lookahead's first copy of the weights
        if prepare is not None: prepare()
        if self._decouple_wd is not None: self._apply_wd()
        if closure is not None: return opt.step(closure)
        step = _unscoped_step(opt)
        if step is None: return opt.step()
        groups = opt.param_groups
        joined = _joined_groups(groups, itemgetter(*opt.defaults)) \
            if self._v1 and type(opt) in _JOINABLE and len(groups) > 1 else None
        if joined is None: return step(opt)
        opt.param_groups = joined           # for this step only: the optimizer's own list is back after it
        try: return step(opt)
        finally: opt.param_groups = groups

    def zero_grad(self, set_to_none: bool | None = None) -> None:
        """Clear the gradients. ``set_to_none`` (default: the wrapper's): None drops them but steps as
        fastai 2 zeroing in place would (see the module docstring); True drops them (torch's default,
        fastai 1 on torch 2); False zeroes them in place."""
        if set_to_none is None: set_to_none = self.set_to_none
        kept = self._kept if set_to_none is None and not self._v1 else None
        opt = self._opt
        if type(opt).zero_grad is not _TORCH_ZERO_GRAD or opt.defaults.get('foreach') or opt.defaults.get('fused') \
                or torch.autograd._profiler_enabled():
            if kept is not None: _note_grads(opt.param_groups, kept)
            opt.zero_grad(set_to_none=set_to_none is not False)
        else: _zero_grads(opt.param_groups, set_to_none is not False, kept)

    # ================================================================== state
    def state_dict(self) -> dict:
        "The torch optimizer's state dict (every hyper-parameter, the wrapper's ``wd`` included)."
        self._sync()
        return self._opt.state_dict()

    def load_state_dict(self, sd: dict) -> None:
        "Load a state dict saved by :meth:`state_dict`; weight decay moves to where this wrapper keeps it."
        self._sync()
        marks = {j: g['do_wd'] for j, g in enumerate(self._opt.param_groups) if 'do_wd' in g}
        self._opt.load_state_dict(sd)
        for j, g in enumerate(self._opt.param_groups):
            if j in marks: g.setdefault('do_wd', marks[j])
            elif 'do_wd' in g: del g['do_wd']
        self._relayout()
        self._set_wd_mode(self._decouple_wd)

    def clear_state(self) -> None:
        "Forget the optimizer's running state (momentum...), keep the per-parameter flags."
        self._opt.state = defaultdict(dict)

    # ================================================================== freezing
    def freeze_to(self, n: int) -> None:
        "Train only the groups from ``n`` on (parameters flagged ``force_train`` stay trainable)."
        lists = self.param_lists
        self.frozen_idx = n if n >= 0 else len(lists) + n
        if self.frozen_idx >= len(lists):
            warnings.warn(f'freeze_to({n}): the optimizer has only {len(lists)} parameter group(s), '
                          f'so the whole model is frozen')
        for i, ps in enumerate(lists):
            for p in ps:
                p.requires_grad_(i >= self.frozen_idx or bool((self.state.get(p) or {}).get('force_train', False)))

    def freeze(self) -> None:
        "Freeze every group but the last (there must be several: fastai asserts it too)."
        if self.n_groups < 2:
            raise ValueError('freeze: the optimizer has a single parameter group, so "all but the last" is nothing; '
                             'give the Learner a splitter that makes several groups')
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        "Train every group."
        self.freeze_to(0)

    # ================================================================== v1 face
    @classmethod
    def create(cls, opt_func: Callable, lr: Any, layer_groups: Sequence[nn.Module], wd: Any = 0.,
               true_wd: bool = False, bn_wd: bool = True) -> 'OptimWrapper':
        """fastai 1: build ``opt_func`` on two torch groups per layer group (``[wd_params, no_wd_params]``, see
        :func:`split_no_wd_params`), then set ``wd`` and ``lr`` (a scalar or one value per layer group)."""
        opt = opt_func([{'params': ps, 'lr': 0} for ps in split_no_wd_params(layer_groups)])
        if isinstance(opt, OptimWrapper): opt = opt.opt
        res = cls(opt, wd=wd, true_wd=true_wd, bn_wd=bn_wd)
        res.lr, res.opt_func = lr, opt_func
        return res

    def new(self, layer_groups: Sequence[nn.Module], split_no_wd: bool = True) -> 'OptimWrapper':
        "fastai 1: a new wrapper on other ``layer_groups`` with this one's (last group's) hyper-parameters."
        res = self.create(self.opt_func, self.lr, layer_groups, wd=self.wd, true_wd=self.true_wd, bn_wd=self.bn_wd)
        res.mom, res.beta = self.mom, self.beta
        return res

    def new_with_params(self, param_groups: Sequence[Sequence[torch.Tensor]]) -> 'OptimWrapper':
        "fastai 1: a new wrapper on ``param_groups`` (already in ``[wd, no_wd]`` pairs) with these hyper-parameters."
        opt = self.opt_func([{'params': ps, 'lr': 0} for ps in param_groups])
        if isinstance(opt, OptimWrapper): opt = opt.opt
        res = type(self)(opt, wd=self.wd, true_wd=self.true_wd, bn_wd=self.bn_wd)
        res.lr, res.opt_func, res.mom, res.beta = self.lr, self.opt_func, self.mom, self.beta
        return res

    def _per_group(self, name: str) -> list | None:
        "The value of ``name`` in every group, None if the optimizer has no such hyper-parameter."
        key, idx = self._resolve(name)
        groups = self._groups()
        if key not in groups[self._main[0]]: return None
        return [groups[i][key] if idx is None else groups[i][key][idx] for i in self._main]

    def _v1_get(self, name: str) -> Any:
        key, idx = self._resolve(name)
        g = self._groups()[self._main[-1]]
        if key not in g: return None
        return g[key] if idx is None else g[key][idx]

    def _v1_set(self, name: str, v: Any) -> None:
        if v is not None: self.set_hyper(name, v)

    @property
    def lr(self) -> Any:
        "fastai 1: the last group's learning rate; set a scalar or one value per layer group."
        return self.get_hyper('lr')

    @lr.setter
    def lr(self, v: Any) -> None: self.set_hyper('lr', v)

    def v1_lr_mom(self) -> tuple:
        "``(self.lr, self.mom)`` in one cheap call (the v1 Recorder reads both every training batch)."
        keys, groups = self._keys, self._opt.param_groups
        lr_key, mom_key = keys.get('lr'), keys.get('mom')
        if lr_key is None or mom_key is None or len(groups) != self._n_torch: return self.lr, self.mom
        g = groups[self._main[-1]]
        (lk, li), (mk, mi) = lr_key, mom_key
        if lk not in g: return self.lr, self.mom           # the error get_hyper gives
        mom = None if mk not in g else g[mk] if mi is None else g[mk][mi]
        return (g[lk] if li is None else g[lk][li]), mom

    @property
    def mom(self) -> Any:
        "fastai 1: momentum (``momentum`` or ``betas[0]``); None if the optimizer has none."
        return self._v1_get('mom')

    @mom.setter
    def mom(self, v: Any) -> None: self._v1_set('mom', v)

    @property
    def beta(self) -> Any:
        "fastai 1: ``betas[1]`` or RMSprop's ``alpha`` (fastai 2's ``sqr_mom``); setting None is ignored."
        return self._v1_get('sqr_mom')

    @beta.setter
    def beta(self, v: Any) -> None: self._v1_set('sqr_mom', v)

    @property
    def wd(self) -> Any:
        "fastai 1: the last group's weight decay (decoupled when ``true_wd``)."
        return self.get_hyper('wd')

    @wd.setter
    def wd(self, v: Any) -> None: self.set_hyper('wd', v)

    @property
    def true_wd(self) -> bool:
        "fastai 1: True when the wrapper applies decoupled weight decay (fastai 2's ``decouple_wd=True``)."
        return self._decouple_wd is True

    @true_wd.setter
    def true_wd(self, v: bool) -> None:
        if not v and 'weight_decay' not in self._groups()[0]:
            raise ValueError(f'true_wd=False: {type(self._opt).__name__} has no weight_decay of its own, '
                             f'so the wrapper must apply the decay')
        self._set_wd_mode(True if v else None)

    def _companions(self) -> list[dict]:
        groups = self._groups()
        return [groups[j] for idxs in self._layout for j in idxs[1:]]

    @property
    def bn_wd(self) -> bool:
        "fastai 1: whether the no-wd parameters (norm layers, biases) are decayed too."
        comps = self._companions()
        if comps: return all(g['do_wd'] for g in comps)
        return all(f.get('do_wd', True) for f in self.state.values())

    @bn_wd.setter
    def bn_wd(self, v: bool) -> None:
        comps = self._companions()
        if not comps:
            if bool(v) == self.bn_wd: return
            raise ValueError('bn_wd: this optimizer has no [wd, no_wd] group pairs (OptimWrapper.create makes them); '
                             "flag parameters with opt.state[p]['do_wd'] (Learner(wd_bn_bias=...) does it)")
        for g in comps: g['do_wd'] = bool(v)
        self._set_wd_mode(self._decouple_wd)

    def read_defaults(self) -> None:
        "fastai 1: re-read the optimizer (after its ``param_groups`` were edited by hand): layout and key names."
        self._relayout()
        self._set_wd_mode(self._decouple_wd)

    def read_val(self, key: str) -> list | tuple[list, list]:
        "fastai 1: torch key ``key`` of each layer group (a tuple key gives one list per element)."
        groups = self._groups()
        vals = [groups[i][key] for i in self._main]
        return tuple(list(v) for v in zip(*vals)) if vals and isinstance(vals[0], tuple) else vals

    def set_val(self, key: str, val: Any, bn_groups: bool = True) -> list:
        "fastai 1: write torch key ``key`` (one value per layer group, or a tuple of lists) to the wd groups, and to the no-wd ones if ``bn_groups``."
        if isinstance(val, tuple): val = list(zip(*val))
        val = self._broadcast(key, val)
        groups = self._groups()
        for idxs, v in zip(self._layout, val):
            for j in idxs[:None if bn_groups else 1]: groups[j][key] = v
        self._tick_seen = -1
        return val

    def get_stat(self, name: str) -> Any:
        "fastai 1: ``lr``/``mom``/``beta``/``wd``, or any other key of the last group."
        return getattr(self, name) if name in _V1_NAMES else self.get_hyper(name)

    def set_stat(self, name: str, value: Any) -> None:
        "fastai 1: set ``lr``/``mom``/``beta``/``wd``, or any other key, in every group."
        if name in _V1_NAMES: setattr(self, name, value)
        else: self.set_hyper(name, value)

    def get_state(self) -> dict:
        "fastai 1: everything needed to rebuild this wrapper on other layer groups (see ``load_with_state_and_layer_group``)."
        per_group = {k: self._per_group(n) for k, n in _V1_NAMES.items()}
        return {'opt_state': self.state_dict(), **per_group, 'opt_func': self.opt_func,
                'true_wd': self.true_wd, 'bn_wd': self.bn_wd}

    @classmethod
    def load_with_state_and_layer_group(cls, state: dict, layer_groups: Sequence[nn.Module]) -> 'OptimWrapper':
        "fastai 1: a wrapper on ``layer_groups`` restored from :meth:`get_state`."
        res = cls.create(state['opt_func'], state['lr'], layer_groups, wd=state['wd'], true_wd=state['true_wd'],
                         bn_wd=state['bn_wd'])
        res.mom, res.beta = state['mom'], state['beta']
        res.load_state_dict(state['opt_state'])
        return res

    def clear(self) -> None:
        "fastai 1: reset the optimizer's state (same as :meth:`clear_state`)."
        self.clear_state()

    @property
    def n_params(self) -> int:
        "fastai 1: the number of parameters (tensors) in the optimizer."
        return sum(len(g['params']) for g in self._groups())

    def __getattr__(self, name: str) -> Any:
        # fastai 1: unknown public names are read from the torch optimizer, None if it lacks them.
        opt = self.__dict__.get('_opt')
        if name.startswith('_') or opt is None: raise AttributeError(name)
        return getattr(opt, name, None)

    def __repr__(self) -> str:
        if self._v1: return f'OptimWrapper over {self._opt!r}.\nTrue weight decay: {self.true_wd}'    # fastai 1's
        return f'OptimWrapper({type(self._opt).__name__}, {len(self._layout)} group(s), decouple_wd={self._decouple_wd})'


class HyperGroup(MutableMapping):
    """``opt.hypers[i]``: group ``i``'s hyper-parameters under fastai's names, read from and written to the torch
    optimizer's groups (a new name is added to this group only; deleting one is refused)."""

    def __init__(self, opt: OptimWrapper, group: int) -> None:
        self._opt, self._group = opt, group

    def __getitem__(self, name: str) -> Any: return self._opt._hyper_values(self._group)[name]

    def __setitem__(self, name: str, v: Any) -> None:
        opt = self._opt
        opt._write_hyper(opt._groups(), name, [opt._layout[self._group]], [v])

    def __delitem__(self, name: str) -> None:
        raise TypeError(f'opt.hypers[{self._group}]: hyper-parameter {name!r} cannot be deleted; set it instead')

    def __iter__(self) -> Iterator[str]: return iter(self._opt._hyper_values(self._group))
    def __len__(self) -> int: return len(self._opt._hyper_values(self._group))
    def __repr__(self) -> str: return repr(self._opt._hyper_values(self._group))


def _constructor_args(opt_cls: Callable, hypers: dict) -> dict:
    "The scalar ``hypers`` that ``opt_cls`` takes by name (torch then validates them); they are removed from ``hypers``."
    try: names = set(inspect.signature(opt_cls).parameters) - {'params'}
    except (TypeError, ValueError): return {}
    out = {k: hypers.pop(k) for k in list(hypers)
           if k in names and not isinstance(hypers[k], (slice, list, np.ndarray))}
    return out


# ====================================================================== fastai's optimizers
_NO_MOMENTUM_MAP = {k: v for k, v in pytorch_hp_map.items() if k != 'momentum'}


def _wrapped(opt_cls: Callable, params: Any, lr: Any, decouple_wd: bool, hp_map: dict | None = None,
             **hypers: Any) -> OptimWrapper:
    return OptimWrapper(params, opt=opt_cls, hp_map=hp_map, decouple_wd=decouple_wd, lr=lr, **hypers)


def Adam(params: Any, lr: Any = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
         wd: float = 0.01, decouple_wd: bool = True) -> OptimWrapper:
    "fastai's Adam (``sqr_mom=0.99, eps=1e-5``, decoupled ``wd=0.01``: AdamW) on ``torch.optim.Adam``."
    return _wrapped(torch.optim.Adam, params, lr, decouple_wd, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


def AdamW(params: Any, lr: Any = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
          wd: float = 0.01) -> OptimWrapper:
    "Adam with decoupled weight decay (the same as :func:`Adam`'s default)."
    return Adam(params, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd, decouple_wd=True)


def SGD(params: Any, lr: Any = 1e-3, mom: float = 0., wd: float = 0., decouple_wd: bool = True) -> OptimWrapper:
    """fastai's SGD on ``torch.optim.SGD`` (momentum without dampening). As in fastai, created with
    ``mom=0`` it never uses momentum: a scheduled ``mom`` is recorded but has no effect."""
    hp_map = _NO_MOMENTUM_MAP if mom == 0 else None
    return _wrapped(torch.optim.SGD, params, lr, decouple_wd, hp_map, mom=mom, wd=wd)


def RMSProp(params: Any, lr: Any = 1e-2, mom: float = 0., sqr_mom: float = 0.99, eps: float = 1e-8,
            wd: float = 0., decouple_wd: bool = True) -> OptimWrapper:
    """fastai's RMSProp: ``torch.optim.RMSprop`` when created with ``mom=0`` (a scheduled ``mom`` then has
    no effect, as in fastai), else :class:`~trainlib.optimizers.RMSPropOptimizer` (fastai's momentum)."""
    if mom == 0:
        return _wrapped(torch.optim.RMSprop, params, lr, decouple_wd, _NO_MOMENTUM_MAP, mom=mom, sqr_mom=sqr_mom,
                        eps=eps, wd=wd)
    return _wrapped(RMSPropOptimizer, params, lr, decouple_wd, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


def RAdam(params: Any, lr: Any = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
          wd: float = 0., beta: float = 0., decouple_wd: bool = True) -> OptimWrapper:
    "fastai's RAdam (``beta > 0``: SAdam) on :class:`~trainlib.optimizers.RAdamOptimizer`."
    return _wrapped(RAdamOptimizer, params, lr, decouple_wd, mom=mom, sqr_mom=sqr_mom, eps=eps, beta=beta, wd=wd)


def QHAdam(params: Any, lr: Any = 1e-3, mom: float = 0.999, sqr_mom: float = 0.999, nu_1: float = 0.7,
           nu_2: float = 1.0, eps: float = 1e-8, wd: float = 0., decouple_wd: bool = True) -> OptimWrapper:
    "fastai's QHAdam on :class:`~trainlib.optimizers.QHAdamOptimizer`."
    return _wrapped(QHAdamOptimizer, params, lr, decouple_wd, mom=mom, sqr_mom=sqr_mom, nu_1=nu_1, nu_2=nu_2,
                    eps=eps, wd=wd)


def Lamb(params: Any, lr: Any = 1e-3, mom: float = 0.9, sqr_mom: float = 0.99, eps: float = 1e-5,
         wd: float = 0., decouple_wd: bool = True) -> OptimWrapper:
    "fastai's LAMB on :class:`~trainlib.optimizers.LambOptimizer`."
    return _wrapped(LambOptimizer, params, lr, decouple_wd, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd)


def Lookahead(opt: OptimWrapper | torch.optim.Optimizer, k: int = 6, alpha: float = 0.5) -> OptimWrapper:
    """fastai's Lookahead around ``opt``: an OptimWrapper is returned with its torch optimizer wrapped in
    :class:`~trainlib.optimizers.LookaheadOptimizer` (its flags and weight decay unchanged)."""
    if isinstance(opt, OptimWrapper):
        opt.opt = LookaheadOptimizer(opt.opt, k=k, alpha=alpha)
        return opt
    if isinstance(opt, torch.optim.Optimizer): return OptimWrapper(opt=LookaheadOptimizer(opt, k=k, alpha=alpha))
    raise TypeError(f'Lookahead: opt must be an OptimWrapper or a torch optimizer, got {type(opt).__name__}')


def ranger(params: Any, lr: Any = 1e-3, mom: float = 0.95, wd: float = 0.01, eps: float = 1e-6, k: int = 6,
           alpha: float = 0.5, sqr_mom: float = 0.99, beta: float = 0., decouple_wd: bool = True) -> OptimWrapper:
    "fastai's ranger: :func:`Lookahead` around :func:`RAdam` (``mom=0.95, wd=0.01, eps=1e-6``)."
    return Lookahead(RAdam(params, lr=lr, mom=mom, sqr_mom=sqr_mom, eps=eps, wd=wd, beta=beta, decouple_wd=decouple_wd),
                     k=k, alpha=alpha)
