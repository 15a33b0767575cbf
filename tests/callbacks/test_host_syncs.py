"The stock callbacks read nothing back from the device per batch, except where their docstring says so."
from contextlib import contextmanager

import pytest
import torch

from trainlib import (ActivationStats, BnFreeze, CollectDataCallback, CSVLogger, EarlyStoppingCallback,
                      GradientAccumulation, GradientClip, MixedPrecision, ReduceLROnPlateau, SaveModelCallback,
                      TerminateOnNaNCallback)
from trainlib.callbacks import fp16

READS = ('item', 'tolist', 'cpu', 'numpy', '__bool__', '__float__', '__int__')


@contextmanager
def counting_reads():
    "Count the calls of the Tensor methods that read values back to the host."
    count = [0]
    saved = {name: torch.Tensor.__dict__.get(name) for name in READS}

    def counted(f):
        def read(*args, **kwargs):
            count[0] += 1
            return f(*args, **kwargs)
        return read
    for name in READS: setattr(torch.Tensor, name, counted(getattr(torch.Tensor, name)))
    try: yield count
    finally:
        for name, f in saved.items():
            if f is None: delattr(torch.Tensor, name)
            else: setattr(torch.Tensor, name, f)


def reads_per_batch(quiet_learner, make_cbs):
    "Extra host reads of a fit with 8 more training batches, divided by 8."
    counts = []
    for n_trn in (4, 12):
        learn = quiet_learner(n_trn=n_trn, cbs=make_cbs(), lr=1e-2)
        with counting_reads() as count: learn.fit(2)
        counts.append(count[0])
    return (counts[1] - counts[0]) / (2 * 8)


def test_the_stock_callbacks_read_nothing_per_batch(quiet_learner):
    cbs = lambda: [EarlyStoppingCallback(patience=5), SaveModelCallback(), ReduceLROnPlateau(patience=5),  # noqa: E731
                   GradientAccumulation(n_acc=32), GradientClip(), BnFreeze(), CSVLogger(), CollectDataCallback(),
                   ActivationStats(), MixedPrecision('bf16'), TerminateOnNaNCallback(check_every=1000)]
    assert reads_per_batch(quiet_learner, cbs) == 0


def test_terminate_on_nan_reads_one_flag_per_batch_by_default(quiet_learner):
    assert reads_per_batch(quiet_learner, lambda: [TerminateOnNaNCallback()]) == 1


def test_float16_reads_only_the_scalers_own_inf_flag(quiet_learner, monkeypatch):
    monkeypatch.setattr(fp16, 'amp_plan', lambda amp_mode, device_type: (torch.float16, True))
    assert reads_per_batch(quiet_learner, lambda: [MixedPrecision()]) == 1
