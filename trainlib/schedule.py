"""Hyper-parameter schedules and the training recipes built on them.

An *annealer* ``f(start, end, pct)`` moves from ``start`` (``pct=0``) to ``end`` (``pct=1``); the
fastai-1 API uses them directly. A *schedule* is an annealer with its ends fixed: a function of the
position ``pos`` in ``[0, 1]`` (``SchedCos(1e-3, 1e-5)(0.5)``). :func:`combine_scheds` chains
schedules over parts of the training and :class:`ParamScheduler` applies them to the optimizer's
hyper-parameters before every training batch. ``fit_one_cycle``, ``fit_flat_cos``, ``fit_sgdr`` and
``fine_tune`` (also methods of :class:`~trainlib.learner.Learner`) are recipes made of them.
"""
from __future__ import annotations

from bisect import bisect_right
from functools import partial
from typing import Any, Callable, Sequence

import numpy as np

from .callback import Callback
from .utils import check_hyper, listify

__all__ = ['annealing_no', 'annealing_linear', 'annealing_exp', 'annealing_cos', 'annealing_poly', 'annealer',
           'Schedule', 'SchedNo', 'SchedLin', 'SchedCos', 'SchedExp', 'SchedPoly', 'ScheduleError',
           'combine_scheds', 'combined_cos', 'ParamScheduler', 'fit_one_cycle', 'fit_flat_cos', 'fit_sgdr',
           'fine_tune']


class ScheduleError(ValueError, AssertionError):
    "A schedule, or an argument of a training recipe, is not what it should be."


# ====================================================================== annealers: f(start, end, pct)
def annealing_no(start: Any, end: Any, pct: float) -> Any:
    "No annealing: always ``start``."
    return start


def annealing_linear(start: Any, end: Any, pct: float) -> Any:
    "Linear from ``start`` to ``end``."
    return start + pct * (end - start)


def annealing_exp(start: Any, end: Any, pct: float) -> Any:
    "Exponential (linear on a log scale) from ``start`` to ``end``."
    return start * (end / start) ** pct


def annealing_cos(start: Any, end: Any, pct: float) -> Any:
    "Half a cosine from ``start`` to ``end`` (numpy floats, as fastai-1 gives)."
    return start + (1 + np.cos(np.pi * (1 - pct))) * (end - start) / 2


def _annealing_poly(start: Any, end: Any, pct: float, degree: float) -> Any:
    return end + (start - end) * (1 - pct) ** degree


def annealing_poly(degree: float) -> Callable:
    "An annealer ``end + (start-end)*(1-pct)**degree`` (fast at first, flat at the end)."
    return partial(_annealing_poly, degree=degree)


# ====================================================================== schedules: f(pos)
class Schedule:
    "A function of ``pos`` in [0, 1]: the annealer ``f`` between ``start`` and ``end``."
    def __init__(self, f: Callable, start: Any, end: Any, name: str | None = None) -> None:
        self.f, self.start, self.end = f, start, end
        self.name = name or getattr(f, '__name__', type(f).__name__)

    def __call__(self, pos: float) -> Any: return self.f(self.start, self.end, pos)

    def __repr__(self) -> str: return f'{self.name}({self.start!r}, {self.end!r})'


def annealer(f: Callable, name: str | None = None) -> Callable:
    "Decorator: the annealer ``f(start, end, pos)`` becomes ``f(start, end) -> Schedule``."
    name = name or f.__name__
    def make(start: Any, end: Any) -> Schedule: return Schedule(f, start, end, name)
    make.__name__ = make.__qualname__ = name
    make.__doc__ = f.__doc__
    return make


SchedNo = annealer(annealing_no, 'SchedNo')
SchedLin = annealer(annealing_linear, 'SchedLin')
SchedCos = annealer(annealing_cos, 'SchedCos')
SchedExp = annealer(annealing_exp, 'SchedExp')


def _sched_poly(start: Any, end: Any, pos: float, power: float) -> Any:
    return start + (end - start) * pos ** power


def SchedPoly(start: Any, end: Any, power: float) -> Schedule:
    "Polynomial schedule: ``start + (end-start) * pos**power`` (not fastai-1's ``annealing_poly``)."
    return Schedule(partial(_sched_poly, power=power), start, end, f'SchedPoly[power={power}]')


