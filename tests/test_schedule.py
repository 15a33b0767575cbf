"""Schedules, ParamScheduler and the training recipes, against hand formulas and fastai 2.8.12's numbers.

Golden files: golden/fa2_numbers_sched.txt (runs P2, P3, P4, S2 of ../shared/oracle/fa2_numbers.txt) and
golden/fa2_sched_recipes.txt (recorded by oracle_scripts/fa2_sched_recipes.py).
"""
import ast
import json
import math
import pickle
import random
import re
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from trainlib import (Callback, Learner, ProgressCallback, noop, ParamScheduler, ScheduleError, SchedCos, SchedExp,
                      SchedLin, SchedNo, SchedPoly, annealing_cos, annealing_exp, annealing_linear, annealing_no,
                      annealing_poly, combine_scheds, combined_cos)
from trainlib.testing import synth_learner
from _schedule_helpers import BatchLog, close, count_host_reads, logged, params_of, portable_learner

GOLDEN = Path(__file__).parent / 'golden'


# ---------------------------------------------------------------------------------------------- golden files
def numbers_golden() -> dict:
    "The runs of golden/fa2_numbers_sched.txt: per-epoch values, per-batch rows, final params."
    runs, cur = {}, None
    for line in (GOLDEN / 'fa2_numbers_sched.txt').read_text().splitlines():
        if line.startswith('--- '): cur = runs.setdefault(line[4:], {'values': [], 'rows': []})
        elif cur is None: continue
        elif m := re.match(r'\s+epoch \d+: train_loss=(\S+) valid_loss=(\S+)$', line):
            cur['values'].append([float(m[1]), float(m[2])])
        elif m := re.match(r'\s+final params: (.*)$', line):
            cur['params'] = {k: [float(x) for x in v] for k, v in ast.literal_eval(m[1]).items()}
        elif m := re.match(r'\s+(\d+)\s+(\d+) loss=(\S+) lr=(\S+) mom=(\S+) smooth=(\S+)$', line):
            cur['rows'].append([int(m[1]), int(m[2])] + [float(m[i]) for i in range(3, 7)])
        elif 'hypers after fit_one_cycle' in line:
            cur['hypers'] = {k: float(v) for k, v in re.findall(r"'(\w+)': (?:np\.float64\()?([-\d.e]+)", line)}
    return runs


def recipes_golden() -> dict:
    text = (GOLDEN / 'fa2_sched_recipes.txt').read_text()
    assert text.startswith('# produced by tests/oracle_scripts/fa2_sched_recipes.py with fastai 2.8.12')
    return json.loads(text.split('\n', 1)[1])


# ============================================================================================== annealers
PCTS = [0., 0.1, 0.25, 0.5, 0.77, 1.]


def test_annealers_follow_their_formulas():
    for p in PCTS:
        assert annealing_no(2., 5., p) == 2.
        assert annealing_linear(2., 5., p) == pytest.approx(2. + p * 3.)
        assert annealing_exp(2., 5., p) == pytest.approx(2. * 2.5 ** p)
        assert annealing_cos(2., 5., p) == pytest.approx(5. + (2. - 5.) / 2 * (math.cos(math.pi * p) + 1))
        assert annealing_poly(2)(2., 5., p) == pytest.approx(5. + (2. - 5.) * (1 - p) ** 2)
    assert isinstance(annealing_poly(3), partial)
    assert isinstance(annealing_cos(1., 0., 0.3), np.float64)        # numpy floats, as fastai 1 gives


def test_schedules_are_functions_of_pos_built_on_the_annealers():
    for p in PCTS:
        assert SchedNo(2., 5.)(p) == 2.
        assert SchedLin(2., 5.)(p) == annealing_linear(2., 5., p)
        assert SchedCos(2., 5.)(p) == 2. + (1 + math.cos(math.pi * (1 - p))) * (5. - 2.) / 2
        assert SchedExp(2., 5.)(p) == annealing_exp(2., 5., p)
        assert SchedPoly(2., 5., 0.5)(p) == pytest.approx(2. + 3. * p ** 0.5)
    assert SchedCos(1, 0).f is annealing_cos and SchedLin(1, 0).f is annealing_linear
    assert repr(SchedCos(0.95, 0.85)) == 'SchedCos(0.95, 0.85)'


