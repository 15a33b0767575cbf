"""Per-batch cost of running fastai-1 callbacks on the core loop (run by hand).

    OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/v1_bridge_overhead.py

A tiny model on tiny batches, so that the loop's own cost shows. Prints the cost of one v1 method call,
then microseconds per training batch:
the core Learner with only TrainEvalCallback, the v1 Learner with its Recorder, and the v1 Learner with
five more v1 callbacks that override every event (each returning None).
"""
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainlib import Learner as CoreLearner, TrainEvalCallback  # noqa: E402
from trainlib.v1 import Callback, CallbackHandler, DataBunch, Learner  # noqa: E402
from trainlib.v1.bridge import LearnerState  # noqa: E402
from trainlib.optim import OptimWrapper  # noqa: E402
from trainlib.v1.torch_core import AdamW  # noqa: E402

N_BATCHES, EPOCHS = 400, 3


class AllEvents(Callback):
    "Overrides every v1 event, does nothing."
    def on_train_begin(self, **kwargs): pass
    def on_epoch_begin(self, **kwargs): pass
    def on_batch_begin(self, **kwargs): pass
    def on_loss_begin(self, **kwargs): pass
    def on_backward_begin(self, **kwargs): pass
    def on_backward_end(self, **kwargs): pass
    def on_step_end(self, **kwargs): pass
    def on_batch_end(self, **kwargs): pass
    def on_epoch_end(self, **kwargs): pass
    def on_train_end(self, **kwargs): pass


def data() -> DataBunch:
    X = torch.randn(N_BATCHES * 4, 4); y = (X[:, 0] > 0).long()
    return DataBunch.create(TensorDataset(X, y), TensorDataset(X[:4], y[:4]), bs=4, device='cpu')


def per_batch(fit) -> float:
    fit(1)
    t = time.perf_counter(); fit(EPOCHS)
    return (time.perf_counter() - t) / (EPOCHS * (N_BATCHES + 1)) * 1e6


def core_fit():
    d, m = data(), nn.Linear(4, 2)
    learn = CoreLearner(d, m, loss_func=nn.CrossEntropyLoss(), default_cbs=False, cbs=[TrainEvalCallback()])
    learn.opt = OptimWrapper.create(AdamW, 1e-3, [nn.Sequential(m)], wd=1e-2, true_wd=True)
    def fit(n):
        learn.n_epoch = n
        learn._run_fit()
    return fit


def v1_fit(n_extra: int):
    learn = Learner(data(), nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(), silent=True,
                    callbacks=[AllEvents() for _ in range(n_extra)])
    return lambda n: learn.fit(n, 1e-3)


def per_call() -> float:
    "One v1 method call through the handler (kwargs built from the live state view), in isolation."
    learn = Learner(data(), nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(), silent=True)
    learn.fit(1)
    handler = CallbackHandler([AllEvents()], state=LearnerState(learn))
    handler.on_train_begin(1)
    handler.state_dict.show('last_input', 'last_target', 'last_output', 'last_loss')
    cb, n = handler.callbacks[0], 20000
    t = time.perf_counter()
    for _ in range(n): handler._call(cb, 'batch_end')
    return (time.perf_counter() - t) / n * 1e6


if __name__ == '__main__':
    torch.set_num_threads(1)
    print(f'one v1 method call via the bridge   : {per_call():7.2f} us')
    base = per_batch(core_fit())
    rec = per_batch(v1_fit(0))
    five = per_batch(v1_fit(5))
    print(f'core loop, TrainEval only           : {base:7.1f} us/batch')
    print(f'v1 Learner (Recorder)               : {rec:7.1f} us/batch  (+{rec - base:.1f})')
    print(f'v1 Learner + 5 all-event callbacks  : {five:7.1f} us/batch  (+{(five - rec) / 5:.1f} per callback)')
