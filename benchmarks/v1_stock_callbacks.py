"""Per-batch cost of the v1 stock schedulers on the core loop (run by hand).

    OMP_NUM_THREADS=1 /work/main/.venv/bin/python benchmarks/v1_stock_callbacks.py

A tiny model on tiny batches, so that the callbacks' own cost shows. Microseconds per training batch of a
v1 Learner: a plain fit, fit_one_cycle (OneCycleScheduler), a GeneralScheduler over lr and mom, lr_find with
and without stop_div; and, for comparison, the core (v2) Learner's fit and fit_one_cycle (ParamScheduler).
"""
import io
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path
from tempfile import TemporaryDirectory

import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainlib import Learner as CoreLearner  # noqa: E402
from trainlib.data import DataLoaders  # noqa: E402
from trainlib.v1 import DataBunch, GeneralScheduler, Learner, TrainingPhase  # noqa: E402

N_BATCHES, EPOCHS = 400, 3


def tensors():
    X = torch.randn(N_BATCHES * 4, 4)
    return X, (X[:, 0] > 0).long()


def v1_learner(path: str) -> Learner:
    X, y = tensors()
    data = DataBunch.create(TensorDataset(X, y), TensorDataset(X[:4], y[:4]), bs=4, device='cpu', path=path)
    return Learner(data, nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(), silent=True)


def per_batch(run, n_batches: int = EPOCHS * N_BATCHES) -> float:
    run()
    t = time.perf_counter(); run()
    return (time.perf_counter() - t) / n_batches * 1e6


def v1_rows(path: str) -> dict:
    "Each row on a fresh Learner (an lr finder on a trained model would stop at once: the loss only goes up)."
    learns = [v1_learner(path) for _ in range(5)]
    phases = [TrainingPhase(N_BATCHES).schedule_hp('lr', (1e-3, 1e-2)).schedule_hp('mom', (0.95, 0.85)),
              TrainingPhase(2 * N_BATCHES).schedule_hp('lr', (1e-2, 1e-4))]
    n = EPOCHS * N_BATCHES
    return {'v1 fit': lambda: learns[0].fit(EPOCHS, 1e-3),
            'v1 fit_one_cycle': lambda: learns[1].fit_one_cycle(EPOCHS, 1e-3),
            'v1 GeneralScheduler (lr, mom)': lambda: learns[2].fit(EPOCHS, 1e-3,
                                                                   callbacks=[GeneralScheduler(learns[2], phases)]),
            'v1 lr_find(stop_div=False)': lambda: learns[3].lr_find(num_it=n, end_lr=1e-3, stop_div=False),
            'v1 lr_find(stop_div=True)': lambda: learns[4].lr_find(num_it=n, end_lr=1e-3)}


def core_rows(path: str) -> dict:
    X, y = tensors()
    dls = DataLoaders.from_dsets(TensorDataset(X, y), TensorDataset(X[:4], y[:4]), bs=4)
    learns = [CoreLearner(dls, nn.Linear(4, 2), loss_func=nn.CrossEntropyLoss(), path=path) for _ in range(2)]
    for learn in learns:
        learn.remove_cb(learn.progress)
        learn.logger = lambda *a: None
    return {'core fit': lambda: learns[0].fit(EPOCHS, 1e-3),
            'core fit_one_cycle': lambda: learns[1].fit_one_cycle(EPOCHS, 1e-3)}


def main(path: str) -> None:
    with redirect_stdout(io.StringIO()) as out:
        res = {name: per_batch(run) for name, run in {**v1_rows(path), **core_rows(path)}.items()}
    assert out.getvalue().count('LR Finder is complete') == 4
    for name, us in res.items(): print(f'{name:32}: {us:7.1f} us/batch')


if __name__ == '__main__':
    torch.set_num_threads(1)
    with TemporaryDirectory() as d: main(d)