def test_schedules_work_per_parameter_group():
    lrs = np.array([1e-3, 1e-1])
    out = SchedCos(lrs, lrs / 100)(0.5)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64
    assert close(out, [(1e-3 + 1e-5) / 2, (1e-1 + 1e-3) / 2], 1e-15)


def test_schedules_pickle_with_the_learner():
    for sched in (SchedCos(1., 0.), SchedPoly(1., 0., 2), annealing_poly(2), combined_cos(0.3, 1., 2., 0.),
                  ParamScheduler({'lr': SchedExp(1e-3, 1.)}).scheds['lr']):
        again = pickle.loads(pickle.dumps(sched))
        assert again(0.4) == sched(0.4) if not isinstance(sched, partial) else again(1., 0., .4) == sched(1., 0., .4)


# ============================================================================================== combine_scheds
def torch_combined(pcts, scheds, pos):
    "The spec's rule, in torch float32: boundaries = cumsum(tensor([0]+pcts)), position computed in float32."
    bounds = torch.cumsum(torch.tensor([0.] + list(pcts)), 0)
    idx = min(int((pos >= bounds).nonzero().max()), len(bounds) - 2)
    return scheds[idx](((pos - bounds[idx]) / (bounds[idx + 1] - bounds[idx])).item())


def test_combine_scheds_computes_the_position_in_float32_exactly_as_torch():
    cases = [[0.25, 0.75], [0.3, 0.7], [0.99, 0.01], [1 / 7, 2 / 7, 4 / 7], [0.1, 0.2, 0.3, 0.4], [0., 1.],
             [0.1] * 10]
    for pcts in cases:
        scheds = [SchedLin(float(i), float(i + 1)) for i in range(len(pcts))]
        f = combine_scheds(pcts, scheds)
        positions = [i / n for n in (30, 70, 97) for i in range(n)] + [1.0]
        assert [f(p) for p in positions] == [torch_combined(pcts, scheds, p) for p in positions], pcts


def test_the_float32_position_is_what_moves_the_results():
    f = combined_cos(0.25, 0.004, 0.1, 1e-6)
    in_f64 = [SchedCos(0.1, 1e-6)((p - 0.25) / 0.75) for p in (i / 30 for i in range(8, 30))]
    assert [f(i / 30) for i in range(8, 30)] != in_f64          # fastai's float32 position: not float64's


def test_combined_cos_goes_start_middle_end():
    f = combined_cos(0.25, 1., 3., 0.)
    assert (f(0.), f(0.25), f(1.)) == (1., 3., 0.)
    assert f(0.125) == pytest.approx(2.) and f(0.625) == pytest.approx(1.5)


@pytest.mark.parametrize('pcts, scheds, words', [
    ([0.5, 0.6], [SchedNo(1, 1)] * 2, 'must add up to 1'),
    ([1.5, -0.5], [SchedNo(1, 1)] * 2, 'must be >= 0'),
    ([1.], [SchedNo(1, 1)] * 2, 'one share per schedule'),
    ([0.5, 0.5], [SchedNo(1, 1), 3.], 'function of pos'),
])
def test_combine_scheds_rejects_bad_shares(pcts, scheds, words):
    with pytest.raises(ScheduleError, match=words) as e: combine_scheds(pcts, scheds)
    assert isinstance(e.value, AssertionError)            # what fastai raised, for code that catches it


def test_combine_scheds_accepts_shares_that_add_up_to_1_up_to_rounding():
    assert sum([0.1] * 10) != 1.                            # fastai's exact test refuses this
    assert combine_scheds([0.1] * 10, [SchedLin(0., 1.)] * 10)(0.95) == pytest.approx(0.5, abs=1e-5)
    with pytest.raises(ScheduleError, match=r'position must be in \[0, 1\]'): combined_cos(0.5, 1, 2, 3)(-0.1)


# ============================================================================================== ParamScheduler
def test_param_scheduler_sets_hypers_from_pct_train_on_training_batches_only():
    learn = portable_learner()
    seen = []
    learn.add_cb(Callback(after_pred=lambda cb: seen.append((cb.learn.training, cb.learn.opt.get_hyper('lr')))))
    sched = ParamScheduler({'lr': SchedLin(0., 0.03)})
    assert (sched.order, sched.run_valid, sched.name) == (60, False, 'param_scheduler')
    learn.fit(2, cbs=sched)
    train = [lr for training, lr in seen if training]
    assert train == pytest.approx([0.03 * i / 20 for i in range(20)], abs=1e-15)   # pos: pct_train before the batch
    assert all(lr == train[9] for training, lr in seen[10:12] if not training)   # valid batches: unchanged
    assert sched.hps == {'lr': train} and learn.recorder.hps == {'lr': train}


