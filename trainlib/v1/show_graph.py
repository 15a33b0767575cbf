"""fastai-1's ``ShowGraph``: after each validated epoch, the losses so far drawn in the progress bar's graph."""
from __future__ import annotations

from typing import Any

import numpy as np

from .basic_train import LearnerCallback

__all__ = ['ShowGraph']


class ShowGraph(LearnerCallback):
    """Update the master bar's graph (``pbar.update_graph``, a notebook feature) with the training and validation
    losses after each epoch that validated; nothing happens with a bar that has no graph."""

    def on_epoch_end(self, n_epochs: int, last_metrics: Any, **kwargs: Any) -> dict:
        "Draw the training and validation losses so far in the bar's graph (if it has one)."
        rec = self.learn.recorder
        update = getattr(getattr(rec, 'pbar', None), 'update_graph', None)
        if update is None or last_metrics is None or last_metrics[0] is None: return {}
        losses = [float(l) for l in rec.losses]
        val_losses = [float(v) for v in rec.val_losses if v is not None]
        x_bounds = (0, (n_epochs - len(rec.nb_batches)) * rec.nb_batches[-1] + len(losses))
        y_bounds = (0, max(max(losses), max(val_losses)))
        update([(list(range(len(losses))), losses), (np.array(rec.nb_batches).cumsum(), val_losses)], x_bounds, y_bounds)
        return {}
