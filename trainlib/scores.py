"""Metric maths on whole tensors: regression scores, segmentation scores, confusion-matrix scores, ROC.

Plain functions of predictions and targets (or of a confusion matrix), computed on the tensors' device.
The Metric classes of :mod:`trainlib.metrics` and the fastai-1 metrics of :mod:`trainlib.v1.metrics`
accumulate what they need and call these, so each formula exists once. The confusion matrix ``cm`` is
indexed ``cm[target, prediction]``.
"""
from __future__ import annotations

import torch

from .metrics import flatten_check

__all__ = ['explained_variance', 'r2_score', 'foreground_acc', 'dice', 'multilabel_fbeta', 'fbeta_score',
           'confusion_matrix', 'precision_per_class', 'recall_per_class', 'class_weights', 'cohen_kappa',
           'matthews_corrcoef', 'roc_curve', 'auc_roc_score']


# ====================================================================== regression
def explained_variance(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    "1 - var(targ - pred) / var(targ) (unbiased variances), on the flattened tensors."
    pred, targ = flatten_check(pred, targ)
    return 1 - torch.var(targ - pred) / torch.var(targ)


def r2_score(pred: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    "The coefficient of determination: 1 - sum((targ - pred)^2) / sum((targ - mean(targ))^2), flattened."
    pred, targ = flatten_check(pred, targ)
    return 1 - ((targ - pred) ** 2).sum() / ((targ - targ.mean()) ** 2).sum()


# ====================================================================== segmentation and multi-label
def foreground_acc(inp: torch.Tensor, targ: torch.Tensor, bkg_idx: int = 0, axis: int = 1) -> torch.Tensor:
    "Accuracy of the argmax over ``axis`` on the pixels whose target is not ``bkg_idx`` (``targ`` may keep a channel axis of 1)."
    targ = targ.squeeze(1)
    mask = targ != bkg_idx
    return (inp.argmax(dim=axis)[mask] == targ[mask]).float().mean()


def dice(inp: torch.Tensor, targ: torch.Tensor, iou: bool = False, eps: float = 1e-8) -> torch.Tensor:
    """Mean over the items of the Dice coefficient (``iou``: the Jaccard index) between the argmax over axis 1
    and a 0/1 target; an item with nothing predicted and nothing to find scores 1."""
    n = targ.shape[0]
    pred, targ = inp.argmax(dim=1).view(n, -1), targ.view(n, -1)
    inter = (pred * targ).sum(dim=1).float()
    union = (pred + targ).sum(dim=1).float()
    res = inter / (union - inter + eps) if iou else 2. * inter / union
    return torch.where(union == 0, torch.ones_like(res), res).mean()


def fbeta_score(precision: torch.Tensor, recall: torch.Tensor, beta: float = 2, eps: float = 1e-9) -> torch.Tensor:
    "F-beta from precision and recall (element-wise): (1 + b²)·p·r / (b²·p + r + eps)."
    beta2 = beta ** 2
    return (1 + beta2) * precision * recall / (beta2 * precision + recall + eps)


def multilabel_fbeta(pred: torch.Tensor, targ: torch.Tensor, thresh: float = 0.2, beta: float = 2,
                     eps: float = 1e-9, sigmoid: bool = True) -> torch.Tensor:
    "Mean over the items (rows) of the F-beta score of ``pred > thresh`` (after a sigmoid) against 0/1 ``targ``."
    if sigmoid: pred = pred.sigmoid()
    pred, targ = (pred > thresh).float(), targ.float()
    tp = (pred * targ).sum(dim=1)
    return fbeta_score(tp / (pred.sum(dim=1) + eps), tp / (targ.sum(dim=1) + eps), beta, eps).mean()


# ====================================================================== confusion matrix
def confusion_matrix(preds: torch.Tensor, targs: torch.Tensor, n_classes: int,
                     out: torch.Tensor | None = None) -> torch.Tensor:
    """Counts of (target, predicted class) pairs in an ``n_classes`` square float matrix, added to ``out`` when
    given (on its device, without reading anything back to the host)."""
    if out is None: out = torch.zeros(n_classes, n_classes, device=preds.device)
    ones = torch.ones(preds.numel(), device=out.device, dtype=out.dtype)
    return out.index_put_((targs.reshape(-1).to(out.device), preds.reshape(-1).to(out.device)), ones, accumulate=True)


def precision_per_class(cm: torch.Tensor) -> torch.Tensor:
    "Per class: correct predictions / predictions of that class (NaN for a class never predicted)."
    return torch.diag(cm) / cm.sum(dim=0)


def recall_per_class(cm: torch.Tensor) -> torch.Tensor:
    "Per class: correct predictions / items of that class (NaN for a class absent from the targets)."
    return torch.diag(cm) / cm.sum(dim=1)


def class_weights(cm: torch.Tensor, average: str, pos_label: int = 1) -> torch.Tensor:
    """Weights of the per-class scores for an ``average``: ``binary`` (only ``pos_label``, two classes),
    ``micro`` (share of predictions), ``macro`` (equal), ``weighted`` (share of targets)."""
    n = cm.shape[0]
    if average == 'binary': return (torch.arange(n, device=cm.device) == pos_label).float()
    if average == 'micro': return cm.sum(dim=0) / cm.sum()
    if average == 'macro': return torch.full((n,), 1. / n, device=cm.device)
    if average == 'weighted': return cm.sum(dim=1) / cm.sum()
    raise ValueError(f"class_weights: average must be 'binary', 'micro', 'macro' or 'weighted', got {average!r}")


def cohen_kappa(cm: torch.Tensor, weights: str | None = None) -> torch.Tensor:
    """Cohen's kappa of a confusion matrix: unweighted (``None``), ``'linear'`` or ``'quadratic'`` weights
    on the distance between the classes."""
    n = cm.shape[0]
    idx = torch.arange(n, device=cm.device, dtype=torch.float)
    dist = idx[None, :] - idx[:, None]
    if weights is None: w = (dist != 0).float()
    elif weights == 'linear': w = dist.abs()
    elif weights == 'quadratic': w = dist ** 2
    else: raise ValueError(f'cohen_kappa: unknown weights {weights!r}. Expected None, "linear", or "quadratic".')
    expected = torch.outer(cm.sum(dim=1), cm.sum(dim=0)) / cm.sum()
    return 1 - (w * cm).sum() / (w * expected).sum()


def matthews_corrcoef(cm: torch.Tensor) -> torch.Tensor:
    "The Matthews correlation coefficient (multi-class form) of a confusion matrix."
    t_sum, p_sum = cm.sum(dim=1), cm.sum(dim=0)
    n_correct, n = torch.trace(cm), cm.sum()
    cov_tp = n_correct * n - torch.dot(t_sum, p_sum)
    cov_pp = n ** 2 - torch.dot(p_sum, p_sum)
    cov_tt = n ** 2 - torch.dot(t_sum, t_sum)
    return cov_tp / torch.sqrt(cov_tt * cov_pp)


# ====================================================================== ROC
def roc_curve(scores: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fpr, tpr)`` of a binary problem (positives are ``targ == 1``) at every distinct score, highest first,
    starting at (0, 0)."""
    scores, order = scores.sort(descending=True)
    pos = (targ == 1)[order].long()
    last = torch.ones_like(scores, dtype=torch.bool)
    last[:-1] = scores[1:] != scores[:-1]
    idx = last.nonzero().squeeze(1)
    tps = pos.cumsum(0)[idx]
    fps = idx + 1 - tps
    zero = tps.new_zeros(1)
    tps, fps = torch.cat((zero, tps)), torch.cat((zero, fps))
    return fps.float() / fps[-1], tps.float() / tps[-1]


def auc_roc_score(scores: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    "Area under the ROC curve (trapezoids) of a binary problem."
    fpr, tpr = roc_curve(scores, targ)
    return torch.trapezoid(tpr, fpr)
