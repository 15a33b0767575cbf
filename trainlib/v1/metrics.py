"""fastai-1's metrics (``fastai.metrics`` and ``LossMetrics``), adapted from the core's maths.

Functions are wrapped in :class:`~trainlib.v1.callback.AverageMetric` by the handler (the batch-size-weighted
mean over the validation set); the column is the function's name, so the aliases keep fastai 1's long
names (``mae`` is ``mean_absolute_error``). The callback metrics accumulate over the validation set and
add their value at the end of the epoch with ``add_metrics``. The formulas are those of
:mod:`trainlib.metrics` and :mod:`trainlib.scores`; what is here is fastai 1's interface to them.

Unlike fastai 1, the callbacks keep what they accumulate on the device of the predictions (nothing is
moved to the CPU per batch), ``KappaScore()`` (unweighted) works, ``FBeta`` with ``average='binary'`` on
more than two classes gives the same (macro) value at every epoch, and a bad ``average`` fails when the
metric is created.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F

from .. import scores
from ..losses import CrossEntropyLossFlat
from ..metrics import _exp_rmspe, _rmse, accuracy, accuracy_multi, error_rate, flatten_check, mae as _mae, \
    msle as _msle, mse as _mse, top_k_accuracy
from ..scores import auc_roc_score, dice, explained_variance, r2_score, roc_curve
from .basic_train import LearnerCallback
from .callback import Callback
from .core import ifnone
from .torch_core import add_metrics

__all__ = ['error_rate', 'accuracy', 'accuracy_thresh', 'dice', 'exp_rmspe', 'fbeta', 'FBeta', 'mse',
           'mean_squared_error', 'mae', 'mean_absolute_error', 'rmse', 'root_mean_squared_error', 'msle',
           'mean_squared_logarithmic_error', 'explained_variance', 'r2_score', 'top_k_accuracy', 'KappaScore',
           'ConfusionMatrix', 'MatthewsCorreff', 'Precision', 'Recall', 'R2Score', 'ExplainedVariance', 'ExpRMSPE',
           'RMSE', 'Perplexity', 'AUROC', 'auc_roc_score', 'roc_curve', 'MultiLabelFbeta', 'foreground_acc',
           'LossMetrics', 'RegMetrics', 'CMScores']


# ====================================================================== functions (AverageMetric)
def accuracy_thresh(y_pred: torch.Tensor, y_true: torch.Tensor, thresh: float = 0.5, sigmoid: bool = True) -> torch.Tensor:
    "Multi-label accuracy: ``y_pred > thresh`` (after a sigmoid) against the 0/1 ``y_true``."
    return accuracy_multi(y_pred, y_true, thresh=thresh, sigmoid=sigmoid)


def foreground_acc(input: torch.Tensor, target: torch.Tensor, void_code: int) -> torch.Tensor:
    "Accuracy of the argmax over the class axis on the pixels whose target is not ``void_code``."
    return scores.foreground_acc(input, target, bkg_idx=void_code)


def fbeta(y_pred: torch.Tensor, y_true: torch.Tensor, thresh: float = 0.2, beta: float = 2, eps: float = 1e-9,
          sigmoid: bool = True) -> torch.Tensor:
    "Multi-label F-beta: the mean over the items of the F-beta of ``y_pred > thresh`` (after a sigmoid)."
    return scores.multilabel_fbeta(y_pred, y_true, thresh=thresh, beta=beta, eps=eps, sigmoid=sigmoid)


def exp_rmspe(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    "Root mean squared percentage error between ``exp(pred)`` and ``exp(targ)``."
    return _exp_rmspe(*flatten_check(pred, targ))


def root_mean_squared_error(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    "Root mean squared error (of the batch: the epoch value is a mean of batch values; ``RMSE()`` is global)."
    return _rmse(*flatten_check(pred, targ))


def _named(name: str, f: Any, doc: str) -> Any:
    "The core metric ``f`` under fastai 1's ``name`` (the column AverageMetric shows)."
    def metric(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor: return f(pred, targ)
    metric.__name__ = metric.__qualname__ = name
    metric.__doc__ = doc
    return metric


mean_absolute_error = _named('mean_absolute_error', _mae, 'Mean absolute error.')
mean_squared_error = _named('mean_squared_error', _mse, 'Mean squared error.')
mean_squared_logarithmic_error = _named('mean_squared_logarithmic_error', _msle, 'Mean squared error of ``log(1 + x)``.')
mae, mse, rmse, msle = mean_absolute_error, mean_squared_error, root_mean_squared_error, mean_squared_logarithmic_error


# ====================================================================== callbacks over the whole validation set
class _Collect(Callback):
    "Keep the outputs and targets of the validation batches (on their device) for a value at the epoch's end."

    def on_epoch_begin(self, **kwargs: Any) -> None:
        self._outs, self._targs = [], []

    def on_batch_end(self, last_output: torch.Tensor, last_target: torch.Tensor, **kwargs: Any) -> None:
        self._outs.append(self._keep_output(last_output.detach()))
        self._targs.append(last_target.detach())

    def _keep_output(self, out: torch.Tensor) -> torch.Tensor: return out

    def _collected(self) -> tuple[torch.Tensor, torch.Tensor]:
        "Everything collected this epoch, as ``self.preds`` and ``self.targs`` (one tensor each)."
        self.preds, self.targs = torch.cat(self._outs), torch.cat(self._targs)
        return self.preds, self.targs


class RegMetrics(_Collect):
    "A regression score over all the validation predictions (not a mean of batch values)."
    score: Any = None

    def on_batch_end(self, last_output: torch.Tensor, last_target: torch.Tensor, **kwargs: Any) -> None:
        if last_output.numel() != last_target.numel():
            raise ValueError(f'{type(self).__name__}.on_batch_end: expected as many predictions as targets, got '
                             f'{last_output.numel()} and {last_target.numel()} elements')
        super().on_batch_end(last_output, last_target)

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        return add_metrics(last_metrics, self.score(*self._collected()))


class R2Score(RegMetrics):
    "The R² score (coefficient of determination) over the validation set."
    score = staticmethod(r2_score)


class ExplainedVariance(RegMetrics):
    "The explained variance over the validation set."
    score = staticmethod(explained_variance)


class RMSE(RegMetrics):
    "The root mean squared error over the validation set."
    score = staticmethod(root_mean_squared_error)


class ExpRMSPE(RegMetrics):
    "The root mean squared percentage error of ``exp`` of predictions and targets, over the validation set."
    score = staticmethod(exp_rmspe)


@dataclass(eq=False)
class AUROC(_Collect):
    "Area under the ROC curve of a binary classifier (the softmax of its last output column), over the validation set."

    def _keep_output(self, out: torch.Tensor) -> torch.Tensor: return F.softmax(out, dim=1)[:, -1]

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        preds, targs = self._collected()
        return add_metrics(last_metrics, auc_roc_score(preds, targs.long()))


class ConfusionMatrix(Callback):
    """The confusion matrix (``cm[target, prediction]``) of the validation set, left in ``self.metric`` at the
    end of the epoch: no column is added (as in fastai 1)."""

    def on_train_begin(self, **kwargs: Any) -> None:
        self.n_classes = 0

    def on_epoch_begin(self, **kwargs: Any) -> None:
        self.cm = None

    def on_batch_end(self, last_output: torch.Tensor, last_target: torch.Tensor, **kwargs: Any) -> None:
        if self.n_classes == 0: self.n_classes = last_output.shape[-1]
        if self.cm is None: self.cm = torch.zeros(self.n_classes, self.n_classes, device=last_output.device)
        scores.confusion_matrix(last_output.argmax(-1), last_target, self.n_classes, out=self.cm)

    def on_epoch_end(self, **kwargs: Any) -> None:
        self.metric = self.cm


_AVERAGES = ('binary', 'micro', 'macro', 'weighted', None)


def _binary_or_macro(avg: Optional[str], n_classes: int) -> Optional[str]:
    "fastai 1: ``average='binary'`` on more than two classes warns and becomes ``'macro'``."
    if avg != 'binary' or n_classes == 2: return avg
    warnings.warn('average=`binary` was selected for a non binary case. Value for average has now been set to '
                  '`macro` instead.')
    return 'macro'


@dataclass(eq=False)
class CMScores(ConfusionMatrix):
    "Precision/recall scores from the confusion matrix: ``average`` binary, micro, macro, weighted or None (per class)."
    average: Optional[str] = 'binary'
    pos_label: int = 1
    eps: float = 1e-9

    def __post_init__(self) -> None:
        if self.average not in _AVERAGES:
            raise ValueError(f'{type(self).__name__}: average must be one of {_AVERAGES}, got {self.average!r}')

    def _weights(self, avg: str) -> torch.Tensor:
        resolved = _binary_or_macro(avg, self.n_classes)
        if resolved != avg: avg = self.average = resolved
        if avg == 'binary' and self.pos_label not in (0, 1):
            self.pos_label = 1
            warnings.warn('Invalid value for pos_label. It has now been set to 1.')
        return scores.class_weights(self.cm, avg, self.pos_label)

    def _average(self, per_class: torch.Tensor, avg: Optional[str]) -> torch.Tensor:
        return per_class if avg is None else (per_class * self._weights(avg)).sum()

    def _precision(self) -> torch.Tensor:
        return self._average(scores.precision_per_class(self.cm), self.average)

    def _recall(self) -> torch.Tensor:
        return self._average(scores.recall_per_class(self.cm), 'weighted' if self.average == 'micro' else self.average)


class Recall(CMScores):
    "Recall over the validation set."
    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        return add_metrics(last_metrics, self._recall())


class Precision(CMScores):
    "Precision over the validation set."
    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        return add_metrics(last_metrics, self._precision())


@dataclass(eq=False)
class FBeta(CMScores):
    """The F-beta score over the validation set: per class, then weighted by ``average``. Unlike fastai 1, ``average``
    is never changed: ``binary`` on more than two classes is ``macro`` at every epoch (fastai 1 switched to other
    maths after the first one) and a ``learn.validate()`` leaves it as it was (in fastai 1 every later value
    became per-class)."""
    beta: float = 2

    def on_train_begin(self, **kwargs: Any) -> None:
        self.n_classes, self.beta2, self.avg = 0, self.beta ** 2, self.average

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        if self.average == 'micro': prec, rec = self._precision(), self._recall()
        else: prec, rec = scores.precision_per_class(self.cm), scores.recall_per_class(self.cm)
        metric = torch.nan_to_num(scores.fbeta_score(prec, rec, self.beta, self.eps), nan=0.)
        if self.average: metric = (self._weights(_binary_or_macro(self.average, self.n_classes)) * metric).sum()
        return add_metrics(last_metrics, metric)


@dataclass(eq=False)
class KappaScore(ConfusionMatrix):
    "Cohen's kappa over the validation set: ``weights`` None (unweighted; it crashed in fastai 1), 'linear' or 'quadratic'."
    weights: Optional[str] = None

    def __post_init__(self) -> None:
        if self.weights not in (None, 'linear', 'quadratic'):
            raise ValueError(f'KappaScore: unknown weights {self.weights!r}. Expected None, "linear", or "quadratic".')

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        return add_metrics(last_metrics, scores.cohen_kappa(self.cm, self.weights))


@dataclass(eq=False)
class MatthewsCorreff(ConfusionMatrix):
    "The Matthews correlation coefficient over the validation set."
    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        return add_metrics(last_metrics, scores.matthews_corrcoef(self.cm))


class Perplexity(Callback):
    "Perplexity of a language model: exp of the cross-entropy, batches weighted by their sequence length."

    def on_epoch_begin(self, **kwargs: Any) -> None:
        self.loss, self.len, self._ce = 0., 0, CrossEntropyLossFlat()

    def on_batch_end(self, last_output: torch.Tensor, last_target: torch.Tensor, **kwargs: Any) -> None:
        self.loss = self.loss + last_target.size(1) * self._ce(last_output, last_target).detach()
        self.len += last_target.size(1)

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        return add_metrics(last_metrics, torch.exp(self.loss / self.len))


_ML_AVERAGES = ('micro', 'macro', 'weighted', 'none')


class MultiLabelFbeta(Callback):
    "Multi-label F-beta over the validation set from per-label counts: ``average`` micro, macro, weighted or none (a column per label)."
    _order = -20

    def __init__(self, beta: float = 2, eps: float = 1e-15, thresh: float = 0.3, sigmoid: bool = True,
                 average: str = 'micro') -> None:
        if average not in _ML_AVERAGES:
            raise ValueError(f'MultiLabelFbeta: average must be one of {_ML_AVERAGES}, got {average!r}')
        self.eps, self.thresh, self.sigmoid, self.average, self.beta = eps, thresh, sigmoid, average, beta

    def on_epoch_begin(self, **kwargs: Any) -> None:
        self.tp, self.total_pred, self.total_targ = 0, 0, 0

    def on_batch_end(self, last_output: torch.Tensor, last_target: torch.Tensor, **kwargs: Any) -> None:
        pred = ((last_output.sigmoid() if self.sigmoid else last_output) > self.thresh).float()
        targ = last_target.float()
        self.tp = self.tp + (pred * targ).sum(0)
        self.total_pred = self.total_pred + pred.sum(0)
        self.total_targ = self.total_targ + targ.sum(0)

    def fbeta_score(self, precision: torch.Tensor, recall: torch.Tensor) -> torch.Tensor:
        "F-beta of ``precision`` and ``recall``."
        return scores.fbeta_score(precision, recall, self.beta, self.eps)

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> dict:
        n_pred, n_targ = self.total_pred + self.eps, self.total_targ + self.eps
        if self.average == 'micro': res = self.fbeta_score(self.tp.sum() / n_pred.sum(), self.tp.sum() / n_targ.sum())
        else:
            per_label = self.fbeta_score(self.tp / n_pred, self.tp / n_targ)
            if self.average == 'macro': res = per_label.mean()
            elif self.average == 'weighted': res = (per_label * n_targ).sum() / n_targ.sum()
            else: res = list(per_label)
        return add_metrics(last_metrics, res)


class LossMetrics(LearnerCallback):
    """Columns for the parts of the loss: ``loss_func.metric_names``, averaged over the validation set (weighted
    by batch size) from ``loss_func.metrics`` after each batch. A callback_fn (``_order`` -20, before the Recorder)."""
    _order = -20

    def on_train_begin(self, **kwargs: Any) -> None:
        self.names = ifnone(getattr(self.learn.loss_func, 'metric_names', None), [])
        if not self.names: warnings.warn('LossMetrics requested but no loss_func.metric_names provided')
        self.learn.recorder.add_metric_names(self.names)

    def on_epoch_begin(self, **kwargs: Any) -> None:
        self.metrics, self.nums = {name: 0. for name in self.names}, 0

    def on_batch_end(self, last_target: Any, train: bool, **kwargs: Any) -> None:
        if train: return
        bs = last_target.size(0)
        for name in self.names: self.metrics[name] = self.metrics[name] + bs * self.learn.loss_func.metrics[name].detach()
        self.nums += bs

    def on_epoch_end(self, last_metrics: Any, **kwargs: Any) -> Optional[dict]:
        if not self.nums: return None
        return {'last_metrics': last_metrics + [self.metrics[name] / self.nums for name in self.names]}
