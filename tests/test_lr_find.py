"""``learn.lr_find``: the §8 trace of fastai 2.8.12, restored weights and optimizer, suggestions vs fastai.

Golden files: golden/fa2_trace_lr_find.txt (section 8 of ../shared/oracle/fa2_trace.txt) and
golden/fa2_sched_recipes.txt (recorded by oracle_scripts/fa2_sched_recipes.py).
"""
import io
import json
import random
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from trainlib import (Callback, LRFinder, ProgressCallback, ScheduleError, SuggestionMethod, minimum, slide, steep,
                      valley)
from trainlib.testing import synth_learner
from _schedule_helpers import count_host_reads, portable_learner

GOLDEN = Path(__file__).parent / 'golden'
FA2 = json.loads((GOLDEN / 'fa2_sched_recipes.txt').read_text().split('\n', 1)[1])
LEVEL = {'before_fit': 0, 'after_cancel_fit': 0, 'after_fit': 0,
         'before_epoch': 1, 'after_cancel_epoch': 1, 'after_epoch': 1,
         'before_train': 2, 'after_cancel_train': 2, 'after_train': 2,
         'before_validate': 2, 'after_cancel_validate': 2, 'after_validate': 2,
         'before_batch': 3, 'after_pred': 3, 'after_loss': 3, 'after_cancel_batch': 3, 'after_batch': 3,
         'before_backward': 4, 'after_cancel_backward': 4, 'after_backward': 4,
         'before_step': 4, 'after_cancel_step': 4, 'after_step': 4}


class Tracer(Callback):
    "Every event the Learner dispatches, in the line format of fa2_trace.py."
    order = -1000

    def __init__(self) -> None: self.lines = []

    def __call__(self, event_name: str):
        learn, lvl = self.learn, LEVEL.get(event_name, 0)
        phase = 'train' if learn.dl is learn.dls.train else 'valid' if learn.dl is learn.dls.valid else 'other-dl'
        where = {0: '', 1: f'epoch={learn.epoch}', 2: phase}.get(lvl, f'{phase} i={learn.iter}')
        self.lines.append('  ' * lvl + event_name + (f'  [{where}]' if where else ''))
        return super().__call__(event_name)


def test_lr_find_trace_matches_fastai():
    torch.manual_seed(0); random.seed(0); np.random.seed(0)
    learn = synth_learner(n_trn=3, n_val=2)
    learn.remove_cb(ProgressCallback)
    tracer = Tracer()
    learn.add_cb(tracer)
    sugg = learn.lr_find(num_it=7, show_plot=False)
    got = tracer.lines + [f'=> lr_find returned {sugg}',
                          f'recorder.lrs = {[f"{x:.3e}" for x in learn.recorder.lrs]}',
                          f'n_epoch used = num_it//len(dls.train)+1 = {learn.n_epoch}']
    expected = [l for l in (GOLDEN / 'fa2_trace_lr_find.txt').read_text().splitlines() if l and l[0] != '#']
    assert got == expected
    assert sugg.valley == 1.3894955372961704e-06          # the float32-rounded lr, as fastai returns it


def same(a, b) -> bool:
    "Nested state dicts equal, tensors included."
    if isinstance(a, dict): return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)): return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor): return torch.equal(a, b)
    return a == b


def snapshot(learn):
    return ({k: v.clone() for k, v in learn.model.state_dict().items()},
            {'state': {k: {n: t.clone() for n, t in s.items()} for k, s in learn.opt.state_dict()['state'].items()},
             'param_groups': learn.opt.state_dict()['param_groups']})


@pytest.mark.parametrize('opt', ['sgd', 'adam'])
def test_lr_find_restores_weights_and_optimizer_state_and_removes_its_file(opt):
    learn = portable_learner('linear', opt)
    learn.fit(1)
    before = snapshot(learn)
    assert before[1]['state']                                # momentum / Adam moments exist
    learn.lr_find(num_it=30, show_plot=False)
    assert len(learn.recorder.lrs) == 30
    assert same(snapshot(learn), before)
    assert list(Path('models').iterdir()) == []


def test_lr_find_restores_and_cleans_up_when_the_fit_fails():
    learn = portable_learner()
    before = snapshot(learn.create_opt() or learn)
    boom = Callback(after_batch=lambda cb: cb.learn.train_iter == 3 and (_ for _ in ()).throw(RuntimeError('boom')))
    learn.add_cb(boom)
    with pytest.raises(RuntimeError, match='boom'): learn.lr_find(show_plot=False)
    assert same(snapshot(learn), before) and list(Path('models').iterdir()) == []


