"""fastai-1 callbacks: ``Callback`` with ``on_*`` methods, the ``CallbackHandler`` and its state dict.

The handler is the engine of the v1 callback system: it keeps the state dict, runs metrics then
callbacks (stable-sorted by ``_order``) for each of the ten events, applies what they return and
keeps the counters. It works on its own in a hand-written loop; ``trainlib.v1.bridge`` drives the
same handler from the core ``Learner`` loop, with a state dict that is a view onto the Learner.

Return values (one rule for both generations of fastai-1 code):

- ``None``: nothing.
- a Mapping: fastai >= 1.0.47, a state update; a key that is not in the state yet is an error.
  In ``on_loss_begin`` a Mapping whose keys are not all state keys is a model output instead.
- anything else: fastai <= 1.0.46, the event's own meaning: new ``(last_input, last_target)``
  (on_batch_begin), new output (on_loss_begin), new loss (on_backward_begin), truthy -> skip the
  step (on_backward_end), skip zero_grad (on_step_end), stop the epoch (on_batch_end), stop training
  (on_epoch_end); ignored for on_train_begin, on_epoch_begin, on_train_end.

What a callback method is called with (:func:`call_plan`): fastai 1 passes the whole state (and the event's
extra kwargs) to every method, which costs a dict of ~20 keys per call. A method that provably cannot see
its ``**kwargs`` gets only its own named parameters instead, those the state has (so a missing required
one is Python's own TypeError, as in fastai); a no-op ``def on_x(self, **kwargs): pass`` is called with
nothing. "Provably" means: a plain Python function (or a method bound to one whose first parameter is
``self``) with a ``**`` parameter, no positional-only parameter besides ``self``, whose code (nested
functions included) never names the ``**`` parameter other than by declaring it, captures no variable of it
in a closure, and names none of ``locals``, ``vars``, ``dir``, ``eval``, ``exec``, ``globals``,
``breakpoint``, ``set_trace``, ``_getframe``, ``currentframe``, ``stack``, ``trace``, ``f_locals``,
``f_back``, ``tb_frame``, ``getouterframes``, ``getinnerframes``, ``settrace`` or ``setprofile``. Anything
else (a method that reads or forwards ``**kwargs``, a decorated method whose wrapper forwards them, a C
function, a callable object, a ``partial``) gets the whole state, exactly as in fastai. The one thing that
can tell the two apart is code outside the method looking into its frame (a debugger, or ``capture_locals``
in a traceback): it sees a smaller ``kwargs`` dict.
"""
from __future__ import annotations

import difflib
import dis
import inspect
import warnings
import weakref
from array import array
from collections.abc import Mapping
from functools import lru_cache
from types import CodeType, FunctionType, MethodType
from typing import Any, Callable, Collection

import numpy as np
import torch

from ..callback import CallbackError, _user_stacklevel
from ..events import CancelException
from ..metrics import ValueSlots, func_name
from ..schedule import annealing_cos, annealing_exp, annealing_linear, annealing_no, annealing_poly
from ..utils import add_note, camel2snake
from .core import first_el, is_listy, listify
from .torch_core import add_metrics

__all__ = ['Callback', 'CallbackList', 'CallbackHandler', 'SmoothenValue', 'AverageMetric', 'V1ReturnError', 'V1StateKeyError',
           'V1_EVENTS', 'overridden_events', 'check_v1_callback', 'call_plan', 'weighted_loss_mean', 'is_v1_callback', 'Scheduler', 'Stepper', 'annealing_no',
           'annealing_linear', 'annealing_exp', 'annealing_cos', 'annealing_poly']

V1_EVENTS = ('train_begin', 'epoch_begin', 'batch_begin', 'loss_begin', 'backward_begin', 'backward_end',
             'step_end', 'batch_end', 'epoch_end', 'train_end')
"The ten fastai-1 events, in loop order (the methods are ``on_<event>``)."


class V1ReturnError(TypeError):
    "A v1 callback returned a value that is neither None, a state update, nor the event's old-style value."


class V1StateKeyError(KeyError):
    "A v1 callback returned a state update with a key the state does not have (yet)."
    def __str__(self) -> str: return str(self.args[0])


