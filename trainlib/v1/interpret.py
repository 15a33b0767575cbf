"""fastai-1's ``Interpretation``, ``ClassificationInterpretation`` (``learn.interpret()``) and
``MultiLabelClassificationInterpretation``: predictions, targets and losses of a dataset, and what they show.

Unlike fastai 1 they work on plain torch data: the number of classes comes from the predictions and the
class names from ``data.classes`` when the data has them (else the class indices). The confusion matrix
is the core's (:func:`trainlib.scores.confusion_matrix`). ``MultiLabelClassificationInterpretation``,
which fastai 1.0.61 left unimplemented (NotImplementedError), thresholds the predictions.
"""
from __future__ import annotations

import itertools
from operator import itemgetter
from typing import Any, Optional

import numpy as np
import torch

from ..scores import confusion_matrix
from .basic_data import DatasetType
from .core import defaults, ifnone

__all__ = ['Interpretation', 'ClassificationInterpretation', 'MultiLabelClassificationInterpretation']


class Interpretation:
    "Predictions, targets and per-item losses of a Learner on ``ds_type``."

    def __init__(self, learn: Any, preds: torch.Tensor, y_true: torch.Tensor, losses: torch.Tensor,
                 ds_type: DatasetType = DatasetType.Valid) -> None:
        self.data, self.preds, self.y_true, self.losses, self.ds_type, self.learn = \
            learn.data, preds, y_true, losses, ds_type, learn
        loader = self.data.dl(ds_type)
        self.ds = getattr(loader, 'dataset', None)

    @classmethod
    def from_learner(cls, learn: Any, ds_type: DatasetType = DatasetType.Valid, activ: Any = None) -> 'Interpretation':
        "Predictions, targets and losses from ``learn.get_preds(ds_type, activ, with_loss=True)``."
        return cls(learn, *learn.get_preds(ds_type=ds_type, activ=activ, with_loss=True), ds_type=ds_type)

    def top_losses(self, k: Optional[int] = None, largest: bool = True) -> Any:
        "The ``k`` largest (or smallest) losses and their indices (default: all, sorted)."
        return self.losses.topk(ifnone(k, len(self.losses)), largest=largest)


class ClassificationInterpretation(Interpretation):
    "Interpretation of a single-label classifier: its confusion matrix and the classes it mixes up."

    def __init__(self, learn: Any, preds: torch.Tensor, y_true: torch.Tensor, losses: torch.Tensor,
                 ds_type: DatasetType = DatasetType.Valid) -> None:
        super().__init__(learn, preds, y_true, losses, ds_type)
        self.pred_class = self.preds.argmax(dim=1)

    @property
    def classes(self) -> list:
        "The class names: ``data.classes`` if the data has them, else the class indices."
        return list(ifnone(getattr(self.data, 'classes', None), range(self.preds.shape[1])))

    def confusion_matrix(self, slice_size: int = 1) -> np.ndarray:
        "The confusion matrix (``cm[actual, predicted]``) as an int64 array (``slice_size`` is accepted for fastai 1 code)."
        cm = confusion_matrix(self.pred_class, self.y_true, self.preds.shape[1])
        return cm.long().cpu().numpy()

    def plot_confusion_matrix(self, normalize: bool = False, title: str = 'Confusion matrix', cmap: Any = 'Blues',
                              slice_size: int = 1, norm_dec: int = 2, plot_txt: bool = True,
                              return_fig: Optional[bool] = None, **kwargs: Any) -> Any:
        "Plot the confusion matrix (rows actual, columns predicted), normalised per row with ``normalize``."
        import matplotlib.pyplot as plt
        cm = self.confusion_matrix()
        if normalize: cm = cm.astype('float') / cm.sum(axis=1)[:, np.newaxis]
        fig = plt.figure(**kwargs)
        plt.imshow(cm, interpolation='nearest', cmap=cmap)
        plt.title(title)
        ticks, names = np.arange(len(self.classes)), [str(c) for c in self.classes]
        plt.xticks(ticks, names, rotation=90)
        plt.yticks(ticks, names, rotation=0)
        if plot_txt:
            thresh = cm.max() / 2.
            for i, j in itertools.product(range(cm.shape[0]), range(cm.shape[1])):
                plt.text(j, i, f'{cm[i, j]:.{norm_dec}f}' if normalize else f'{cm[i, j]}', horizontalalignment='center',
                         verticalalignment='center', color='white' if cm[i, j] > thresh else 'black')
        fig.gca().set_ylim(len(names) - .5, -.5)
        plt.tight_layout(); plt.ylabel('Actual'); plt.xlabel('Predicted'); plt.grid(False)
        return fig if ifnone(return_fig, defaults.return_fig) else None

    def most_confused(self, min_val: int = 1, slice_size: int = 1) -> list:
        "``(actual, predicted, count)`` of the off-diagonal cells with at least ``min_val`` items, largest first."
        cm = self.confusion_matrix()
        np.fill_diagonal(cm, 0)
        names = self.classes
        res = [(names[i], names[j], cm[i, j]) for i, j in zip(*np.where(cm >= min_val))]
        return sorted(res, key=itemgetter(2), reverse=True)


class MultiLabelClassificationInterpretation(Interpretation):
    "Interpretation of a multi-label classifier: ``pred_class`` is ``preds > thresh`` (after a sigmoid)."

    def __init__(self, learn: Any, preds: torch.Tensor, y_true: torch.Tensor, losses: torch.Tensor,
                 ds_type: DatasetType = DatasetType.Valid, sigmoid: bool = True, thresh: float = 0.3) -> None:
        super().__init__(learn, preds, y_true, losses, ds_type)
        self.pred_class = (self.preds.sigmoid() if sigmoid else self.preds) > thresh
