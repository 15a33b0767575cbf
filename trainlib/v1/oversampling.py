"""fastai-1's ``OverSamplingCallback``: for the fit, the training loader samples every class equally often."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, WeightedRandomSampler

from .basic_train import Learner, LearnerCallback

__all__ = ['OverSamplingCallback']


def _labels(ds: Any) -> np.ndarray:
    "The integer labels of a dataset: ``y.items`` (fastai 1's item lists) or the last tensor of a TensorDataset."
    y = getattr(getattr(ds, 'y', None), 'items', None)
    if y is None and hasattr(ds, 'tensors'): y = ds.tensors[-1]
    if y is None:
        raise TypeError(f'OverSamplingCallback: cannot read the labels of a {type(ds).__name__}: expected a TensorDataset '
                        f'(labels in its last tensor) or a dataset with y.items')
    return y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)


class OverSamplingCallback(LearnerCallback):
    """Replace the training loader, for the fit, by one drawing ``n_classes × largest class count`` items with
    ``weights`` (default: 1 / the count of the item's class), so every class is seen equally often."""

    def __init__(self, learn: Learner, weights: torch.Tensor | None = None) -> None:
        super().__init__(learn)
        self.weights = weights

    def on_train_begin(self, **kwargs: Any) -> None:
        "Swap in a training loader that samples with ``weights`` (computed from the labels when None)."
        self.old_dl = self.learn.data.train_dl
        self.labels = _labels(self.old_dl.dataset)
        if not np.issubdtype(self.labels.dtype, np.integer):
            raise TypeError(f'OverSamplingCallback: can only oversample integer labels, got {self.labels.dtype}')
        _, self.label_counts = np.unique(self.labels, return_counts=True)
        if self.weights is None: self.weights = torch.DoubleTensor((1 / self.label_counts)[self.labels])
        self.total_len_oversample = int(len(self.label_counts) * np.max(self.label_counts))
        sampler = WeightedRandomSampler(self.weights, self.total_len_oversample)
        old = getattr(self.old_dl, 'dl', self.old_dl)
        self.learn.data.train_dl = DataLoader(old.dataset, batch_size=old.batch_size, sampler=sampler,
                                              drop_last=old.drop_last, num_workers=old.num_workers,
                                              collate_fn=old.collate_fn)

    def on_train_end(self, **kwargs: Any) -> None:
        "Put the original training loader back."
        self.learn.data.train_dl = self.old_dl
