"""The learning-rate finder: a short fit with an exponentially growing lr, then suggestions read off its losses.

``learn.lr_find()`` trains at most ``num_it`` batches with :class:`LRFinder`, puts the weights and the
optimizer back, and returns a ``SuggestedLRs`` namedtuple with one lr per suggestion function
(:func:`valley` by default; also :func:`slide`, :func:`minimum`, :func:`steep`). A suggestion function
is ``f(lrs, losses, num_it) -> (lr, (x, y))``, where ``(x, y)`` is the point to mark on the plot; like
fastai, they work on float32 copies of the recorded lrs and smoothed losses.
"""
from __future__ import annotations

import math
import shutil
import tempfile
from collections import namedtuple
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .events import CancelFitException, CancelValidException
from .metrics import func_name
from .schedule import ParamScheduler, SchedExp, ScheduleError
from .utils import is_listy

__all__ = ['LRFinder', 'lr_find', 'valley', 'slide', 'minimum', 'steep', 'SuggestionMethod']


def _per_group(v: Any) -> Any:
    return np.array(v, dtype=np.float64) if is_listy(v) or isinstance(v, np.ndarray) else v


class LRFinder(ParamScheduler):
    """Train with the lr growing exponentially from ``start_lr`` to ``end_lr`` over ``num_it`` batches
    (at least 6; lists give one lr per parameter group), without validation, and stop early when the
    smoothed loss passes 4x its best or is NaN (``stop_div``). The weights and the optimizer state are
    saved under ``path/model_dir`` first and restored at ``after_fit`` (also when the fit fails).

    With ``stop_div`` it reads the smoothed loss on the host once per batch: the stop needs it."""

    def __init__(self, start_lr: Any = 1e-7, end_lr: Any = 10, num_it: int = 100, stop_div: bool = True) -> None:
        start_lr, end_lr = _per_group(start_lr), _per_group(end_lr)
        if not (np.all(np.asarray(start_lr) > 0) and np.all(np.asarray(end_lr) > 0)):
            raise ScheduleError(f'LRFinder: start_lr and end_lr must be > 0, got {start_lr!r} and {end_lr!r}')
        if not isinstance(num_it, int) or isinstance(num_it, bool) or num_it < 1:
            raise ScheduleError(f'LRFinder: num_it must be a positive int, got {num_it!r}')
        super().__init__({'lr': SchedExp(start_lr, end_lr)})
        self.num_it, self.stop_div = max(num_it, 6), stop_div
        self._tmp_dir: Path | None = None

    def before_fit(self) -> None:
        "Save the model and the optimizer to a temporary file."
        self._tmp_dir = None
        super().before_fit()
        learn = self.learn
        folder = Path(learn.path) / learn.model_dir
        folder.mkdir(parents=True, exist_ok=True)
        self._tmp_dir = Path(tempfile.mkdtemp(dir=folder)).resolve()
        learn.save(self._tmp_dir / '_tmp.pth', with_opt=True)
        self.best_loss = float('inf')

    def before_batch(self) -> None:
        "Set the lr for training batch ``train_iter``: ``start*(end/start)**(train_iter/num_it)``."
        self._set_hypers(self.learn.train_iter / self.num_it)

    def after_batch(self) -> None:
        "Record the lr; stop after ``num_it`` batches or when the loss diverges."
        super().after_batch()
        learn = self.learn
        if self.stop_div:
            loss = float(learn.smooth_loss)
            if loss < self.best_loss: self.best_loss = loss
            if loss > 4 * self.best_loss or math.isnan(loss): raise CancelFitException()
        if learn.train_iter >= self.num_it: raise CancelFitException()

    def before_validate(self) -> None:
        "No validation during the search."
        raise CancelValidException()

    def after_fit(self) -> None:
        "Put the saved weights and optimizer state back, and delete the temporary file."
        learn = self.learn
        try:
            if learn.opt is not None: learn.opt.zero_grad()
            tmp_file = self._tmp_dir / '_tmp.pth' if self._tmp_dir is not None else None
            if tmp_file is not None and tmp_file.exists(): learn.load(tmp_file, with_opt=True)
        finally:
            if self._tmp_dir is not None: shutil.rmtree(self._tmp_dir, ignore_errors=True)
            self._tmp_dir = None
        super().after_fit()


# ====================================================================== suggestions
def _f32(x: Any) -> torch.Tensor:
    if isinstance(x, torch.Tensor): return x.detach().cpu().to(torch.float32).reshape(-1)
    return torch.tensor([float(v) for v in x], dtype=torch.float32)


def _curve(lrs: Any, losses: Any, name: str, need: int) -> tuple[torch.Tensor, torch.Tensor]:
    lrs, losses = _f32(lrs), _f32(losses)
    if len(lrs) != len(losses):
        raise ValueError(f'{name}: lrs and losses must have the same length, got {len(lrs)} and {len(losses)}')
    if len(losses) < need:
        raise ValueError(f'{name}: needs at least {need} point{"s" * (need > 1)} of the lr/loss curve, got {len(losses)}; '
                         f'lr_find drops the first num_it//10 and the last 5 batches and stops at the first NaN, '
                         f'so run it with a larger num_it (or stop_div=False)')
    return lrs, losses


