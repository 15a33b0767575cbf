"""fastai's optimizers as trainlib opt_funcs, step for step against fastai 2.8.12.

The golden file (tests/golden/fa2_optimizers.json, made by tests/oracle_scripts/fa2_optimizers.py)
holds the initial parameters, the gradient noise, and for each optimizer the hyper-parameters it
starts with and the parameters and state after 20 steps of the problem replayed by ``_run``.
"""
import json
from pathlib import Path

import pytest
import torch

import trainlib.optim
from trainlib.optim import SGD, Lookahead, OptimWrapper, ranger
from trainlib.optimizers import LookaheadOptimizer, RAdamOptimizer

GOLDEN = json.loads((Path(__file__).parent / 'golden' / 'fa2_optimizers.json').read_text().split('\n', 1)[1])


def _maker(opt_name, kwargs, lookahead):
    "The trainlib optimizer of a golden case (the spec names fastai's function; trainlib has the same)."
    def make(ps):
        opt = getattr(trainlib.optim, opt_name)(ps, lr=[0.01, 0.03], **kwargs)
        return opt if lookahead is None else Lookahead(opt, **lookahead)
    return make


CASES = {name: _maker(*spec) for name, spec in GOLDEN['spec'].items()}
# torch's state names for the optimizers trainlib takes from torch.optim
TORCH_STATE_NAMES = {'exp_avg': 'grad_avg', 'exp_avg_sq': 'sqr_avg', 'momentum_buffer': 'grad_avg',
                     'square_avg': 'sqr_avg'}


def _run(make, n_steps=20):
    "The golden problem: two groups, do_wd=False on b1 and n2, w2 without grad at steps 5-7, new lr/mom at step 10."
    ps = [torch.tensor(v, requires_grad=True) for v in GOLDEN['init']]
    opt = make([ps[:2], ps[2:]])
    for p in (ps[1], ps[3]): opt.state[p]['do_wd'] = False
    hypers = [dict(h) for h in opt.hypers]       # the defaults, before step 10 changes them
    for t in range(n_steps):
        if t == 10: opt.set_hypers(lr=[0.02, 0.05], mom=0.8)
        for i, p in enumerate(ps):
            p.grad = None if (i == 2 and 5 <= t <= 7) else 0.5 * p.detach() + torch.tensor(GOLDEN['noise'][t][i])
        opt.step()
    return opt, ps, hypers


def _state(opt, p):
    "The wrapper's flags for ``p`` and the torch optimizer's state, under fastai's names."
    out = dict(opt.state[p])
    for k, v in opt.opt.state[p].items():
        out[TORCH_STATE_NAMES.get(k, k)] = int(v) if k == 'step' else v
    return out


@pytest.mark.parametrize('name', list(CASES))
def test_matches_fastai_after_20_steps(name):
    gold = GOLDEN['cases'][name]
    opt, ps, hypers = _run(CASES[name])
    for got, want in zip(hypers, gold['hypers']):                     # fastai's defaults
        assert {k: got[k] for k in want} == pytest.approx(want)
    for p, want in zip(ps, gold['params']):
        torch.testing.assert_close(p.detach(), torch.tensor(want), atol=1e-6, rtol=0)
    for p, want in zip(ps, gold['state']):
        got = _state(opt, p)
        assert set(want) <= set(got)
        for k, v in want.items():
            if k in ('step', 'do_wd'): assert got[k] == v
            else: torch.testing.assert_close(got[k], torch.tensor(v), atol=1e-6, rtol=0)
    if 'lookahead' in gold:
        la = opt.opt
        assert la.count == gold['lookahead']['count']
        for p, want in zip(ps, gold['lookahead']['slow']):
            torch.testing.assert_close(la.slow_weights[p], torch.tensor(want), atol=1e-6, rtol=0)


def test_torch_radam_is_not_fastai_radam():
    "Why RAdam is trainlib's own: torch adds eps before debiasing, so it misses fastai's numbers by more than 1e-6."
    gold = GOLDEN['cases']['radam']
    _, ps, _ = _run(lambda ps: OptimWrapper(ps, opt=torch.optim.RAdam, decouple_wd=True, lr=[0.01, 0.03], betas=(0.9, 0.99),
                                            eps=1e-5, wd=0.1))
    diff = max((p.detach() - torch.tensor(w)).abs().max().item() for p, w in zip(ps, gold['params']))
    assert diff > 2e-6


def test_sgd_created_without_momentum_ignores_a_scheduled_mom():
    "As fastai: SGD(mom=0) records mom but never uses it; SGD(mom=0.9) follows the scheduled value."
    p = torch.nn.Parameter(torch.ones(2))
    opt = SGD([p], lr=0.1)
    opt.set_hyper('mom', 0.9)
    assert opt.hypers[0]['mom'] == 0.9 and opt.opt.param_groups[0]['momentum'] == 0
    opt = SGD([p], lr=0.1, mom=0.5)
    opt.set_hyper('mom', 0.9)
    assert opt.opt.param_groups[0]['momentum'] == 0.9


def test_lookahead_state_dict_round_trip_and_clear():
    ps = [torch.nn.Parameter(torch.tensor(v)) for v in GOLDEN['init']]
    opt = Lookahead(SGD([ps[:2], ps[2:]], lr=0.1, mom=0.9), k=3)
    for _ in range(4):
        for p in ps: p.grad = torch.ones_like(p)
        opt.step()
    sd = opt.state_dict()
    assert sd['lookahead']['count'] == 4 and len(sd['lookahead']['slow_weights']) == 4
    opt2 = Lookahead(SGD([ps[:2], ps[2:]], lr=0.1, mom=0.9), k=3)
    opt2.load_state_dict(sd)
    assert opt2.opt.count == 4
    torch.testing.assert_close(opt2.opt.slow_weights[ps[0]], opt.opt.slow_weights[ps[0]])
    opt.clear_state()
    assert opt.opt.count == 0 and opt.opt.slow_weights is None and len(opt.opt.state) == 0


def test_bad_hyper_parameters_fail_early():
    p = [torch.nn.Parameter(torch.ones(2))]
    with pytest.raises(ValueError, match='RAdamOptimizer: sqr_mom must be in'):
        RAdamOptimizer(p, sqr_mom=1.)
    with pytest.raises(ValueError, match='k must be a positive int'):
        LookaheadOptimizer(torch.optim.SGD(p), k=0)
    with pytest.raises(TypeError, match='Lookahead: opt must be an OptimWrapper or a torch optimizer'):
        Lookahead(p)


def test_optimizers_accept_a_closure():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = ranger([p], lr=0.1)
    def closure():
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss
    assert opt.step(closure).item() == 5.0
    assert p.grad is not None
