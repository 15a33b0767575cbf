"""fastai-1's ``fastai.train``: the training recipes added to ``Learner`` (``fit_one_cycle``, ``lr_find``,
``fit_fc``, ``mixup``, ``clip_grad``, ``to_fp16``, ``to_fp32``) and the callbacks ``BnFreeze``, ``GradientClipping``,
``AccumulateScheduler``. As in fastai 1, importing this module makes the recipes ``Learner`` methods."""
from __future__ import annotations

from functools import partial
from typing import Any
from warnings import warn

import numpy as np
from torch import nn

from ..learner import Learner as CoreLearner
from .basic_train import Learner, LearnerCallback
from .callbacks.flat_cos_anneal import FlatCosAnnealScheduler
from .callbacks.fp16 import MixedPrecision
from .callbacks.lr_finder import LRFinder
from .callbacks.mixup import MixUpCallback
from .callbacks.one_cycle import OneCycleScheduler
from .callbacks._checks import check_arg, is_count
from .core import defaults, is_listy, listify
from .torch_core import num_distrib, set_bn_eval

__all__ = ['BnFreeze', 'GradientClipping', 'fit_one_cycle', 'lr_find', 'one_cycle_scheduler', 'mixup',
           'AccumulateScheduler', 'fit_fc', 'to_fp16', 'to_fp32']


def one_cycle_scheduler(lr_max: Any, **kwargs: Any) -> partial:
    "A ``OneCycleScheduler`` to put in ``callback_fns``: ``partial(OneCycleScheduler, lr_max=lr_max, **kwargs)``."
    return partial(OneCycleScheduler, lr_max=lr_max, **kwargs)


def fit_one_cycle(learn: Learner, cyc_len: int, max_lr: Any = defaults.lr, moms: Any = (0.95, 0.85),
                  div_factor: float = 25., pct_start: float = 0.3, final_div: float | None = None,
                  wd: Any = None, callbacks: Any = None, tot_epochs: int | None = None,
                  start_epoch: int | None = None) -> None:
    "Train ``cyc_len`` epochs with the 1cycle policy (a :class:`OneCycleScheduler` after ``callbacks``)."
    max_lr = learn.lr_range(max_lr)
    callbacks = listify(callbacks)
    callbacks.append(OneCycleScheduler(learn, max_lr, moms=moms, div_factor=div_factor, pct_start=pct_start,
                                       final_div=final_div, tot_epochs=tot_epochs, start_epoch=start_epoch))
    learn.fit(cyc_len, max_lr, wd=wd, callbacks=callbacks)


def fit_fc(learn: Learner, tot_epochs: int = 1, lr: Any = defaults.lr, moms: Any = (0.95, 0.85),
           start_pct: float = 0.72, wd: Any = None, callbacks: Any = None) -> None:
    """Train ``tot_epochs`` epochs at a flat ``lr``, annealed to 0 with a cosine after ``start_pct`` of the
    batches (a :func:`FlatCosAnnealScheduler`). Unlike fastai 1.0.61, which failed on a slice (its
    default ``lr``), the scheduler gets the lrs of ``learn.lr_range(lr)``."""
    max_lr = learn.lr_range(lr)
    callbacks = listify(callbacks)
    callbacks.append(FlatCosAnnealScheduler(learn, max_lr, moms=moms, start_pct=start_pct, tot_epochs=tot_epochs))
    learn.fit(tot_epochs, max_lr, wd=wd, callbacks=callbacks)


def _lr_array(learn: Learner, lr: Any) -> Any:
    lr = learn.lr_range(lr)
    return np.array(lr) if is_listy(lr) else lr


def lr_find(learn: Learner, start_lr: Any = 1e-7, end_lr: Any = 10, num_it: int = 100, stop_div: bool = True,
            wd: Any = None) -> None:
    """Try lrs from ``start_lr`` to ``end_lr`` (exponentially) over ``num_it`` batches with an
    :class:`LRFinder`, then put the weights back; ``learn.recorder.plot()`` shows the losses."""
    start_lr, end_lr = _lr_array(learn, start_lr), _lr_array(learn, end_lr)
    cb = LRFinder(learn, start_lr, end_lr, num_it, stop_div)
    epochs = int(np.ceil(num_it / len(learn.data.train_dl))) * (num_distrib() or 1)
    learn.fit(epochs, start_lr, callbacks=[cb], wd=wd)


def mixup(learn: Learner, alpha: float = 0.4, stack_x: bool = False, stack_y: bool = True) -> Learner:
    "Train with mixup from now on (a :class:`MixUpCallback` in ``callback_fns``); returns ``learn``."
    learn.callback_fns.append(partial(MixUpCallback, alpha=alpha, stack_x=stack_x, stack_y=stack_y))
    return learn


def to_fp16(learn: Learner, loss_scale: float | None = None, max_noskip: int = 1000, dynamic: bool = True,
            clip: float | None = None, flat_master: bool = False, max_scale: float = 2 ** 24,
            loss_fp32: bool = True) -> Learner:
    """Train in mixed precision from now on: a :class:`MixedPrecision` with these arguments replaces any other
    in ``learn.callbacks`` (also ``learn.mp_cb``); returns ``learn``. The model keeps its float32 weights."""
    to_fp32(learn)
    learn.mp_cb = MixedPrecision(learn, loss_scale=loss_scale, max_noskip=max_noskip, dynamic=dynamic, clip=clip,
                                 flat_master=flat_master, max_scale=max_scale, loss_fp32=loss_fp32)
    learn.callbacks.append(learn.mp_cb)
    return learn


