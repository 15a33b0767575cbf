"""Callbacks that change how a batch trains: short epochs, gradient accumulation and clipping,
frozen batch-norm statistics."""
from __future__ import annotations

from torch import nn

from ..callback import Callback
from ..events import CancelBatchException, CancelTrainException, CancelValidException
from ..utils import find_bs
from .core import TrainEvalCallback

__all__ = ['ShortEpochCallback', 'GradientAccumulation', 'GradientClip', 'bn_types', 'set_bn_eval', 'BnFreeze']


class ShortEpochCallback(Callback):
    """Train (and validate, with ``short_valid``) only the first ``pct`` of each epoch's batches.

    A phase stops after the first batch whose ``iter/n_iter >= pct``. That batch is trained, but the
    Recorder does not take it in."""

    def __init__(self, pct: float = 0.01, short_valid: bool = True) -> None:
        if not 0 <= pct <= 1: raise ValueError(f'ShortEpochCallback: pct must be between 0 and 1, got {pct!r}')
        self.pct, self.short_valid = pct, short_valid

    def after_batch(self) -> None:
        "Cancel the phase once ``pct`` of its batches ran."
        learn = self.learn
        if learn.iter / learn.n_iter < self.pct: return
        if learn.training: raise CancelTrainException
        if self.short_valid: raise CancelValidException


class GradientAccumulation(Callback):
    """Step the optimizer once every ``n_acc`` items: gradients of smaller batches add up in between.

    Each batch's ``loss_grad`` is scaled by ``bs/n_acc`` for the backward pass (so, with a mean-reduced
    loss, the accumulated gradient is the mean over the ``n_acc`` items) and restored after it.
    Until ``n_acc`` items have been seen, ``before_step`` raises ``CancelBatchException``, which skips
    the step and ``zero_grad``. The count runs across epochs, as in fastai."""
    order = 6
    run_valid = False

    def __init__(self, n_acc: int = 32) -> None:
        if isinstance(n_acc, bool) or not isinstance(n_acc, int) or n_acc < 1:
            raise ValueError(f'GradientAccumulation: n_acc must be a positive int (a number of items), got {n_acc!r}')
        self.n_acc, self.count = n_acc, 0
        self._bs, self._loss_grad = 0, None

    def before_fit(self) -> None:
        "No items accumulated yet."
        self.count = 0

    def after_loss(self) -> None:
        "Scale the loss by the batch's share of ``n_acc`` items."
        learn = self.learn
        self._bs, self._loss_grad = find_bs(learn.yb), learn.loss_grad
        learn.loss_grad = learn.loss_grad * (self._bs / self.n_acc)

    def before_step(self) -> None:
        "Step only once ``n_acc`` items are accumulated (else cancel the batch)."
        self.learn.loss_grad = self._loss_grad
        self._loss_grad = None
        self.count += self._bs
        if self.count < self.n_acc: raise CancelBatchException
        self.count = 0


class GradientClip(Callback):
    "Clip the norm of all the gradients to ``max_norm`` before each step (no host sync)."
    order = 11

    def __init__(self, max_norm: float = 1., norm_type: float = 2.) -> None:
        if not max_norm > 0: raise ValueError(f'GradientClip: max_norm must be > 0, got {max_norm!r}')
        self.max_norm, self.norm_type = max_norm, norm_type

    def before_step(self) -> None:
        "Clip the gradients' norm to ``max_norm``."
        nn.utils.clip_grad_norm_(self.learn.model.parameters(), self.max_norm, self.norm_type)


bn_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)
"The batch-norm layers whose running statistics ``BnFreeze`` freezes."


def set_bn_eval(m: nn.Module, use_eval: bool = True) -> None:
    """Put every batch-norm layer of ``m`` whose parameters are all frozen in eval mode (or back in
    train mode). Layers without parameters (``affine=False``) are left alone: nothing froze them."""
    for layer in m.modules():
        if not isinstance(layer, bn_types): continue
        params = list(layer.parameters(recurse=False))
        if params and not any(p.requires_grad for p in params): layer.train(not use_eval)


class BnFreeze(Callback):
    """Keep the running statistics of frozen batch-norm layers: they are put in eval mode when
    training starts (after ``TrainEvalCallback`` puts the model in train mode). Better than fastai:
    a layer counts as frozen when all its parameters are (fastai looks at the first only), and a
    layer with no parameters is skipped (fastai fails on it)."""
    run_after = TrainEvalCallback

    def before_train(self) -> None:
        "Put the frozen BatchNorm layers back in eval mode."
        set_bn_eval(self.learn.model)
