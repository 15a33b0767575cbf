"""``Learner``: the one training loop, and everything that runs through it.

The loop's state lives in plain attributes (``learn.xb``, ``learn.loss``, ``learn.epoch`` ...);
the events and their order are documented in :mod:`trainlib.events`. ``fit``, ``validate``,
``get_preds`` and ``lr_find`` all run the functions below.
"""
from __future__ import annotations

import pickle
import threading
import warnings
from contextlib import ExitStack, contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch

from .callback import (Callback, CallbackError, DispatchTable, _cb_label, build_dispatch, event_method,
                       listener_owners, sort_callbacks, unwrap_callback, validate_callback)
from .callbacks.core import CastToTensor, SkipToEpoch, TrainEvalCallback
from .callbacks.fp16 import MixedPrecision
from .callbacks.preds import GatherPredsCallback
from .data import prediction_loader
from . import lr_finder as _lr_finder, schedule as _schedule
from .events import (EVENTS, CancelBackwardException, CancelBatchException, CancelEpochException, CancelException,
                     CancelFitException, CancelStepException, CancelTrainException, CancelValidException)
from .metrics import mk_metric
from .optim import Adam, OptimWrapper
from .persistence import atomic_save, load_model, save_model
from .progress import ProgressCallback
from .recorder import Recorder, ValidationMeter
from .utils import (add_note, check_hyper, defaults, detuplify, is_number, listify, noop, norm_bias_params, on_device,
                    replacing_yield, to_detach, to_device, trainable_params)

__all__ = ['Learner', 'load_learner', 'callback_adapters']

defaults.callbacks = [TrainEvalCallback, Recorder, CastToTensor, ProgressCallback]

callback_adapters: list[Callable[[Any, Any], Callback | None]] = []
"""Functions ``adapt(obj, learn)`` tried, in order, on an object handed to ``cbs=`` that is not a v2
Callback: each returns a Callback for it or None. ``trainlib.v1`` registers the one that wraps fastai-1
callbacks (instances, classes, and ``callback_fns``-style callables taking the Learner)."""

_EVENT_SET = frozenset(EVENTS)
_LOOP_STATE = ('dl', 'xb', 'yb', 'pred', 'loss', 'loss_grad', 'iter', 'n_iter', 'training', 'epoch', 'n_epoch',
               'train_iter', 'pct_train', '_loss_copy')
_LEVELS = {name: (f'before_{name}', f'after_cancel_{name}', f'after_{name}')
           for name in ('fit', 'epoch', 'train', 'validate', 'batch', 'backward', 'step')}
_LOSS_NAMES = frozenset(('loss', 'loss_grad'))
_UNREAD = object()     # in a _loss_mark: learn.loss, whose copy waits for a first reader
_MISSING = object()   # no such class attribute


# ---------------------------------------------------------------------- fastai's copy of the loss, made when read
# Functions of the Learner's state (its ``__dict__``, ``d``), called by the loop on every batch.

def _copy_loss_when_read(d: dict, loss: Any) -> None:
    """``learn.loss_grad = loss; learn.loss = loss.clone()``, the clone made only if a callback reads either
    before backward. Until then both are left out of ``d``: the Learner's ``__getattr__`` ends the wait."""
    d.pop('loss', None); d.pop('loss_grad', None)
    d['_loss_pending'], d['_loss_copy'] = loss, None


def _fill_loss(d: dict, copy: bool) -> None:
    """End the wait: ``learn.loss_grad`` is the loss; ``learn.loss`` its clone if ``copy`` (someone reads them
    before backward), else the loss itself (nobody did: nobody can tell). What a callback assigned meanwhile stays."""
    loss, d['_loss_pending'] = d['_loss_pending'], None
    d.setdefault('loss_grad', loss)
    if 'loss' in d: return
    if not copy or not isinstance(loss, torch.Tensor):     # (a loss_func giving a number: nothing to copy)
        d['loss'] = loss
        return
    clone = d['loss'] = _clone_as_computed(loss)
    d['_loss_copy'] = (clone, None if clone.is_inference() else clone._version)


def _clone_as_computed(loss: torch.Tensor) -> torch.Tensor:
    "``loss.clone()`` as fastai makes it right after the loss: with its graph, even read under no_grad/inference_mode."
    if loss.requires_grad and not torch.is_grad_enabled():
        with torch.inference_mode(False), torch.enable_grad(): return loss.clone()
    if torch.is_inference_mode_enabled() and not loss.is_inference():
        with torch.inference_mode(False): return loss.clone()
    return loss.clone()


def _loss_mark(d: dict) -> tuple:
    "``(learn.loss, learn.loss_grad)`` before after_loss; learn.loss is ``_UNREAD`` while its copy waits."
    if d['_loss_pending'] is not None: return _UNREAD, d['_loss_pending']
    return d['loss'], d['loss_grad']


def _loss_moved(d: dict, mark: tuple) -> bool:
    """Has a callback replaced ``learn.loss`` since ``mark`` (a :func:`_loss_mark`), or changed in place the copy
    made meanwhile? (Not a copy, learn.loss is loss_grad itself: a change in place is back-propagated anyway.)"""
    loss, now = mark[0], d['loss']
    if loss is not _UNREAD: return now is not loss
    copy, version = d['_loss_copy'] or (None, None)
    return now is not copy or (version is not None and now._version != version)


def _run_listeners(table: DispatchTable, event: str) -> None:
    "Run ``event``'s listeners in ``table``, in order; a failure gets a note naming the callback and the event."
    methods = table[event]
    if not methods: return
    try:
        # A callback switched off (run=False) or removed by an earlier one in this same event is skipped:
        # the table is then retired, its entries guarded.
        for m in methods: m()
    except CancelException: raise
    except BaseException as e:
        _annotate(e, m, event)
        raise


