"""fastai 1's OneCycleScheduler and EarlyStoppingCallback, ported to v2 callbacks (the worked examples of
MIGRATION.md, "Porting a callback"). Each gives the same numbers as the v1 original run through trainlib.v1;
tests/mixed/test_ports.py checks it. Written from their documented behaviour (spec v1 §8.2 and §10)."""
import numpy as np

from trainlib import Callback, CancelFitException, CancelTrainException
from trainlib.schedule import annealing_cos


class OneCycleScheduler(Callback):
    """The 1cycle policy of fastai 1: lr ``lr_max/div_factor -> lr_max -> lr_max/final_div`` and momentum
    ``moms[0] -> moms[1] -> moms[0]``, cosine, over ``pct_start`` and the rest of ``tot_epochs`` epochs.

    v1 -> v2: on_train_begin -> before_fit; on_batch_end(train) -> after_batch with ``run_valid=False``;
    ``opt.lr``/``opt.mom`` -> ``opt.set_hyper``; returning ``stop_epoch``+``stop_training`` -> CancelTrainException
    now and CancelFitException at after_epoch. ``start_epoch`` -> ``learn.fit(n, start_epoch=k)``: the schedule
    follows the position of the batch (``epoch``, ``iter``), so skipped epochs advance it, as jump_to_epoch did."""
    order, run_valid = 60, False         # after the Recorder (50): it records a batch's lr before the next is set

    def __init__(self, lr_max, moms=(0.95, 0.85), div_factor=25., pct_start=0.3, final_div=None, tot_epochs=None):
        self.lr_max = np.array(lr_max) if isinstance(lr_max, (list, tuple)) else lr_max
        self.moms, self.div_factor, self.pct_start = tuple(moms), div_factor, pct_start
        self.final_div = div_factor * 1e4 if final_div is None else final_div
        self.tot_epochs = tot_epochs

    def before_fit(self):
        n = len(self.dls.train) * (self.tot_epochs or self.n_epoch)
        a1 = int(n * self.pct_start)
        self.lengths = (max(1, a1), max(1, n - a1))          # a phase takes at least one step, as fastai 1's
        low, top = self.lr_max / self.div_factor, self.lr_max
        self.lr_phases = ((low, top), (top, top / self.final_div))
        self.mom_phases = (self.moms, (self.moms[1], self.moms[0]))
        self.stop = False
        self._set(0)

    def _value(self, phases, step):
        "The value after ``step`` steps: the start, then each phase's cosine, one phase after the other."
        (s1, e1), (s2, e2) = phases
        if step <= self.lengths[0]: return annealing_cos(s1, e1, step / self.lengths[0])
        return annealing_cos(s2, e2, (step - self.lengths[0]) / self.lengths[1])

    def _set(self, step):
        self.learn.opt.set_hyper('lr', self._value(self.lr_phases, step))
        self.learn.opt.set_hyper('mom', self._value(self.mom_phases, step))

    def before_batch(self):
        self._set(self.step)                     # where a resumed fit (start_epoch) starts

    @property
    def step(self):
        "How many training batches came before this one in the schedule."
        return self.epoch * self.n_iter + self.iter

    def after_batch(self):
        if self.step >= sum(self.lengths):       # both phases done: finish this epoch, then stop
            self.stop = True
            raise CancelTrainException
        self._set(self.step + 1)                 # the next batch's values (the last ones stay in the optimizer)

    def after_epoch(self):
        if self.stop: raise CancelFitException


class EarlyStoppingCallback(Callback):
    """Stop when ``monitor`` (a column of the Recorder) has not improved by ``min_delta`` for more than
    ``patience`` epochs. ``mode='auto'``: lower is better for a name with 'loss' or 'error', higher otherwise.

    v1 -> v2: on_train_begin -> before_fit; on_epoch_end -> after_epoch (order 60: after the Recorder's row);
    ``recorder.val_losses[-1]``/``metrics[-1]``/``names[3:-1]`` -> ``recorder.values[-1]`` and
    ``recorder.metric_names``; returning ``{'stop_training': True}`` -> CancelFitException."""
    order = 60

    def __init__(self, monitor='valid_loss', mode='auto', min_delta=0., patience=0):
        if mode == 'auto': mode = 'min' if 'loss' in monitor or 'error' in monitor else 'max'
        self.monitor, self.patience = monitor, patience
        self.better = np.less if mode == 'min' else np.greater
        self.min_delta = -min_delta if mode == 'min' else min_delta

    def before_fit(self):
        self.best = np.inf if self.better is np.less else -np.inf
        self.wait = 0

    def current(self):
        "This epoch's value of ``monitor`` (None when the epoch has none, e.g. no validation)."
        names = [n for n in self.recorder.metric_names[1:] if n != 'time']
        return dict(zip(names, self.recorder.values[-1])).get(self.monitor)

    def after_epoch(self):
        value = self.current()
        if value is None: return
        if self.better(value - self.min_delta, self.best): self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait > self.patience:
                print(f'Epoch {self.epoch}: early stopping')
                raise CancelFitException
