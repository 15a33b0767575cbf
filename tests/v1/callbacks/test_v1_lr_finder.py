"""LRFinder and learn.lr_find: the lr schedule, no validation, weights and optimizer state put back, the
messages (the numbers and recorder.plot(suggestion=True) lines against fastai: test_v1_stock_vs_fastai)."""
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from fa1_stock_scenarios import learner, make_data
from trainlib.v1 import Callback, LRFinder

if str(Path(__file__).parents[1]) not in sys.path: sys.path.insert(0, str(Path(__file__).parents[1]))
from host_reads import count_host_reads  # noqa: E402  (tests/v1/host_reads.py)


def quiet(**kwargs):
    return learner(silent=True, **kwargs)


def weights(learn):
    return [p.detach().clone() for p in learn.model.parameters()]


def test_lr_find_explores_exponentially_and_puts_everything_back(capsys):
    learn = quiet()
    learn.fit(1, 1e-2)                                   # Adam has moments now
    before, moments = weights(learn), [s['exp_avg'].clone() for s in learn.opt.opt.state.values()]
    learn.lr_find(start_lr=1e-5, end_lr=1e-1, num_it=20, stop_div=False)
    r = learn.recorder
    assert r.lrs == pytest.approx([1e-5 * 1e4 ** (i / 20) for i in range(20)])     # never reaches end_lr ...
    assert learn.opt.lr == pytest.approx(1e-1)                                    # ... which is left in opt
    assert r.nb_batches == [8, 8, 4] and r.val_losses == [None] * 3               # no validation
    assert all(torch.equal(a, b) for a, b in zip(before, weights(learn)))
    assert all(torch.equal(a, s['exp_avg']) for a, s in zip(moments, learn.opt.opt.state.values()))
    assert (Path('models') / 'tmp.pth').exists() and isinstance(learn.lr_finder, LRFinder)
    assert capsys.readouterr().out == 'LR Finder is complete, type {learner_name}.recorder.plot() to see the graph.\n'


def test_lr_find_with_discriminative_lrs():
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    learn = quiet(model=model, layer_groups=[model[:2], model[2:]])
    lrs = []
    class GroupLrs(Callback):
        def on_batch_begin(self, train, **kwargs): lrs.append([g['lr'] for g in learn.opt.opt.param_groups[::2]])
    learn.callbacks.append(GroupLrs())
    learn.lr_find(start_lr=slice(1e-6, 1e-4), end_lr=slice(1e-3, 1e-1), num_it=10)
    assert lrs[0] == pytest.approx([1e-6, 1e-4]) and all(b == pytest.approx(100 * a) for a, b in lrs)


def test_lr_find_stops_on_a_nan_loss():
    calls = []
    def loss(out, y):
        calls.append(1)
        res = nn.functional.cross_entropy(out, y)
        return res * float('nan') if len(calls) == 5 else res
    learn = quiet(loss_func=loss)
    learn.lr_find(num_it=30)
    assert len(learn.recorder.losses) == 5 and learn.lr_finder.stop == 4


def test_stop_div_reads_the_smoothed_loss_once_per_batch(monkeypatch):
    "To stop on divergence the finder reads the smoothed loss each batch; without stop_div it reads nothing per batch."
    def reads(num_it, stop_div):
        with monkeypatch.context() as m:
            calls = count_host_reads(m)
            quiet().lr_find(num_it=num_it, stop_div=stop_div)       # 2 epochs either way
        return Counter(calls)
    assert reads(16, False) == reads(12, False)
    assert reads(16, True) - reads(16, False) == Counter({'__float__': 16})


def test_a_failure_before_saving_restores_nothing_and_keeps_the_error():
    class Boom(Callback):
        _order = -20
        def on_train_begin(self, **kwargs): raise RuntimeError('boom before the finder')
    learn = quiet(callbacks=[Boom()])
    with pytest.raises(RuntimeError, match='boom before the finder'): learn.lr_find()
    assert not Path('models/tmp.pth').exists()


def test_the_finder_resets_the_callbacks_that_can_be(capsys):
    resets = []
    class Resettable(Callback):
        def reset(self): resets.append(1)
    learn = quiet(callbacks=[Resettable()])
    learn.lr_find(num_it=3)
    assert resets == [1]


@pytest.mark.parametrize('kwargs, words', [
    (dict(start_lr=0), r'LRFinder: start_lr must be > 0 \(a number or one per layer group\), got 0'),
    (dict(end_lr=np.array([1., -1.])), r'LRFinder: end_lr must be > 0 .*, got array\(\[ 1., -1.\]\)'),
    (dict(num_it=0), 'LRFinder: num_it must be an int >= 1, got 0')])
def test_bad_arguments_fail_when_the_finder_is_built(kwargs, words):
    with pytest.raises(ValueError, match=words): LRFinder(quiet(), **kwargs)


def test_plot_after_lr_find_marks_the_steepest_point(capsys):
    learn = quiet(data=make_data(n_train=64))
    learn.lr_find(start_lr=1e-5, end_lr=1, num_it=40, stop_div=False)
    capsys.readouterr()
    fig = learn.recorder.plot(suggestion=True, return_fig=True)
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f'Min numerical gradient: {learn.recorder.min_grad_lr:.2E}' and out[1].startswith('Min loss divided by 10: ')
    assert fig.axes[0].get_xscale() == 'log'
