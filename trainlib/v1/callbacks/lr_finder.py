"""fastai-1's ``LRFinder``: a mock training with an exponentially growing lr, the weights restored after."""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..basic_train import LearnerCallback
from ..callback import Scheduler, annealing_exp
from ..torch_core import num_distrib
from ._checks import check_arg, is_count

__all__ = ['LRFinder']


def _positive(v: Any) -> bool:
    return bool(np.all(np.asarray(v, dtype=float) > 0))


class LRFinder(LearnerCallback):
    """Train from ``start_lr`` to ``end_lr`` (exponentially) over ``num_it`` batches, without validation.

    The lr of batch ``i`` is ``start_lr*(end_lr/start_lr)**(i/num_it)``, so ``recorder.lrs`` never reaches
    ``end_lr`` (which is left in ``learn.opt``). With ``stop_div`` the search stops when the smoothed loss
    passes 4x its best or is NaN (this reads the smoothed loss on the host once per batch). The weights
    and optimizer state are saved as ``learn.save('tmp')`` first and loaded back at the end, also when the
    fit fails."""

    def __init__(self, learn: Any, start_lr: Any = 1e-7, end_lr: Any = 10, num_it: int = 100,
                 stop_div: bool = True) -> None:
        super().__init__(learn)
        who = type(self).__name__
        check_arg(_positive(start_lr), who, 'start_lr', '> 0 (a number or one per layer group)', start_lr)
        check_arg(_positive(end_lr), who, 'end_lr', '> 0 (a number or one per layer group)', end_lr)
        check_arg(is_count(num_it, 1), who, 'num_it', 'an int >= 1', num_it)
        self.data, self.stop_div = learn.data, stop_div
        self.sched = Scheduler((start_lr, end_lr), num_it, annealing_exp)
        self._saved = False

    def on_train_begin(self, pbar: Any, **kwargs: Any) -> dict:
        "Save the model as 'tmp', start at ``start_lr`` and skip validation."
        if pbar is not None: pbar.clean_on_interrupt = True
        self.learn.save('tmp')
        self._saved = True
        self.opt = self.learn.opt
        self.opt.lr = self.sched.start
        self.stop, self.best_loss = False, 0.
        self._best = None
        return {'skip_validate': True}

    def on_batch_end(self, iteration: int, smooth_loss: Any, **kwargs: Any) -> dict | None:
        "Step the lr; stop at the end of the schedule or when the loss diverges."
        if self.stop_div: diverged = self._diverged(iteration, smooth_loss)
        else:
            diverged = False
            self.best_loss = smooth_loss if iteration == 0 else torch.minimum(self.best_loss, smooth_loss)
        self.opt.lr = self.sched.step()
        if self.sched.is_done or diverged:
            if not self.stop: self.stop = iteration
            if num_distrib() <= 1: return {'stop_epoch': True, 'stop_training': True}
        return None

    def _diverged(self, iteration: int, smooth_loss: Any) -> bool:
        "Track the best smoothed loss (one host read); True when the loss is 4x the best or NaN."
        loss = float(smooth_loss)
        if iteration == 0 or loss < self._best: self.best_loss, self._best = smooth_loss, loss
        return loss > 4 * self._best or loss != loss

    def on_epoch_end(self, **kwargs: Any) -> dict | None:
        "Stop training once stopped."
        return {'stop_training': True} if self.stop else None

    def on_train_end(self, epoch: int, num_batch: int, **kwargs: Any) -> None:
        "Load the saved weights back, reset the model and the callbacks that can be reset, and say so."
        if not self._saved: return          # on_train_begin failed before saving: nothing to restore
        self._saved = False
        self.learn.load('tmp', purge=False)
        if hasattr(self.learn.model, 'reset'): self.learn.model.reset()
        for cb in self.learn.callbacks:
            if hasattr(cb, 'reset'): cb.reset()
        print('LR Finder is complete, type {learner_name}.recorder.plot() to see the graph.')
        total = epoch * num_batch
        if total - self.stop > 10:
            print(f'Best loss at batch #{self.stop}/{total}, may consider .plot(skip_end={total - self.stop + 3})')