def _owner(method: Any) -> Any:
    "The (first) callback behind a dispatch-table entry."
    owners = listener_owners(method)
    return owners[0] if owners else None


def _annotate(exc: BaseException, method: Any, event: str) -> None:
    "Add a note naming the callback and the event to ``exc`` (once: the innermost place wins)."
    if getattr(exc, '_trainlib_noted', False): return
    cb = _owner(method)
    who = type(cb).__name__ if cb is not None else getattr(method, '__qualname__', repr(method))
    add_note(exc, f'Exception occurred in `{who}` when calling event `{event}`')
    try: exc._trainlib_noted = True
    except AttributeError: pass


def _check_learner_args(dls: Any, model: Any, loss_func: Any, opt_func: Any, lr: Any, splitter: Any, wd: Any,
                        moms: Any) -> None:
    "Raise TypeError for a Learner argument it could not train with, naming it and what was expected."
    if isinstance(loss_func, type):
        raise TypeError(f'Learner: loss_func is the class {loss_func.__name__}; pass an instance, '
                        f'{loss_func.__name__}()')
    if not callable(loss_func):
        raise TypeError(f'Learner: loss_func must be callable (pred, *targets) -> loss, got {loss_func!r}')
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f'Learner: model must be a torch.nn.Module, got {type(model).__name__}')
    if isinstance(opt_func, torch.optim.Optimizer) or not (callable(opt_func) or isinstance(opt_func, OptimWrapper)):
        raise TypeError(f'Learner: opt_func must make the optimizer from the parameters (a class such as '
                        f'torch.optim.SGD, a partial of one, or a function), got {type(opt_func).__name__} {opt_func!r}')
    if not callable(splitter):
        raise TypeError(f'Learner: splitter must be a function model -> parameter groups, got {splitter!r}')
    if dls is not None and not hasattr(dls, 'train'):
        raise TypeError(f'Learner: dls must be a DataLoaders (with .train and .valid loaders), got {type(dls).__name__}'
                        f'; wrap the loaders: DataLoaders(train_dl, valid_dl)')
    check_hyper('Learner', 'lr', lr)
    check_hyper('Learner', 'wd', wd)
    if not (isinstance(moms, (tuple, list)) and len(moms) == 3 and all(map(is_number, moms))):
        raise TypeError(f'Learner: moms must be three numbers (start, middle, end of the cycle), got {moms!r}')


