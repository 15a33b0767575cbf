"""``Recorder``: losses, learning rates and metrics of a fit, kept per batch and per epoch.

Per batch it only does device arithmetic (the smoothed loss is a tensor); values come to the host
once per epoch, when the row is logged.
"""
from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from dataclasses_json import dataclass_json

from .callback import Callback
from .metrics import AvgLoss, AvgSmoothLoss, Metric, _LazyDiv
from .utils import add_note

__all__ = ['Recorder', 'History', 'ValidationMeter', 'format_time']


def format_time(t: float) -> str:
    "Seconds as ``mm:ss`` (or ``h:mm:ss``)."
    t = int(t)
    h, m, s = t // 3600, (t // 60) % 60, t % 60
    return f'{h}:{m:02d}:{s:02d}' if h else f'{m:02d}:{s:02d}'


def _to_float(v: Any) -> Any:
    if isinstance(v, torch.Tensor) and v.numel() == 1: return v.item()
    if isinstance(v, np.generic): return v.item()
    return v


def _name_metric(e: Exception, m: Any) -> None:
    "Add a note naming metric ``m`` to ``e``, raised while it measured."
    add_note(e, f'Exception occurred in metric `{getattr(m, "name", type(m).__name__)}`')


def _accumulate(mets: list, learn: Any) -> None:
    "Let each metric measure the batch (on the device); a failure names the metric."
    try:
        for m in mets: m.accumulate(learn)
    except Exception as e:
        _name_metric(e, m)
        raise


def _values(mets: list) -> list:
    "The metrics' values as plain numbers (read from the device here); a failure names the metric."
    out = []
    for m in mets:
        try: out.append(_to_float(m.value))
        except Exception as e:
            _name_metric(e, m)
            raise
    return out


@dataclass_json
@dataclass
class History:
    "The record of one fit, as plain numbers: what ``Recorder.to_json`` writes."
    metric_names: list = field(default_factory=list)
    values: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    lrs: list = field(default_factory=list)
    iters: list = field(default_factory=list)
    hps: dict = field(default_factory=dict)


