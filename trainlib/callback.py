"""The ``Callback`` base class, callback ordering and the dispatch tables.

A callback implements any of the events of :mod:`trainlib.events` as methods without
arguments. It reads the loop's state through ``self`` (``self.loss`` is ``self.learn.loss``)
and changes it through ``self.learn`` (``self.learn.loss_grad = ...``).
"""
from __future__ import annotations

import difflib
import heapq
import inspect
import sys
import types
import warnings
from functools import lru_cache, partial
from typing import Any, Callable, Iterable

from .events import EVENTS, INNER_LOOP_EVENTS, LEGACY_EVENT_NAMES
from .utils import class2attr

__all__ = ['Callback', 'CallbackError', 'sort_callbacks', 'build_dispatch', 'validate_callback',
           'event_method', 'unwrap_callback', 'listener_mergers', 'listener_owners', 'is_order']

_CONTROL_ATTRS = frozenset(('run', 'run_train', 'run_valid', 'order', 'run_before', 'run_after'))
_EVENT_NAMES = frozenset(EVENTS) | frozenset(LEGACY_EVENT_NAMES)
_DISPATCH_ATTRS = _CONTROL_ATTRS | _EVENT_NAMES | {'copies_loss', '__class__'}   # setting one rebuilds the dispatch
_V1_EVENT_HINTS = {'on_train_begin': 'before_fit', 'on_epoch_begin': 'before_epoch',
                   'on_batch_begin': 'before_batch', 'on_loss_begin': 'after_pred',
                   'on_backward_begin': 'after_loss', 'on_backward_end': 'after_backward',
                   'on_step_end': 'after_step', 'on_batch_end': 'after_batch',
                   'on_epoch_end': 'after_epoch', 'on_train_end': 'after_fit'}


class CallbackError(TypeError, AssertionError):
    "A callback, or an argument about callbacks, is not what the Learner can use."