class Callback:
    """Base class of fastai-1 callbacks: override any ``on_<event>(self, **kwargs)``.

    Every method receives the whole state dict as keyword arguments (plus event-specific ones such as
    ``metrics_names`` or ``exception``), so each must accept ``**kwargs``. ``_order`` sorts callbacks
    (lower first, stable)."""
    _order = 0

    def on_train_begin(self, **kwargs: Any) -> None:
        "Start of training: the state has epoch, iteration, num_batch, n_epochs, pbar, metrics, skip_validate."
    def on_epoch_begin(self, **kwargs: Any) -> None:
        "Start of an epoch (the model is already in train mode)."
    def on_batch_begin(self, **kwargs: Any) -> None:
        "Start of a batch, training or validation: may return new ``last_input``/``last_target``."
    def on_loss_begin(self, **kwargs: Any) -> None:
        "After the forward pass: may return a new ``last_output``."
    def on_backward_begin(self, **kwargs: Any) -> None:
        "After the loss (training only): may return a new ``last_loss`` or ``skip_bwd``."
    def on_backward_end(self, **kwargs: Any) -> None:
        "After backward, before the step: may return ``skip_step``."
    def on_step_end(self, **kwargs: Any) -> None:
        "After the step, before zero_grad: may return ``skip_zero``."
    def on_batch_end(self, **kwargs: Any) -> None:
        "End of a batch, training or validation: may return ``stop_epoch``/``stop_training``."
    def on_epoch_end(self, **kwargs: Any) -> None:
        "End of an epoch, after validation: may return ``last_metrics``/``stop_training``."
    def on_train_end(self, **kwargs: Any) -> None:
        "End of training, always (``exception`` is the error that stopped it, or False)."

    def jump_to_epoch(self, epoch: int) -> None:
        "Resuming at ``epoch``: skip ahead (schedulers advance their schedule)."

    def get_state(self, minimal: bool = True) -> dict:
        "The attributes that describe this callback, without those listed in ``exclude`` (and ``not_min``)."
        drop = {'exclude', 'not_min', *getattr(self, 'exclude', [])}
        if minimal: drop.update(getattr(self, 'not_min', []))
        return {k: v for k, v in self.__dict__.items() if k not in drop}

    def __repr__(self) -> str:
        try: names = [p for p in inspect.signature(type(self).__init__).parameters if p != 'self']
        except (TypeError, ValueError): names = []
        hidden = set(getattr(self, 'exclude', []))
        lines = [f'{k}: {getattr(self, k)}' for k in names if k not in hidden and k in self.__dict__]
        return '\n'.join([type(self).__name__] + lines)


CallbackList = Collection[Callback]
"fastai 1's type of a list of callbacks."

_BASE_METHODS = {ev: getattr(Callback, f'on_{ev}') for ev in V1_EVENTS}


def overridden_events(cb: Any) -> tuple[str, ...]:
    "The v1 events ``cb`` implements: methods that override the base no-ops (all ``on_*`` for duck-typed objects)."
    out = []
    for ev in V1_EVENTS:
        name = f'on_{ev}'
        if name in getattr(cb, '__dict__', {}): out.append(ev); continue
        m = getattr(type(cb), name, None)
        if m is not None and m is not _BASE_METHODS[ev]: out.append(ev)
    return tuple(out)


_FRAME_PEEKERS = frozenset(('locals', 'vars', 'dir', 'eval', 'exec', 'globals', 'breakpoint', 'set_trace', '_getframe',
                            'currentframe', 'stack', 'trace', 'f_locals', 'f_back', 'tb_frame', 'getouterframes',
                            'getinnerframes', 'settrace', 'setprofile'))
_PLANS: tuple = ({}, {})   # free functions, bound methods: id(code) -> (code, plan); the code is kept, so its id stays its own


def call_plan(method: Any) -> tuple[str, ...] | None:
    """What ``method`` is called with (see the module doc): the names of its parameters to fill from the state,
    or None for the whole state as keyword arguments. Cached per code object."""
    bound = type(method) is MethodType
    func = method.__func__ if bound else method
    if type(func) is not FunctionType: return None
    code = func.__code__
    entry = _PLANS[bound].get(id(code))
    if entry is None: entry = _PLANS[bound][id(code)] = (code, _make_plan(code, bound))
    return entry[1]


def _make_plan(code: CodeType, bound: bool) -> tuple[str, ...] | None:
    if not code.co_flags & inspect.CO_VARKEYWORDS: return None
    skip = 1 if bound and code.co_argcount else 0
    if code.co_posonlyargcount > skip or (skip and code.co_varnames[0] != 'self'): return None
    n_named = code.co_argcount + code.co_kwonlyargcount
    varkw = code.co_varnames[n_named + bool(code.co_flags & inspect.CO_VARARGS)]
    if varkw in code.co_cellvars or not _never_names(code, varkw): return None
    return code.co_varnames[skip:n_named]