class CombinedSchedule:
    """Schedules run one after the other, each over its share of [0, 1].

    The phase boundaries and the position inside a phase are float32 numbers, as in fastai (there
    they are a float32 tensor): computing them in float64 would move trained weights by ~2e-7."""
    def __init__(self, pcts: Sequence[float], scheds: Sequence[Callable]) -> None:
        self.pcts, self.scheds = list(pcts), list(scheds)
        # cumsum of the float32 shares, accumulated in float64 and rounded once per boundary (torch's CPU cumsum)
        bounds = np.cumsum(np.array([0.] + self.pcts, dtype=np.float32).astype(np.float64)).astype(np.float32)
        self._bounds = [float(b) for b in bounds]
        self._f32_bounds = list(bounds)
        self._last = len(self.scheds) - 1

    def phase(self, pos: float) -> tuple[int, float]:
        "The index of the schedule that runs at ``pos`` and the position inside it."
        p = np.float32(pos)
        if not p >= 0:
            raise ScheduleError(f'combine_scheds: the position must be in [0, 1], got {pos!r}')
        idx = min(bisect_right(self._bounds, float(p)) - 1, self._last)
        lo, hi = self._f32_bounds[idx], self._f32_bounds[idx + 1]
        return idx, float((p - lo) / (hi - lo)) if hi != lo else 1.0

    def __call__(self, pos: float) -> Any:
        idx, actual_pos = self.phase(pos)
        return self.scheds[idx](actual_pos)

    def __repr__(self) -> str: return f'combine_scheds({self.pcts!r}, {self.scheds!r})'


def combine_scheds(pcts: Sequence[float], scheds: Sequence[Callable]) -> CombinedSchedule:
    "One schedule made of ``scheds``, the i-th running over the share ``pcts[i]`` of the training."
    pcts, scheds = listify(pcts), listify(scheds)
    if not scheds or len(pcts) != len(scheds):
        raise ScheduleError(f'combine_scheds: expected one share per schedule, got {len(pcts)} shares '
                            f'for {len(scheds)} schedules')
    bad = [s for s in scheds if not callable(s)]
    if bad: raise ScheduleError(f'combine_scheds: every schedule must be a function of pos, got {bad[0]!r}')
    if any(not (p >= 0) for p in pcts):
        raise ScheduleError(f'combine_scheds: the shares must be >= 0, got {pcts}')
    if abs(sum(pcts) - 1.) > 1e-6:
        raise ScheduleError(f'combine_scheds: the shares must add up to 1, got {pcts} (sum {sum(pcts)!r})')
    return CombinedSchedule(pcts, scheds)


def combined_cos(pct: float, start: Any, middle: Any, end: Any) -> CombinedSchedule:
    "Cosine from ``start`` to ``middle`` over the share ``pct``, then cosine from ``middle`` to ``end``."
    return combine_scheds([pct, 1 - pct], [SchedCos(start, middle), SchedCos(middle, end)])


# ====================================================================== the callback
class ParamScheduler(Callback):
    """Set the hyper-parameters named in ``scheds`` (``{'lr': sched, 'mom': sched}``) before each
    training batch to ``sched(learn.pct_train)``, and record the values used in ``hps``."""
    order, run_valid = 60, False

    def __init__(self, scheds: dict) -> None:
        if not isinstance(scheds, dict) or not all(callable(f) for f in scheds.values()):
            raise ScheduleError(f'{type(self).__name__}: scheds must be a dict {{hyper-parameter name: schedule}} '
                                f'of functions of pos, got {scheds!r}')
        self.scheds = scheds
        self.hps: dict = {k: [] for k in scheds}

    def before_fit(self) -> None:
        "Check that the optimizer has every scheduled hyper-parameter; start new records."
        hypers = getattr(self.learn.opt, 'hypers', None)
        missing = [k for k in self.scheds if hypers and k not in hypers[-1]]
        if missing:
            raise ScheduleError(f'{type(self).__name__}.before_fit: the optimizer has no hyper-parameter '
                                f'{", ".join(map(repr, missing))} to schedule; it has {", ".join(hypers[-1])}')
        self.hps = {k: [] for k in self.scheds}
        self._items = list(self.scheds.items())

    def before_batch(self) -> None:
        "Set each hyper-parameter to its schedule's value at ``pct_train``."
        self._set_hypers(self.learn.pct_train)

    def _set_hypers(self, pos: float) -> None:
        set_hyper = self.learn.opt.set_hyper
        for name, f in self._items: set_hyper(name, f(pos))

    def after_batch(self) -> None:
        "Record the values this batch used (those of the last parameter group)."
        get_hyper = self.learn.opt.get_hyper
        for name, values in self.hps.items(): values.append(get_hyper(name))

    def after_fit(self) -> None:
        "Hand the records to the Recorder (``recorder.hps``, for ``plot_sched``)."
        recorder = getattr(self.learn, 'recorder', None)
        if recorder is not None: recorder.hps = self.hps


# ====================================================================== recipes (Learner methods)
def _lrs_per_group(learn: Any, lr: Any, caller: str) -> np.ndarray:
    "Set ``lr`` (or ``learn.lr``) in the optimizer, and return the lr of every group as a float64 array."
    check_hyper(caller, 'lr', lr)
    if learn.opt is None: learn.create_opt()
    try: learn.opt.set_hyper('lr', learn.lr if lr is None else lr)
    except ValueError as e: raise ScheduleError(f'{caller}: {e}') from None
    return np.array([learn.opt.get_hyper('lr', i) for i in range(len(learn.opt.param_groups))])


