"""The v1 -> core bridge: fastai-1 callbacks run on the core ``Learner`` loop, which owns the loop.

How it works (the contract later v1 code builds on):

- Each v1 callback becomes one core callback, a :class:`V1Adapter`, with ``order = cb._order``. It
  listens only to the core events that match the v1 methods the callback overrides
  (on_train_begin -> before_fit, on_epoch_begin -> before_epoch, on_batch_begin -> before_batch,
  on_loss_begin -> after_pred, on_backward_begin -> after_loss (training only), on_backward_end ->
  after_backward, on_step_end -> after_step, on_batch_end -> after_batch, on_epoch_end -> after_epoch,
  on_train_end -> after_fit), each through a :class:`V1Listeners` entry; adjacent adapters' entries of a
  per-batch event are merged into one when the dispatch table is built (one core call for all of them).
- Two drivers frame them in every event: :class:`V1Driver` (order -inf) writes the state and calls
  the metrics (metrics run first, as in v1) and :class:`V1DriverEnd` (order +inf) keeps the counters
  and turns the flags into the core's control flow, at the points where v1 checks them:
  ``skip_bwd`` -> CancelBackwardException (before_backward), ``skip_step`` -> CancelStepException
  (before_step), ``skip_zero`` -> ``learn.skip_zero_grad`` (the loop skips that one zero_grad),
  ``stop_epoch`` after on_batch_end -> CancelTrainException / CancelValidException, ``stop_training``
  after on_epoch_end -> CancelFitException, ``skip_validate`` (or no validation data) ->
  CancelValidException in before_validate, before any validation batch.
- One :class:`V1Run` per fit, validate or get_preds: its own
  :class:`~trainlib.v1.callback.CallbackHandler` and the adapters that take part. Runs nest (a v1
  callback calling ``learn.validate()`` mid-fit starts an inner run that only its own callbacks see; the
  fit's run then goes on). The handler keeps one live state, a :class:`LearnerState`: a mapping whose batch keys are views of the Learner
  (``last_input`` <-> ``learn.xb``, ``last_target`` <-> ``learn.yb``, ``last_output`` <-> ``learn.pred``,
  ``last_loss`` <-> ``learn.loss_grad`` from on_backward_begin to on_step_end, ``learn.loss`` (detached)
  at on_batch_end) and whose other keys (counters, flags, ``smooth_loss``, ``last_metrics``...) are its
  own. A change made by a v1 callback is what the loop and v2 callbacks see next, and the reverse.
  ``last_input`` is ``xb[0]`` when the batch has one input and the list of inputs otherwise (what v1
  passes to ``model(*xb)``); setting a list or tuple sets several inputs. The same holds for targets.
- ``smooth_loss`` and ``last_loss`` stay on the device: nothing here reads a tensor back to the host per
  batch. The validation loss is the batch-size-weighted mean of the batch losses, read once per epoch.

Both generations in one fit (see MIGRATION.md, "Old and new callbacks together"):

- One order scale, the core ``order``: a v1 callback runs at ``V1_ORDER_OFFSET + _order`` (55 + _order), so
  a default v1 callback (0 -> 55) runs after the v2 Recorder (50) and before Progress/schedulers/trackers
  (60), and the v1 Recorder (-10 -> 45) before the v2 callbacks that read the epoch's row (order > 45).
- ``learn.<name>``: a v1 callback is registered as ``camel2snake(its class)`` (``recorder``,
  ``one_cycle_scheduler``) unless the Learner has that name itself (``learn.loss``, ``learn.unfreeze``: then it
  runs unregistered); two callbacks of different classes wanting one name is a CallbackError.
  ``run_before``/``run_after`` may name a class of either generation.
- What a v2 callback cancels, v1 callbacks see as their flags: a cancelled backward, step or batch sets
  ``skip_bwd``/``skip_step``/``skip_zero``; a cancelled phase or epoch ``stop_epoch``; a cancelled fit
  ``stop_training``. A batch cancelled by a v2 callback still ends for v1 (on_batch_end, counters), as
  ``after_batch`` runs for v2 callbacks. Counters stay right when a Cancel exception skips the rest of an event.
- Metrics: on a v2 Learner the v2 metrics (computed by the v2 Recorder) are the v1 run's metrics, so
  ``last_metrics`` is ``[valid_loss, *learn.metrics values]``; a v2 metric object in a v1 Learner's
  ``metrics`` is driven as a v1 metric. v2 callbacks on a v1 Learner read the v1 Recorder's row through
  its v2 face (``recorder.values``, ``metric_names``, ``learn.final_record``, ``learn.smooth_loss``).
"""
from __future__ import annotations

import inspect
from collections.abc import MutableMapping
from functools import partial
from types import FunctionType, MethodType, SimpleNamespace
from typing import Any, Callable, Iterator

import torch

from .. import learner as core_learner
from ..callback import Callback as CoreCallback, CallbackError, DispatchTable, is_order, listener_mergers, sort_callbacks
from ..events import (CancelBackwardException, CancelFitException, CancelStepException, CancelTrainException,
                      CancelValidException)
from ..progress import format_row
from ..recorder import Recorder as CoreRecorder
from ..utils import camel2snake, listify, tuplify
from .callback import (Callback, CallbackHandler, call_plan, check_v1_callback, is_v1_callback, note_failure, overridden_events,
                       weighted_loss_mean)