def _never_names(code: CodeType, varkw: str) -> bool:
    "True when no instruction of ``code`` (or of a function nested in it) names ``varkw`` or peeks at frames."
    if _FRAME_PEEKERS.intersection(code.co_names) or varkw in code.co_freevars: return False
    for ins in dis.get_instructions(code):
        v = ins.argval
        if isinstance(v, CodeType):
            if not _never_names(v, varkw): return False
        elif v == varkw or (isinstance(v, (tuple, frozenset)) and varkw in v): return False
    return True


class SmoothenValue:
    """Debiased exponential moving average (``beta``) of the values added; ``smooth`` is the current value.

    A 0-d float32 tensor (a training loss) is only noted by ``add_value``; the noted values are smoothed in
    one run when ``smooth`` or ``mov_avg`` is read or :attr:`pending_max` are noted, bit for bit fastai 1's
    float32 expression: for CPU tensors on the host (float32 rounding of each step is exact in doubles),
    with one tensor op for the whole run; on another device with the same tensor ops as one at a time, and
    no host sync. Each run's ``smooth`` values are copied into buffers of :attr:`chunk` values, made at once
    (:meth:`values` gives them): whoever keeps every batch's value (the v1 Recorder) keeps no small tensor
    per batch, which would fragment the host allocator's heap between the large short-lived activations.
    Other values (floats, other dtypes, vectors) are smoothed at once."""
    chunk, pending_max = 256, 32

    def __init__(self, beta: float) -> None:
        self.beta, self.n = beta, 0
        self._avg: Any = 0                 # mov_avg once the noted values are smoothed
        self._smooth: Any = None
        self._pending: list = []           # 0-d float32 tensors noted, not smoothed yet
        self._pending_beta = beta
        self._weights: tuple = (None,)
        self._slots = ValueSlots(self.chunk)
        self._done = 0                     # values smoothed so far (n less the noted ones)
        self._other: dict = {}             # value index -> a smooth value not kept in the slots (not a 0-d tensor)

    @property
    def mov_avg(self) -> Any:
        "The moving average (not debiased)."
        self.flush()
        return self._avg

    @mov_avg.setter
    def mov_avg(self, v: Any) -> None:
        self.flush()
        self._avg = v

    @property
    def smooth(self) -> Any:
        "The debiased moving average after the last value added (None before any)."
        self.flush()
        return self._smooth

    @smooth.setter
    def smooth(self, v: Any) -> None:
        self.flush()
        self._smooth = v

    def add_value(self, val: Any) -> None:
        "Take in ``val`` (a tensor stays on its device: no host sync)."
        pending = self._pending
        if type(val) is torch.Tensor and val.dtype is _F32 and not val.dim() and self.beta == self._pending_beta and \
                (type(self._avg) is int or (isinstance(self._avg, torch.Tensor) and self._avg.dtype is _F32
                                            and not self._avg.dim())):
            self.n += 1
            pending.append(val)
            if len(pending) >= self.pending_max: self.flush()
            return
        self.flush()
        self.n += 1
        avg, beta = self._avg, self.beta
        self._pending_beta, self._done = beta, self.n
        if isinstance(avg, torch.Tensor) and isinstance(val, torch.Tensor) and avg.dtype is _F32 and val.dtype is _F32:
            w = self._float32_weights(beta)
            avg = avg * w[1] + val * w[2]       # fastai's float32 rounding (beta * avg + (1 - beta) * val)
        else: avg = beta * avg + (1 - beta) * val
        self._avg = avg
        self._smooth = avg / (1 - beta ** self.n)
        if isinstance(self._smooth, torch.Tensor) and not self._smooth.dim():
            self._slots.write(self.n - 1, self._smooth.reshape(1))
            self._smooth = self._slots.get(self.n - 1)
        else: self._other[self.n - 1] = self._smooth

    def _float32_weights(self, beta: float) -> tuple:
        "(beta, beta and 1 - beta as 0-d float32 tensors): the same products as fastai's Python floats."
        w = self._weights
        if w[0] != beta: w = self._weights = (beta, torch.tensor(beta, dtype=_F32), torch.tensor(1 - beta, dtype=_F32))
        return w

    def flush(self) -> None:
        "Smooth the noted values, in order, and keep their ``smooth`` values in the buffers."
        pending = self._pending
        if not pending: return
        self._pending = []
        start, device = 0, pending[0].device
        for i in range(1, len(pending) + 1):           # runs of values on one device (a model moved mid-fit)
            if i == len(pending) or pending[i].device != device:
                self._smooth_run(pending[start:i], device)
                if i < len(pending): start, device = i, pending[i].device

    def _smooth_run(self, run: list, device: torch.device) -> None:
        beta, first = self._pending_beta, self._done       # the beta the values were added with
        _, w1, w2 = self._float32_weights(beta)
        products = torch.stack(run) * w2.to(device)      # (1 - beta) * val, as fastai rounds it, for the whole run
        avg = self._avg
        if self._on_host(device):
            prev = 0.0 if type(avg) is int else avg.item()
            b, cell, smooth = float(w1), array('f', [0.0]), array('f', bytes(4 * len(run)))
            for i, p in enumerate(products.tolist()):
                cell[0] = prev * b               # float32 rounding of each operation, as the tensor ops do
                cell[0] = cell[0] + p
                prev = cell[0]
                cell[0] = 1 - beta ** (first + i + 1)
                smooth[i] = prev / cell[0]
            values = torch.frombuffer(smooth, dtype=_F32)
            self._avg = torch.tensor(prev, dtype=_F32)
        else:
            if type(avg) is int: avg = torch.zeros((), dtype=_F32, device=device)
            elif avg.device != device: avg = avg.to(device)
            w1, out = w1.to(device), []
            for i, p in enumerate(products.unbind()):
                avg = avg * w1 + p
                out.append(torch.div(avg, 1 - beta ** (first + i + 1)))
            values = torch.stack(out)
            self._avg = avg
        self._slots.write(first, values)
        self._done = first + len(run)
        self._smooth = self._slots.get(self._done - 1)

    @staticmethod
    def _on_host(device: torch.device) -> bool:
        "Whether values on ``device`` are smoothed on the host (CPU: no copy, no sync)."
        return device.type == 'cpu'

    def values(self, start: int = 0) -> list:
        "Every ``smooth`` value, from the ``start``-th value added on (0-d tensors: views of the buffers)."
        self.flush()
        other, get = self._other, self._slots.get
        return [other[k] if k in other else get(k) for k in range(start, self.n)]


