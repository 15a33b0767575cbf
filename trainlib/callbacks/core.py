"The callbacks the loop itself relies on: train/eval switching, tensor casting, skipping epochs, tracing."
from __future__ import annotations

from typing import Any, Callable

import torch

from ..callback import Callback
from ..events import EVENTS, CancelEpochException

__all__ = ['TrainEvalCallback', 'CastToTensor', 'SkipToEpoch', 'VerboseCallback', 'before_batch_cb']


class TrainEvalCallback(Callback):
    "Switch the model between train and eval, move it to the data's device, keep ``train_iter``/``pct_train``."
    order = -10
    run_valid = False

    def after_create(self) -> None:
        "Start with ``n_epoch = 1``."
        self.learn.n_epoch = 1

    def before_fit(self) -> None:
        "Reset the counters, move the model (and loss) to the data's device, reset a stateful model."
        learn = self.learn
        learn.epoch, learn.loss = 0, torch.tensor(0.)
        learn.train_iter, learn.pct_train = 0, 0.
        device = getattr(learn.dls, 'device', None)
        if device is not None:
            learn.model.to(device)
            if isinstance(learn.loss_func, torch.nn.Module) or hasattr(learn.loss_func, 'to'):
                learn.loss_func.to(device)
        if hasattr(learn.model, 'reset'): learn.model.reset()

    def after_batch(self) -> None:
        "Count the training batch: ``train_iter`` and ``pct_train``."
        d = self.learn.__dict__      # the Learner's plain attributes, read without its __getattr__
        if d['n_iter']: d['pct_train'] += 1. / (d['n_iter'] * d['n_epoch'])   # 0 for one_batch outside a fit
        d['train_iter'] += 1

    def before_train(self) -> None:
        "Put the model in training mode and set ``training``, ``pct_train``."
        learn = self.learn
        learn.pct_train = learn.epoch / learn.n_epoch
        learn.model.train()
        learn.training = True

    def before_validate(self) -> None:
        "Put the model in eval mode and clear ``training``."
        self.learn.model.eval()
        self.learn.training = False


def _plain(t: Any) -> Any:
    if isinstance(t, torch.Tensor) and type(t) is not torch.Tensor and not isinstance(t, torch.nn.Parameter):
        return t.as_subclass(torch.Tensor)
    return t


class CastToTensor(Callback):
    "Turn tensor subclasses in the batch into plain ``torch.Tensor``s."
    order = 9

    def before_batch(self) -> None:
        "Replace tensor subclasses in ``xb``/``yb`` by plain tensors."
        learn = self.learn
        d = learn.__dict__           # the Learner's plain attributes, read without its __getattr__
        xb, yb = d['xb'], d['yb']
        for t in (*xb, *yb):
            if type(t) is not torch.Tensor:
                learn.xb = type(xb)(_plain(t) for t in xb)
                learn.yb = type(yb)(_plain(t) for t in yb)
                return


class SkipToEpoch(Callback):
    "Skip the epochs before ``epoch`` (what ``fit(start_epoch=...)`` adds)."
    order = 70

    def __init__(self, epoch: int) -> None: self._skip_to = epoch

    def before_epoch(self) -> None:
        "Cancel the epochs before the one to start from."
        if self.learn.epoch < self._skip_to: raise CancelEpochException


class VerboseCallback(Callback):
    "Print the name of every event as it is dispatched (for debugging)."
    def __call__(self, event_name: str) -> Any:
        print(event_name)
        return super().__call__(event_name)


def before_batch_cb(f: Callable) -> Callback:
    "A callback from ``f(cb, xb, yb) -> (xb, yb)``, run at ``before_batch`` in training and validation."
    def before_batch(self: Callback) -> None:
        xb, yb = f(self, self.learn.xb, self.learn.yb)
        self.learn.xb, self.learn.yb = xb, yb
    return Callback(before_batch=before_batch)