class Learner:
    """A model, its data, loss and optimizer, and the callbacks that shape its training loop."""
    skip_zero_grad: bool = False
    "Set by a callback before the batch ends to keep its gradients: the loop skips the next ``opt.zero_grad()`` once."

    def __init__(self, dls: Any, model: torch.nn.Module, loss_func: Callable | None = None,
                 opt_func: Callable = Adam, lr: float = defaults.lr, splitter: Callable = trainable_params,
                 cbs: Any = None, metrics: Any = None, path: str | Path | None = None,
                 model_dir: str | Path = 'models', wd: float | None = None, wd_bn_bias: bool = False,
                 train_bn: bool = True, moms: tuple = (0.95, 0.85, 0.95), default_cbs: bool = True) -> None:
        if loss_func is None: loss_func = getattr(getattr(dls, 'train_ds', None), 'loss_func', None)
        if loss_func is None:
            raise ValueError('Could not infer loss function from the data, please pass a loss function '
                             '(Learner(..., loss_func=...)).')
        _check_learner_args(dls, model, loss_func, opt_func, lr, splitter, wd, moms)
        self._lazy: dict = {}
        self.dls, self.model, self.loss_func, self.opt_func, self.lr = dls, model, loss_func, opt_func, lr
        self.splitter, self.model_dir, self.wd, self.wd_bn_bias = splitter, model_dir, wd, wd_bn_bias
        self.train_bn, self.moms, self.default_cbs = train_bn, moms, default_cbs
        self.path = Path(path) if path is not None else Path(getattr(dls, 'path', '.'))
        self.training, self.create_mbar, self.logger, self.opt = False, True, print, None
        self.lock = threading.RLock()
        self.exception: BaseException | None = None
        self.epoch = self.iter = self.n_iter = self.train_iter = 0
        self.n_epoch, self.pct_train = 1, 0.
        self.dl, self.xb, self.yb, self.pred, self.loss, self.loss_grad = None, (None,), (None,), None, None, None
        self._loss_pending = self._loss_copy = None      # fastai's copy of the loss, made when read: see _fill_loss
        self.smooth_loss = self.final_record = None
        self._batch_device = None
        self._running = 0           # > 0 while a fit (or a validate/get_preds with fit events) is running
        self._detaching: list | None = None     # during after_fit: callbacks removed meanwhile, detached at its end
        self.cbs: list = []
        self._train_cbs = self._valid_cbs = None
        self._callbacks_changed()
        self.metrics = metrics
        if default_cbs: self.add_cbs(defaults.callbacks or [])
        self.add_cbs(cbs)
        self('after_create')

    # ================================================================== state helpers
    @property
    def metrics(self) -> list:
        "The metrics computed by the Recorder (functions are wrapped in ``AvgMetric``)."
        return self._metrics

    @metrics.setter
    def metrics(self, v: Any) -> None: self._metrics = [mk_metric(m) for m in listify(v)]

    @property
    def x(self) -> Any:
        "The input of the current batch (``xb`` without the tuple when there is one input)."
        return detuplify(self.xb)

    @property
    def y(self) -> Any:
        "The target of the current batch (``yb`` without the tuple when there is one target)."
        return detuplify(self.yb)

    def __getattr__(self, name: str) -> Any:
        # Names not found on the Learner are looked up on the model (fastai's GetAttr).
        if name.startswith('_') or name in _EVENT_SET: raise AttributeError(name)
        d = self.__dict__
        if name in _LOSS_NAMES and d.get('_loss_pending') is not None:
            _fill_loss(d, copy=True)       # read before backward: now fastai's copy (see _copy_loss_when_read)
            return d[name]
        lazy = d.get('_lazy')
        if lazy and name in lazy:
            value = d[name] = lazy.pop(name)()
            return value
        model = d.get('model')
        if model is None: raise AttributeError(name)
        try: return getattr(model, name)
        except AttributeError:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}, "
                                 f"and neither has its model ({type(model).__name__})") from None

    def _defer_attr(self, name: str, thunk: Callable[[], Any]) -> None:
        "Make ``learn.<name>`` ``thunk()``, called when first read (for per-batch values often never read)."
        self.__dict__.pop(name, None)
        self._lazy[name] = thunk

    # ================================================================== callbacks
    def _coerce_callback(self, cb: Any) -> Callback:
        if isinstance(cb, type) and issubclass(cb, Callback): return cb()
        if isinstance(cb, Callback): return cb
        for adapt in callback_adapters:
            res = adapt(cb, self)
            if res is not None: return res
        if _looks_like_v1(cb):
            from .v1 import bridge  # noqa: F401  (registers its adapter)
            for adapt in callback_adapters:
                res = adapt(cb, self)
                if res is not None: return res
        raise CallbackError(f'cbs: expected a Callback (an instance or a subclass of trainlib.Callback), '
                            f'got {cb!r} of type {type(cb).__name__}')

    def _register_name(self, cb: Callback) -> bool:
        """Check that ``cb`` may become ``learn.<cb.name>``; False when it is not to be registered: a callback that
        ``yields_name`` (a fastai-1 one) to a name the Learner itself has, or one that is not ``registered_here``
        (a fastai-1 LearnerCallback, which its constructor registers)."""
        if getattr(cb, 'yields_name', False) and self._learner_owns(cb.name) is not None: return False
        self._check_name(cb.name, unwrap_callback(cb), _cb_label(cb))
        return getattr(cb, 'registered_here', True)

    def _learner_owns(self, name: Any) -> str | None:
        "When the Learner itself has ``learn.<name>`` (a method, a property, its state), what to say of it; else None."
        if not isinstance(name, str): return None
        member = getattr(type(self), name, _MISSING)
        if member is not _MISSING:
            return (f'is a Learner {"property" if isinstance(member, property) else "method"}; give the class another '
                    f'name or set `name = "..."` on it')
        if name not in self.__dict__: return None
        old = self.__dict__[name]
        if isinstance(old, Callback) or _looks_like_v1(old): return None          # a callback's name
        return f'already holds the Learner state {"None" if old is None else type(old).__name__}; rename the callback'

    def _check_name(self, name: Any, owner: Any, label: str) -> None:
        """Raise :class:`CallbackError` unless callback ``owner`` (of either generation, named ``label`` in
        errors) may become ``learn.<name>``: a free name, its own, or one held by a callback no longer attached."""
        if not isinstance(name, str) or not name.isidentifier():
            raise CallbackError(f'callback `{label}`: its name {name!r} is not a valid attribute name')
        owned = self._learner_owns(name)
        if owned is not None: raise CallbackError(f'callback `{label}` would be registered as `learn.{name}`, which {owned}')
        old = self.__dict__.get(name, owner)
        if old is owner: return
        live = next((c for c in self.cbs if unwrap_callback(c) is old), None)
        if live is None: return            # a callback no longer attached
        if type(old) is not type(owner):
            raise CallbackError(f'callbacks `{_cb_label(live)}` and `{label}` both want to be `learn.{name}`; give one '
                                f'of them another `name` (a fastai-1 callback: another class name), or remove one')

    def add_cb(self, cb: Any) -> 'Learner':
        "Add a callback (an instance, or a class to instantiate) and register it as ``learn.<cb.name>``."
        cb = self._coerce_callback(cb)
        validate_callback(cb)
        named = self._register_name(cb)
        sort_callbacks(self.cbs + [cb])           # a run_before/run_after cycle fails here, before anything changes
        object.__setattr__(cb, 'learn', self)
        if named: self.__dict__[cb.name] = unwrap_callback(cb)
        self.cbs.append(cb)
        self._callbacks_changed()
        return self

    def add_cbs(self, cbs: Any) -> 'Learner':
        "Add several callbacks."
        for cb in listify(cbs): self.add_cb(cb)
        return self

    def remove_cb(self, cb: Any) -> 'Learner':
        "Remove a callback instance, or every callback of a class."
        if isinstance(cb, type):
            for c in [c for c in self.cbs if isinstance(c, cb)]: self.remove_cb(c)
            return self
        if cb in self.cbs:
            self.cbs.remove(cb)
            name = cb.name
            # A fastai-1 LearnerCallback (not ``registered_here``) stays ``learn.<name>`` after it is removed, as in fastai 1.
            if getattr(cb, 'registered_here', True) and self.__dict__.get(name) is unwrap_callback(cb):
                del self.__dict__[name]
                same = [c for c in self.cbs if c.name == name and getattr(c, 'registered_here', True)]
                if same: self.__dict__[name] = unwrap_callback(same[-1])
            detaching = self.__dict__.get('_detaching')
            if detaching is None: object.__setattr__(cb, 'learn', None)
            else: detaching.append(cb)      # removed during after_fit: its own after_fit still has the Learner
            self._callbacks_changed()
        return self

    def remove_cbs(self, cbs: Any) -> 'Learner':
        "Remove several callbacks (instances or classes)."
        for cb in list(listify(cbs)): self.remove_cb(cb)
        return self

    @contextmanager
    def added_cbs(self, cbs: Any) -> Iterator[None]:
        """Add ``cbs`` for the duration of the ``with`` block (it gives None, as fastai's). One already attached is
        not added again (it runs once per event) and stays attached afterwards."""
        added_before = list(self.cbs)
        try:
            for cb in listify(cbs):
                if not self._attached(cb): self.add_cb(cb)
            yield
        finally: self.remove_cbs([c for c in self.cbs if c not in added_before])

    def _attached(self, cb: Any) -> bool:
        "Is the instance ``cb`` (of either generation) in ``learn.cbs``?"
        return any(c is cb or unwrap_callback(c) is cb for c in self.cbs)

    @contextmanager
    def removed_cbs(self, cbs: Any) -> Iterator['Learner']:
        "Remove ``cbs`` for the duration of the ``with`` block (it gives the Learner, as fastai's)."
        cbs = listify(cbs)
        self.remove_cbs(cbs)
        try: yield self
        finally: self.add_cbs(cbs)

    def _callbacks_changed(self) -> None:
        """Rebuild the dispatch tables: when the callbacks, their flags or event methods change, and as a run
        starts (a class patched since then is heard). When the build fails, the tables in use stay."""
        train, valid = build_dispatch(self.cbs)
        for old in (self._train_cbs, self._valid_cbs):
            if old is not None: old.retire(self._still_listens)
        self._train_cbs, self._valid_cbs = train, valid
        for table in (train, valid):
            table.quiet = frozenset(lv for lv, evs in _LEVELS.items() if not any(map(table.get, evs)))
            table.copy_loss = any(getattr(cb, 'copies_loss', True) for e in ('after_loss', 'before_backward')
                                  for m in table[e] for cb in listener_owners(m) or (None,))

    def _still_listens(self, method: Any, event: str) -> bool:
        """After the tables changed in the middle of ``event``: is a callback behind entry ``method`` still in its
        dispatch? In ``after_fit`` (cleanup) one removed meanwhile still is, unless it was switched off."""
        owners = listener_owners(method)
        if event == 'after_fit' and any(cb.run and cb not in self.cbs for cb in owners): return True
        return any(self._listens(cb, event) for cb in owners)

    def _listens(self, cb: Callback, event: str) -> bool:
        "Is ``cb`` in the current phase's dispatch of ``event``?"
        table = self._train_cbs if self.training else self._valid_cbs
        return any(cb in listener_owners(m) for m in table[event])

    def ordered_cbs(self, event: str) -> list:
        "The callbacks that implement ``event``, in the order they run."
        return [cb for cb in sort_callbacks(self.cbs) if event_method(cb, event) is not None]

    def show_training_loop(self) -> None:
        """Print the loop with, at each event, the callbacks that run there (fastai-1 callbacks as
        ``OldCb(v1)`` under the event their method maps to; internal ones, named ``_...``, are left out)."""
        indent = 0
        for step in _LOOP_OUTLINE:
            if step.startswith('Start'):
                print(f'{" " * indent}{step}'); indent += 2
            elif step.startswith('End'):
                indent -= 2; print(f'{" " * indent}{step}')
            elif step.startswith('**'):
                print(f'{" " * indent} - {step}: []')
            else: print(f'{" " * indent} - {step:15}:', [c for c in self.ordered_cbs(step) if not c.name.startswith('_')])

    # ================================================================== dispatch
    def __call__(self, event_name: Any) -> None:
        "Fire one event (or a list of events) to the callbacks."
        if isinstance(event_name, (list, tuple)):
            for e in event_name: self(e)
            return
        if event_name not in _EVENT_SET:
            raise ValueError(f'unknown event {event_name!r}; the events are: {", ".join(EVENTS)}')
        if event_name == 'after_fit': self._fire_all('after_fit')
        else: self._fire(event_name)

    def _fire(self, event: str) -> None:
        "Run ``event``'s listeners in the current phase's dispatch table."
        d = self.__dict__
        _run_listeners(d['_train_cbs'] if d['training'] else d['_valid_cbs'], event)

    def _fire_all(self, event: str) -> None:
        """Fire ``event`` to every listener even if some fail (cleanup events); then raise the first failure. In
        ``after_fit`` a callback removed meanwhile keeps its Learner until the event ends (its cleanup may need it),
        and every callback switched off is on again after it."""
        if event != 'after_fit': return self._fire_each(event)
        outer, self._detaching = self.__dict__.get('_detaching'), []
        try: self._fire_each(event)
        finally:
            for cb in self._detaching:
                if cb not in self.cbs: object.__setattr__(cb, 'learn', None)
            self._detaching = outer
            silenced = [cb for cb in self.cbs if not cb.run]
            for cb in silenced: object.__setattr__(cb, 'run', True)
            if silenced: self._callbacks_changed()     # (the next run rebuilds it anyway; events fired before then hear them)

    def _fire_each(self, event: str) -> None:
        "Run each listener of ``event`` in the current phase's table even if some fail; then raise the first failure."
        first, table = None, self._train_cbs if self.training else self._valid_cbs
        for m in table[event]:        # retired mid-event (callbacks changed): its entries are guarded (_still_listens)
            try: m()
            except BaseException as e:
                if not isinstance(e, CancelException): _annotate(e, m, event)
                if first is None: first = e
        if first is not None: raise first

    # ================================================================== the loop
    def _with_events(self, f: Callable, level: str, ex: type) -> None:
        "Run ``f`` between ``before_<level>`` and ``after_<level>``; ``after_cancel_<level>`` when it raises ``ex``."
        before, after_cancel, after = _LEVELS[level]
        d = self.__dict__            # the loop's state (plain attributes), read without the Learner's __getattr__
        table = d['_train_cbs'] if d['training'] else d['_valid_cbs']
        if level in table.quiet:
            # Nobody listens to this level's events: run f alone (what the branch below does then).
            try: f()
            except ex:
                if table.stale: self._fire(after_cancel)
            if table.stale: self._fire(after)     # f added a listener: it hears the end
            return
        try:
            _run_listeners(table, before)
            f()
        except ex:
            _run_listeners(d['_train_cbs'] if d['training'] else d['_valid_cbs'], after_cancel)
        _run_listeners(d['_train_cbs'] if d['training'] else d['_valid_cbs'], after)

    def fit(self, n_epoch: int, lr: Any = None, wd: float | None = None, cbs: Any = None,
            reset_opt: bool = False, start_epoch: int = 0) -> None:
        "Train for ``n_epoch`` epochs at ``lr`` (default ``learn.lr``), with extra ``cbs`` for this fit only."
        if not isinstance(n_epoch, int) or isinstance(n_epoch, bool) or n_epoch < 0:
            raise ValueError(f'fit: n_epoch must be a non-negative int, got {n_epoch!r}')
        check_hyper('fit', 'lr', lr)
        check_hyper('fit', 'wd', wd)
        if start_epoch: cbs = listify(cbs) + [SkipToEpoch(start_epoch)]
        with self.added_cbs(cbs):
            if reset_opt or not self.opt: self.create_opt()
            if wd is None: wd = self.wd
            if wd is not None: self.opt.set_hypers(wd=wd)
            self.opt.set_hypers(lr=self.lr if lr is None else lr)
            self.n_epoch = n_epoch
            self._run_fit()

    def _run_fit(self) -> None:
        self._callbacks_changed()
        self._running += 1
        try: self._fit_with_events()
        finally: self._running -= 1

    def _fit_with_events(self) -> None:
        before_fit, after_cancel_fit, _ = _LEVELS['fit']
        try:
            try:
                self._fire(before_fit)
                self._do_fit()
            except CancelFitException:
                self._fire(after_cancel_fit)
        except BaseException as exc:
            self._after_fit_on_failure(exc)
            raise
        try: self._fire_all('after_fit')
        finally: self._end_cleanup()

    def _after_fit_on_failure(self, exc: BaseException, events: tuple = ('after_fit',)) -> None:
        "Run ``events`` (cleanup) with ``learn.exception`` set, keeping ``exc`` as the error that propagates."
        self.exception = exc
        try:
            for event in events:
                try: self._fire_all(event)
                except BaseException as later:
                    if later is not exc: add_note(exc, f'{event} also failed: {type(later).__name__}: {later}')
        finally: self.exception = None

    def _do_fit(self) -> None:
        for epoch in range(self.n_epoch):
            self.epoch = epoch
            self._with_events(self._do_epoch, 'epoch', CancelEpochException)

    def _do_epoch(self) -> None:
        self._do_epoch_train()
        self._do_epoch_validate()

    def _do_epoch_train(self) -> None:
        self.dl = self.dls.train
        self._with_events(self.all_batches, 'train', CancelTrainException)

    def _do_epoch_validate(self, ds_idx: int = 1, dl: Any = None) -> None:
        if dl is None: dl = self.dls[ds_idx] if len(self.dls) > ds_idx else []
        self.dl = dl
        with torch.no_grad(): self._with_events(self.all_batches, 'validate', CancelValidException)

    def all_batches(self) -> None:
        "Run every batch of ``learn.dl``."
        try: self.n_iter = len(self.dl)
        except TypeError:
            raise TypeError(f'the Learner needs loaders with a length: {type(self.dl).__name__} has no len()') from None
        self._batch_device = self._device_for_batches()
        try:
            for i, b in enumerate(self.dl): self.one_batch(i, b)
        finally: self._batch_device = None

    def _device_for_batches(self) -> Any:
        p = next(iter(self.model.parameters()), None)
        dls_device = getattr(self.dls, 'device', None)
        if p is None: return dls_device
        return dls_device if p.device == dls_device else p.device

    def one_batch(self, i: int, b: Any) -> None:
        "Run batch ``b`` (index ``i``): the whole step in training, up to the loss in validation."
        self.iter = i
        d = self.__dict__
        device = d['_batch_device'] or self._device_for_batches()
        if not on_device(b, device): b = to_device(b, device)
        self._split(b)
        try: self._with_events(self._do_one_batch, 'batch', CancelBatchException)
        finally:
            # The batch ended before backward (cancelled, failed) with its loss unread: fastai's copy, as then.
            if d['_loss_pending'] is not None: _fill_loss(d, copy=True)

    def _split(self, b: Any) -> None:
        "``learn.xb``, ``learn.yb``: tuples, as fastai's loaders give them (torch's collate gives lists)."
        if isinstance(b, torch.Tensor): b = (b,)
        elif isinstance(b, list): b = tuple(b)
        n = getattr(self.__dict__['dls'], 'n_inp', None)
        if n is None: n = 1 if len(b) == 1 else len(b) - 1
        self.xb, self.yb = b[:n], b[n:]

    def _do_one_batch(self) -> None:
        d = self.__dict__    # the loop's state (plain attributes), read without the Learner's __getattr__
        self.pred = d['model'](*d['xb'])
        _run_listeners(d['_train_cbs'] if d['training'] else d['_valid_cbs'], 'after_pred')
        cbs = d['_train_cbs'] if d['training'] else d['_valid_cbs']
        if len(d['yb']):
            loss = d['loss_func'](d['pred'], *d['yb'])
            # learn.loss is a copy when a callback could change it before backward (made when read); else the same tensor.
            if cbs.copy_loss: _copy_loss_when_read(d, loss)
            else: self.loss_grad = self.loss = loss
        if cbs['after_loss']:
            # Fired only when someone listens; in training a change of learn.loss (new or in place) is back-propagated.
            mark = _loss_mark(d) if d['training'] else None
            _run_listeners(cbs, 'after_loss')
            if mark is not None and 'loss' in d and _loss_moved(d, mark): self._loss_changed(mark[1])
        if not d['training'] or not len(d['yb']):
            if d['_loss_pending'] is not None: _fill_loss(d, copy=False)
            return
        self._with_events(self._backward, 'backward', CancelBackwardException)
        self._with_events(self._step, 'step', CancelStepException)
        if self.skip_zero_grad: self.skip_zero_grad = False
        else: self.opt.zero_grad()

    def _loss_changed(self, loss_grad: Any) -> None:
        "A callback changed ``learn.loss`` in after_loss but left ``loss_grad``: back-propagate the new loss."
        if self.loss_grad is loss_grad and isinstance(self.loss, torch.Tensor) and self.loss.requires_grad:
            self.loss_grad = self.loss

    def _backward(self) -> None:
        d = self.__dict__
        if d['_loss_pending'] is not None: _fill_loss(d, copy=False)
        d['loss_grad'].backward()

    def _step(self) -> None: self.opt.step()

    def _end_cleanup(self) -> None:
        self.dl, self.xb, self.yb, self.pred, self.loss, self._loss_copy = None, (None,), (None,), None, None, None

    # ================================================================== training recipes (trainlib.schedule)
    fit_one_cycle = _schedule.fit_one_cycle
    fit_flat_cos = _schedule.fit_flat_cos
    fit_sgdr = _schedule.fit_sgdr
    fine_tune = _schedule.fine_tune
    lr_find = _lr_finder.lr_find

    # ================================================================== optimizer
    def create_opt(self) -> None:
        "Create ``learn.opt`` from ``opt_func``, the splitter's groups and ``learn.lr``."
        if isinstance(self.opt_func, partial) and 'lr' in self.opt_func.keywords:
            self.lr = self.opt_func.keywords['lr']
        if isinstance(self.opt_func, OptimWrapper):
            self.opt = self.opt_func
            self.opt.clear_state()
        else:
            opt = self.opt_func(self.splitter(self.model), lr=self.lr)
            if isinstance(opt, torch.optim.Optimizer): opt = OptimWrapper(opt=opt)
            if not hasattr(opt, 'set_hypers') or not hasattr(opt, 'step'):
                raise TypeError(f'opt_func must return an optimizer (an OptimWrapper or a torch optimizer), '
                                f'got {type(opt).__name__}')
            self.opt = opt
        state = getattr(self.opt, 'state', None)
        if state is None or not hasattr(self.opt, 'param_lists'): return
        if not self.wd_bn_bias:
            for p in norm_bias_params(self.model, with_bias=True): state[p]['do_wd'] = False
        if self.train_bn:
            for p in norm_bias_params(self.model, with_bias=False): state[p]['force_train'] = True

    def freeze_to(self, n: int) -> None:
        "Train only the parameter groups from ``n`` on; the optimizer's state is reset."
        if self.opt is None: self.create_opt()
        self.opt.freeze_to(n)
        self.opt.clear_state()

    def freeze(self) -> None:
        "Train only the last parameter group."
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        "Train every parameter group."
        self.freeze_to(0)

    # ================================================================== precision
    def to_fp16(self, **kwargs: Any) -> 'Learner':
        "Train in float16 mixed precision (bfloat16 off CUDA): ``MixedPrecision(**kwargs)`` replaces any other."
        return self.to_fp32().add_cb(MixedPrecision(**kwargs))

    def to_bf16(self) -> 'Learner':
        "Train in bfloat16 mixed precision: ``MixedPrecision(amp_mode='bf16')`` replaces any other."
        return self.to_fp32().add_cb(MixedPrecision(amp_mode='bf16'))

    def to_fp32(self) -> 'Learner':
        "Train in float32: remove the MixedPrecision callbacks."
        return self.remove_cb(MixedPrecision)

    # ================================================================== evaluation
    @contextmanager
    def no_logging(self) -> Iterator[None]:
        "No logger output inside the ``with`` block."
        with replacing_yield(self, 'logger', noop): yield

    @contextmanager
    def no_mbar(self) -> Iterator[None]:
        "No master progress bar inside the ``with`` block."
        with replacing_yield(self, 'create_mbar', False): yield

    @contextmanager
    def no_bar(self) -> Iterator['Learner']:
        "No ProgressCallback (no bars, no table) inside the ``with`` block (it gives the Learner, as fastai's)."
        has = [cb for cb in self.cbs if isinstance(cb, ProgressCallback)]
        self.remove_cbs(has)
        try: yield self
        finally:
            if has: self.add_cb(ProgressCallback())

    @contextmanager
    def loss_not_reduced(self) -> Iterator[None]:
        "The loss function returns one loss per item inside the ``with`` block."
        if hasattr(self.loss_func, 'reduction'):
            with replacing_yield(self.loss_func, 'reduction', 'none'): yield
        else:
            with replacing_yield(self, 'loss_func', partial(self.loss_func, reduction='none')): yield

    def __enter__(self) -> 'Learner':
        "Open an evaluation run: ``before_fit``, ``before_epoch`` (``after_fit`` still runs if they fail)."
        self._running += 1
        try: self._fire('before_fit'); self._fire('before_epoch')
        except BaseException as exc:
            try: self._after_fit_on_failure(exc)
            finally: self._running -= 1
            raise
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        "Close it: ``after_epoch``, then ``after_fit`` always; the run's own error, if any, is the one raised."
        try:
            if exc is not None: self._after_fit_on_failure(exc, ('after_epoch', 'after_fit'))
            else:
                try: self._fire_all('after_epoch')
                except BaseException as later:
                    self._after_fit_on_failure(later)
                    raise
                self._fire_all('after_fit')
        finally: self._running -= 1

    @contextmanager
    def _nested_pass(self) -> Iterator[None]:
        """Around an evaluation run from a callback while a fit runs: the fit's loop state (``dl``, ``xb``,
        ``training`` ...) and the model's train/eval modes come back afterwards, and the callbacks that keep
        the fit's record (``remove_on_fetch``: Recorder, trackers) sit the pass out."""
        if self._loss_pending is not None: _fill_loss(self.__dict__, copy=True)   # a callback may change it after
        state = {k: self.__dict__.get(k) for k in _LOOP_STATE}
        modes = [(m, m.training) for m in self.model.modules()]
        resting = [cb for cb in self.cbs if cb.remove_on_fetch and cb.run]
        for cb in resting: cb.run = False
        try: yield
        finally:
            for cb in resting: cb.run = True
            self.__dict__.update(state)
            for m, mode in modes: m.training = mode

    @contextmanager
    def validation_context(self, cbs: Any = None, inner: bool = False) -> Iterator[None]:
        "Around an evaluation pass: no logging, no master bar, ``cbs`` added, fit/epoch events unless ``inner``."
        with ExitStack() as stack:
            stack.enter_context(self.no_logging())
            stack.enter_context(self.no_mbar())
            stack.enter_context(self.lock)
            if cbs: stack.enter_context(self.added_cbs(cbs))          # (adding them rebuilds the dispatch)
            elif not inner: self._callbacks_changed()
            if not inner: stack.enter_context(self)
            yield

    def validate(self, ds_idx: int = 1, dl: Any = None, cbs: Any = None) -> list | None:
        """Evaluate on ``dls[ds_idx]`` (or ``dl``); returns ``[valid_loss, *metrics]`` (``[]`` when the Recorder has
        ``valid_metrics=False``: it records no validation column). Called from a callback
        during a fit, it runs only the validation events and leaves the fit's state and record alone."""
        if dl is None: dl = self.dls[ds_idx]
        if self._running:
            meter = ValidationMeter()
            with self._nested_pass(), self.validation_context(cbs=[meter] + listify(cbs), inner=True):
                self._do_epoch_validate(ds_idx, dl)
            return meter.values
        with self.validation_context(cbs=cbs): self._do_epoch_validate(ds_idx, dl)
        return self.final_record

    def get_preds(self, ds_idx: int = 1, dl: Any = None, with_input: bool = False, with_decoded: bool = False,
                  with_loss: bool = False, act: Callable | None = None, inner: bool = False, reorder: bool = True,
                  cbs: Any = None, save_preds: Any = None, save_targs: Any = None, with_preds: bool = True,
                  with_targs: bool = True, concat_dim: int = 0) -> tuple:
        """Predictions on ``dls[ds_idx]`` (or ``dl``), in the order of the data:
        ``(inputs?, preds, targets, decoded?, losses?)``. ``save_preds``/``save_targs`` stream to a folder
        (``0.pt``, ``1.pt``... by ``torch.save``; raw outputs) and None is returned in their place.
        A loader with a batch_sampler of its own keeps its batches; ``reorder`` puts the results back in
        dataset order (files saved to folders keep the batch order). Called from a callback during a fit,
        it is always an ``inner`` pass that leaves the fit's state alone."""
        if dl is None: dl = self.dls[ds_idx]
        dl, order = prediction_loader(dl, reorder)
        gather = GatherPredsCallback(with_input=with_input, with_loss=with_loss, save_preds=save_preds,
                                     save_targs=save_targs, with_preds=with_preds, with_targs=with_targs,
                                     concat_dim=concat_dim)
        with ExitStack() as stack:
            nested = self._running > 0
            if nested: stack.enter_context(self._nested_pass())
            stack.enter_context(self.validation_context(cbs=listify(cbs) + [gather], inner=inner or nested))
            if with_loss: stack.enter_context(self.loss_not_reduced())
            self._do_epoch_validate(dl=dl)
            inputs, preds, targs, losses = gather.all_tensors(order)
            if act is None: act = getattr(self.loss_func, 'activation', noop)
            if preds is not None: preds = act(preds)
            res = ([inputs] if with_input else []) + [preds, targs]
            if with_decoded: res.append(getattr(self.loss_func, 'decodes', noop)(preds))
            if with_loss: res.append(losses)
            return tuple(res)

    def predict(self, item: Any, with_input: bool = False) -> tuple:
        """Predict one raw item (the model's input, or a tuple of its inputs):
        ``(decoded, decoded_pred, pred)`` (with the input first when ``with_input``).
        ``decoded`` goes through ``dls.vocab`` when the DataLoaders has one."""
        xs = item if isinstance(item, (tuple, list)) else (item,)
        batch = tuple(torch.as_tensor(x).unsqueeze(0) for x in xs)
        with replacing_yield(self.dls, 'n_inp', len(batch)) if hasattr(self.dls, 'n_inp') else nullcontext():
            inp, preds, _, dec = self.get_preds(dl=[batch], with_input=True, with_decoded=True)
        vocab = getattr(self.dls, 'vocab', None)
        dec0 = dec[0]
        full = vocab[int(dec0)] if vocab is not None and dec0.numel() == 1 else dec0
        res = (full, dec0, preds[0])
        return (inp[0],) + res if with_input else res

    def to_detach(self, b: Any, cpu: bool = True, gather: bool = True) -> Any:
        "Detach ``b`` (the current loader's own ``to_detach`` if it has one)."
        f = getattr(self.dl, 'to_detach', None)
        return f(b, cpu, gather) if f is not None else to_detach(b, cpu)

    # ================================================================== persistence
    def _model_file(self, file: Any) -> Any:
        """``path/model_dir/file.pth`` (sub-folders of ``file`` kept), or ``file.pth`` for an absolute path, as in
        fastai; ``.pth`` is not added to a name that ends in it. A file object as given."""
        if not isinstance(file, (str, Path)): return file
        file = Path(file)
        if file.suffix != '.pth': file = file.with_name(f'{file.name}.pth')
        return file if file.is_absolute() else self.path / self.model_dir / file

    def save(self, file: Any, with_opt: bool = True, pickle_protocol: int = 2) -> Any:
        "Save the weights (and optimizer state) to ``path/model_dir/file.pth`` atomically; returns the path."
        target = self._model_file(file)
        save_model(target, self.model, getattr(self, 'opt', None), with_opt, pickle_protocol=pickle_protocol)
        return target

    def load(self, file: Any, device: Any = None, with_opt: bool = True, strict: bool = True) -> 'Learner':
        "Load weights saved by :meth:`save` (``torch.load(weights_only=True)``: no code runs)."
        if device is None: device = getattr(self.dls, 'device', None)
        if self.opt is None: self.create_opt()
        load_model(self._model_file(file), self.model, self.opt, with_opt=with_opt, device=device, strict=strict)
        return self

    def export(self, fname: str | Path = 'export.pkl', pickle_protocol: int = 2) -> Path:
        """Pickle the whole Learner (model, loss, callbacks, settings; no data, no optimizer state) to
        ``path/fname`` atomically, for :func:`load_learner`."""
        self._end_cleanup()
        old_dls, old_opt = self.dls, self.opt
        self.dls = old_dls.new_empty() if hasattr(old_dls, 'new_empty') else None
        self.opt = None
        target = self.path / fname
        try:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore')
                atomic_save(self, target, pickle_protocol=pickle_protocol)
        except (pickle.PicklingError, AttributeError, TypeError) as e:
            culprit = self._unpicklable_part(pickle_protocol)
            if culprit is not None:
                add_note(e, f'Learner.export: {culprit} cannot be pickled; a lambda or a local function cannot: '
                            f'define it with `def` at module level, or remove it before exporting')
            raise
        finally: self.dls, self.opt = old_dls, old_opt
        return target

    def _unpicklable_part(self, protocol: int) -> str | None:
        "The first part of the exported state that pickle refuses, as ``learn.metrics[0] (AvgMetric)``, or None."
        for key, value in self.__getstate__().items():
            for i, part in (enumerate(value) if isinstance(value, list) else [(None, value)]):
                try: pickle.dumps(part, protocol=protocol)
                except Exception:
                    where = f'learn.{key.lstrip("_")}' + ('' if i is None else f'[{i}]')
                    return f'{where} ({type(part).__name__})'
        return None

    def __getstate__(self) -> dict:
        for name in list(self._lazy): getattr(self, name)
        if self._loss_pending is not None: _fill_loss(self.__dict__, copy=True)
        return {k: v for k, v in self.__dict__.items()
                if k not in ('lock', '_train_cbs', '_valid_cbs', 'exception', '_running', '_lazy', '_loss_pending',
                             '_loss_copy', '_detaching')}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lazy = {}
        self._loss_pending = self._loss_copy = None
        self.lock = threading.RLock()
        self.exception, self._running, self._detaching = None, 0, None
        self._train_cbs = self._valid_cbs = None
        for cb in self.cbs: object.__setattr__(cb, 'learn', self)
        self._callbacks_changed()


