"""fastai-1's tracker callbacks: stop on a NaN loss, and act on the best value of a Recorder column
(early stopping, saving the best model, lowering the lr on a plateau), plus resuming at the saved epoch."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from warnings import warn

import numpy as np
import torch

from ..basic_train import LearnerCallback
from ...callbacks.tracker import default_comp, signed_delta, worst_value
from ...persistence import atomic_write
from ..callback import Callback
from ._checks import check_arg

__all__ = ['TerminateOnNaNCallback', 'EarlyStoppingCallback', 'SaveModelCallback', 'TrackerCallback',
           'ReduceLROnPlateauCallback', 'TrackEpochCallback']


class TerminateOnNaNCallback(Callback):
    """Stop the fit, without validating, at the first batch (training or validation) whose loss is NaN.
    It reads the loss on the host once per batch: knowing it is the point."""

    def __init__(self) -> None:
        self.stop = False

    def on_batch_end(self, last_loss: Any, epoch: int, num_batch: int, **kwargs: Any) -> dict | None:
        "Stop if ``last_loss`` is NaN."
        if self.stop: return {'stop_epoch': True}
        if isinstance(last_loss, torch.Tensor) and bool(torch.isnan(last_loss).any()):
            print(f'Epoch/Batch ({epoch}/{num_batch}): Invalid loss, terminating training.')
            return {'stop_epoch': True, 'stop_training': True, 'skip_validate': True}
        return None


_OPERATORS = {'min': np.less, 'max': np.greater}


class TrackerCallback(LearnerCallback):
    """Keep track of the best value of ``monitor`` ('train_loss', 'valid_loss' or a metric's name).
    ``mode`` 'min' or 'max' says which way is better; 'auto' is 'min' when the name contains 'loss' or
    'error'. Subclasses compare ``get_monitor_value()`` with ``self.best`` at the end of each epoch."""

    def __init__(self, learn: Any, monitor: str = 'valid_loss', mode: str = 'auto') -> None:
        super().__init__(learn)
        check_arg(mode in ('auto', 'min', 'max'), type(self).__name__, 'mode', "'auto', 'min' or 'max'", mode)
        self.monitor, self.mode = monitor, mode
        self.operator = default_comp(monitor) if mode == 'auto' else _OPERATORS[mode]

    def on_train_begin(self, **kwargs: Any) -> None:
        "Start from the worst possible value (and check that ``monitor`` is a column of the Recorder)."
        self.best = worst_value(self.operator)
        names = self._monitorable()
        if names is not None and self.monitor not in names:
            raise ValueError(f'{type(self).__name__}(monitor={self.monitor!r}) at on_train_begin: the Recorder has no '
                             f'column {self.monitor!r}; it records: {", ".join(names)}')

    def _monitorable(self) -> list | None:
        "The names a value can be monitored under (None before the Recorder knows its columns)."
        metric_names = getattr(self.learn.__dict__.get('recorder'), 'metrics_names', None)
        return None if metric_names is None else ['train_loss', 'valid_loss'] + list(metric_names)

    def get_monitor_value(self) -> Any:
        """This epoch's value of ``monitor`` (None without a validation loss this epoch). Unlike fastai 1.0.61,
        the last metric can be monitored also when the Learner was built with ``add_time=False``."""
        rec = self.learn.recorder
        if not rec.val_losses or rec.val_losses[-1] is None: return None
        values = {'train_loss': rec.losses[-1].cpu().numpy(), 'valid_loss': rec.val_losses[-1]}
        if rec.metrics: values.update(zip(rec.metrics_names, rec.metrics[-1]))
        if values.get(self.monitor) is None:
            warn(f'{self.__class__} conditioned on metric `{self.monitor}` which is not available. Available metrics '
                 f'are: {", ".join(map(str, self._monitorable()))}')
        return values.get(self.monitor)


def _plain(v: Any) -> Any:
    "A one-element tensor as a Python float, for numpy's comparison (once per epoch); anything else as it is."
    return v.item() if isinstance(v, torch.Tensor) and v.numel() == 1 else v


class _PatientTracker(TrackerCallback):
    "A tracker that counts the epochs without an improvement of more than ``min_delta``."

    def __init__(self, learn: Any, monitor: str = 'valid_loss', mode: str = 'auto', min_delta: float = 0,
                 patience: int = 0) -> None:
        super().__init__(learn, monitor=monitor, mode=mode)
        self.min_delta, self.patience = signed_delta(self.operator, min_delta), patience

    def on_train_begin(self, **kwargs: Any) -> None:
        "No epoch without improvement yet."
        self.wait = 0
        super().on_train_begin(**kwargs)

    def _out_of_patience(self) -> bool:
        "Compare this epoch's value with the best: True after more than ``patience`` epochs without improvement."
        current = self.get_monitor_value()
        if current is None: return False
        if self.operator(_plain(current) - self.min_delta, _plain(self.best)):
            self.best, self.wait = current, 0
            return False
        self.wait += 1
        return self.wait > self.patience


class EarlyStoppingCallback(_PatientTracker):
    "Stop the fit after more than ``patience`` epochs without an improvement of ``monitor`` by ``min_delta``."

    def __init__(self, learn: Any, monitor: str = 'valid_loss', mode: str = 'auto', min_delta: float = 0,
                 patience: int = 0) -> None:
        super().__init__(learn, monitor=monitor, mode=mode, min_delta=min_delta, patience=patience)

    def on_epoch_end(self, epoch: int, **kwargs: Any) -> dict | None:
        "Stop when out of patience."
        if not self._out_of_patience(): return None
        print(f'Epoch {epoch}: early stopping')
        return {'stop_training': True}


class ReduceLROnPlateauCallback(_PatientTracker):
    """Multiply the lr by ``factor`` after more than ``patience`` epochs without an improvement of
    ``monitor`` by ``min_delta``, while the (last layer group's) lr is above ``min_lr``. Unlike fastai
    1.0.61, which set every layer group to the last group's lr times ``factor``, each group's lr is
    multiplied: discriminative lrs keep their ratios."""

    def __init__(self, learn: Any, monitor: str = 'valid_loss', mode: str = 'auto', patience: int = 0,
                 factor: float = 0.2, min_delta: float = 0, min_lr: float = 0.001) -> None:
        super().__init__(learn, monitor=monitor, mode=mode, min_delta=min_delta, patience=patience)
        check_arg(factor > 0, type(self).__name__, 'factor', '> 0', factor)
        self.factor, self.min_lr = factor, min_lr

    def on_train_begin(self, **kwargs: Any) -> None:
        "Take hold of the optimizer."
        self.opt = self.learn.opt
        super().on_train_begin(**kwargs)

    def on_epoch_end(self, epoch: int, **kwargs: Any) -> None:
        "Lower the lr when out of patience."
        if self._out_of_patience() and self.opt.lr > self.min_lr:
            self.opt.lr = np.array(_layer_group_lrs(self.opt)) * self.factor
            self.wait = 0
            print(f'Epoch {epoch}: reducing lr to {self.opt.lr}')


def _layer_group_lrs(opt: Any) -> list:
    "One lr per layer group: that of the first of each ``[wd, no_wd]`` pair of torch groups (fastai 1's layout)."
    return [g['lr'] for g in opt.opt.param_groups[::2]]


class SaveModelCallback(TrackerCallback):
    """Save the model (``learn.save``) when ``monitor`` improves, as ``name``, and load it after the fit
    (``every='improvement'``); or save ``{name}_{epoch}`` after every epoch (``every='epoch'``).
    Unlike fastai 1.0.61, which loaded any ``name`` file on disk, it loads only a file this fit saved."""

    def __init__(self, learn: Any, monitor: str = 'valid_loss', mode: str = 'auto', every: str = 'improvement',
                 name: str = 'bestmodel') -> None:
        super().__init__(learn, monitor=monitor, mode=mode)
        check_arg(every in ('improvement', 'epoch'), type(self).__name__, 'every', "'improvement' or 'epoch'", every)
        self.every, self.name = every, name
        self._saved = False

    def jump_to_epoch(self, epoch: int) -> None:
        "Resuming at ``epoch``: load the model saved after the epoch before."
        try:
            self.learn.load(f'{self.name}_{epoch - 1}', purge=False)
            print(f'Loaded {self.name}_{epoch - 1}')
        except (OSError, RuntimeError, KeyError): print(f'Model {self.name}_{epoch - 1} not found.')

    def on_train_begin(self, **kwargs: Any) -> None:
        "Nothing saved by this fit yet."
        self._saved = False
        super().on_train_begin(**kwargs)

    def on_epoch_end(self, epoch: int, **kwargs: Any) -> None:
        "Save the model (if it improved, with ``every='improvement'``)."
        if self.every == 'epoch':
            self.learn.save(f'{self.name}_{epoch}')
            return
        current = self.get_monitor_value()
        if isinstance(current, torch.Tensor): current = current.cpu()
        if current is not None and self.operator(_plain(current), _plain(self.best)):
            print(f'Better model found at epoch {epoch} with {self.monitor} value: {current}.')
            self.best = current
            self.learn.save(f'{self.name}')
            self._saved = True

    def on_train_end(self, **kwargs: Any) -> None:
        "Load the best model saved by this fit."
        if self.every == 'improvement' and self._saved: self.learn.load(f'{self.name}', purge=False)


class TrackEpochCallback(LearnerCallback):
    """Write the number of the last completed epoch to ``learn.path/model_dir/name`` and resume after it:
    the next fit starts at that epoch + 1 (or at ``epoch_offset`` when given). ``restart()`` deletes the file."""
    _order = -20

    def __init__(self, learn: Any, name: str = 'epoch', epoch_offset: int | None = None) -> None:
        super().__init__(learn)
        folder = Path(learn.path) / learn.model_dir
        try: folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(f"TrackEpochCallback: can't write to '{folder}' ({e}); set learn.model_dir to a "
                          f"writable folder") from None
        self.path = folder / name
        self.start_epoch = epoch_offset if epoch_offset is not None else self._saved_epoch() + 1

    def _saved_epoch(self) -> int:
        try: return int(self.path.read_text())
        except (OSError, ValueError): return -1

    def on_train_begin(self, **kwargs: Any) -> dict:
        "Start at the saved epoch + 1."
        return {'epoch': self.start_epoch}

    def on_epoch_end(self, epoch: int, **kwargs: Any) -> None:
        "Write the epoch just completed (atomically: a crash leaves the previous one)."
        atomic_write(self.path, lambda f: f.write(f'{epoch}'.encode()))

    def restart(self) -> None:
        "Forget the saved epoch (delete the file)."
        os.remove(self.path)
