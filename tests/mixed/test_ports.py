"""The v2 ports of tests/mixed/ports.py give the same numbers as the v1 originals run through trainlib.v1.

The originals here are v1-style callbacks written from spec v1 §8.2 and §10 (fastai 1's OneCycleScheduler and
EarlyStoppingCallback); when trainlib.v1 ships its own (``trainlib.v1.callbacks``), they are checked too."""
import importlib
from functools import partial

import numpy as np
import pytest
import torch

import trainlib
import trainlib.v1 as v1
from trainlib.v1 import Scheduler, annealing_cos

import ports
from mixed_setup import v1_learner, v2_learner


# ---------------------------------------------------------------- the v1 originals (fastai-1 style)
class OneCycleSchedulerV1(v1.LearnerCallback):
    "1cycle as fastai 1 runs it: two cosine phases of Scheduler steps, stepped at each training on_batch_end."

    def __init__(self, learn, lr_max, moms=(0.95, 0.85), div_factor=25., pct_start=0.3, final_div=None,
                 tot_epochs=None, start_epoch=None):
        super().__init__(learn)
        self.lr_max, self.moms, self.div_factor, self.pct_start = lr_max, tuple(moms), div_factor, pct_start
        self.final_div = div_factor * 1e4 if final_div is None else final_div
        self.tot_epochs, self.start_epoch = tot_epochs, start_epoch

    def on_train_begin(self, n_epochs, **kwargs):
        n = len(self.learn.data.train_dl) * (self.tot_epochs or n_epochs)
        a1 = int(n * self.pct_start)
        low, top = self.lr_max / self.div_factor, self.lr_max
        self.phases = [(Scheduler((low, top), a1, annealing_cos), Scheduler(self.moms, a1, annealing_cos)),
                       (Scheduler((top, top / self.final_div), n - a1, annealing_cos),
                        Scheduler((self.moms[1], self.moms[0]), n - a1, annealing_cos))]
        self.learn.opt.lr, self.learn.opt.mom = low, self.moms[0]
        return {'epoch': self.start_epoch} if self.start_epoch is not None else None

    def jump_to_epoch(self, epoch):
        for _ in range(len(self.learn.data.train_dl) * epoch): self.on_batch_end(train=True)

    def on_batch_end(self, train, **kwargs):
        if not train: return None
        if not self.phases: return {'stop_epoch': True, 'stop_training': True}
        lr_sched, mom_sched = self.phases[0]
        self.learn.opt.lr, self.learn.opt.mom = lr_sched.step(), mom_sched.step()
        if lr_sched.is_done: self.phases.pop(0)
        return None


class EarlyStoppingCallbackV1(v1.LearnerCallback):
    "Early stopping as fastai 1 does it: reads the v1 Recorder at on_epoch_end, returns stop_training."

    def __init__(self, learn, monitor='valid_loss', mode='auto', min_delta=0, patience=0):
        super().__init__(learn)
        if mode == 'auto': mode = 'min' if 'loss' in monitor or 'error' in monitor else 'max'
        self.monitor, self.patience, self.op = monitor, patience, np.less if mode == 'min' else np.greater
        self.min_delta = -min_delta if mode == 'min' else min_delta

    def on_train_begin(self, **kwargs):
        self.best, self.wait = (np.inf if self.op is np.less else -np.inf), 0

    def monitored(self):
        rec = self.learn.recorder
        if rec.val_losses[-1] is None: return None
        values = {'train_loss': rec.losses[-1], 'valid_loss': rec.val_losses[-1],
                  **dict(zip(rec.names[3:-1], rec.metrics[-1] if rec.metrics else []))}
        return float(values[self.monitor])

    def on_epoch_end(self, epoch, **kwargs):
        value = self.monitored()
        if value is None: return None
        if self.op(value - self.min_delta, self.best): self.best, self.wait = value, 0
        else:
            self.wait += 1
            if self.wait > self.patience:
                print(f'Epoch {epoch}: early stopping')
                return {'stop_training': True}
        return None


