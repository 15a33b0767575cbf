"""Callbacks that watch the training and act on it: stop on a non-finite loss, and the trackers,
which read one value of the Recorder's row once per epoch and stop, save or lower the lr.

The trackers never look at a tensor per batch: the Recorder has already turned the epoch's row
into numbers when they read it (in ``after_epoch``, after the Recorder's own).
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from ..callback import Callback
from ..events import CancelFitException

__all__ = ['TerminateOnNaNCallback', 'TrackerCallback', 'EarlyStoppingCallback', 'SaveModelCallback',
           'ReduceLROnPlateau']


def evaluation_only(learn: Any) -> bool:
    "True while the Learner runs an lr finder or gathers predictions: no fit to track or log."
    return any(cb.name in ('lr_finder', 'gather_preds') for cb in learn.cbs)


def default_comp(monitor: str) -> Callable:
    "How a tracker compares values of ``monitor``: ``np.less`` when its name contains 'loss' or 'error', else ``np.greater``."
    return np.less if 'loss' in monitor or 'error' in monitor else np.greater


def worst_value(comp: Callable) -> float:
    "The value any first epoch beats: +inf when lower is better (``comp`` is ``np.less``), else -inf."
    return float('inf') if comp is np.less else -float('inf')


def signed_delta(comp: Callable, min_delta: float) -> float:
    "``min_delta`` with the sign that makes ``comp(value - signed_delta, best)`` require a margin of ``min_delta``."
    return -min_delta if comp is np.less else min_delta


def _check_count(owner: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f'{owner}: {name} must be an int >= {minimum}, got {value!r}')


class TerminateOnNaNCallback(Callback):
    """Stop the fit (``CancelFitException``) when the loss of a batch is nan or inf.

    ``check_every=1`` (the default, fastai's behaviour): every batch's loss is checked, so the fit
    stops on the very batch whose loss is not finite, before the Recorder takes it in. Knowing it
    on the host costs one device read per batch (a host sync); only Learners that add this callback
    pay it (it is not a default one). ``check_every=N``: the losses are summed on the device (no
    sync; nan and inf survive a sum) and the sum is read every N batches and at the end of each
    phase, so the fit stops at most N-1 batches after the bad one, and the Recorder may have taken
    those batches in (its smoothed loss is then nan). On the CPU both ways cost a few microseconds
    per batch; on an accelerator the window saves a pipeline stall per batch.

    Better than fastai: it only acts in a fit, so ``validate``/``get_preds`` of a broken model
    return their (nan) numbers instead of escaping with a ``CancelFitException``."""
    order = -9

    def __init__(self, check_every: int = 1) -> None:
        _check_count('TerminateOnNaNCallback', 'check_every', check_every, 1)
        self.check_every = check_every
        self._total, self._seen, self._fitting = None, 0, False

    def before_fit(self) -> None:
        "Reset the running sum; watch only once training starts."
        self._total, self._seen, self._fitting = None, 0, False

    def before_train(self) -> None:
        "Start watching the losses."
        self._fitting = True

    def after_fit(self) -> None:
        "Stop watching."
        self._fitting = False

    def after_batch(self) -> None:
        "Check the loss (``check_every=1``) or add it to the device-side sum."
        loss = self.learn.loss
        if not self._fitting or not isinstance(loss, torch.Tensor): return
        if self.check_every == 1:
            if not torch.isfinite(loss).all(): raise CancelFitException
            return
        total = loss.detach().float().sum()   # nan and inf survive a sum (float32: no overflow of halves)
        self._total = total if self._total is None else self._total + total
        self._seen += 1
        if self._seen % self.check_every == 0: self._check()

    def _check(self) -> None:
        "Stop the fit if the losses summed since the last check are not finite (one host read)."
        total, self._total = self._total, None
        if total is not None and not torch.isfinite(total): raise CancelFitException

    after_train = after_validate = _check


class TrackerCallback(Callback):
    """Keep the best value of ``monitor`` (a column of the Recorder) seen at the end of each epoch.

    ``comp`` is ``np.less`` when the name contains 'loss' or 'error', else ``np.greater``; a new value
    must beat the best by more than ``min_delta``. After each epoch ``new_best`` says whether it did.
    Better than fastai: an unknown ``monitor`` is a ValueError at ``before_fit`` listing the columns
    there are (fastai: a bare assert); an epoch whose row is incomplete (training or validation was
    cancelled, so fastai would read a shifted column) or that did not train (``validate()``, skipped
    epochs) is not compared at all."""
    order = 60
    remove_on_fetch = True

    def __init__(self, monitor: str = 'valid_loss', comp: Callable | None = None, min_delta: float = 0.,
                 reset_on_fit: bool = True) -> None:
        if not isinstance(monitor, str):
            raise TypeError(f'{type(self).__name__}: monitor must be the name of a Recorder column, got {monitor!r}')
        if comp is None: comp = default_comp(monitor)
        self.monitor, self.comp, self.reset_on_fit = monitor, comp, reset_on_fit
        self.min_delta = signed_delta(comp, min_delta)
        self.best: float | None = None
        self.new_best = False
        self._col, self._width, self._epoch_trained = 0, 0, False

    def before_fit(self) -> None:
        "Find the monitored column and reset the best value."
        if evaluation_only(self.learn):
            self.run = False
            return
        if self.reset_on_fit or self.best is None: self.best = worst_value(self.comp)
        self._col, self._width = self._column()
        self.new_best = False

    def _column(self) -> tuple[int, int]:
        who = type(self).__name__
        recorder = getattr(self.learn, 'recorder', None)
        if recorder is None:
            raise ValueError(f'{who}(monitor={self.monitor!r}) at before_fit: it reads the Recorder, '
                             f'and this Learner has none (learn.recorder)')
        names = list(recorder.metric_names[1:])
        if getattr(recorder, 'add_time', False) and names[-1:] == ['time']: names.pop()
        if self.monitor not in names:
            raise ValueError(f'{who}(monitor={self.monitor!r}) at before_fit: the Recorder has no column '
                             f'{self.monitor!r}; it records: {", ".join(names)}')
        return names.index(self.monitor), len(names)

    def before_epoch(self) -> None:
        "No training seen yet in this epoch."
        self._epoch_trained = False

    def before_train(self) -> None:
        "This epoch trains (so its result counts)."
        self._epoch_trained = True

    def after_epoch(self) -> None:
        "Compare this epoch's value with the best."
        self._update()

    def _update(self) -> bool:
        "Read this epoch's value and set ``new_best``; False when the epoch has no value to compare."
        self.new_best = False
        row = self.learn.recorder.values[-1] if self.learn.recorder.values else []
        if not self._epoch_trained or len(row) != self._width or row[self._col] is None: return False
        val = row[self._col]
        if self.comp(val - self.min_delta, self.best):
            self.best, self.new_best = val, True
        return True


class _PatientTracker(TrackerCallback):
    "A tracker that acts after ``patience`` epochs without improvement."

    def __init__(self, monitor: str = 'valid_loss', comp: Callable | None = None, min_delta: float = 0.,
                 patience: int = 1, reset_on_fit: bool = True) -> None:
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, reset_on_fit=reset_on_fit)
        _check_count(type(self).__name__, 'patience', patience, 0)
        self.patience, self.wait = patience, 0

    def before_fit(self) -> None:
        self.wait = 0
        super().before_fit()

    def _out_of_patience(self) -> bool:
        "Update the wait counter with this epoch; True when it reaches ``patience``."
        if not self._update(): return False
        self.wait = 0 if self.new_best else self.wait + 1
        return not self.new_best and self.wait >= self.patience


class EarlyStoppingCallback(_PatientTracker):
    "Stop the fit when ``monitor`` has not improved for ``patience`` epochs."
    order = TrackerCallback.order + 3

    def after_epoch(self) -> None:
        "Stop if out of patience."
        if self._out_of_patience():
            print(f'No improvement since epoch {self.learn.epoch - self.wait}: early stopping')
            raise CancelFitException


class ReduceLROnPlateau(_PatientTracker):
    "Divide each group's lr by ``factor`` (down to ``min_lr``) after ``patience`` epochs without improvement."
    order = TrackerCallback.order + 2

    def __init__(self, monitor: str = 'valid_loss', comp: Callable | None = None, min_delta: float = 0.,
                 patience: int = 1, factor: float = 10., min_lr: float = 0, reset_on_fit: bool = True) -> None:
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, patience=patience, reset_on_fit=reset_on_fit)
        if not factor > 0: raise ValueError(f'ReduceLROnPlateau: factor must be > 0, got {factor!r}')
        self.factor, self.min_lr = factor, min_lr

    def after_epoch(self) -> None:
        "Lower the lr if out of patience."
        if not self._out_of_patience(): return
        self.wait = 0
        opt = self.learn.opt
        old = [h['lr'] for h in opt.hypers]
        new = [max(lr / self.factor, self.min_lr) for lr in old]
        opt.set_hyper('lr', new)
        if new[-1] < old[-1]: print(f'Epoch {self.learn.epoch}: reducing lr to {new[-1]}')


class SaveModelCallback(TrackerCallback):
    """Save the model when ``monitor`` improves (as ``fname``) and load that best model after the fit.

    ``every_epoch=True`` saves after every epoch instead, ``every_epoch=N`` after every N-th (epochs
    0, N, 2N...), as ``{fname}_{epoch}``, and loads nothing. ``at_end=True`` saves the final model as
    ``fname`` after the fit (over the last improvement) instead of loading the best. Files go through
    ``learn.save`` (atomic: an interrupted save never leaves a broken checkpoint; fastai writes in
    place). Better than fastai: after the fit it loads only a file this fit saved (fastai loads
    whatever ``fname`` is on disk, possibly a stale one, or fails when no epoch improved, e.g. with
    nan losses); the best model is loaded also when the fit fails; ``at_end`` does not save the
    weights of a failed fit; ``validate()`` saves nothing."""
    order = TrackerCallback.order + 1

    def __init__(self, monitor: str = 'valid_loss', comp: Callable | None = None, min_delta: float = 0.,
                 fname: str = 'model', every_epoch: bool | int = False, at_end: bool = False,
                 with_opt: bool = False, reset_on_fit: bool = True) -> None:
        super().__init__(monitor=monitor, comp=comp, min_delta=min_delta, reset_on_fit=reset_on_fit)
        if not isinstance(every_epoch, bool): _check_count('SaveModelCallback', 'every_epoch', every_epoch, 0)
        if every_epoch and at_end:
            raise ValueError('SaveModelCallback: every_epoch and at_end cannot both be set (at_end saves '
                             'the final model as `fname`, every_epoch saves `fname_{epoch}`)')
        self.fname, self.every_epoch, self.at_end, self.with_opt = fname, every_epoch, at_end, with_opt
        self.last_saved_path = None
        self._saved_best = self._trained = False

    def before_fit(self) -> None:
        self._saved_best = self._trained = False
        super().before_fit()

    def before_train(self) -> None:
        "Note that this fit trains (a bare ``validate`` saves nothing)."
        super().before_train()
        self._trained = True

    def _save(self, name: str) -> None:
        self.last_saved_path = self.learn.save(name, with_opt=self.with_opt)

    def after_epoch(self) -> None:
        "Save if this epoch improved (or is one of ``every_epoch``)."
        if self.every_epoch:
            if self._epoch_trained and self.learn.epoch % int(self.every_epoch) == 0:
                self._save(f'{self.fname}_{self.learn.epoch}')
        elif self._update() and self.new_best:
            print(f'Better model found at epoch {self.learn.epoch} with {self.monitor} value: {self.best}.')
            self._save(self.fname)
            self._saved_best = True

    def after_fit(self) -> None:
        "Load the best model (or save the final one with ``at_end``)."
        if self.at_end:
            if self._trained and self.learn.exception is None: self._save(self.fname)
        elif self._saved_best: self.learn.load(self.fname, with_opt=self.with_opt)