def _check_pct(pct_start: float, caller: str) -> None:
    if not 0 <= pct_start <= 1:
        raise ScheduleError(f'{caller}: pct_start must be between 0 and 1, got {pct_start!r}')


def _fit_scheduled(learn: Any, n_epoch: int, scheds: dict, cbs: Any, **kwargs: Any) -> None:
    learn.fit(n_epoch, cbs=[ParamScheduler(scheds)] + listify(cbs), **kwargs)


def fit_one_cycle(learn: Any, n_epoch: int, lr_max: Any = None, div: float = 25., div_final: float = 1e5,
                  pct_start: float = 0.25, wd: float | None = None, moms: Sequence[float] | None = None,
                  cbs: Any = None, reset_opt: bool = False, start_epoch: int = 0) -> None:
    """Train ``n_epoch`` epochs with the 1cycle policy: the lr rises from ``lr_max/div`` to ``lr_max``
    (cosine, over the first ``pct_start`` of the batches) and falls to ``lr_max/div_final``, while the
    momentum goes ``moms[0] -> moms[1] -> moms[2]`` (default ``learn.moms``). ``lr_max`` may be a
    ``slice`` or a list (one lr per parameter group); default ``learn.lr``."""
    _check_pct(pct_start, 'fit_one_cycle')
    lr_max = _lrs_per_group(learn, lr_max, 'fit_one_cycle')
    scheds = {'lr': combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final)}
    if moms is not None or 'mom' in (getattr(learn.opt, 'hypers', None) or [{}])[-1]:
        moms = tuple(learn.moms if moms is None else moms)
        if len(moms) != 3:
            raise ScheduleError(f'fit_one_cycle: moms must be 3 values (start, middle, end), got {moms!r}')
        scheds['mom'] = combined_cos(pct_start, *moms)
    _fit_scheduled(learn, n_epoch, scheds, cbs, reset_opt=reset_opt, wd=wd, start_epoch=start_epoch)


def fit_flat_cos(learn: Any, n_epoch: int, lr: Any = None, div_final: float = 1e5, pct_start: float = 0.75,
                 wd: float | None = None, cbs: Any = None, reset_opt: bool = False, start_epoch: int = 0) -> None:
    """Train ``n_epoch`` epochs at a flat ``lr`` (default ``learn.lr``) for the first ``pct_start`` of the
    batches, then anneal it to ``lr/div_final`` with a cosine. (Unlike fastai 2.8, ``start_epoch`` is honoured.)"""
    _check_pct(pct_start, 'fit_flat_cos')
    lr = _lrs_per_group(learn, lr, 'fit_flat_cos')
    scheds = {'lr': combined_cos(pct_start, lr, lr, lr / div_final)}
    _fit_scheduled(learn, n_epoch, scheds, cbs, reset_opt=reset_opt, wd=wd, start_epoch=start_epoch)


def _positive_int(v: Any, name: str, caller: str) -> None:
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise ScheduleError(f'{caller}: {name} must be a positive int, got {v!r}')


def fit_sgdr(learn: Any, n_cycles: int, cycle_len: int, lr_max: Any = None, cycle_mult: int = 2, cbs: Any = None,
             reset_opt: bool = False, wd: float | None = None, start_epoch: int = 0) -> None:
    """Train with SGDR: ``n_cycles`` cosine annealings of the lr from ``lr_max`` to 0, the first lasting
    ``cycle_len`` epochs and each next one ``cycle_mult`` times longer (``cycle_mult=1`` works too)."""
    for v, name in ((n_cycles, 'n_cycles'), (cycle_len, 'cycle_len'), (cycle_mult, 'cycle_mult')):
        _positive_int(v, name, 'fit_sgdr')
    lr_max = _lrs_per_group(learn, lr_max, 'fit_sgdr')
    lens = [cycle_len * cycle_mult ** i for i in range(n_cycles)]
    n_epoch = sum(lens)
    scheds = {'lr': combine_scheds([n / n_epoch for n in lens], [SchedCos(lr_max, 0) for _ in lens])}
    _fit_scheduled(learn, n_epoch, scheds, cbs, reset_opt=reset_opt, wd=wd, start_epoch=start_epoch)


def fine_tune(learn: Any, epochs: int, base_lr: float = 2e-3, freeze_epochs: int = 1, lr_mult: float = 100,
              pct_start: float = 0.3, div: float = 5.0, **kwargs: Any) -> None:
    """Transfer learning: ``freeze_epochs`` one-cycle epochs with only the last parameter group
    training, then ``epochs`` epochs of everything with discriminative lrs
    ``slice(base_lr/2/lr_mult, base_lr/2)``. ``kwargs`` go to :func:`fit_one_cycle`."""
    learn.freeze()
    fit_one_cycle(learn, freeze_epochs, slice(base_lr), pct_start=0.99, **kwargs)
    base_lr /= 2
    learn.unfreeze()
    fit_one_cycle(learn, epochs, slice(base_lr / lr_mult, base_lr), pct_start=pct_start, div=div, **kwargs)
