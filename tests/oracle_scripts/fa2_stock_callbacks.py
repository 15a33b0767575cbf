"""What fastai 2.8.12's stock callbacks print, stop at, save and set, on synth_learner.

Run:  /tmp/trainlib-oracle/fa2/bin/python tests/oracle_scripts/fa2_stock_callbacks.py > tests/golden/fa2_stock_callbacks.txt
(from a scratch directory is fine: every case runs in its own temporary folder).
tests/callbacks/test_oracle.py runs the same cases on trainlib and compares section by section.
"""
import io, math, os, random, tempfile, warnings
from contextlib import redirect_stdout
import numpy as np, torch
import fastai
from fastai.learner import Callback
from fastai.callback.all import *
from fastai.metrics import ValueMetric
from fastai.test_utils import synth_learner
from fastcore.basics import noop
warnings.simplefilter('ignore')


def scripted(values, name='scripted_loss'):
    it = iter(values)
    return ValueMetric(lambda: next(it), metric_name=name)


def quiet(**kwargs):
    torch.manual_seed(0); random.seed(0); np.random.seed(0)
    learn = synth_learner(**kwargs)
    learn.remove_cb(ProgressCallback)
    learn.logger = noop
    return learn


class LrAtEpochEnd(Callback):
    order = 70
    def before_fit(self): self.lrs = []
    def after_epoch(self): self.lrs.append(self.opt.hypers[-1]['lr'])


class CountBatches(Callback):
    def before_fit(self): self.n_train, self.n_valid = 0, 0
    def after_pred(self):
        if self.training: self.n_train += 1
        else: self.n_valid += 1


class PoisonLoss(Callback):
    def __init__(self, at): self.at = at
    def after_pred(self):
        if self.training and self.train_iter >= self.at: self.learn.pred = self.pred * float('nan')


def run(fit):
    out = io.StringIO()
    with tempfile.TemporaryDirectory() as d:
        old = os.getcwd(); os.chdir(d)
        try:
            with redirect_stdout(out): extra = fit()
        finally: os.chdir(old)
    return out.getvalue().splitlines() + extra


def early_stopping():
    learn = quiet(cbs=EarlyStoppingCallback(monitor='scripted_loss', patience=2), metrics=scripted([5., 4., 4.5, 4.2, 3., 2.]))
    learn.fit(6)
    return [f'epoch={learn.epoch} rows={len(learn.recorder.values)}']


def reduce_lr():
    lrs = LrAtEpochEnd()
    learn = quiet(cbs=[ReduceLROnPlateau(monitor='scripted_loss', patience=1, factor=10.), lrs],
                  metrics=scripted([2., 3., 3., 1., 4.]), lr=0.01)
    learn.fit(5)
    return [f'lrs={lrs.lrs}']


def reduce_lr_min_lr():
    lrs = LrAtEpochEnd()
    learn = quiet(cbs=[ReduceLROnPlateau(monitor='scripted_loss', min_lr=5e-4), lrs], metrics=scripted([2., 3., 3., 3.]),
                  lr=0.01)
    learn.fit(4)
    return [f'lrs={lrs.lrs}']


def save_model():
    learn = quiet(cbs=SaveModelCallback(monitor='scripted_loss'), metrics=scripted([3., 1., 2.]), lr=0.1)
    learn.fit(3)
    return [f'files={sorted(os.listdir("models"))}']


def save_model_every_epoch():
    learn = quiet(cbs=SaveModelCallback(every_epoch=2))
    learn.fit(5)
    return [f'files={sorted(os.listdir("models"))}']


def csv_logger():
    learn = quiet(cbs=CSVLogger())
    learn.fit(2)
    lines = open('history.csv').read().splitlines()
    return [lines[0]] + [f'row {i}: {len(l.split(","))} cells, epoch {l.split(",")[0]}, time {l.split(",")[-1]}'
                         for i, l in enumerate(lines[1:])]


def short_epoch():
    counts = CountBatches()
    learn = quiet(n_trn=10, n_val=8, cbs=[ShortEpochCallback(pct=0.25), counts])
    learn.fit(2)
    return [f'train={counts.n_train} valid={counts.n_valid} rows={learn.recorder.values}']


def terminate_on_nan():
    learn = quiet(n_trn=10, cbs=[TerminateOnNaNCallback(), PoisonLoss(at=13)])
    learn.fit(3)
    return [f'epoch={learn.epoch} iter={learn.iter} train_iter={learn.train_iter} '
            f'losses={len(learn.recorder.losses)} rows={len(learn.recorder.values)}']


CASES = [early_stopping, reduce_lr, reduce_lr_min_lr, save_model, save_model_every_epoch, csv_logger, short_epoch,
         terminate_on_nan]

if __name__ == '__main__':
    print(f'# tests/oracle_scripts/fa2_stock_callbacks.py, fastai {fastai.__version__}, torch {torch.__version__}')
    for case in CASES:
        print(f'=== {case.__name__}')
        for line in run(case): print(line)
