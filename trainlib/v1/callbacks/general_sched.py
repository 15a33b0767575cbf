"""fastai-1's ``GeneralScheduler``: hyper-parameters scheduled in phases (``TrainingPhase``), each a set of
:class:`~trainlib.v1.callback.Scheduler` objects over the core's annealers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Collection

from ..basic_train import LearnerCallback
from ..callback import Scheduler
from ..core import ifnone
from ._checks import check_arg, is_count

__all__ = ['GeneralScheduler', 'TrainingPhase']


@dataclass
class TrainingPhase:
    "A phase of ``length`` training batches; ``schedule_hp`` adds a hyper-parameter's schedule to it."
    length: int

    def __post_init__(self) -> None:
        check_arg(is_count(self.length), 'TrainingPhase', 'length', 'an int >= 0 (a number of batches)', self.length)
        self.scheds: dict = {}

    def schedule_hp(self, name: str, vals: Any, anneal: Callable | None = None) -> 'TrainingPhase':
        """Schedule the optimizer's ``name`` (lr, mom, beta, wd or any key of the torch optimizer) from
        ``vals``: a tuple ``(start, end)`` (default linear) or a constant; ``anneal(start, end, pct)``."""
        self.scheds[name] = Scheduler(vals, self.length, anneal)
        return self


class GeneralScheduler(LearnerCallback):
    """Run the ``phases`` one after the other: at the end of each training batch every schedule of the
    current phase steps (``learn.opt.set_stat``); the next phase starts when the current phase's first
    schedule is done, and the fit stops when no phase is left. ``start_epoch`` resumes in the middle."""

    def __init__(self, learn: Any, phases: Collection[TrainingPhase], start_epoch: int | None = None) -> None:
        super().__init__(learn)
        bad = [p for p in phases if not isinstance(p, TrainingPhase) or not p.scheds]
        check_arg(not bad, type(self).__name__, 'phases', 'TrainingPhases with at least one schedule_hp each',
                  bad[0] if bad else None)
        self.phases, self.start_epoch = phases, start_epoch

    def on_train_begin(self, epoch: int, **kwargs: Any) -> dict | None:
        "Start every schedule over and set the first phase's starting values."
        res = None if self.start_epoch is None else {'epoch': self.start_epoch}
        self.start_epoch = ifnone(self.start_epoch, epoch)
        self.scheds = [p.scheds for p in self.phases]
        self.opt = self.learn.opt
        for scheds in self.scheds:
            for s in scheds.values(): s.restart()
        for k, s in self.scheds[0].items(): self.opt.set_stat(k, s.start)
        self.idx_s = 0
        return res

    def jump_to_epoch(self, epoch: int) -> None:
        "Resuming at ``epoch``: advance the schedules by that many epochs of batches."
        for _ in range(len(self.learn.data.train_dl) * epoch): self.on_batch_end(True)

    def on_batch_end(self, train: bool, **kwargs: Any) -> dict | None:
        "After a training batch: step the current phase (stop the fit once every phase is done)."
        if not train: return None
        if self.idx_s >= len(self.scheds): return {'stop_training': True, 'stop_epoch': True}
        scheds = self.scheds[self.idx_s]
        for k, s in scheds.items(): self.opt.set_stat(k, s.step())
        if next(iter(scheds.values())).is_done: self.idx_s += 1
        return None