def v1_originals():
    "Ours, and trainlib.v1's stock callbacks once they exist."
    out = [(OneCycleSchedulerV1, EarlyStoppingCallbackV1)]
    try: stock = importlib.import_module('trainlib.v1.callbacks')
    except ImportError: return out
    return out + [(stock.OneCycleScheduler, stock.EarlyStoppingCallback)]


ORIGINALS = pytest.mark.parametrize('one_cycle, early_stopping', v1_originals(), ids=['ours', 'stock'][:len(v1_originals())])


def pair():
    "The two Learners, with SGD whose momentum the schedule drives."
    old = v1_learner(opt_func=partial(torch.optim.SGD, lr=0.1, momentum=0.9))
    new = v2_learner(opt_func=partial(trainlib.SGD, mom=0.9))
    return old, new


class MomRecord(trainlib.Callback):
    "The momentum each training batch used (the v2 Recorder records only lrs)."
    order = 50
    def __init__(self): self.moms = []
    def after_batch(self):
        if self.training: self.moms.append(self.learn.opt.get_hyper('mom'))


# ---------------------------------------------------------------- OneCycleScheduler
@ORIGINALS
@pytest.mark.parametrize('n_epoch, kwargs, fit_kwargs', [
    (2, dict(lr_max=0.05), {}),                                      # n=4: a1=1, a2=3
    (3, dict(lr_max=0.05, pct_start=0.1, tot_epochs=1), {}),         # a1=0 (one step), stops after 2 epochs
    (3, dict(lr_max=0.05, div_factor=10., final_div=100.), dict(start_epoch=1))])   # resumed
def test_one_cycle_port_matches_the_v1_original(one_cycle, early_stopping, n_epoch, kwargs, fit_kwargs):
    old, new = pair()
    start = fit_kwargs.get('start_epoch')
    old.fit(n_epoch, 0.05, callbacks=[one_cycle(old, start_epoch=start, **kwargs)])
    moms = MomRecord()
    new.fit(n_epoch, cbs=[ports.OneCycleScheduler(**kwargs), moms], **fit_kwargs)
    np.testing.assert_allclose(new.recorder.lrs, [float(x) for x in old.recorder.lrs], rtol=1e-12)
    np.testing.assert_allclose(moms.moms, [float(x) for x in old.recorder.moms], rtol=1e-12)
    assert new.opt.get_hyper('lr') == pytest.approx(float(old.opt.lr), rel=1e-12)    # the last value stays
    assert len([r for r in new.recorder.values if r]) == len(old.recorder.nb_batches)  # epochs that trained
    torch.testing.assert_close(new.model.weight, old.model.weight)


# ---------------------------------------------------------------- EarlyStoppingCallback
SCRIPT = [0.5, 0.6, 0.55, 0.58, 0.7, 0.9]


def scripted_metric(learn):
    "A metric (the same function for both generations) worth SCRIPT[epoch]."
    def scripted(out, *targets): return torch.tensor(SCRIPT[learn.epoch])
    return scripted


@ORIGINALS
@pytest.mark.parametrize('kwargs, stops_at', [
    (dict(monitor='scripted', patience=1), 3),               # 'max' by auto: best 0.6, then two worse epochs
    (dict(monitor='scripted', patience=0, min_delta=0.2), 1),
    (dict(monitor='valid_loss', min_delta=10.), 1),           # 'min': no epoch improves by 10
    (dict(monitor='scripted', mode='min', patience=4), None)])
def test_early_stopping_port_matches_the_v1_original(one_cycle, early_stopping, kwargs, stops_at, capsys):
    old, new = pair()
    old.metrics, new.metrics = [scripted_metric(old)], [scripted_metric(new)]
    old.fit(5, 0.05, callbacks=[early_stopping(old, **kwargs)])
    out_old = capsys.readouterr().out
    new.fit(5, 0.05, cbs=[ports.EarlyStoppingCallback(**kwargs)])
    out_new = capsys.readouterr().out
    n = 5 if stops_at is None else stops_at + 1
    assert len(old.recorder.val_losses) == len(new.recorder.values) == n
    assert out_old == out_new == ('' if stops_at is None else f'Epoch {stops_at}: early stopping\n')
    torch.testing.assert_close(new.model.weight, old.model.weight)