def _first_at(lrs: torch.Tensor, lr: float) -> int:
    "The first index where the (float32) lr equals ``lr``."
    return int((lrs == lr).nonzero()[0, 0])


def valley(lrs: Any, losses: Any, num_it: int | None = None) -> tuple[float, tuple]:
    """The lr about halfway down the longest valley, the longest run of decreasing losses (fastai's
    default suggestion)."""
    lrs, losses = _curve(lrs, losses, 'valley', 1)
    vals = losses.tolist()
    run = [1] * len(vals)      # length of the longest decreasing subsequence ending at each point
    for i, v in enumerate(vals):
        run[i] = 1 + max((run[j] for j in range(i) if vals[j] > v), default=0)
    end = run.index(max(run))
    start = end - run[end] if run[end] > 1 else 0      # (sic) one point before the valley, as fastai
    third = (end - start) / 3
    idx = start + int(third) + int(third / 2)
    lr = float(lrs[idx])
    return lr, (lr, float(losses[idx]))


def slide(lrs: Any, losses: Any, num_it: int | None = None, lr_diff: int = 15, thresh: float = .005,
          adjust_value: float = 1.) -> tuple[float, tuple]:
    """Walking a window of ``lr_diff`` points back from the end of the curve, the lr at its left end
    just before the loss gradients at its two ends come within ``thresh`` (times ``adjust_value``)."""
    lrs, losses = _curve(lrs, losses, 'slide', lr_diff + 1)
    loss = losses.numpy()
    grad = np.gradient(loss)
    n = len(loss)
    n_windows = n - lr_diff
    stop = next((k for k in range(n_windows) if not abs(grad[n - 1 - k] - grad[n - 1 - k - lr_diff]) > thresh),
                n_windows)
    lr = float(lrs[n - 1 - lr_diff - max(stop - 1, 0)]) * adjust_value
    return lr, (lr, float(np.interp(np.log10(lr), np.log10(lrs.numpy()), loss)))


def minimum(lrs: Any, losses: Any, num_it: int | None = None) -> tuple[float, tuple]:
    "A tenth of the lr with the lowest loss."
    lrs, losses = _curve(lrs, losses, 'minimum', 1)
    lr_min = float(lrs[int(losses.argmin())])
    return lr_min / 10, (lr_min, float(losses[_first_at(lrs, lr_min)]))


def steep(lrs: Any, losses: Any, num_it: int | None = None) -> tuple[float, tuple]:
    "The lr where the loss falls fastest against log(lr)."
    lrs, losses = _curve(lrs, losses, 'steep', 2)
    slopes = (losses[1:] - losses[:-1]) / (lrs[1:].log() - lrs[:-1].log())
    lr = float(lrs[int(slopes.argmin())])
    return lr, (lr, float(losses[_first_at(lrs, lr)]))


class SuggestionMethod:
    "The suggestion functions by name, for tab completion: ``suggest_funcs=(SuggestionMethod.Valley,)``."
    Valley, Slide, Minimum, Steep = staticmethod(valley), staticmethod(slide), staticmethod(minimum), staticmethod(steep)


# ====================================================================== the Learner method
def _finder_curve(recorder: Any, num_it: int) -> tuple[torch.Tensor, torch.Tensor]:
    "The recorded lrs and smoothed losses without the first ``num_it//10`` and last 5, cut at the first NaN."
    lrs, losses = _f32(recorder.lrs[num_it // 10:-5]), _f32(recorder.losses[num_it // 10:-5])
    nans = torch.isnan(losses).nonzero()
    if len(nans): lrs, losses = lrs[:int(nans[0, 0])], losses[:int(nans[0, 0])]
    return lrs, losses


def lr_find(learn: Any, start_lr: Any = 1e-7, end_lr: Any = 10, num_it: int = 100, stop_div: bool = True,
            show_plot: bool = True, suggest_funcs: Any = (valley,)) -> Any:
    """Find a good learning rate: train ``num_it`` batches with the lr growing from ``start_lr`` to
    ``end_lr`` (see :class:`LRFinder`), restore the model and optimizer, plot the loss against the lr
    (``show_plot``) and return ``SuggestedLRs(<name>=lr, ...)``, one per function of ``suggest_funcs``
    (None: no suggestions, returns None)."""
    finder = LRFinder(start_lr=start_lr, end_lr=end_lr, num_it=num_it, stop_div=stop_div)
    n_epoch = num_it // len(learn.dls.train) + 1
    with learn.no_logging(): learn.fit(n_epoch, cbs=finder)
    if suggest_funcs is None:
        if show_plot: learn.recorder.plot_lr_find()
        return None
    funcs = list(suggest_funcs) if is_listy(suggest_funcs) else [suggest_funcs]
    lrs, losses = _finder_curve(learn.recorder, num_it)
    results = [f(lrs, losses, num_it) for f in funcs]
    names = [func_name(f) for f in funcs]
    if show_plot: learn.recorder.plot_lr_find(suggestions=[point for _, point in results], nms=names)
    return namedtuple('SuggestedLRs', names, rename=True)(*[lr for lr, _ in results])
