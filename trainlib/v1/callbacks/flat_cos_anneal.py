"""fastai-1's ``FlatCosAnnealScheduler``: a flat lr, then an annealing to 0 (a two-phase GeneralScheduler)."""
from __future__ import annotations

from typing import Any

from ..callback import annealing_cos, annealing_exp, annealing_linear
from ._checks import check_arg
from .general_sched import GeneralScheduler, TrainingPhase

__all__ = ['FlatCosAnnealScheduler']

_CURVES = {'cosine': annealing_cos, 'linear': annealing_linear, 'exponential': annealing_exp}


def FlatCosAnnealScheduler(learn: Any, lr: Any = 4e-3, tot_epochs: int = 1, moms: Any = (0.95, 0.999),
                           start_pct: float = 0.72, curve: str = 'cosine') -> GeneralScheduler:
    """A GeneralScheduler: ``lr`` and ``moms[0]`` for the first ``start_pct`` of the batches of ``tot_epochs``
    epochs, then the lr annealed to 0 along ``curve`` ('cosine', 'linear' or 'exponential') at ``moms[1]``."""
    check_arg(curve in _CURVES, 'FlatCosAnnealScheduler', 'curve', "'cosine', 'linear' or 'exponential'", curve)
    n = len(learn.data.train_dl) * tot_epochs
    flat = int(n * start_pct)
    phases = [TrainingPhase(flat).schedule_hp('lr', lr).schedule_hp('mom', moms[0]),
              TrainingPhase(n - flat).schedule_hp('lr', lr, anneal=_CURVES[curve]).schedule_hp('mom', moms[1])]
    return GeneralScheduler(learn, phases)