_F32 = torch.float32


def weighted_loss_mean(losses: list, nums: list) -> np.float32:
    "The batch-size-weighted mean of batch losses as a numpy float32 (one host read for the whole list)."
    values = torch.stack([l.float().reshape(()) for l in losses]).cpu().numpy()
    sizes = np.array(nums, dtype=np.float32)
    return (values * sizes).sum() / sizes.sum()


class AverageMetric(Callback):
    "Wrap ``func(output, *targets)`` as a metric: its batch-size-weighted mean over the validation set."
    def __init__(self, func: Callable) -> None:
        self.func, self.name = func, func_name(func)

    def on_epoch_begin(self, **kwargs: Any) -> None:
        self.val, self.count = 0., 0

    def on_batch_end(self, last_output: Any, last_target: Any, **kwargs: Any) -> None:
        targets = last_target if is_listy(last_target) else [last_target]
        bs = first_el(targets).size(0)
        self.count += bs
        self.val = self.val + bs * self.func(last_output, *targets).detach()

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        return add_metrics(last_metrics, self.val / self.count)


def check_v1_callback(cb: Any) -> None:
    """Check a v1 callback when it is added: every ``on_<event>`` it overrides takes the state as keyword
    arguments (:class:`~trainlib.callback.CallbackError` if not); a warning for a misspelt event name. A class
    passes once (a callback is checked whenever a fit starts), unless the instance has ``on_*`` attributes of its own."""
    cls = type(cb)
    if cls in _CHECKED and not any(k.startswith('on_') for k in getattr(cb, '__dict__', ())): return
    label = _cb_name(cb)
    for ev in overridden_events(cb):
        method = getattr(cb, _METHOD[ev])
        if not callable(method):
            raise CallbackError(f'callback `{label}`: `on_{ev}` must be a method, got {type(method).__name__}')
        if _takes_kwargs(method): continue
        try: sig = inspect.signature(method)
        except (TypeError, ValueError): continue
        if not any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
            named = ''.join(f'{p}, ' for p in sig.parameters.values())
            raise CallbackError(f'callback `{label}`: event method `on_{ev}{sig}` cannot be called as a fastai-1 '
                                f'event, which passes the whole state as keyword arguments: expected '
                                f'`def on_{ev}(self, {named}**kwargs)`')
    names = set(getattr(cb, '__dict__', ())) | {n for klass in type(cb).__mro__ if klass not in (Callback, object)
                                                for n in vars(klass)}
    for name in sorted(names - _V1_METHOD_NAMES):
        if name.startswith('_'): continue
        close = _close_v1_name(name)
        value = getattr(type(cb), name, getattr(cb, '__dict__', {}).get(name))
        if close and callable(value) and not isinstance(value, (type, property)) and (type(cb), name) not in _WARNED:
            _WARNED.add((type(cb), name))       # once per class (a callback is checked at construction and at fit)
            warnings.warn(f'callback `{label}` defines `{name}`, which is not a fastai-1 event and will never be '
                          f'called; did you mean `{close}`?', stacklevel=_user_stacklevel())
    try: _CHECKED.add(cls)
    except TypeError: pass          # (a class that cannot be weakly referenced is checked every time)


