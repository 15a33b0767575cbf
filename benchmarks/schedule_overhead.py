"""Per-batch cost of scheduling: a combined schedule call and ParamScheduler's two events (run by hand).

    /work/main/.venv/bin/python benchmarks/schedule_overhead.py

Prints microseconds per call; fastai's way (a float32 torch tensor per call, ``.item()``) for comparison.
"""
import sys
import timeit
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from trainlib import ParamScheduler, combined_cos  # noqa: E402
from trainlib.testing import synth_learner  # noqa: E402

N = 20000


def us(f) -> float: return timeit.timeit(f, number=N) / N * 1e6


def torch_position(bounds: torch.Tensor, pos: float) -> float:
    "The position inside the phase as fastai computes it: tensor comparison, nonzero, .item()."
    idx = min(int((pos >= bounds).nonzero().max()), len(bounds) - 2)
    return ((pos - bounds[idx]) / (bounds[idx + 1] - bounds[idx])).item()


lr = combined_cos(0.25, np.array([4e-5]), np.array([1e-3]), np.array([1e-8]))
mom = combined_cos(0.25, 0.95, 0.85, 0.95)
bounds = torch.cumsum(torch.tensor([0., 0.25, 0.75]), 0)
learn = synth_learner()
learn.create_opt()
sched = ParamScheduler({'lr': lr, 'mom': mom})
learn.add_cb(sched)
sched.before_fit()
learn.pct_train = 0.37
print(f'combined_cos, per-group lr arrays : {us(lambda: lr(0.37)):6.2f} us/call')
print(f'combined_cos, floats              : {us(lambda: mom(0.37)):6.2f} us/call')
print(f'fastai-style torch position only  : {us(lambda: torch_position(bounds, 0.37)):6.2f} us/call')
print(f'ParamScheduler before+after_batch : {us(lambda: (sched.before_batch(), sched.after_batch())):6.2f} us/batch')
print(f'  lr schedule + 2 opt.set_hyper    : {us(lambda: (learn.opt.set_hyper("lr", lr(0.37)), learn.opt.set_hyper("mom", 0.9))):6.2f} us')