class Callback:
    """Base class of the v2 callbacks: implement events as methods, e.g. ``def after_batch(self)``.

    Class attributes: ``order`` (lower runs first; fastai-1 callbacks share the scale at ``55 + _order``,
    see :mod:`trainlib.events`), ``run_before``/``run_after`` (callback classes of either generation,
    or their names, this one must precede/follow), ``run`` (False silences the callback until the
    end of the fit), ``run_train``/``run_valid`` (whether batch-level events fire in each phase).
    Setting one of these, ``copies_loss`` or an event method on an instance (``cb.after_batch = f``,
    ``f`` taking no argument) is checked and heard from the next event; a value that cannot be
    dispatched (a ``run_after`` cycle) raises and changes nothing. The dispatch is built then, and as
    every run (fit, validate, get_preds) starts: a class patched, or a flag written into ``__dict__``,
    since the last build is heard from there on (fastai looks methods up on every event).
    """
    order: float = 0
    learn = None
    run: bool = True
    run_train: bool = True
    run_valid: bool = True
    run_before: Any = None
    run_after: Any = None
    remove_on_fetch: bool = False
    copies_loss: bool = True
    "Listening to after_loss or before_backward, it gets ``learn.loss`` as a copy of ``loss_grad`` (fastai's clone) if it reads them."
    _stateattrs: tuple = ()

    def __init__(self, **event_funcs: Callable) -> None:
        unknown = {k: v for k, v in event_funcs.items() if k not in EVENTS and k not in LEGACY_EVENT_NAMES}
        if unknown:
            raise CallbackError(f'Passed unknown events: {unknown}; a Callback(...) keyword must be one of: '
                                f'{", ".join(EVENTS)}')
        for name, f in event_funcs.items():
            if not callable(f):
                raise CallbackError(f'Callback({name}=...) expects a function taking the callback, '
                                    f'got {type(f).__name__}')
            object.__setattr__(self, name, types.MethodType(f, self))

    @property
    def name(self) -> str:
        "The attribute name on the Learner: snake case of the class name without ``Callback``."
        return class2attr(self, 'Callback')

    def __repr__(self) -> str: return type(self).__name__

    def __getattr__(self, name: str) -> Any:
        # Reads that fail on the callback go to its Learner (which in turn tries the model).
        if name.startswith('__') or name in EVENTS or name in LEGACY_EVENT_NAMES or name == 'learn':
            raise AttributeError(name)
        learn = self.learn
        if learn is None:
            raise AttributeError(f'{type(self).__name__!r} object has no attribute {name!r} '
                                 f'(and it is not attached to a Learner to look it up there)')
        return getattr(learn, name)

    def __setattr__(self, name: str, value: Any) -> None:
        learn = self.__dict__.get('learn')
        if learn is not None and name not in self.__dict__ and name not in _CONTROL_ATTRS \
                and not name.startswith('_') and _has_attr(learn, name):
            warnings.warn(f'You are shadowing an attribute ({name}) that exists in the learner. '
                          f'Use `self.learn.{name}` to avoid this', stacklevel=2)
        if learn is None or name not in _DISPATCH_ATTRS:
            object.__setattr__(self, name, value)
            return
        _check_attribute(self, name, value)
        self._redispatch(name, lambda: object.__setattr__(self, name, value))

    def __delattr__(self, name: str) -> None:
        learn = self.__dict__.get('learn')
        if learn is None or name not in _DISPATCH_ATTRS: object.__delattr__(self, name)
        else: self._redispatch(name, lambda: object.__delattr__(self, name))

    def _redispatch(self, name: str, change: Callable[[], None]) -> None:
        "Make ``change`` to attribute ``name`` and rebuild the Learner's dispatch; if that fails, undo the change."
        missing = object()
        before = self.__dict__.get(name, missing)
        change()
        try: self.learn._callbacks_changed()
        except BaseException:
            if before is not missing: object.__setattr__(self, name, before)
            elif name in self.__dict__: object.__delattr__(self, name)
            raise

    def __call__(self, event_name: str) -> Any:
        "Run the method for ``event_name`` if this callback listens to it now (fastai's semantics)."
        learn = self.learn
        training = getattr(learn, 'training', None) if learn is not None else None
        runs = (event_name not in INNER_LOOP_EVENTS
                or (self.run_train and (training is None or training))
                or (self.run_valid and not training))
        res = None
        if self.run and runs:
            method = event_method(self, event_name)
            if method is not None: res = method()
        if event_name == 'after_fit' and not self.run: self.run = True
        return res

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._stateattrs and k != 'learn'}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)


def _has_attr(learn: Any, name: str) -> bool:
    try:
        getattr(learn, name)
        return True
    except AttributeError:
        return False


def event_method(cb: Any, event: str) -> Callable | None:
    """The bound method ``cb`` runs for ``event`` (its fastbook ``begin_*`` name too), or None. What is set
    on the instance comes first, under either name, then what its class defines."""
    names = (event,) if event not in _OLD_NAME else (event, _OLD_NAME[event])
    own = cb.__dict__
    for name in names:
        if name in own: return own[name]
    for name in names:
        if getattr(type(cb), name, None) is not None: return getattr(cb, name)
    return None


_OLD_NAME = {new: old for old, new in LEGACY_EVENT_NAMES.items()}


def _defined_events(cb: Any) -> set:
    "The events for which ``cb`` or its classes define an attribute (under either name): those it may listen to."
    names = _EVENT_NAMES.intersection(cb.__dict__)
    for klass in type(cb).__mro__[:-1]:             # all but object, which has none (and cannot be given one)
        names |= _EVENT_NAMES.intersection(vars(klass))
    return {LEGACY_EVENT_NAMES.get(n, n) for n in names}


def unwrap_callback(cb: Any) -> Any:
    """What a Learner callback stands for: the callback an adapter wraps (its ``__wrapped__``, e.g. a
    fastai-1 callback inside a ``V1Adapter``), else the callback itself."""
    return getattr(cb, '__dict__', {}).get('__wrapped__', cb)