def _takes_kwargs(method: Any) -> bool:
    "Does ``method``, a plain Python function or a method bound to one, have a ``**`` parameter? (False: look closer.)"
    code = getattr(getattr(method, '__func__', method), '__code__', None)
    return code is not None and bool(code.co_flags & inspect.CO_VARKEYWORDS)


@lru_cache(maxsize=1024)
def _close_v1_name(name: str) -> str | None:
    "The ``on_<event>`` name ``name`` is probably a misspelling of, or None."
    close = difflib.get_close_matches(name, _V1_METHOD_NAMES, n=1, cutoff=0.85)
    return close[0] if close else None


def _cb_name(cb: Any) -> str:
    return f'AverageMetric({cb.name})' if isinstance(cb, AverageMetric) else type(cb).__name__


def note_failure(e: Exception, cb: Any, event: str) -> None:
    "Name ``cb`` and the event in error ``e`` raised by its ``on_<event>`` (once; a Cancel exception is left alone)."
    if isinstance(e, CancelException) or getattr(e, '_trainlib_noted', False): return
    add_note(e, f'Exception occurred in `{_cb_name(cb)}` when calling event `on_{event}`')
    try: e._trainlib_noted = True
    except AttributeError: pass


def _any(v: Any) -> bool:
    "Truthiness as ``np.any``: any true element of a tensor, array or sequence."
    if isinstance(v, torch.Tensor): return bool(v.any())
    if isinstance(v, (np.ndarray, list, tuple)):
        try: return bool(np.any(v))
        except (TypeError, ValueError): return bool(v)
    return bool(v)


_FLAG_OF = {'backward_end': 'skip_step', 'step_end': 'skip_zero', 'batch_end': 'stop_epoch',
            'epoch_end': 'stop_training'}
_METHOD = {ev: f'on_{ev}' for ev in V1_EVENTS}
_V1_METHOD_NAMES = frozenset(_METHOD.values())
_WARNED: set = set()    # (class, misspelt name) already warned about
_CHECKED: 'weakref.WeakSet' = weakref.WeakSet()    # callback classes found sound
_IGNORED = frozenset(('train_begin', 'epoch_begin', 'train_end'))
_NO_KWARGS: dict = {}     # an event without extra kwargs (never written)


def is_v1_callback(o: Any) -> bool:
    "True for a v1 Callback, or any object with fastai-1 ``on_*`` methods."
    return isinstance(o, Callback) or any(callable(getattr(o, f'on_{ev}', None)) for ev in V1_EVENTS)


def _wrap_metric(m: Any) -> Any:
    return m if is_v1_callback(m) else AverageMetric(m)