def test_param_scheduler_refuses_a_hyper_the_optimizer_lacks():
    learn = portable_learner()
    with pytest.raises(ScheduleError, match="ParamScheduler.before_fit: the optimizer has no hyper-parameter 'lrr'"):
        learn.fit(1, cbs=ParamScheduler({'lrr': SchedNo(1., 1.)}))
    with pytest.raises(ScheduleError, match='dict'): ParamScheduler([SchedNo(1., 1.)])


def test_scheduling_adds_no_host_read_per_batch(monkeypatch):
    learn = portable_learner()
    calls = count_host_reads(monkeypatch)
    learn.fit(2)
    n_plain = len(calls)
    learn.fit_one_cycle(2)
    assert len(calls) == 2 * n_plain


# ============================================================================================== fit_one_cycle
RUNS = numbers_golden()


def check_run(learn: Learner, log: BatchLog, golden: dict) -> None:
    assert close(learn.recorder.values, golden['values'])
    for name, vals in golden['params'].items(): assert close(params_of(learn)[name], vals), name
    if not golden['rows']: return
    rows = log.rows
    assert [(r[1], r[2]) for r in rows] == [(g[0], g[1]) for g in golden['rows']]
    assert close([r[3] for r in rows], [g[2] for g in golden['rows']])               # raw loss
    assert close([r[4][-1] for r in rows], [g[3] for g in golden['rows']], 1e-8, rel=True)   # lr
    assert close([r[5] for r in rows], [g[4] for g in golden['rows']], 1e-8, rel=True)       # mom
    assert close([r[6] for r in rows], [g[5] for g in golden['rows']])               # smooth loss


@pytest.mark.parametrize('run, kwargs, model, opt', [
    ('P2', {}, 'reg', 'sgd'), ('P3', {'lr_max': 0.1}, 'reg', 'sgd'), ('P4', {'lr_max': 0.1}, 'linear', 'adam')])
def test_fit_one_cycle_matches_fastai_batch_by_batch(run, kwargs, model, opt):
    learn = portable_learner(model, opt)
    log = logged(learn)
    learn.fit_one_cycle(3, **kwargs)
    check_run(learn, log, RUNS[run])


def test_fit_one_cycle_leaves_the_last_scheduled_values_in_the_optimizer():
    learn = portable_learner()
    learn.fit_one_cycle(3)
    hyp = RUNS['P2']['hypers']
    assert isinstance(learn.opt.get_hyper('lr'), np.float64)
    assert learn.opt.get_hyper('lr') == hyp['lr'] and learn.opt.get_hyper('mom') == hyp['mom']
    assert all(isinstance(v, np.float64) for v in learn.recorder.hps['lr'])
    assert learn.recorder.hps['lr'] == learn.recorder.lrs and len(learn.recorder.hps['mom']) == 30


def test_fit_one_cycle_on_shuffled_synth_learner_matches_fastai():
    torch.manual_seed(0); random.seed(0); np.random.seed(0)
    learn = synth_learner()
    learn.remove_cb(ProgressCallback); learn.logger = noop
    learn.fit_one_cycle(3)
    check_run(learn, BatchLog(), RUNS['S2'])


def test_fit_one_cycle_rejects_bad_arguments():
    learn = portable_learner(groups=2)
    with pytest.raises(ScheduleError, match=r'fit_one_cycle: List len mismatch \(3 vs 2\): trying to set 3 values'):
        learn.fit_one_cycle(1, lr_max=[1e-3, 1e-2, 1e-1])
    with pytest.raises(ScheduleError, match=r'fit_one_cycle: moms must be 3 values'):
        learn.fit_one_cycle(1, moms=(0.95, 0.85))
    with pytest.raises(ScheduleError, match='fit_one_cycle: pct_start must be between 0 and 1, got 1.5'):
        learn.fit_one_cycle(1, pct_start=1.5)


def test_fit_one_cycle_without_momentum_in_the_optimizer_schedules_the_lr_only():
    learn = portable_learner()
    learn.opt_func = partial(torch.optim.Adagrad)
    learn.fit_one_cycle(1, lr_max=0.01)          # fastai: KeyError 'mom'
    assert list(learn.recorder.hps) == ['lr']


