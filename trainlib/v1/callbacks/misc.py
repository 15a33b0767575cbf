"""fastai-1's miscellaneous callbacks: ``StopAfterNBatches``."""
from __future__ import annotations

from typing import Any

from ..callback import Callback
from ._checks import check_arg, is_count

__all__ = ['StopAfterNBatches']


class StopAfterNBatches(Callback):
    "Stop the fit, without validating, after ``n_batches`` training batches (to try out a training quickly)."

    def __init__(self, n_batches: int = 2) -> None:
        check_arg(is_count(n_batches, 1), 'StopAfterNBatches', 'n_batches', 'an int >= 1', n_batches)
        self.stop, self.n_batches = False, n_batches - 1

    def on_batch_end(self, iteration: int, **kwargs: Any) -> dict | None:
        "Stop at training batch number ``n_batches`` of the fit."
        if iteration == self.n_batches: return {'stop_epoch': True, 'stop_training': True, 'skip_validate': True}
        return None
