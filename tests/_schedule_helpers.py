"Shared by the schedule and lr-finder tests: fastai's portable data, a per-batch log, small checks."
from functools import partial

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from trainlib import Callback, DataLoaders, Learner, MSELossFlat, ProgressCallback, SGD, noop
from trainlib.testing import RegModel


def portable_learner(model: str = 'reg', opt: str = 'sgd', groups: int = 1) -> Learner:
    "Variant P of ../shared/oracle/fa2_numbers.py: seed 0, 160 train / 32 valid points, bs 16, no shuffle."
    torch.manual_seed(0)
    x_tr = torch.randn(160, 1); y_tr = 2 * x_tr + 3 + 0.1 * torch.randn(160, 1)
    x_va = torch.randn(32, 1); y_va = 2 * x_va + 3 + 0.1 * torch.randn(32, 1)
    net = RegModel() if model == 'reg' else torch.nn.Linear(1, 1)
    dls = DataLoaders(DataLoader(TensorDataset(x_tr, y_tr), batch_size=16),
                      DataLoader(TensorDataset(x_va, y_va), batch_size=16), device='cpu')
    kw = dict(opt_func=partial(SGD, mom=0.9), lr=1e-3) if opt == 'sgd' else {}
    if groups == 2: kw['splitter'] = reg_splitter
    learn = Learner(dls, net, loss_func=MSELossFlat(), **kw)
    learn.remove_cb(ProgressCallback); learn.logger = noop
    return learn


def reg_splitter(m: RegModel) -> list:
    "Two parameter groups: ``[a]`` and ``[b]`` (so that freezing and discriminative lrs matter)."
    return [[m.a], [m.b]]


class BatchLog(Callback):
    "Per training batch: (n_fit, epoch, iter, raw loss, lr of each group, mom, smooth loss); values per fit."
    order = 1000

    def __init__(self) -> None: self.rows, self.values, self.n_fit = [], [], 0

    def after_batch(self) -> None:
        learn = self.learn
        if not learn.training: return
        lrs = [learn.opt.get_hyper('lr', i) for i in range(len(learn.opt.param_groups))]
        self.rows.append((self.n_fit, learn.epoch, learn.iter, learn.loss.item(), lrs, learn.opt.get_hyper('mom'),
                          learn.smooth_loss.item()))

    def after_fit(self) -> None:
        self.values.append([list(r) for r in self.learn.recorder.values])
        self.n_fit += 1


def logged(learn: Learner) -> BatchLog:
    log = BatchLog()
    learn.add_cb(log)
    return log


def params_of(learn: Learner) -> dict:
    return {n: p.detach().view(-1).tolist() for n, p in learn.model.named_parameters()}


def count_host_reads(monkeypatch) -> list:
    "Count Tensor.item / float(tensor) calls from now on."
    calls = []
    for name in ('item', '__float__'):
        orig = getattr(torch.Tensor, name)
        def counted(self, *a, _orig=orig, **k):
            calls.append(1)
            return _orig(self, *a, **k)
        monkeypatch.setattr(torch.Tensor, name, counted)
    return calls


def close(a, b, eps: float = 1e-5, rel: bool = False) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    tol = eps * np.maximum(np.abs(b), 1e-30) if rel else eps
    return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol))