# ============================================================================================== recipes vs fastai
RECIPES = recipes_golden()['recipes']


def check_recipe(learn: Learner, log: BatchLog, golden: dict) -> None:
    rows, exp = log.rows, golden['rows']
    assert [r[:3] for r in rows] == [tuple(g[:3]) for g in exp]
    assert close([r[4] for r in rows], [g[4] for g in exp], 1e-12)                   # lr of every group
    assert close([r[5] for r in rows], [g[5] for g in exp], 1e-12)                   # mom
    assert close([r[3] for r in rows], [g[3] for g in exp])
    assert close([r[6] for r in rows], [g[6] for g in exp])
    assert len(log.values) == len(golden['values'])
    for got, want in zip(log.values, golden['values']): assert close(got, want)
    for name, vals in golden['params'].items(): assert close(params_of(learn)[name], vals), name
    assert learn.n_epoch == golden['n_epoch']
    for k, vals in golden['hps'].items(): assert close(learn.recorder.hps[k], vals, 1e-12), k


@pytest.mark.parametrize('recipe, groups, run', [
    ('fit_sgdr(3, 1, lr_max=0.05)', 1, lambda l: l.fit_sgdr(3, 1, lr_max=0.05)),
    ('fit_flat_cos(2, lr=0.05)', 1, lambda l: l.fit_flat_cos(2, lr=0.05)),
    ('fit_one_cycle(2, lr_max=slice(1e-3, 1e-1)) [2 groups]', 2, lambda l: l.fit_one_cycle(2, lr_max=slice(1e-3, 1e-1))),
    ('fine_tune(2, base_lr=0.1) [2 groups]', 2, lambda l: l.fine_tune(2, base_lr=0.1)),
])
def test_recipes_match_fastai(recipe, groups, run):
    learn = portable_learner(groups=groups)
    log = logged(learn)
    run(learn)
    check_recipe(learn, log, RECIPES[recipe])


def test_fine_tune_trains_only_the_last_group_first():
    learn = portable_learner(groups=2)
    a0 = learn.model.a.item()
    learn.add_cb(Callback(after_fit=lambda cb: cb.learn.__dict__.setdefault('a_after_first', cb.learn.model.a.item())))
    learn.fine_tune(1, base_lr=0.1)
    assert learn.a_after_first == a0 and learn.model.a.item() != a0
    assert all(p.requires_grad for p in learn.model.parameters())


def test_fit_flat_cos_honours_start_epoch():
    learn = portable_learner()
    learn.fit_flat_cos(2, lr=0.05, start_epoch=1)            # fastai 2.8 ignores start_epoch here
    assert close(learn.recorder.lrs, RECIPES['fit_flat_cos(2, lr=0.05)']['hps']['lr'][10:], 1e-12)


def test_fit_sgdr_epochs_and_cycle_mult_1():
    learn = portable_learner()
    learn.fit_sgdr(3, 1, lr_max=0.01, cycle_mult=1)         # fastai: ZeroDivisionError
    lrs = learn.recorder.hps['lr']
    assert learn.n_epoch == 3 and [lrs[i] for i in (0, 10, 20)] == [0.01] * 3
    with pytest.raises(ScheduleError, match='fit_sgdr: cycle_mult must be a positive int, got 1.5'):
        learn.fit_sgdr(2, 1, cycle_mult=1.5)


# ============================================================================================== plots
def test_plot_sched_draws_each_scheduled_hyper(tmp_path):
    learn = portable_learner()
    learn.fit_one_cycle(1)
    fig = learn.recorder.plot_sched()
    axes = fig.get_axes()
    assert [ax.get_ylabel() for ax in axes] == ['lr', 'mom']
    assert close(axes[0].lines[0].get_ydata(), learn.recorder.hps['lr'], 1e-15)
    fig.savefig(tmp_path / 'sched.png')
    assert (tmp_path / 'sched.png').stat().st_size > 0
    assert [ax.get_ylabel() for ax in learn.recorder.plot_sched('mom').get_axes()] == ['mom']
    with pytest.raises(ValueError, match=r"Recorder.plot_sched: no schedule recorded for \['wd'\]"):
        learn.recorder.plot_sched(['wd'])