def _cb_label(cb: Any) -> str:
    "How errors and ``show_training_loop`` name a callback: its class, or the adapter's own repr (``OldCb(v1)``)."
    return type(cb).__name__ if unwrap_callback(cb) is cb else repr(cb)


def validate_callback(cb: Any) -> None:
    """Check ``cb`` when it is added: event methods callable with no argument, a numeric ``order``,
    and warnings for deprecated and misspelt event names. Raises :class:`CallbackError`."""
    label = _cb_label(cb)
    for attr in ('order', 'run_train', 'run_valid', 'run'):
        if hasattr(cb, attr): _check_attribute(cb, attr, getattr(cb, attr), label)
    names = set(cb.__dict__) | {n for klass in type(cb).__mro__ if klass is not Callback and klass is not object
                                for n in vars(klass)}
    for name in sorted(names):
        if name.startswith('_'): continue
        if name in _EVENT_NAMES:
            _check_attribute(cb, name, getattr(cb, name), label)
            continue
        value = getattr(type(cb), name, cb.__dict__.get(name))
        if not callable(value) or isinstance(value, (type, property)): continue
        if name in _V1_EVENT_HINTS:
            warnings.warn(f'callback `{label}` defines `{name}`, a fastai-1 event name that a v2 callback never '
                          f'receives: rename it `{_V1_EVENT_HINTS[name]}` or subclass trainlib.v1.Callback',
                          stacklevel=_user_stacklevel())
            continue
        close = _close_event_name(name)
        if close:
            warnings.warn(f'callback `{label}` defines `{name}`, which is not an event and will never be called; '
                          f'did you mean `{close}`?', stacklevel=_user_stacklevel())


@lru_cache(maxsize=1024)
def _close_event_name(name: str) -> str | None:
    "The event name ``name`` is probably a misspelling of, or None."
    close = difflib.get_close_matches(name, EVENTS + tuple(LEGACY_EVENT_NAMES), n=1, cutoff=0.85)
    return close[0] if close else None


def is_order(value: Any) -> bool:
    "Can ``value`` be a callback's ``order``: a number (not a bool, not NaN)?"
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _check_attribute(cb: Any, name: str, value: Any, label: str | None = None) -> None:
    """Check ``value`` for ``cb.<name>`` (an event method, ``order``, a ``run*`` flag): :class:`CallbackError`
    if it is wrong; a DeprecationWarning for a fastbook ``begin_*`` name."""
    label = label or _cb_label(cb)
    if name == 'order' and not is_order(value):
        raise CallbackError(f'callback `{label}`: `order` must be a number, got {value!r}')
    if name in ('run', 'run_train', 'run_valid') and not isinstance(value, bool):
        raise CallbackError(f'callback `{label}`: `{name}` must be True or False, got {value!r}')
    if name in _EVENT_NAMES:
        _check_event_signature(value, label, name)
        if name in LEGACY_EVENT_NAMES:
            warnings.warn(f'callback `{label}`: the event name `{name}` is deprecated, use '
                          f'`{LEGACY_EVENT_NAMES[name]}`', DeprecationWarning, stacklevel=_user_stacklevel())


def _user_stacklevel() -> int:
    """The ``stacklevel`` that points a warning at the first caller outside trainlib (the user's
    ``add_cb``/``Learner(...)`` line), so that it is shown, DeprecationWarnings included."""
    frame, level = sys._getframe(1), 1       # level 1 is the function that calls warnings.warn
    while frame is not None and frame.f_globals.get('__name__', '').partition('.')[0] == 'trainlib':
        frame, level = frame.f_back, level + 1
    return level