def test_lr_find_on_the_portable_data_matches_fastai():
    learn = portable_learner()
    sugg = learn.lr_find(show_plot=False, suggest_funcs=(valley, slide, minimum, steep))
    exp = FA2['lr_find']
    assert sugg._fields == ('valley', 'slide', 'minimum', 'steep')
    assert np.allclose(list(sugg), list(exp['suggestions'].values()), rtol=1e-6, atol=0)
    assert len(learn.recorder.lrs) == len(exp['lrs']) == 96             # stopped: the loss diverged
    assert np.allclose(learn.recorder.lrs, exp['lrs'], rtol=1e-12, atol=0)
    assert np.allclose([l.item() for l in learn.recorder.losses], exp['losses'], rtol=1e-5, atol=0)
    assert learn.n_epoch == exp['n_epoch'] and learn.opt.get_hyper('lr') == exp['opt_lr_after']


def test_lr_find_stops_at_a_nan_loss_and_says_when_too_few_points_remain():
    learn = portable_learner()
    with torch.no_grad(): learn.model.a.fill_(float('nan'))
    with pytest.raises(ValueError, match=r'valley: needs at least 1 point of the lr/loss curve, got 0'):
        learn.lr_find(show_plot=False)
    assert len(learn.recorder.lrs) == 1                      # fastai trains on through NaN losses


def test_lr_find_without_stop_div_reads_nothing_per_batch(monkeypatch):
    learn = portable_learner()
    calls = count_host_reads(monkeypatch)
    learn.lr_find(num_it=12, stop_div=False, show_plot=False, suggest_funcs=None)
    n12 = len(calls)
    learn.lr_find(num_it=18, stop_div=False, show_plot=False, suggest_funcs=None)
    assert len(calls) == 2 * n12


def test_lr_find_per_group_lrs():
    learn = portable_learner(groups=2)
    seen = []
    learn.add_cb(Callback(after_batch=lambda cb: cb.learn.training and seen.append(
        [cb.learn.opt.get_hyper('lr', i) for i in range(2)])))
    learn.lr_find(start_lr=[1e-8, 1e-7], end_lr=[1., 10.], num_it=10, stop_div=False, show_plot=False)
    assert np.allclose(seen, [[1e-8 * 1e8 ** (i / 10), 1e-7 * 1e8 ** (i / 10)] for i in range(10)], rtol=1e-12)


def test_lr_find_plots_the_curve_and_the_suggestions():
    plt.close('all')
    learn = portable_learner()
    sugg = learn.lr_find(num_it=40, stop_div=False, suggest_funcs=(valley, steep))
    ax = plt.gcf().get_axes()[0]
    assert ax.get_xscale() == 'log' and ax.get_xlabel() == 'Learning Rate'
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ['valley', 'steep']
    assert ax.lines[1].get_xdata()[0] == sugg.valley
    fig = learn.recorder.plot_lr_find(skip_end=0)
    assert len(fig.get_axes()[0].lines[0].get_xdata()) == 40
    fig.savefig(io.BytesIO(), format='png')
    plt.close('all')


@pytest.mark.parametrize('curve', sorted(FA2['suggestions']))
def test_suggestion_functions_match_fastai(curve):
    c = FA2['suggestions'][curve]
    for f in (valley, slide, minimum, steep):
        if c[f.__name__] == 'IndexError':                    # fastai fails obscurely; trainlib says why
            with pytest.raises(ValueError, match=f'{f.__name__}: needs at least 16 points'):
                f(c['lrs'], c['losses'], 100)
        else: assert f(c['lrs'], c['losses'], 100)[0] == c[f.__name__], f.__name__
    assert SuggestionMethod.Valley(c['lrs'], c['losses'], 100) == valley(c['lrs'], c['losses'], 100)


def test_valley_matches_fastai_on_curves_with_ties():
    for lrs, losses, expected in FA2['valley_cases']:
        assert valley(torch.tensor(lrs), np.array(losses), 100)[0] == expected, (lrs, losses)


def test_lr_finder_arguments():
    finder = LRFinder(num_it=3)
    assert (finder.num_it, finder.order, finder.run_valid, finder.name) == (6, 60, False, 'lr_finder')
    with pytest.raises(ScheduleError, match='LRFinder: start_lr and end_lr must be > 0'): LRFinder(start_lr=0)
    with pytest.raises(ScheduleError, match='LRFinder: num_it must be a positive int'): LRFinder(num_it=2.5)
    with pytest.raises(ValueError, match='steep: lrs and losses must have the same length, got 3 and 2'):
        steep([1e-3, 1e-2, 1e-1], [1., 2.])