from .core import first_el
from .torch_core import add_metrics

__all__ = ['LearnerState', 'V1Run', 'V1Adapter', 'V1Driver', 'V1DriverEnd', 'V1Bar', 'V2MetricView', 'run_v1',
           'adapt_v1_callback', 'make_callback', 'made_class', 'is_v2_callback', 'V1_ORDER_OFFSET', 'v1_core_order']

V1_ORDER_OFFSET = 55
"A v1 callback with ``_order = k`` runs at core ``order = V1_ORDER_OFFSET + k`` (the one scale of both generations)."

_VIEW_KEYS = frozenset(('last_input', 'last_target', 'last_output', 'last_loss'))
_BATCH_VIEWS = frozenset(('last_input', 'last_target'))
_STOCK_CALL = CallbackHandler._call
_NO_ATTRS: dict = {}
_NEVER_STALE = DispatchTable()


def v1_core_order(cb: Any) -> float:
    "The core ``order`` of v1 callback ``cb``: ``V1_ORDER_OFFSET + cb._order``."
    order = getattr(type(cb), '_order', 0) if '_order' not in getattr(cb, '__dict__', {}) else cb._order
    if not is_order(order):
        raise CallbackError(f'callback `{type(cb).__name__}(v1)`: `_order` must be a number, got {order!r}')
    return V1_ORDER_OFFSET + order


def _unwrap(t: tuple) -> Any:
    "What v1 sees of ``learn.xb``/``learn.yb``: the one element, or the list of them (not ``detuplify``'s tuple)."
    return t[0] if len(t) == 1 else list(t)