def _check_event_signature(m: Any, label: str, name: str) -> None:
    "Raise :class:`CallbackError` unless ``m``, a callback's method for event ``name``, can be called with no argument."
    if not callable(m):
        raise CallbackError(f'callback `{label}`: `{name}` must be a method taking no arguments, '
                            f'got {type(m).__name__}')
    try: sig = inspect.signature(m)
    except ValueError:          # a function of no argument bound to the callback (``Callback(after_batch=lambda: ...)``)
        if isinstance(m, types.MethodType):
            raise CallbackError(f'callback `{label}`: `{name}` is given the callback as its argument, but '
                                f'{getattr(m.__func__, "__qualname__", "the function")} takes none: expected '
                                f'`lambda cb: ...` or `def {name}(self)`') from None
        return
    except TypeError: return
    try: sig.bind()
    except TypeError:
        raise CallbackError(f'callback `{label}`: event method `{name}{sig}` cannot be called as an event; '
                            f'events pass no arguments: expected `def {name}(self)`') from None


def _matches(cb: Any, ref: Any) -> bool:
    "Does ``ref`` (a class, a class name, an instance) designate ``cb`` or the callback it wraps?"
    inner = unwrap_callback(cb)
    if isinstance(ref, str): return type(inner).__name__ == ref or getattr(cb, 'name', None) == ref
    if isinstance(ref, type): return isinstance(inner, ref)
    return cb is ref or inner is ref


