"""``CollectDataCallback``: every batch of a fit, kept for inspection (mainly in tests)."""
from __future__ import annotations

from ..callback import Callback
from ..utils import to_detach

__all__ = ['CollectDataCallback']


class CollectDataCallback(Callback):
    """Keep ``(xb, yb, pred, loss)`` of every batch (training and validation) in ``self.data``, detached.

    They stay on the device (no host sync per batch; fastai moves each batch to the CPU); pass
    ``cpu=True`` to move them as they come."""
    _stateattrs = ('data',)

    def __init__(self, cpu: bool = False) -> None:
        self.cpu = cpu
        self.data: list = []

    def before_fit(self) -> None:
        "Start an empty collection."
        self.data = []

    def after_batch(self) -> None:
        "Keep the batch's ``(xb, yb, pred, loss)``, detached."
        learn = self.learn
        self.data.append(to_detach((learn.xb, learn.yb, learn.pred, learn.loss), cpu=self.cpu))
