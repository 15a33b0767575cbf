"""No host synchronisation per batch: every way a tensor's value reaches Python is counted during a fit
with the default callbacks (ProgressCallback included, stdout not a terminal) and an accuracy metric.

Only calls made by trainlib (or user code) count: torch's own reads of host-side values (the CPU step
counter of torch.optim.Adam, the sampler's seed, ``Module.to``) are torch's business and not syncs there.
"""
import functools
import sys

import pytest
import torch

from tiny import blobs_learner
from trainlib import Callback, accuracy

# Each of these makes the host wait for the device (`if tensor:` calls __bool__, f'{t:.4f}' calls item).
SYNCING_METHODS = ('item', 'tolist', 'cpu', 'numpy', '__float__', '__int__', '__bool__', '__index__')


def _called_by_torch():
    "True when the tensor method was called from inside torch (Tensor's own dunders, e.g. __format__, excepted)."
    frame = sys._getframe(2)
    while frame is not None and frame.f_globals.get('__name__') == 'torch._tensor': frame = frame.f_back
    module = frame.f_globals.get('__name__', '') if frame is not None else ''
    return module == 'torch' or module.startswith('torch.')


def _to_cpu(args, kwargs):
    dest = kwargs.get('device', args[0] if args else None)
    return isinstance(dest, (str, torch.device)) and torch.device(dest).type == 'cpu'


class SyncCounter:
    "Counts syncing calls on tensors, by where in the loop they happen."
    def __init__(self):
        self.where, self.counts = 'outside batches', {}

    def count(self, name):
        key = (self.where, name)
        self.counts[key] = self.counts.get(key, 0) + 1

    def install(self, monkeypatch):
        for name in SYNCING_METHODS:
            monkeypatch.setattr(torch.Tensor, name, self._counting(name, getattr(torch.Tensor, name)))
        real_to = torch.Tensor.to

        @functools.wraps(real_to)
        def to(t, *args, **kwargs):
            if _to_cpu(args, kwargs) and not _called_by_torch(): self.count('to(cpu)')
            return real_to(t, *args, **kwargs)
        monkeypatch.setattr(torch.Tensor, 'to', to)

    def _counting(self, name, real):
        @functools.wraps(real)
        def f(t, *args, **kwargs):
            if not _called_by_torch(): self.count(name)
            return real(t, *args, **kwargs)
        return f

    def in_batches(self, phase):
        return {name: n for (where, name), n in self.counts.items() if where == phase}

    def callbacks(self):
        "Callbacks that mark the batches: first to see before_batch, last to see after_batch."
        counter = self

        class EnterBatch(Callback):
            order = -10 ** 6
            def before_batch(self): counter.where = 'training batch' if self.learn.training else 'validation batch'

        class LeaveBatch(Callback):
            order = 10 ** 6
            def after_batch(self): counter.where = 'outside batches'

        return [EnterBatch(), LeaveBatch()]


def fit_counting(monkeypatch, n_train, n_valid=32, epochs=2):
    "Fit a classifier with ``n_train`` items (batches of 16) and count the syncs."
    counter = SyncCounter()
    learn = blobs_learner(n_train=n_train, n_valid=n_valid, metrics=accuracy, cbs=counter.callbacks())
    assert any(type(cb).__name__ == 'ProgressCallback' for cb in learn.cbs)
    with monkeypatch.context() as m:
        counter.install(m)
        learn.fit(epochs)
    return counter


def test_no_sync_in_any_training_or_validation_batch(monkeypatch, capsys):
    counter = fit_counting(monkeypatch, n_train=64)
    assert counter.in_batches('training batch') == {}
    assert counter.in_batches('validation batch') == {}
    assert len(capsys.readouterr().out.splitlines()) == 3     # the table was printed: header and two rows


def test_syncs_between_batches_do_not_grow_with_the_number_of_batches(monkeypatch):
    few = fit_counting(monkeypatch, n_train=32).in_batches('outside batches')
    many = fit_counting(monkeypatch, n_train=160).in_batches('outside batches')
    assert few == many and sum(few.values()) > 0               # the epoch-end reads happen, once per epoch
    three_epochs = fit_counting(monkeypatch, n_train=32, epochs=3).in_batches('outside batches')
    assert sum(three_epochs.values()) == pytest.approx(sum(few.values()) * 3 / 2)


def test_the_counter_sees_a_sync():
    counter = SyncCounter()
    with pytest.MonkeyPatch.context() as m:
        counter.install(m)
        if torch.tensor(1.) > 0: float(torch.tensor(2.))
        torch.tensor(3.).to('cpu')
        f'{torch.tensor(4.):.4f}'
        torch.nn.Linear(1, 1).to('cpu')                     # torch's own calls are not counted
    assert counter.in_batches('outside batches') == {'__bool__': 1, '__float__': 1, 'to(cpu)': 1, 'item': 1}