def _makes_mixed_precision(f: Any) -> bool:
    f = f.func if isinstance(f, partial) else f
    return isinstance(f, type) and issubclass(f, MixedPrecision)


def to_fp32(learn: Learner) -> Learner:
    """Train in float32 from now on: remove the :class:`MixedPrecision` callbacks (from ``learn.callbacks`` and,
    unlike fastai 1, from ``callback_fns``) and the core ones (``to_bf16``); returns ``learn``."""
    learn.callbacks[:] = [cb for cb in learn.callbacks if not isinstance(cb, MixedPrecision)]
    learn.callback_fns[:] = [f for f in learn.callback_fns if not _makes_mixed_precision(f)]
    if isinstance(learn.__dict__.get('mixed_precision'), MixedPrecision): del learn.mixed_precision
    CoreLearner.to_fp32(learn)
    return learn


class BnFreeze(LearnerCallback):
    "Keep the running statistics of frozen batchnorm layers: they are put in eval mode at each epoch's start."

    def on_epoch_begin(self, **kwargs: Any) -> None:
        "Put the frozen batchnorm layers in eval mode (the model was just put in train mode)."
        set_bn_eval(self.learn.model)


class GradientClipping(LearnerCallback):
    "Clip the norm of all the gradients to ``clip`` before each step (nothing when ``clip`` is 0)."

    def __init__(self, learn: Learner, clip: float = 0.) -> None:
        super().__init__(learn)
        check_arg(clip >= 0, type(self).__name__, 'clip', '>= 0 (a maximum gradient norm; 0: no clipping)', clip)
        self.clip = clip

    def on_backward_end(self, **kwargs: Any) -> None:
        "Clip the gradients (no host sync)."
        if self.clip: nn.utils.clip_grad_norm_(self.learn.model.parameters(), self.clip)


def clip_grad(learn: Learner, clip: float = 0.1) -> Learner:
    "Clip the gradients' norm to ``clip`` from now on (a :class:`GradientClipping` in ``callback_fns``)."
    learn.callback_fns.append(partial(GradientClipping, clip=clip))
    return learn


class AccumulateScheduler(LearnerCallback):
    """Step the optimizer every ``n_step`` training batches, with the gradients accumulated over them divided
    by their number of samples (so the loss should sum over the batch: ``reduction='sum'``, or a warning).
    At the end of an epoch the batches accumulated since the last step are stepped (dropped with
    ``drop_last``). Better than fastai 1.0.61: when the epoch's last batch already stepped there is nothing
    left, and nothing is done (fastai failed on torch >= 2: no gradients to divide; on torch 1 it took an
    extra step on zero gradients); only training samples are counted (fastai also counted the validation
    batches, so the last partial accumulation was divided by too many samples)."""

    def __init__(self, learn: Learner, n_step: int = 1, drop_last: bool = False) -> None:
        super().__init__(learn)
        check_arg(is_count(n_step, 1), type(self).__name__, 'n_step', 'an int >= 1 (batches per step)', n_step)
        self.n_step, self.drop_last = n_step, drop_last

    def on_train_begin(self, **kwargs: Any) -> None:
        "Warn if the loss is averaged over the batch."
        if getattr(self.learn.loss_func, 'reduction', 'sum') != 'sum':
            warn("For better gradients consider 'reduction=sum'")

    def on_epoch_begin(self, **kwargs: Any) -> None:
        "Nothing accumulated yet."
        self.acc_samples, self.acc_batches = 0., 0.

    def on_batch_begin(self, last_input: Any, train: bool, **kwargs: Any) -> None:
        "Count the training samples and batches."
        if not train: return
        self.acc_samples += (last_input[0] if is_listy(last_input) else last_input).shape[0]
        self.acc_batches += 1

    def on_backward_end(self, **kwargs: Any) -> dict | None:
        "Every ``n_step`` batches: average the gradients over the samples and step; otherwise keep accumulating."
        if self.acc_batches % self.n_step == 0:
            self._average_grads()
            return None
        return {'skip_step': True, 'skip_zero': True}

    def _average_grads(self) -> None:
        for p in self.learn.model.parameters():
            if p.requires_grad and p.grad is not None: p.grad.div_(self.acc_samples)
        self.acc_samples = 0

    def on_epoch_end(self, **kwargs: Any) -> None:
        "Step the batches accumulated since the last step (unless ``drop_last``)."
        if not self.acc_samples: return
        self._average_grads()
        if not self.drop_last: self.learn.opt.step()
        self.learn.opt.zero_grad()


Learner.fit_one_cycle = fit_one_cycle
Learner.lr_find = lr_find
Learner.fit_fc = fit_fc
Learner.mixup = mixup
Learner.clip_grad = clip_grad
Learner.to_fp16 = to_fp16
Learner.to_fp32 = to_fp32