class Recorder(Callback):
    """Record the smoothed training loss and lr per batch, and a row of metrics per epoch.

    ``values`` holds one row per epoch: ``[train_loss, valid_loss, *metrics]`` by default (``train_loss`` is
    the smoothed loss at the end of the epoch), ``[train_loss, *train_metrics, valid_loss, *valid_metrics]``
    with ``train_metrics``, and no validation column at all (neither the loss nor the metrics) with
    ``valid_metrics=False``, as in fastai; ``losses``/``lrs`` one entry per training batch."""
    order = 50
    remove_on_fetch = True
    _stateattrs = ('lrs', 'iters', '_losses', '_read', 'values')

    def __init__(self, add_time: bool = True, train_metrics: bool = False, valid_metrics: bool = True,
                 beta: float = 0.98) -> None:
        self.add_time, self.train_metrics, self.valid_metrics = add_time, train_metrics, valid_metrics
        self.loss, self.smooth_loss = AvgLoss(), AvgSmoothLoss(beta=beta)
        self.lrs, self.iters, self.values = [], [], []
        self._reset_losses()
        self.hps: dict = {}
        self.metric_names: list = []
        self._train_now = self._valid_now = None

    # ------------------------------------------------------------------ events
    def before_fit(self) -> None:
        "Reset the history and build the column names."
        self.lrs, self.iters, self.values = [], [], []
        self._reset_losses()
        names = [m.name for m in self._metrics]
        if self.train_metrics and self.valid_metrics:
            names = [f'train_{n}' for n in ['loss'] + names] + [f'valid_{n}' for n in ['loss'] + names]
        elif self.valid_metrics: names = ['train_loss', 'valid_loss'] + names
        else: names = ['train_loss'] + names
        self.metric_names = ['epoch'] + names + (['time'] if self.add_time else [])
        self.smooth_loss.reset()
        self._train_now, self._valid_now = self._train_mets, self._valid_mets

    def before_epoch(self) -> None:
        "Start the row and the epoch's timer."
        self.cancel_train = self.cancel_valid = False
        self.start_epoch = time.time()
        self.log = [self.learn.epoch]

    def before_train(self) -> None:
        "Reset the training metrics (the smoothed loss runs on across epochs)."
        self._train_now = self._train_mets
        for m in self._train_now[1:]: m.reset()

    def before_validate(self) -> None:
        "Reset the validation loss and metrics."
        self._valid_now = self._valid_mets
        for m in self._valid_now: m.reset()

    def after_batch(self) -> None:
        "Accumulate the phase's metrics on the device; in training, record lr and smoothed loss."
        learn = self.learn
        if len(learn.yb) == 0: return
        mets = (self._train_now if learn.training else self._valid_now) if self._train_now is not None \
            and self._valid_now is not None else (self._train_mets if learn.training else self._valid_mets)
        _accumulate(mets, learn)
        if not learn.training: return
        self.lrs.append(learn.opt.get_hyper('lr'))
        smooth = self.smooth_loss.lazy_value()       # divided when read: a tensor op less per batch
        self._losses.append(smooth)                  # points into smooth_loss's device buffer: no tensor per batch
        learn._defer_attr('smooth_loss', smooth)

    # ------------------------------------------------------------------ the per-batch smoothed losses
    @property
    def losses(self) -> list:
        "The smoothed loss after each training batch of the last fit (tensors; ``learn.smooth_loss`` is the last)."
        losses = self._losses
        for i in range(self._read, len(losses)):             # the lazy ones are after those already read
            if type(losses[i]) is _LazyDiv: losses[i] = losses[i]()
        self._read = len(losses)
        return losses

    @losses.setter
    def losses(self, v: list) -> None: self._losses, self._read = v, len(v)

    def _reset_losses(self) -> None: self._losses, self._read = [], 0

    def after_cancel_train(self) -> None:
        "A cancelled training phase adds no columns to the row."
        self.cancel_train = True

    def after_cancel_validate(self) -> None:
        "A cancelled validation adds no columns to the row."
        self.cancel_valid = True

    def after_train(self) -> None:
        "Add the training columns to the row (read from the device here)."
        self.log += _values(self._train_mets)

    def after_validate(self) -> None:
        "Add the validation columns to the row (read from the device here)."
        self.log += _values(self._valid_mets)

    def after_epoch(self) -> None:
        "Store the row in ``values``/``final_record`` and hand it, with the time, to the logger."
        learn = self.learn
        learn.final_record = self.log[1:].copy()
        self.values.append(learn.final_record)
        if self.add_time: self.log.append(format_time(time.time() - self.start_epoch))
        learn.logger(self.log)
        self.iters.append(self.smooth_loss.count)

    # ------------------------------------------------------------------ metrics of each phase
    @property
    def _metrics(self) -> list:
        return list(getattr(self.learn, 'metrics', []) or []) if self.learn is not None else []

    @property
    def _train_mets(self) -> list:
        if getattr(self, 'cancel_train', False): return []
        return [self.smooth_loss] + (self._metrics if self.train_metrics else [])

    @property
    def _valid_mets(self) -> list:
        if getattr(self, 'cancel_valid', False) or not self.valid_metrics: return []
        return [self.loss] + self._metrics

    # ------------------------------------------------------------------ export and plots
    def history(self) -> History:
        "The history of the last fit as plain numbers."
        return History(metric_names=list(self.metric_names),
                       values=[[_to_float(v) for v in row] for row in self.values],
                       losses=[_to_float(v) for v in self.losses], lrs=[_to_float(v) for v in self.lrs],
                       iters=list(self.iters),
                       hps={k: [_to_float(v) for v in vs] for k, vs in getattr(self, 'hps', {}).items()})

    def to_json(self, path: str | Path | None = None) -> str:
        "The history as JSON text; also written to ``path`` when given."
        text = self.history().to_json()
        if path is not None: Path(path).write_text(text)
        return text

    def plot_loss(self, skip_start: int = 5, with_valid: bool = True, log: bool = False,
                  show_epochs: bool = False, ax: Any = None) -> Any:
        "Plot the smoothed training loss (from batch ``skip_start``) and the validation loss per epoch."
        import matplotlib.pyplot as plt
        if ax is None: _, ax = plt.subplots()
        losses = [_to_float(v) for v in self.losses]
        ax.plot(list(range(skip_start, len(losses))), losses[skip_start:], label='train')
        if show_epochs:
            for x in self.iters: ax.axvline(x, color='grey', ls=':')
        if with_valid and self.values and 'valid_loss' in self.metric_names:
            idx = self.metric_names.index('valid_loss') - 1
            pts = [(it, row[idx]) for it, row in zip(self.iters, self.values)
                   if it >= skip_start and len(row) > idx]
            if pts: ax.plot(*zip(*pts), label='valid')
            ax.legend()
        if log: ax.set_yscale('log')
        ax.set_xlabel('iteration'); ax.set_ylabel('loss')
        return ax

    def plot_sched(self, keys: Any = None, figsize: tuple | None = None) -> Any:
        "Plot the scheduled hyper-parameters per batch (``hps``, from a ParamScheduler); returns the figure."
        import matplotlib.pyplot as plt
        hps = getattr(self, 'hps', None) or {}
        keys = list(hps) if keys is None else [keys] if isinstance(keys, str) else list(keys)
        unknown = [k for k in keys if k not in hps]
        if not keys or unknown:
            raise ValueError(f'Recorder.plot_sched: no schedule recorded for {unknown or "any hyper-parameter"}; '
                             f'recorded: {list(hps)} (fit_one_cycle and ParamScheduler record them)')
        rows, cols = (len(keys) + 1) // 2, min(2, len(keys))
        fig, axs = plt.subplots(rows, cols, figsize=figsize or (6 * cols, 4 * rows), squeeze=False)
        for k, ax in zip(keys, axs.flatten()):
            ax.plot([_to_float(v) for v in hps[k]])
            ax.set_ylabel(k)
        return fig

    def plot_lr_find(self, skip_end: int = 5, return_fig: bool = True, suggestions: Any = None,
                     nms: Any = None, **kwargs: Any) -> Any:
        "Plot the smoothed loss against the lr of an ``lr_find`` run (log scale), with the suggested points."
        import matplotlib.pyplot as plt
        lrs, losses = (self.lrs, self.losses) if skip_end == 0 else (self.lrs[:-skip_end], self.losses[:-skip_end])
        fig, ax = plt.subplots(1, 1)
        ax.plot([_to_float(v) for v in lrs], [_to_float(v) for v in losses])
        ax.set_ylabel('Loss'); ax.set_xlabel('Learning Rate'); ax.set_xscale('log')
        if suggestions:
            colors = plt.rcParams['axes.prop_cycle'].by_key()['color'][1:]
            names = nms or [f'suggestion {i}' for i in range(len(suggestions))]
            for (x, y), name, color in zip(suggestions, names, colors): ax.plot(x, y, 'o', label=name, c=color)
            ax.legend(loc='best')
        return fig if return_fig else None


class ValidationMeter(Callback):
    """Measure one validation pass on its own: the mean loss and copies of ``learn.metrics``, so the
    Recorder's record is left alone (what ``learn.validate()`` runs from a callback during a fit).
    Its values have the Recorder's validation columns: none when ``learn.recorder.valid_metrics`` is False."""
    order = 50

    def before_validate(self) -> None:
        "Start from fresh copies of the loss and the metrics."
        rec = self.learn.__dict__.get('recorder')
        if isinstance(rec, Recorder) and not rec.valid_metrics:
            self.mets = []
            return
        # Only Metric objects: a v1 Learner keeps raw v1 metrics, which its own handler measures.
        self.mets = [AvgLoss()] + [copy.copy(m) for m in self.learn.metrics if isinstance(m, Metric)]
        for m in self.mets: m.reset()

    def after_batch(self) -> None:
        "Accumulate the batch (on the device, as the Recorder does)."
        if len(self.learn.yb) == 0: return
        _accumulate(self.mets, self.learn)

    @property
    def values(self) -> list:
        "``[valid_loss, *metrics]`` as plain numbers."
        return _values(self.mets)
