"""Numbers against fastai 2.8.12 (tests/golden/fa2_numbers.txt, from oracle/fa2_numbers.py), to 1e-5.

P1: the portable regression (data and RegModel drawn from torch seed 0, train in order), SGD(mom=0.9),
``fit(3, lr=0.1)``: every batch's raw loss, lr, mom and smoothed loss, each epoch's row, the final params.
P5: a second ``fit(1)`` without ``lr`` trains at ``learn.lr`` again. S1: the genuine ``synth_learner()``
with fastai's shuffled order. (P2-P4 and S2 use ``fit_one_cycle`` and live with the schedules.)
"""
from __future__ import annotations

import ast
import random
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from trainlib.testing import RegModel, synth_learner
from trainlib.v2 import SGD, Callback, DataLoaders, Learner, MSELossFlat, ProgressCallback, noop

GOLDEN = (Path(__file__).parent / 'golden' / 'fa2_numbers.txt').read_text()
TOL = 1e-5


def run(name: str) -> str:
    "The golden text of run ``name`` (from its ``=== name:`` line to the next run)."
    return re.search(rf'^=== {name}:.*?(?=^=== |\Z)', GOLDEN, re.S | re.M).group(0)


def epoch_rows(text: str) -> list[list[float]]:
    return [[float(t), float(v)] for t, v in re.findall(r'train_loss=(\S+) valid_loss=(\S+)', text)]


def params_line(text: str, which: str = 'final') -> dict[str, float]:
    "``{'a': ['1.77'], ...}`` or ``{'a': '1.77'}`` -> ``{'a': 1.77}``."
    d = ast.literal_eval(re.search(rf'{which} params: (\{{.*\}})', text).group(1))
    return {k: float(v[0] if isinstance(v, list) else v) for k, v in d.items()}


def our_params(learn) -> dict[str, float]:
    return {n: p.item() for n, p in learn.model.named_parameters()}


def assert_close(ours, golden, what: str) -> None:
    ours, golden = np.asarray(ours, dtype=float), np.asarray(golden, dtype=float)
    assert ours.shape == golden.shape and np.allclose(ours, golden, rtol=0, atol=TOL), \
        f'{what}:\nours   {ours.tolist()}\nfastai {golden.tolist()}'


class BatchLog(Callback):
    "Per training batch, read at after_batch: (epoch, iter, raw loss, lr, mom, smoothed loss)."
    order = 1000
    def before_fit(self): self.rows = []
    def after_batch(self):
        if self.training:
            self.rows.append((self.epoch, self.iter, self.loss.item(), self.opt.get_hyper('lr'),
                              self.opt.get_hyper('mom'), self.smooth_loss.item()))


def portable_learner() -> Learner:
    "oracle/fa2_numbers.py's portable learner: 10 train batches in order, 2 valid, bs 16."
    torch.manual_seed(0)
    x_tr = torch.randn(160, 1); y_tr = 2 * x_tr + 3 + 0.1 * torch.randn(160, 1)
    x_va = torch.randn(32, 1); y_va = 2 * x_va + 3 + 0.1 * torch.randn(32, 1)
    dls = DataLoaders(DataLoader(TensorDataset(x_tr, y_tr), batch_size=16),
                      DataLoader(TensorDataset(x_va, y_va), batch_size=16), device='cpu')
    learn = Learner(dls, RegModel(), loss_func=MSELossFlat(), opt_func=partial(SGD, mom=0.9), lr=1e-3)
    learn.remove_cb(ProgressCallback); learn.logger = noop
    return learn


@pytest.fixture(scope='module')
def p1():
    "P1 trained once for the module: (learn, per-batch rows, initial params)."
    learn = portable_learner()
    initial = our_params(learn)
    blog = BatchLog()
    learn.fit(3, lr=0.1, cbs=blog)
    return learn, blog.rows, initial


def test_p1_initial_params(p1):
    _, _, initial = p1
    assert_close(list(initial.values()), list(params_line(run('P1'), 'initial').values()), 'initial params')


def test_p1_per_batch_losses_lr_mom_and_smooth_loss(p1):
    _, rows, _ = p1
    golden = [(int(e), int(i), float(loss), float(lr), float(mom), float(sm)) for e, i, loss, lr, mom, sm in
              re.findall(r'(\d) +(\d+) loss=(\S+) lr=(\S+) mom=(\S+) smooth=(\S+)', run('P1'))]
    assert len(golden) == 30 and [r[:2] for r in rows] == [g[:2] for g in golden]
    for col, what in [(2, 'raw losses'), (3, 'lr'), (4, 'mom'), (5, 'smooth losses')]:
        assert_close([r[col] for r in rows], [g[col] for g in golden], what)


def test_p1_epochs_and_final_params(p1):
    learn, _, _ = p1
    text = run('P1')
    assert learn.recorder.metric_names == ast.literal_eval(re.search(r'metric_names: (\[.*\])', text).group(1))
    assert_close(learn.recorder.values, epoch_rows(text), 'recorder.values')
    assert our_params(learn).keys() == params_line(text).keys()
    assert_close(list(our_params(learn).values()), list(params_line(text).values()), 'final params')


def test_p5_second_fit_without_lr_uses_learn_lr():
    learn = portable_learner()
    learn.fit(3, lr=0.1)
    learn.fit(1)
    text = run('P5')
    values = [[float(v) for v in row] for row in ast.literal_eval(re.search(r'2nd fit: (\[\[.*?\]\])', text).group(1))]
    assert_close(learn.recorder.values, values, 'values of the 2nd fit')
    hypers = ast.literal_eval(re.search(r'hypers: (\[.*\])', text).group(1))[0]
    assert {k: learn.opt.hypers[0][k] for k in hypers} == hypers == {'wd': 0.0, 'mom': 0.9, 'lr': 0.001}
    assert learn.lr == 1e-3
    assert_close(list(our_params(learn).values()), list(params_line(text).values()), 'final params')


class FirstBatchOrder(Callback):
    "The dataset indices of each epoch's first training batch, found by matching the inputs."
    def before_fit(self): self.orders = []
    def before_batch(self):
        if self.training and self.iter == 0:
            xs = self.dls.train_ds.tensors[0].view(-1)
            self.orders.append([int((xs == v).nonzero()) for v in self.xb[0].view(-1)])


def test_s1_genuine_synth_learner_replays_fastais_shuffle():
    torch.manual_seed(0); random.seed(0); np.random.seed(0)
    learn = synth_learner()
    learn.remove_cb(ProgressCallback); learn.logger = noop
    order = FirstBatchOrder()
    learn.fit(3, lr=0.1, cbs=order)
    text = run('S1')
    golden_orders = [ast.literal_eval(o) for o in re.findall(r'train order \(first 16 idxs\): (\[.*\])', text)]
    assert len(golden_orders) == 3 and order.orders == golden_orders
    assert_close(learn.recorder.values, epoch_rows(text), 'recorder.values')
    assert_close(list(our_params(learn).values()), list(params_line(text).values()), 'final params')
