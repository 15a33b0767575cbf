"""Python function calls per training batch with v1 callbacks on both Learners (run by hand; noise-free,
unlike timings on a busy machine: compare two checkouts with it).

    /work/main/.venv/bin/python benchmarks/mixed_calls_per_batch.py

Counts every call cProfile sees (Python and builtin) in a fit of 2 epochs minus a fit of 1 epoch, divided by
the 200 training batches of an epoch (each epoch also has one validation batch).
"""
import cProfile
import pstats
import sys
from pathlib import Path

import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]
import trainlib  # noqa: E402
import trainlib.v1 as v1  # noqa: E402
from v1_bridge_overhead import AllEvents  # noqa: E402  (a v1 callback overriding every event, doing nothing)

N_TRAIN, BS = 800, 4


def loaders():
    g = torch.Generator().manual_seed(0)
    X, y = torch.randn(N_TRAIN, 4, generator=g), torch.randn(N_TRAIN, 1, generator=g)
    return DataLoader(TensorDataset(X, y), batch_size=BS), DataLoader(TensorDataset(X[:BS], y[:BS]), batch_size=BS)


def v1_learner():
    return v1.Learner(v1.DataBunch(*loaders(), device='cpu'), nn.Linear(4, 1), loss_func=nn.MSELoss(), silent=True,
                      callbacks=[AllEvents() for _ in range(5)])


def v2_learner():
    learn = trainlib.Learner(trainlib.DataLoaders(*loaders(), device='cpu'), nn.Linear(4, 1), loss_func=nn.MSELoss(),
                             cbs=[AllEvents(), AllEvents()])
    learn.logger = trainlib.noop
    return learn


def calls(make, n_epoch):
    learn = make()
    prof = cProfile.Profile()
    prof.enable()
    learn.fit(n_epoch)
    prof.disable()
    return pstats.Stats(prof).total_calls


if __name__ == '__main__':
    for label, make in (('v1 Learner + 5 all-event v1 callbacks', v1_learner),
                        ('v2 Learner + 2 all-event v1 callbacks', v2_learner)):
        calls(make, 1)                                          # warm-up: first-time imports and caches
        per_batch = (calls(make, 2) - calls(make, 1)) / (N_TRAIN // BS)
        print(f'{label:40}: {per_batch:7.1f} calls per training batch')
