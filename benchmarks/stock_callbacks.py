"""Per-batch cost of the stock callbacks' own events, on the CPU.

Each callback sits alone on a Learner (no default callbacks) that is put in the middle of a training
batch; the batch events it listens to are fired in loop order, many times, and the best of several
repeats is kept (robust to a busy machine, unlike timing whole fits). What it leaves out: the work
of hooks inside the forward pass (ActivationStats) and of autocast on the forward (MixedPrecision).

Run:  PYTHONPATH=. /work/main/.venv/bin/python benchmarks/stock_callbacks.py
"""
import os
import tempfile
import timeit

import torch

from trainlib import (ActivationStats, BnFreeze, CancelException, CollectDataCallback, CSVLogger, EarlyStoppingCallback,
                      GradientAccumulation, GradientClip, Learner, MixedPrecision, MSELossFlat, ReduceLROnPlateau,
                      SaveModelCallback, TerminateOnNaNCallback, TrainEvalCallback, Recorder)
from trainlib.testing import RegModel, synth_dbunch

BATCH_EVENTS = ('before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward', 'before_step',
                'after_step', 'after_batch')
N, REPEATS = 2000, 7


def mid_batch_learner(cb):
    "A Learner holding only ``cb`` (and the Recorder the trackers need), inside a training batch."
    learn = Learner(synth_dbunch(), RegModel(), loss_func=MSELossFlat(), cbs=[TrainEvalCallback(), Recorder(), cb],
                    default_cbs=False)
    learn.create_opt()
    learn.n_epoch = 1
    learn('before_fit'); learn('before_epoch')
    learn.dl = learn.dls.train
    learn.n_iter = len(learn.dl)
    learn('before_train')
    x, y = next(iter(learn.dl))
    learn.xb, learn.yb = (x,), (y,)
    learn.pred = learn.model(x)
    learn.loss_grad = learn.loss_func(learn.pred, y)
    learn.loss = learn.loss_grad.detach().clone()
    learn.loss_grad.backward(retain_graph=True)
    return learn


def us_per_batch(cb):
    "Microseconds for one batch's worth of the events ``cb`` listens to."
    learn = mid_batch_learner(cb)
    methods = [m for e in BATCH_EVENTS for m in learn._train_cbs[e] if getattr(m, '__self__', None) is cb]

    def one_batch():
        for m in methods:
            try: m()
            except CancelException: pass
    return min(timeit.repeat(one_batch, number=N, repeat=REPEATS)) / N * 1e6


CASES = {
    'TerminateOnNaN (check_every=1)': lambda: TerminateOnNaNCallback(),
    'TerminateOnNaN (check_every=50)': lambda: TerminateOnNaNCallback(check_every=50),
    'EarlyStoppingCallback': lambda: EarlyStoppingCallback(),
    'SaveModelCallback': lambda: SaveModelCallback(),
    'ReduceLROnPlateau': lambda: ReduceLROnPlateau(),
    'GradientAccumulation(64)': lambda: GradientAccumulation(64),
    'GradientClip': lambda: GradientClip(),
    'BnFreeze': lambda: BnFreeze(),
    'CSVLogger': lambda: CSVLogger(),
    'CollectDataCallback': lambda: CollectDataCallback(),
    'ActivationStats (events only)': lambda: ActivationStats(),
    'MixedPrecision(bf16) (events only)': lambda: MixedPrecision('bf16'),
}

if __name__ == '__main__':
    os.chdir(tempfile.mkdtemp())
    torch.set_num_threads(1)
    for name, make in CASES.items(): print(f'{name:36} {us_per_batch(make()):7.2f} us/batch')
