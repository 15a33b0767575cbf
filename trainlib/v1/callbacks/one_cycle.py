"""fastai-1's ``OneCycleScheduler``: the 1cycle policy (Leslie Smith) as a v1 callback, stepping
:class:`~trainlib.v1.callback.Scheduler` objects over the core's ``annealing_cos``."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..basic_train import LearnerCallback
from ..callback import Scheduler, annealing_cos
from ..core import ifnone, is_listy, listify
from ._checks import check_arg

__all__ = ['OneCycleScheduler']


class OneCycleScheduler(LearnerCallback):
    """Train with the 1cycle policy: over the first ``pct_start`` of the batches the lr rises (cosine) from
    ``lr_max/div_factor`` to ``lr_max`` while the momentum falls from ``moms[0]`` to ``moms[1]``; then the
    lr falls to ``lr_max/final_div`` (default ``div_factor*1e4``) and the momentum rises back.

    The schedule covers ``tot_epochs`` epochs (default: the fit's); ``start_epoch`` resumes in the middle.
    The value for batch ``i`` is set at the end of batch ``i-1`` (the last one is left in ``learn.opt``).
    With ``n*pct_start < 1`` (``n`` batches in all) the warm-up still takes one batch, so the cycle is cut
    short at its end, as in fastai 1.0.61."""

    def __init__(self, learn: Any, lr_max: Any, moms: Any = (0.95, 0.85), div_factor: float = 25.,
                 pct_start: float = 0.3, final_div: float | None = None, tot_epochs: int | None = None,
                 start_epoch: int | None = None) -> None:
        super().__init__(learn)
        who = type(self).__name__
        check_arg(0 <= pct_start <= 1, who, 'pct_start', 'between 0 and 1', pct_start)
        check_arg(div_factor > 0, who, 'div_factor', '> 0', div_factor)
        check_arg(final_div is None or final_div > 0, who, 'final_div', 'None or > 0', final_div)
        self.lr_max = np.array(lr_max) if is_listy(lr_max) else lr_max
        self.div_factor, self.pct_start = div_factor, pct_start
        self.final_div = ifnone(final_div, div_factor * 1e4)
        self.moms = tuple(listify(moms, 2))
        self.start_epoch, self.tot_epochs = start_epoch, tot_epochs

    def steps(self, *steps_cfg: Any) -> list:
        "One Scheduler per phase of ``self.phases``, from the ``(start, end)`` pairs ``steps_cfg``."
        return [Scheduler(vals, n_iter, func=func) for vals, (n_iter, func) in zip(steps_cfg, self.phases)]

    def on_train_begin(self, n_epochs: int, epoch: int, **kwargs: Any) -> dict | None:
        "Build the two phases over the whole cycle and set the starting lr and momentum."
        res = None if self.start_epoch is None else {'epoch': self.start_epoch}
        self.start_epoch = ifnone(self.start_epoch, epoch)
        self.tot_epochs = ifnone(self.tot_epochs, n_epochs)
        n = len(self.learn.data.train_dl) * self.tot_epochs
        warm = int(n * self.pct_start)
        self.phases = ((warm, annealing_cos), (n - warm, annealing_cos))
        self.lr_scheds = self.steps((self.lr_max / self.div_factor, self.lr_max),
                                    (self.lr_max, self.lr_max / self.final_div))
        self.mom_scheds = self.steps(self.moms, (self.moms[1], self.moms[0]))
        self.opt = self.learn.opt
        self.opt.lr, self.opt.mom = self.lr_scheds[0].start, self.mom_scheds[0].start
        self.idx_s = 0
        return res

    def jump_to_epoch(self, epoch: int) -> None:
        "Resuming at ``epoch``: advance the schedule by that many epochs of batches."
        for _ in range(len(self.learn.data.train_dl) * epoch): self.on_batch_end(True)

    def on_batch_end(self, train: bool, **kwargs: Any) -> dict | None:
        "After a training batch: the next lr and momentum (stop the fit once both phases are done)."
        if not train: return None
        if self.idx_s >= len(self.lr_scheds): return {'stop_training': True, 'stop_epoch': True}
        lr_sched = self.lr_scheds[self.idx_s]
        self.opt.lr = lr_sched.step()
        self.opt.mom = self.mom_scheds[self.idx_s].step()
        if lr_sched.is_done: self.idx_s += 1
        return None

    def on_epoch_end(self, epoch: int, **kwargs: Any) -> dict | None:
        "Stop after ``tot_epochs`` epochs."
        return {'stop_training': True} if epoch > self.tot_epochs else None