class CallbackHandler:
    """Run v1 ``callbacks`` and ``metrics`` through the ten events, keeping their shared ``state_dict``.

    Each ``on_<event>`` method writes the state, calls the metrics (when the event has them) and the
    callbacks, applies their returns and gives the loop what it reads back (see the module doc).
    ``state`` lets the bridge pass a state that is a view onto a Learner (default: a plain dict).
    ``tracer`` (class or instance attribute), if set, is called as ``tracer(handler, event, call_mets)``
    when each event starts, once the state is written and before any metric or callback runs."""
    tracer: Callable | None = None

    def __init__(self, callbacks: Any = None, metrics: Any = None, beta: float = 0.98, state: Any = None) -> None:
        cbs = listify(callbacks)
        self.callbacks = sorted(cbs, key=lambda cb: getattr(cb, '_order', 0))
        self.metrics = [_wrap_metric(m) for m in listify(metrics)]
        self.beta = beta
        self.smoothener = SmoothenValue(beta)
        self.state_dict = {} if state is None else state
        self._reads = getattr(self.state_dict, 'own', self.state_dict)   # counters and batch flags, read without a call
        self._kwargs = getattr(self.state_dict, 'kwargs', None)   # a state that builds (and reuses) the kwargs itself
        self._pick_keys = getattr(self.state_dict, 'pick', None)  # ... and picks some of them
        self._set_lazy = getattr(self.state_dict, 'set_lazy', None)   # ... and has keys computed when read
        self._plans: dict = {}
        self.state_dict.update(epoch=0, iteration=0, num_batch=0, skip_validate=False)
        self._kw: dict = {}
        self._dl_cb = None
        self._table_key: tuple | None = None
        self._table: dict = {}

    # ------------------------------------------------------------------ calling and applying returns
    def _call(self, cb: Any, event: str) -> None:
        """Call ``cb.on_<event>`` with the state and the event's extra kwargs (only its named parameters when it
        cannot see the rest, see the module doc); apply what it returns."""
        try:
            method = getattr(cb, _METHOD[event])
            func = method.__func__ if type(method) is MethodType else None
            if type(func) is FunctionType:          # call_plan(method), remembered per function while the handler lives
                known = self._plans.get(func)
                if known is None or known[0] is not func.__code__:
                    known = self._plans[func] = (func.__code__, call_plan(method))
                names = known[1]
            else: names = call_plan(method)
        except BaseException as e:
            note_failure(e, cb, event)
            raise
        self._invoke(cb, event, method, names)

    def _invoke(self, cb: Any, event: str, method: Callable, names: tuple | None) -> None:
        "Call ``method`` (``cb.on_<event>``) as its call plan ``names`` says; apply what it returns."
        try:
            if names is None: ret = method(**self._all_kwargs())
            elif names: ret = method(**self._pick(names))
            else: ret = method()
            if ret is not None: self._apply(cb, event, ret)
        except BaseException as e:
            note_failure(e, cb, event)
            raise

    def _all_kwargs(self) -> dict:
        "The whole state and the event's extra kwargs."
        if self._kwargs is not None: return self._kwargs(self._kw)
        kw = self.state_dict.copy()
        if self._kw: kw.update(self._kw)
        return kw

    def _pick(self, names: tuple) -> dict:
        "The keys ``names`` of :meth:`_all_kwargs` that it has."
        if self._pick_keys is not None: return self._pick_keys(names, self._kw)
        extra, state = self._kw, self.state_dict
        return {k: extra[k] if k in extra else state[k] for k in names if k in extra or k in state}

    def _apply(self, cb: Any, event: str, ret: Any) -> None:
        state = self.state_dict
        if isinstance(ret, Mapping) and (event != 'loss_begin' or all(k in state for k in ret)):
            for k, v in ret.items():
                if k not in state:
                    raise V1StateKeyError(f"{k} isn't a valid key in the state of the callbacks. (returned by "
                                          f"`{_cb_name(cb)}.on_{event}`; the keys at this point are: "
                                          f"{', '.join(sorted(state))})")
                if k == 'last_loss' and event == 'backward_begin' and not isinstance(v, torch.Tensor):
                    raise V1ReturnError(f'`{_cb_name(cb)}.on_backward_begin` returned last_loss = {type(v).__name__} '
                                        f'{_short(v)}: expected the loss to back-propagate (a tensor)')
                state[k] = v
            return
        if event in _IGNORED: return
        if event == 'batch_begin':
            if not (isinstance(ret, (tuple, list)) and len(ret) == 2): self._bad_return(cb, event, ret, 'a 2-tuple (last_input, last_target)')
            state['last_input'], state['last_target'] = ret
        elif event == 'loss_begin': state['last_output'] = ret
        elif event == 'backward_begin':
            if not isinstance(ret, torch.Tensor): self._bad_return(cb, event, ret, 'the new loss (a tensor)')
            state['last_loss'] = ret
        elif _any(ret): state[_FLAG_OF[event]] = True

    @staticmethod
    def _bad_return(cb: Any, event: str, ret: Any, legacy: str) -> None:
        raise V1ReturnError(f'`{_cb_name(cb)}.on_{event}` returned {type(ret).__name__} {_short(ret)}: expected '
                            f'None, a dict of state updates, or {legacy}')

    def __call__(self, cb_name: str, call_mets: bool = True, **kwargs: Any) -> None:
        "Call every metric (if ``call_mets``) and callback for event ``cb_name`` with extra ``kwargs``."
        self._start(cb_name, call_mets, kwargs)
        self._run_callbacks(cb_name)

    # ------------------------------------------------------------------ the events: before / after the callbacks
    def _start(self, event: str, call_mets: bool, kwargs: dict = _NO_KWARGS) -> None:
        "An event begins (the state is written): note its extra ``kwargs``, tell the tracer, run the metrics."
        self._kw = kwargs
        if self.tracer is not None: self.tracer(self, event, call_mets)
        if call_mets: self._run_metrics(event)

    def begin_train_begin(self, epochs: int, pbar: Any = None, metrics: Any = None) -> None:
        "Reset the state for a new fit and call the metrics' on_train_begin."
        state = self.state_dict
        state.clear()
        state.update(epoch=0, iteration=0, num_batch=0, skip_validate=False, n_epochs=epochs, pbar=pbar,
                     metrics=metrics)
        names = [getattr(m, 'name', None) or camel2snake(type(m).__name__) for m in self.metrics]
        for cb in self.callbacks:            # a callback that keeps every smoothed loss (the v1 Recorder) reads them here
            if hasattr(type(cb), '_v1_smoothener'): cb._v1_smoothener = self.smoothener
        self._start('train_begin', True, {'metrics_names': names})

    def end_train_begin(self) -> int:
        "After on_train_begin: jump every callback to the start epoch (non-zero when resuming); returns it."
        epoch = self.state_dict['epoch']
        if epoch:
            bar = getattr(self.state_dict.get('pbar'), 'main_bar', None)
            if bar is not None and getattr(bar, 'total', None) is not None: bar.total -= epoch
            for cb in self.callbacks:
                if hasattr(cb, 'jump_to_epoch'): cb.jump_to_epoch(epoch)
        return epoch

    def begin_epoch_begin(self) -> None:
        "Reset the epoch's batch count and ``stop_training``; run the metrics' on_epoch_begin."
        state = self.state_dict
        state['num_batch'], state['stop_training'] = 0, False
        self._start('epoch_begin', True)

    def begin_batch_begin(self, train: bool) -> None:
        "Reset the batch flags and note whether it trains; run the metrics' on_batch_begin in validation."
        state = self.state_dict
        if self._reads is state: state.update(train=train, stop_epoch=False, skip_step=False, skip_zero=False, skip_bwd=False)
        else: state.reset_batch(train)
        self._start('batch_begin', not train)

    def begin_loss_begin(self) -> None:
        "The forward pass is done (the metrics are not called)."
        self._start('loss_begin', False)

    def begin_backward_begin(self, raw_loss: torch.Tensor) -> None:
        "Smooth the raw loss (before any callback changes it); ``last_loss`` is already in the state."
        raw = raw_loss.detach()
        self.smoothener.add_value(raw if raw.dtype is _F32 else raw.float())   # .float() of a float32 tensor is itself
        if self._set_lazy is not None: self._set_lazy('smooth_loss', self._read_smooth)    # smoothed when read
        else: self.state_dict['smooth_loss'] = self.smoothener.smooth
        self._start('backward_begin', False)

    def _read_smooth(self) -> Any: return self.smoothener.smooth

    def begin_backward_end(self) -> None:
        "The backward pass is done (the metrics are not called)."
        self._start('backward_end', False)

    def begin_step_end(self) -> None:
        "The step is done (the metrics are not called)."
        self._start('step_end', False)

    def begin_batch_end(self) -> None:
        "The batch is done: run the metrics' on_batch_end in validation."
        self._start('batch_end', not self.state_dict['train'])

    def end_batch_end(self) -> bool:
        "After on_batch_end: count a training batch; returns ``stop_epoch``."
        reads = self._reads
        if reads['train']:
            if reads is self.state_dict: reads.update(iteration=reads['iteration'] + 1, num_batch=reads['num_batch'] + 1)
            else: self.state_dict.count_batch()
        return reads['stop_epoch']

    def begin_epoch_end(self, val_loss: Any) -> None:
        "Start ``last_metrics`` with ``val_loss``; run the metrics' on_epoch_end when there is one."
        self.state_dict['last_metrics'] = [val_loss]
        self._start('epoch_end', val_loss is not None)

    def end_epoch_end(self) -> bool:
        "After on_epoch_end: count the epoch; returns ``stop_training``."
        self.state_dict['epoch'] += 1
        return self.state_dict['stop_training']

    def begin_train_end(self, exception: Any) -> None:
        "Training is over (``exception``: what stopped it, or False): run the metrics' on_train_end."
        self._start('train_end', True, {'exception': exception})

    def _run_metrics(self, event: str) -> None:
        for m in self.metrics: self._call(m, event)

    def _run_callbacks(self, event: str) -> None:
        for cb in self._listeners(event): self._call(cb, event)

    def _listeners(self, event: str) -> list:
        "The callbacks that override ``on_<event>``, in order (rebuilt when ``self.callbacks`` changes)."
        key = tuple(map(id, self.callbacks))
        if key != self._table_key:
            self._table_key = key
            self._table = {ev: [] for ev in V1_EVENTS}
            for cb in self.callbacks:
                for ev in overridden_events(cb): self._table[ev].append(cb)
        return self._table[event]

    # ------------------------------------------------------------------ the handler's public face (hand-written loops)
    def set_dl(self, dl: Any) -> None:
        "Use ``dl`` for the coming phase: a dataset that is itself a Callback takes part in it."
        if self._dl_cb is not None and self._dl_cb in self.callbacks: self.callbacks.remove(self._dl_cb)
        ds = getattr(dl, 'dataset', None)
        self._dl_cb = ds if isinstance(ds, Callback) else None
        if self._dl_cb is not None: self.callbacks.append(self._dl_cb)

    def on_train_begin(self, epochs: int, pbar: Any = None, metrics: Any = None) -> None:
        "About to train for ``epochs`` epochs."
        self.begin_train_begin(epochs, pbar, metrics)
        self._run_callbacks('train_begin')
        self.end_train_begin()

    def on_epoch_begin(self) -> None:
        "At the start of each epoch."
        self.begin_epoch_begin()
        self._run_callbacks('epoch_begin')

    def on_batch_begin(self, xb: Any, yb: Any, train: bool = True) -> tuple:
        "At the start of a batch: returns the (possibly replaced) ``(xb, yb)``."
        state = self.state_dict
        state['last_input'], state['last_target'] = xb, yb
        self.begin_batch_begin(train)
        self._run_callbacks('batch_begin')
        return state['last_input'], state['last_target']

    def on_loss_begin(self, out: Any) -> Any:
        "After the forward pass: returns the (possibly replaced) output."
        self.state_dict['last_output'] = out
        self.begin_loss_begin()
        self._run_callbacks('loss_begin')
        return self.state_dict['last_output']

    def on_backward_begin(self, loss: torch.Tensor) -> tuple:
        "After the loss: returns ``(loss, skip_bwd)``."
        self.state_dict['last_loss'] = loss
        self.begin_backward_begin(loss)
        self._run_callbacks('backward_begin')
        return self.state_dict['last_loss'], self.state_dict['skip_bwd']

    def on_backward_end(self) -> bool:
        "After backward: returns ``skip_step``."
        self.begin_backward_end()
        self._run_callbacks('backward_end')
        return self.state_dict['skip_step']

    def on_step_end(self) -> bool:
        "After the step: returns ``skip_zero``."
        self.begin_step_end()
        self._run_callbacks('step_end')
        return self.state_dict['skip_zero']

    def on_batch_end(self, loss: Any) -> bool:
        "At the end of a batch: returns ``stop_epoch``."
        self.state_dict['last_loss'] = loss
        self.begin_batch_end()
        self._run_callbacks('batch_end')
        return self.end_batch_end()

    def on_epoch_end(self, val_loss: Any) -> bool:
        "At the end of an epoch: returns ``stop_training``."
        self.begin_epoch_end(val_loss)
        self._run_callbacks('epoch_end')
        return self.end_epoch_end()

    def on_train_end(self, exception: Any) -> None:
        "At the end of training (``exception``: the error that stopped it, or False)."
        self.begin_train_end(exception)
        self._run_callbacks('train_end')

    @property
    def skip_validate(self) -> bool:
        "Whether a callback asked to skip validation (sticky for the whole fit)."
        return self.state_dict['skip_validate']


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + '...'



class Scheduler:
    """``n_iter`` steps of ``func`` from ``start`` to ``end``: ``vals`` is a tuple ``(start, end)`` (default
    linear) or a start alone (end 0, default constant)."""
    def __init__(self, vals: Any, n_iter: int, func: Callable | None = None) -> None:
        self.start, self.end = (vals[0], vals[1]) if isinstance(vals, tuple) else (vals, 0)
        self.n_iter = max(1, n_iter)
        self.func = func if func is not None else annealing_linear if isinstance(vals, tuple) else annealing_no
        self.n = 0

    def restart(self) -> None:
        "Back to the start."
        self.n = 0

    def step(self) -> Any:
        "The next value."
        self.n += 1
        return self.func(self.start, self.end, self.n / self.n_iter)

    @property
    def is_done(self) -> bool:
        "True once ``n_iter`` steps were taken."
        return self.n >= self.n_iter


Stepper = Scheduler
"fastai <= 1.0.47's name for :class:`Scheduler`."