def _looks_like_v1(cb: Any) -> bool:
    target = cb if isinstance(cb, type) else getattr(cb, 'func', cb) if isinstance(cb, partial) else type(cb)
    if not isinstance(target, type): return False
    return any(n.startswith('on_') and n.endswith(('_begin', '_end')) for n in dir(target))


def load_learner(fname: str | Path, cpu: bool = True) -> Learner:
    """Load a Learner saved by :meth:`Learner.export`. This unpickles the file, which can run code:
    only load files you trust (weights alone load safely with :meth:`Learner.load`)."""
    learn = torch.load(fname, map_location='cpu' if cpu else None, weights_only=False)
    if cpu and getattr(learn, 'dls', None) is not None and hasattr(learn.dls, 'cpu'): learn.dls.cpu()
    return learn


_LOOP_OUTLINE = [
    'Start Fit', 'before_fit',
    'Start Epoch Loop', 'before_epoch',
    'Start Train', 'before_train',
    'Start Batch Loop', 'before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_cancel_backward',
    'after_backward', 'before_step', 'after_cancel_step', 'after_step', 'after_cancel_batch', 'after_batch',
    'End Batch Loop', 'End Train', 'after_cancel_train', 'after_train',
    'Start Valid', 'before_validate',
    'Start Batch Loop', '**CBs same as train batch**', 'End Batch Loop', 'End Valid',
    'after_cancel_validate', 'after_validate',
    'End Epoch Loop', 'after_cancel_epoch', 'after_epoch',
    'End Fit', 'after_cancel_fit', 'after_fit']