def sort_callbacks(cbs: list) -> list:
    """Order ``cbs`` for dispatch: by ``order`` (stable), with ``run_before``/``run_after`` honoured.

    A topological sort that always picks the lowest (order, insertion index) among the callbacks
    whose constraints are met. A callback that declares ``run_before=X`` takes X's place when that
    is earlier than its own, so the others keep their relative order. A cycle raises
    :class:`CallbackError` naming the callbacks in it."""
    n = len(cbs)
    keys = [(getattr(cb, 'order', 0), i) for i, cb in enumerate(cbs)]
    if not any(getattr(cb, 'run_before', None) or getattr(cb, 'run_after', None) for cb in cbs):
        return [cbs[i] for _, i in sorted(keys)]
    succ = [set() for _ in range(n)]
    for i, cb in enumerate(cbs):
        for ref in _refs(getattr(cb, 'run_before', None)):
            succ[i].update(j for j, other in enumerate(cbs) if j != i and _matches(other, ref))
    declared_before = [set(s) for s in succ]
    for i, cb in enumerate(cbs):
        for ref in _refs(getattr(cb, 'run_after', None)):
            for j, other in enumerate(cbs):
                if j != i and _matches(other, ref): succ[j].add(i)
    for _ in range(n):          # run_before=X: move up to X's place (a fixed point over chains)
        keys = [min([keys[i]] + [keys[j] for j in declared_before[i]]) for i in range(n)]
    indeg = [0] * n
    for i in range(n):
        for j in succ[i]: indeg[j] += 1
    heap = [(keys[i], i) for i in range(n) if indeg[i] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        _, i = heapq.heappop(heap)
        out.append(cbs[i])
        for j in succ[i]:
            indeg[j] -= 1
            if indeg[j] == 0: heapq.heappush(heap, (keys[j], j))
    if len(out) < n:
        stuck = {i for i in range(n) if indeg[i] > 0}
        names = [_cb_label(cbs[i]) for i in sorted(stuck) if _on_cycle(i, succ, stuck)]
        raise CallbackError(f'run_before/run_after form a cycle between the callbacks {", ".join(names)}')
    return out


def _on_cycle(start: int, succ: list, allowed: set) -> bool:
    seen, todo = set(), list(succ[start] & allowed)
    while todo:
        i = todo.pop()
        if i == start: return True
        if i not in seen:
            seen.add(i)
            todo.extend(succ[i] & allowed)
    return False


def _refs(x: Any) -> list:
    if x is None: return []
    return list(x) if isinstance(x, (list, tuple, set)) else [x]


def _overrides_call(cb: Any) -> bool:
    return type(cb).__call__ is not Callback.__call__ and callable(getattr(type(cb), '__call__', None))


class DispatchTable(dict):
    """``event -> [bound methods]``. ``stale`` is set once the callbacks have changed and a new table
    replaced this one (:meth:`retire`): an event still running through this one then runs only the listeners still there.
    ``quiet``: the loop levels (``'batch'``, ``'step'``...) none of whose events has a listener; ``copy_loss``:
    whether ``learn.loss`` is a copy of ``loss_grad`` when read before backward (a listener between them wants one)."""
    __slots__ = ('stale', 'quiet', 'copy_loss')

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.stale, self.quiet, self.copy_loss = False, frozenset(), False

    def retire(self, listens: Callable[[Any, str], bool]) -> None:
        """Mark the table replaced (``stale``): from now on each entry runs only while ``listens(entry, event)``.
        The lists are changed in place, so an event iterating over one sees it at its next listener."""
        if self.stale: return
        self.stale = True
        for event, entries in self.items():
            if entries: entries[:] = [_RetiredEntry(m, event, listens) for m in entries]


class _RetiredEntry:
    "An entry of a replaced dispatch table: calls its listener if that is still in the Learner's dispatch."
    __slots__ = ('entry', 'event', 'listens')

    def __init__(self, entry: Callable, event: str, listens: Callable[[Any, str], bool]) -> None:
        self.entry, self.event, self.listens = entry, event, listens

    @property
    def owners(self) -> tuple:
        "The callbacks behind the entry (see :func:`listener_owners`)."
        return listener_owners(self.entry)

    def __call__(self) -> None:
        if self.listens(self, self.event): self.entry()      # listener_owners(self): the entry's owners

    def __repr__(self) -> str: return f'retired({self.entry!r})'


class _OwnedListener:
    "An event method set on a callback's instance that is not bound to it (a function, another object's method)."
    __slots__ = ('listener', 'owners')

    def __init__(self, listener: Callable, cb: Any) -> None: self.listener, self.owners = listener, (cb,)
    def __call__(self) -> Any: return self.listener()
    def __repr__(self) -> str: return f'{self.listener!r} (set on {_cb_label(self.owners[0])})'


listener_mergers: list[Callable[[str, list, 'DispatchTable'], list]] = []
"""Functions ``merge(event, listeners, table) -> listeners`` applied, in order, to each event's list of a new
dispatch table. A bridge may replace a run of its adjacent listeners with one entry that calls them in
turn (``trainlib.v1`` does for fastai-1 callbacks): such an entry names the callbacks it calls in
``owners`` and, once ``table`` is stale, skips those no longer listening itself."""


def listener_owners(entry: Any) -> tuple:
    "The callbacks behind a dispatch-table entry: its ``owners``, or the one a bound method (or partial) belongs to."
    owners = getattr(entry, 'owners', None)
    if owners is not None: return owners
    cb = getattr(entry, '__self__', None) or getattr(getattr(entry, 'func', None), '__self__', None)
    return () if cb is None else (cb,)


def build_dispatch(cbs: Iterable) -> tuple[DispatchTable, DispatchTable]:
    """Two tables ``event -> [bound methods]``: one for training, one for validation.

    Each holds, in dispatch order, only the callbacks that listen to the event in that phase
    (``run``, ``run_train``, ``run_valid`` applied), then what :data:`listener_mergers` make of it.
    A callback that overrides ``__call__`` gets every event through it, as in fastai."""
    ordered = sort_callbacks(list(cbs))
    train = DispatchTable({e: [] for e in EVENTS})
    valid = DispatchTable({e: [] for e in EVENTS})
    for cb in ordered:
        if _overrides_call(cb):
            for e in EVENTS:
                f = partial(cb.__call__, e)
                train[e].append(f); valid[e].append(f)
            continue
        if not cb.run: continue
        for e in _defined_events(cb):
            m = event_method(cb, e)
            if m is None: continue
            if getattr(m, '__self__', None) is not cb and cb not in listener_owners(m):
                m = _OwnedListener(m, cb)         # a function set on the instance, say
            if e not in INNER_LOOP_EVENTS or cb.run_train: train[e].append(m)
            if e not in INNER_LOOP_EVENTS or cb.run_valid: valid[e].append(m)
    for table in (train, valid):
        for merge in listener_mergers:
            for e, listeners in table.items():
                if len(listeners) > 1: table[e] = merge(e, listeners, table)
    return train, valid