class LearnerState(MutableMapping):
    """The v1 state dict of a run on a core Learner: batch keys are views of the Learner, the others its own.

    A view key exists (is ``in`` the state, and passed to callbacks) from the event where v1 first
    writes it: last_input/last_target at on_batch_begin, last_output at on_loss_begin, last_loss at
    on_backward_begin or on_batch_end."""

    def __init__(self, learn: Any) -> None:
        self.learn = learn
        self.own = self._own = {}    # the own keys: read here without a call (but ``skip_zero``, see __getitem__)
        self._views: set = set()
        self._lazy: dict = {}        # view keys computed when read (smooth_loss): key -> function giving the value
        self.grad_phase = False      # True from on_backward_begin to on_step_end: last_loss is learn.loss_grad
        self.loss_is_output = False  # get_preds: last_loss is (output, target) from on_batch_end on, as in v1
        self._output_loss: Any = None
        self._loss0: Any = None      # learn.loss / loss_grad / loss._version when after_loss began
        self._grad0: Any = None
        self._version0: Any = None
        self._snap: dict | None = None   # the last kwargs() dict, valid while nothing it was built from changed
        self._snap_from: tuple = ()

    def start_grad_phase(self) -> None:
        "after_loss begins (training): ``last_loss`` is the loss backward will use, from now to on_step_end."
        learn = self.learn                # read as attributes: this makes fastai's copy of the loss if it waits for a reader
        self.grad_phase = True
        self._snap = None
        loss = self._loss0 = learn.loss
        self._grad0 = learn.loss_grad
        self._version0 = loss._version if isinstance(loss, torch.Tensor) else None
        self._views.add('last_loss')

    def show(self, *keys: str) -> None:
        "Make view keys part of the state (v1 writes them at this point)."
        self._views.update(keys)
        self._snap = None

    def batch_ended(self) -> None:
        "on_batch_end: ``last_loss`` is the batch's loss from now on (its (output, target) in get_preds)."
        self.grad_phase = False
        self._snap = None
        self._views.add('last_loss')
        if self.loss_is_output: self._output_loss = (self.learn.pred, _unwrap(self.learn.yb))

    def set_lazy(self, k: str, read: Callable[[], Any]) -> None:
        "Make ``k`` part of the state, its value ``read()`` when someone reads it (until it is set)."
        self._lazy[k] = read
        self._views.add(k)
        self._snap = None

    def _get_view(self, k: str) -> Any:
        learn = self.learn
        if k == 'last_input': return _unwrap(learn.xb)
        if k == 'last_target': return _unwrap(learn.yb)
        if k == 'last_output': return learn.pred
        if k != 'last_loss': return self._lazy[k]()
        if self.loss_is_output: return self._output_loss
        loss = learn.loss
        if self.grad_phase:
            # What backward will use: loss_grad, or learn.loss when a v2 callback replaced or modified it (with
            # a graph) in after_loss and left loss_grad alone (the loop then back-propagates it).
            grad = learn.loss_grad
            if grad is not self._grad0 or (loss is self._loss0 and (loss is None or loss._version == self._version0)):
                return grad
            return loss if isinstance(loss, torch.Tensor) and loss.requires_grad else grad
        return loss.detach() if isinstance(loss, torch.Tensor) else loss

    def _set_view(self, k: str, v: Any) -> None:
        learn = self.learn
        if k == 'last_input': learn.xb = tuplify(v)
        elif k == 'last_target': learn.yb = tuplify(v)
        elif k == 'last_output': learn.pred = v
        elif self.grad_phase:
            learn.loss_grad = v
            learn.loss = v.detach() if isinstance(v, torch.Tensor) else v
        elif self.loss_is_output: self._output_loss = v
        else: learn.loss = v

    def __getitem__(self, k: str) -> Any:
        if k in self._views: return self._get_view(k)
        if k == 'skip_zero': return self._own[k] or self.learn.skip_zero_grad    # a v2 callback may set the latter
        return self._own[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self._snap = None
        if k in _VIEW_KEYS:
            self._views.add(k)
            self._set_view(k, v)
        else:
            if self._lazy.pop(k, None) is not None: self._views.discard(k)
            self._own[k] = v

    def __delitem__(self, k: str) -> None:
        self._snap = None
        if k in self._views:
            self._views.discard(k)
            self._lazy.pop(k, None)
        else: del self._own[k]

    def reset_batch(self, train: bool) -> None:
        "A batch begins: its flags are False, ``train`` says whether it trains."
        self._snap = None
        own = self._own
        own['train'] = train
        own['stop_epoch'] = own['skip_step'] = own['skip_zero'] = own['skip_bwd'] = False

    def count_batch(self) -> None:
        "A training batch ended: one more iteration and batch of the epoch."
        self._snap = None
        own = self._own
        own['iteration'] += 1
        own['num_batch'] += 1

    def __contains__(self, k: object) -> bool: return k in self._own or k in self._views
    def __iter__(self) -> Iterator[str]: return iter([*self._own, *self._views])
    def __len__(self) -> int: return len(self._own) + len(self._views)

    def clear(self) -> None:
        "Forget every key (a new fit)."
        self._own.clear(); self._views.clear(); self._lazy.clear()
        self.grad_phase = False
        self._snap = None

    def copy(self) -> dict:
        "A plain dict of the current state (what a callback receives as keyword arguments)."
        d = self._own.copy()
        if self.learn.skip_zero_grad and 'skip_zero' in d: d['skip_zero'] = True
        for k in self._views: d[k] = self._get_view(k)
        return d

    def kwargs(self, extra: dict) -> dict:
        """The keyword arguments of a callback call: the state and the event's ``extra`` kwargs. One dict is shared
        by the calls of an event (``**`` gives each callee its own) until the state, the event or one of the
        Learner attributes the views read changes (a v1 return, or a v2 callback or the loop writing ``learn``)."""
        learn, snap = self.learn, self._snap
        loss = learn.loss
        version = loss._version if self.grad_phase and isinstance(loss, torch.Tensor) else None
        if snap is not None:
            f = self._snap_from
            if (f[0] is extra and f[1] is learn.xb and f[2] is learn.yb and f[3] is learn.pred and f[4] is loss
                    and f[5] is learn.loss_grad and f[6] is learn.skip_zero_grad and f[7] is self.grad_phase
                    and f[8] == version): return snap
        snap = self.copy()
        if extra: snap.update(extra)
        # A list xb/yb (set by a callback) may change in place: then rebuild each time.
        self._snap = snap if type(learn.xb) is tuple and type(learn.yb) is tuple else None
        self._snap_from = (extra, learn.xb, learn.yb, learn.pred, loss, learn.loss_grad, learn.skip_zero_grad,
                           self.grad_phase, version)
        return snap

    def pick(self, names: tuple, extra: dict) -> dict:
        "The keys ``names`` of ``kwargs(extra)`` that it has (without building the rest)."
        out = {}
        own, views = self._own, self._views
        for k in names:
            if k in extra: out[k] = extra[k]
            elif k in views: out[k] = self._get_view(k)
            elif k in own: out[k] = True if k == 'skip_zero' and self.learn.skip_zero_grad else own[k]
        return out

    def __repr__(self) -> str: return f'LearnerState({self.copy()!r})'


class V1Bar:
    """What v1 callbacks get as ``pbar``: ``write(line, table=True)`` prints the epoch table,
    ``main_bar.total`` is the number of epochs, ``child.comment`` a place for a status text."""

    def __init__(self, n_epochs: int) -> None:
        self.main_bar = SimpleNamespace(total=n_epochs)
        self.child = SimpleNamespace(comment='')
        self.clean_on_interrupt = False
        self._widths = None

    def write(self, line: Any, table: bool = False) -> None:
        "Print ``line`` (a list of cells when ``table``: the first call is the header)."
        if table: line, self._widths = format_row([str(c) for c in line], self._widths)
        print(line, flush=True)


class V1Run:
    """One v1 run (a fit, a validate or a get_preds) on a Learner: its handler, its settings and the
    adapters taking part. Runs nest: a v1 callback may call ``learn.validate()`` inside a fit."""

    def __init__(self, learn: Any, callbacks: list, adapters: Any, metrics: Any = None, mode: str = 'fit',
                 n_epochs: int = 1, pbar: Any = None, n_batch: int | None = None, auto: bool = False) -> None:
        v1_metrics = [V2MetricView(m, learn, drive=True) if _is_v2_metric(m) else m for m in listify(metrics)]
        self.handler = CallbackHandler(callbacks, v1_metrics, state=LearnerState(learn))
        self.handler.state_dict.loss_is_output = mode == 'preds'
        self.learn, self.ld = learn, learn.__dict__     # ld: the Learner's attributes, read without its __getattr__
        # adapters may call v1 methods themselves, as the stock handler._call would (not when it is replaced, e.g. traced)
        self.direct = type(self.handler)._call is _STOCK_CALL
        self.active = set(adapters)
        self.mode, self.n_epochs, self.pbar, self.metrics, self.n_batch, self.auto = \
            mode, n_epochs, pbar, metrics, n_batch, auto
        self.n_seen = 0
        self.val_losses: list = []
        self.val_nums: list = []
        self.modules: list = []
        self.modes: list = []
        self.mode_changes: list = []
        self.batch_open = self.epoch_open = False     # on_batch_end / on_epoch_end began and V1DriverEnd has not closed it
        self.reached = ''                             # how far the current training batch got: '', 'backward', 'step'
        self.quiet_cancel = False                     # the bridge itself cancels validation, not a v1 stop_epoch
        self.epochs = 0                               # before_epoch events seen, and whether one had a training phase
        self.trained = False

    @property
    def evaluating(self) -> bool:
        """A v2 Learner's ``validate``/``get_preds`` (an auto run with epochs but no training phase): v1 callbacks get
        what fastai 1's ``Learner.validate`` gives them, so no on_train_end, and stop_training stops nothing."""
        return self.auto and self.epochs > 0 and not self.trained

    @property
    def ends_training(self) -> bool:
        "Whether v1 callbacks get on_train_end: a fit that is not an evaluation."
        return self.mode == 'fit' and not self.evaluating

    def close_batch(self) -> bool:
        "After on_batch_end: the v1 counters (once); returns stop_epoch."
        if not self.batch_open: return False
        self.batch_open = False
        return self.handler.end_batch_end()

    def close_epoch(self) -> bool:
        "After on_epoch_end: the epoch counter (once); returns stop_training."
        if not self.epoch_open: return False
        self.epoch_open = False
        return self.handler.end_epoch_end()

    def val_loss(self) -> Any:
        "The batch-size-weighted validation loss of the epoch (None without validation batches)."
        return weighted_loss_mean(self.val_losses, self.val_nums) if self.val_losses else None


class V1Driver(CoreCallback):
    """Runs before every other callback in each event of a v1 run: writes the v1 state and calls the metrics.

    ``prepare`` starts a run (pushed over the current one, if any) and ``release`` ends it; a fit of a
    core Learner that holds v1 callbacks without a prepared run gets a plain one (no metrics)."""
    order = float('-inf')
    name = '_v1_driver'
    copies_loss = False      # fastai 1 back-propagates and records one loss tensor (no copy)

    def __init__(self) -> None:
        self.cell: list = [None]        # [the current run]: V1Listeners read it without the attribute machinery
        self.end = V1DriverEnd(self)
        self._outer: list = []
        self.last_handler: CallbackHandler | None = None

    # ------------------------------------------------------------------ runs
    @property
    def current(self) -> V1Run | None:
        "The current run (None between runs)."
        return self.cell[0]

    @current.setter
    def current(self, run: V1Run | None) -> None: self.cell[0] = run

    @property
    def handler(self) -> CallbackHandler:
        "The handler of the current run."
        return self.cell[0].handler

    def prepare(self, callbacks: list, adapters: Any, **kwargs: Any) -> V1Run:
        "Start a run of ``callbacks`` (through ``adapters``) with the settings of :class:`V1Run`."
        self._outer.append(self.cell[0])
        self.cell[0] = V1Run(self.learn, callbacks, adapters, **kwargs)
        self.last_handler = self.cell[0].handler
        return self.cell[0]

    def release(self, run: V1Run) -> None:
        "End ``run``: the run it interrupted (if any) goes on."
        if self.cell[0] is run: self.cell[0] = self._outer.pop()

    # ------------------------------------------------------------------ events
    def before_fit(self) -> None:
        "Start a run if none is prepared (a core fit with v1 callbacks), then on_train_begin."
        if self.cell[0] is None:
            learn = self.learn
            adapters = [c for c in sort_callbacks(learn.cbs) if isinstance(c, V1Adapter)]
            n = learn.n_epoch
            self.prepare([a.cb for a in adapters], adapters, n_epochs=n, pbar=V1Bar(n), auto=True,
                         metrics=_v2_metric_views(learn))
        run = self.cell[0]
        run.handler.begin_train_begin(run.n_epochs, run.pbar, run.metrics)

    def before_epoch(self) -> None:
        "Reset the epoch's validation losses, put the model in train mode (fit), then on_epoch_begin."
        run = self.cell[0]
        run.val_losses, run.val_nums = [], []
        run.epochs += 1
        if run.mode == 'fit':
            model = self.learn.model
            model.train()
            run.modules = list(model.modules())
            run.modes = [m.training for m in run.modules]
        run.handler.begin_epoch_begin()

    def before_train(self) -> None:
        "Note that this run trains (a fit, even if this phase gets cancelled)."
        self.cell[0].trained = True

    def before_batch(self) -> None:
        "Close the previous batch, show the batch to v1, then on_batch_begin."
        run = self.cell[0]
        if run.batch_open: run.close_batch()
        run.reached = ''
        state = run.handler.state_dict
        if not _BATCH_VIEWS <= state._views: state.show('last_input', 'last_target')
        state.grad_phase = False
        run.handler.begin_batch_begin(run.ld['training'])

    def after_pred(self) -> None:
        "Show the output to v1, then on_loss_begin."
        handler = self.cell[0].handler
        if 'last_output' not in handler.state_dict._views: handler.state_dict.show('last_output')
        handler._start('loss_begin', False)     # begin_loss_begin, one call less

    def after_loss(self) -> None:
        "Training only: show the loss to be backpropagated, then on_backward_begin."
        run = self.cell[0]
        ld = run.ld
        if not ld['training']: return
        handler = run.handler
        handler.state_dict.start_grad_phase()
        handler.begin_backward_begin(ld['loss_grad'])

    def before_backward(self) -> None:
        "Skip the backward pass when a v1 callback set ``skip_bwd``."
        if self.cell[0].handler.state_dict.own['skip_bwd']: raise CancelBackwardException

    def after_backward(self) -> None:
        "on_backward_end."
        run = self.cell[0]
        run.reached = 'backward'
        run.handler._start('backward_end', False)    # begin_backward_end

    def before_step(self) -> None:
        "Skip the step when a v1 callback set ``skip_step``."
        if self.cell[0].handler.state_dict.own['skip_step']: raise CancelStepException

    def after_step(self) -> None:
        "on_step_end."
        run = self.cell[0]
        run.reached = 'step'
        run.handler._start('step_end', False)        # begin_step_end

    # ------------------------------------------------------------------ what a v2 Cancel means for v1 flags
    def _flag(self, *keys: str) -> None:
        state = self.cell[0].handler.state_dict
        for k in keys: state[k] = True

    def after_cancel_backward(self) -> None:
        "A cancelled backward is ``skip_bwd`` for v1."
        self._flag('skip_bwd')

    def after_cancel_step(self) -> None:
        "A cancelled step is ``skip_step`` for v1."
        self._flag('skip_step')

    def after_cancel_batch(self) -> None:
        "A cancelled training batch skips, for v1, what it had not reached yet, and zero_grad."
        if not self.learn.training: return
        reached = self.cell[0].reached           # '', 'backward' or 'step'
        skipped = ['skip_bwd', 'skip_step'] if not reached else ['skip_step'] if reached == 'backward' else []
        self._flag(*skipped, 'skip_zero')

    def after_cancel_train(self) -> None:
        "A cancelled training phase is ``stop_epoch`` for v1."
        self._flag('stop_epoch')

    def after_cancel_validate(self) -> None:
        "A cancelled validation is ``stop_epoch`` for v1 (unless v1 itself skipped it)."
        run = self.cell[0]
        if run.quiet_cancel: run.quiet_cancel = False
        else: self._flag('stop_epoch')

    def after_cancel_epoch(self) -> None:
        "A cancelled epoch is ``stop_epoch`` for v1."
        self._flag('stop_epoch')

    def after_cancel_fit(self) -> None:
        "A cancelled fit is ``stop_training`` for v1."
        self._flag('stop_training')

    def after_train(self) -> None:
        "Close the last training batch."
        self.cell[0].close_batch()

    def after_validate(self) -> None:
        "Close the last validation batch."
        self.cell[0].close_batch()

    def before_validate(self) -> None:
        "Start the epoch's validation losses; skip validation as v1 does (``skip_validate``, no data)."
        run = self.cell[0]
        run.val_losses, run.val_nums = [], []
        if run.mode == 'preds': return
        dl = self.learn.dl
        empty = dl is None or _is_empty(dl)
        if empty or (run.mode == 'fit' and (run.handler.state_dict['skip_validate']
                                            or getattr(self.learn.dls, 'empty_val', False))):
            run.quiet_cancel = True               # v1 skips validation without setting stop_epoch
            raise CancelValidException

    def after_batch(self) -> None:
        "Keep the validation loss and batch size, then on_batch_end."
        run = self.cell[0]
        run.handler.state_dict.batch_ended()
        if not run.ld['training'] and run.mode != 'preds':
            learn = run.learn
            run.val_losses.append(learn.loss.detach())
            run.val_nums.append(first_el(learn.yb).shape[0])
        run.batch_open = True
        run.handler.begin_batch_end()

    def after_epoch(self) -> None:
        "Close the last batch, then on_epoch_end with the epoch's validation loss."
        run = self.cell[0]
        run.close_batch()
        run.epoch_open = True
        run.handler.begin_epoch_end(run.val_loss())

    def after_fit(self) -> None:
        "Count what a Cancel skipped, then on_train_end (with the exception that stopped the fit, if any)."
        run, exc = self.cell[0], self.learn.exception
        if exc is None:                   # a Cancel exception skipped V1DriverEnd: count what v1 would have counted
            run.close_batch()
            run.close_epoch()
        if not run.ends_training: return
        run.handler.begin_train_end(exc if isinstance(exc, Exception) else False)


class V1DriverEnd(CoreCallback):
    "Runs after every other callback in each event of a v1 run: counters, and v1 flags -> core control flow."
    order = float('inf')
    name = '_v1_driver_end'
    copies_loss = False

    def __init__(self, driver: V1Driver) -> None:
        self.driver, self.cell = driver, driver.cell

    def before_fit(self) -> None:
        "Take the epoch v1 callbacks asked to start at (fewer epochs left to fit)."
        run = self.cell[0]
        start = run.handler.end_train_begin()
        if start and run.mode == 'fit': self.learn.n_epoch = max(0, run.n_epochs - start)

    def before_epoch(self) -> None:
        "Note the modules whose mode v1 callbacks changed in on_epoch_begin."
        run = self.cell[0]
        if run.mode == 'fit':
            run.mode_changes = [(m, m.training) for m, was in zip(run.modules, run.modes) if m.training != was]

    def before_train(self) -> None:
        "Restore those modes over the core's ``model.train()``."
        # v1 callbacks ran on_epoch_begin after model.train(); keep what they changed (e.g. BN layers
        # put in eval mode) over the core's model.train() in before_train.
        for m, training in self.cell[0].mode_changes: m.training = training

    def after_step(self) -> None:
        "``skip_zero`` -> the loop skips this batch's zero_grad."
        run = self.cell[0]
        state, learn = run.handler.state_dict, run.learn
        if state.own['skip_zero'] or learn.skip_zero_grad:     # state['skip_zero'] without the call
            state['skip_zero'] = True                 # stays True for the rest of the batch (the loop resets the Learner's)
            learn.skip_zero_grad = True

    def after_batch(self) -> None:
        "Count the batch; ``stop_epoch`` (or enough batches for get_preds) ends the phase."
        run = self.cell[0]
        stop = run.close_batch()
        if run.mode == 'preds':
            run.n_seen += 1
            if run.n_batch and run.n_seen >= run.n_batch: stop = run.quiet_cancel = True
        if stop: raise CancelTrainException if run.ld['training'] else CancelValidException

    def after_epoch(self) -> None:
        "Count the epoch; ``stop_training`` ends the fit."
        run = self.cell[0]
        if run.close_epoch() and run.ends_training: raise CancelFitException

    def after_fit(self) -> None:
        "End the run this fit started."
        run = self.cell[0]
        if run is not None and run.auto: self.driver.release(run)


def _is_empty(dl: Any) -> bool:
    try: return len(dl) == 0
    except TypeError: return False


class V1Adapter(CoreCallback):
    """One v1 callback on the core loop: its overridden ``on_*`` methods at the matching core events, at core
    order ``V1_ORDER_OFFSET + _order``. It is ``learn.<camel2snake(class)>`` (the v1 callback itself is
    registered) and honours ``run_before``/``run_after`` set on the v1 callback. Attaching it attaches the drivers."""

    copies_loss = False      # a change made to last_loss in place is the recorded loss too, as in fastai 1
    yields_name = True       # not registered where the Learner has the name (learn.loss, learn.unfreeze), as fastai 1 runs it

    def __init__(self, cb: Any) -> None:
        check_v1_callback(cb)
        d = self.__dict__
        d['cb'] = d['__wrapped__'] = cb
        d['order'], d['_learn'], d['_driver'], d['_cell'] = v1_core_order(cb), None, None, [None]
        d['transient'] = False       # made by run_v1 for one run (not attached with learn.add_cb)
        for attr in ('run_before', 'run_after'):
            d[attr] = cb.__dict__.get(attr, getattr(type(cb), attr, None)) if hasattr(cb, '__dict__') else None
        for ev in overridden_events(cb): d[_CORE_EVENT[ev]] = V1Listeners((self,), ev)

    @property
    def name(self) -> str:
        "``learn.<name>``: the LearnerCallback's ``cb_name``, else ``camel2snake`` of the v1 class."
        cb = self.cb
        return cb.cb_name if hasattr(type(cb), 'cb_name') else camel2snake(type(cb).__name__)

    @property
    def registered_here(self) -> bool:
        """False for a LearnerCallback: ``learn.<cb_name>`` is what its constructor set (the last one built, kept
        after the fit), as in fastai 1; another v1 callback is ``learn.<name>`` while it is attached."""
        return not hasattr(type(self.cb), 'cb_name')

    @property
    def learn(self) -> Any:
        "The Learner this adapter is attached to."
        return self.__dict__['_learn']

    @learn.setter
    def learn(self, learn: Any) -> None:
        old = self.__dict__['_learn']
        self.__dict__['_learn'] = learn
        if learn is not None:
            driver = self.__dict__['_driver'] = drivers_for(learn)
            self.__dict__['_cell'] = driver.cell
        elif old is not None: _drop_drivers_if_unused(old)

    def __repr__(self) -> str: return f'{type(self.cb).__name__}(v1)'


class V1Listeners:
    """The v1 methods behind one core event of adjacent adapters (``owners``), called in order as one dispatch entry.

    Each adapter listens to a core event through one of these (``owners == (adapter,)``); when a dispatch
    table is built, adjacent ones of a per-batch event are merged into one (see
    :data:`~trainlib.callback.listener_mergers`), so the core loop makes one call for all of them. A call is
    the handler's ``_call``: the callback's method given what its call plan says, its return applied, an
    error naming the callback. The method is looked up when a run starts and, on every call, on the
    instance: one set on the instance (or removed from it) mid-fit is the one called at once, one
    replaced on the class from the next run on (fastai 1 looks it up on every call)."""
    __slots__ = ('owners', 'event', 'core_event', 'table', '_name', '_gate', '_attrs', '_run', '_calls', '_plain')

    def __init__(self, owners: tuple, v1_event: str, table: Any = None) -> None:
        self.owners, self.event, self.core_event = owners, v1_event, _CORE_EVENT[v1_event]
        self.table = _NEVER_STALE if table is None else table     # a merged entry's table (the core checks a single one)
        self._name = f'on_{v1_event}'
        self._gate = {'backward_begin': 'training', 'train_end': 'ending'}.get(v1_event)
        self._attrs = owners[0].__dict__      # _cell, _learn: read without the callbacks' attribute machinery
        self._run: V1Run | None = None
        self._calls: tuple = ()               # for self._run: (cb, its method's function, call plan, cb.__dict__, adapter)
        self._plain: tuple = ()               # (cb, function, cb.__dict__) when every method of _calls takes nothing

    def _for_run(self, run: V1Run) -> None:
        "Note which owners take part in ``run``, and their methods as the classes have them now."
        calls, name = [], self._name
        for adapter in self.owners:
            if adapter not in run.active: continue
            cb = adapter.__dict__['cb']
            own = getattr(cb, '__dict__', _NO_ATTRS)
            method = getattr(cb, name, None)
            func = getattr(method, '__func__', None)
            # Called as func(cb) while it is what getattr finds: a plain function of the class, not shadowed.
            plain = run.direct and type(method) is MethodType and method.__self__ is cb and name not in own and \
                type(func) is FunctionType and getattr(type(cb), name, None) is func and \
                type(cb).__getattribute__ is object.__getattribute__
            calls.append((cb, func, call_plan(method), own, adapter) if plain else (cb, None, None, own, adapter))
        self._run, self._calls = run, tuple(calls)
        plain = all(func is not None and names == () for _, func, names, _, _ in calls)
        self._plain = tuple((cb, func, own) for cb, func, _, own, _ in calls) if plain else ()

    def __call__(self) -> None:
        attrs = self._attrs
        run = attrs['_cell'][0]
        if run is None: return
        if run is not self._run: self._for_run(run)
        gate = self._gate
        if gate is not None and not (attrs['_learn'].training if gate == 'training' else run.ends_training): return
        table, handler, ev, name, cb, start = self.table, run.handler, self.event, self._name, None, 0
        try:
            if self._plain:       # every method takes nothing: the short loop, while no callback changes
                for cb, func, own in self._plain:
                    if table.stale or name in own: break
                    ret = func(cb)
                    if ret is not None: handler._apply(cb, ev, ret)
                    start += 1
                else: return
            for cb, func, names, own, adapter in self._calls[start:]:
                # callbacks changed during this event: skip those gone
                if table.stale and not attrs['_learn']._listens(adapter, self.core_event): continue
                if func is None or name in own:
                    handler._call(cb, ev)             # looked up now (set on the instance, not plain, or traced)
                    continue
                if names: ret = func(cb, **handler._pick(names))
                elif names is None: ret = func(cb, **handler._all_kwargs())
                else: ret = func(cb)
                if ret is not None: handler._apply(cb, ev, ret)
        except BaseException as e:
            if cb is not None: note_failure(e, cb, ev)
            raise

    def __repr__(self) -> str: return f'V1Listeners({", ".join(map(repr, self.owners))}: on_{self.event})'


_MERGED_EVENTS = frozenset(('before_batch', 'after_pred', 'after_loss', 'after_backward', 'after_step', 'after_batch'))


def _merge_adjacent(event: str, listeners: list, table: Any) -> list:
    "The ``listener_mergers`` entry: adjacent v1 listeners of a per-batch event become one."
    if event not in _MERGED_EVENTS: return listeners
    out: list = []
    for m in listeners:
        if type(m) is V1Listeners and out and type(out[-1]) is V1Listeners:
            out[-1] = V1Listeners(out[-1].owners + m.owners, m.event, table)
        else: out.append(m)
    return out


_CORE_EVENT = {'train_begin': 'before_fit', 'epoch_begin': 'before_epoch', 'batch_begin': 'before_batch',
               'loss_begin': 'after_pred', 'backward_begin': 'after_loss', 'backward_end': 'after_backward',
               'step_end': 'after_step', 'batch_end': 'after_batch', 'epoch_end': 'after_epoch',
               'train_end': 'after_fit'}


def drivers_for(learn: Any) -> V1Driver:
    "The v1 drivers of ``learn`` (added if missing)."
    d = learn.__dict__.get(V1Driver.name)
    if isinstance(d, V1Driver) and d in learn.cbs: return d
    d = V1Driver()
    learn.add_cbs([d, d.end])
    return d


def _drop_drivers_if_unused(learn: Any) -> None:
    if any(isinstance(c, V1Adapter) for c in learn.cbs): return
    d = learn.__dict__.get(V1Driver.name)
    if isinstance(d, V1Driver): learn.remove_cbs([c for c in (d, d.end) if c in learn.cbs])


def is_v2_callback(o: Any) -> bool:
    "True for a core (v2) Callback instance or subclass."
    return isinstance(o, CoreCallback) or (isinstance(o, type) and issubclass(o, CoreCallback))


def made_class(f: Any) -> Any:
    "The class a callback maker builds: ``f`` itself, or the function inside (nested) partials."
    while isinstance(f, partial): f = f.func
    return f


def _call_maker(f: Any, learn: Any) -> Any:
    """Build a v1 callback from class or partial ``f``: a LearnerCallback gets the Learner; another class gets
    nothing if it can be called so (``StopAfterNBatches(n_batches=2)``), else the Learner."""
    if hasattr(made_class(f), 'cb_name'): return f(learn)
    try: sig = inspect.signature(f)
    except (TypeError, ValueError): return f(learn)
    for args in ((), (learn,)):
        try: sig.bind(*args)
        except TypeError: continue
        return f(*args)
    raise CallbackError(f'cbs: cannot make a fastai-1 callback from {f!r}: its signature {sig} takes neither no '
                        f'argument nor the Learner')


def make_callback(f: Any, learn: Any) -> Any:
    """A callback of either generation from a ``callback_fns`` entry: a v2 Callback class (or partial of one) is
    called with no argument, anything else with the Learner (fastai 1's rule)."""
    if isinstance(f, CoreCallback) or not callable(f):
        raise CallbackError(f'callback_fns: expected a class or function that makes a callback (called with the '
                            f'Learner), got {f!r}; pass callback instances in `callbacks=`')
    cls = made_class(f)
    cb = f() if isinstance(cls, type) and issubclass(cls, CoreCallback) else f(learn)
    if not (is_v2_callback(cb) or is_v1_callback(cb)):
        raise CallbackError(f'callback_fns: {f!r} returned {type(cb).__name__}, not a callback of either generation')
    return cb


def _makes_v1(o: Any) -> bool:
    "A v1 callback class, or a partial of one."
    cls = made_class(o)
    return (isinstance(o, partial) or isinstance(o, type)) and isinstance(cls, type) and \
        not issubclass(cls, CoreCallback) and (issubclass(cls, Callback) or is_v1_callback(cls))


def run_v1(learn: Any, callbacks: list, body: Callable[[], Any], metrics: Any = None, mode: str = 'fit',
           n_epochs: int = 1, pbar: Any = None, n_batch: int | None = None) -> tuple[CallbackHandler, Any]:
    """Run ``body()`` (a core loop entry point) with ``callbacks`` of either generation and the v1 ``metrics``
    on ``learn`` for its duration; returns ``(handler, body's result)``. v1 callbacks already attached to ``learn``
    (``learn.add_cb``) take part too. Inside another v1 run (a callback calling ``learn.validate()``), only these
    callbacks take part, and the outer run then goes on."""
    before = list(learn.cbs)
    try:
        driver = drivers_for(learn)
        added = [c if is_v2_callback(c) else V1Adapter(c) for c in callbacks]
        for c in added:
            if isinstance(c, V1Adapter): c.__dict__['transient'] = True
        learn.add_cbs(added)
        attached = [c for c in before if isinstance(c, V1Adapter) and not c.transient]
        adapters = attached + [c for c in added if isinstance(c, V1Adapter)]
        run = driver.prepare([a.cb for a in adapters], adapters, metrics=metrics, mode=mode, n_epochs=n_epochs,
                             pbar=pbar, n_batch=n_batch)
        try: res = body()
        finally: driver.release(run)
    finally: learn.remove_cbs([c for c in learn.cbs if c not in before])
    return run.handler, res


def adapt_v1_callback(cb: Any, learn: Any) -> CoreCallback | None:
    """The ``callback_adapters`` hook: a V1Adapter for a fastai-1 callback (an instance, or a class or partial,
    built with the Learner as :func:`_call_maker` says), else None."""
    if is_v2_callback(cb): return None
    if _makes_v1(cb): cb = _call_maker(cb, learn)
    elif isinstance(cb, type) or not is_v1_callback(cb): return None
    return V1Adapter(cb)


# ---------------------------------------------------------------------- metrics across generations
def _is_v2_metric(m: Any) -> bool:
    return not is_v1_callback(m) and all(hasattr(type(m), a) for a in ('reset', 'accumulate', 'value', 'name'))


class V2MetricView(Callback):
    """A v2 metric in a v1 run: its value joins ``last_metrics`` at on_epoch_end. With ``drive`` (a v1 Learner's
    ``metrics``) it is reset and accumulated at the v1 metric events; without, the v2 Recorder does it."""

    def __init__(self, metric: Any, learn: Any, drive: bool) -> None:
        self.metric, self.learn, self.drive, self.name = metric, learn, drive, metric.name

    def on_epoch_begin(self, **kwargs: Any) -> None:
        if self.drive: self.metric.reset()

    def on_batch_end(self, **kwargs: Any) -> None:
        if self.drive: self.metric.accumulate(self.learn)

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        return add_metrics(last_metrics, self.metric.value)


def _v2_metric_views(learn: Any) -> list:
    "A v2 Learner's metrics as v1 metrics, when its v2 Recorder computes them in validation."
    rec = learn.__dict__.get('recorder')
    if not isinstance(rec, CoreRecorder) or rec not in learn.cbs or not rec.valid_metrics: return []
    return [V2MetricView(m, learn, drive=False) for m in learn.metrics]


if adapt_v1_callback not in core_learner.callback_adapters: core_learner.callback_adapters.append(adapt_v1_callback)
if _merge_adjacent not in listener_mergers: listener_mergers.append(_merge_adjacent)
