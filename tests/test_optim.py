"OptimWrapper: fastai's hyper-parameter names over torch optimizers, weight decay, state; Adam vs fastai."
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from trainlib import SGD, Adam, Learner, OptimWrapper, RMSProp, noop
from trainlib.testing import synth_dbunch

GOLDEN = Path(__file__).parent / 'golden'


def two_params():
    "A weight and a bias with known values."
    return [nn.Parameter(torch.tensor([[1., -2.], [3., 4.]])), nn.Parameter(torch.tensor([0.5, -0.5]))]


def fastai_names(hypers):
    return {k: v for k, v in hypers.items() if k in ('lr', 'mom', 'sqr_mom', 'eps', 'wd')}


# ------------------------------------------------------------------------------ names
@pytest.mark.parametrize('torch_opt, kwargs, expected', [
    (torch.optim.SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.01), dict(lr=0.1, mom=0.9, wd=0.01)),
    (torch.optim.Adam, dict(lr=0.1, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.01),
     dict(lr=0.1, mom=0.8, sqr_mom=0.95, eps=1e-6, wd=0.01)),
    (torch.optim.RMSprop, dict(lr=0.1, alpha=0.9, momentum=0.5, eps=1e-7, weight_decay=0.01),
     dict(lr=0.1, mom=0.5, sqr_mom=0.9, eps=1e-7, wd=0.01)),
])
def test_torch_hyper_parameters_get_fastai_names(torch_opt, kwargs, expected):
    opt = OptimWrapper(opt=torch_opt(two_params(), **kwargs))
    assert fastai_names(opt.hypers[0]) == expected
    assert all(opt.get_hyper(k) == v for k, v in expected.items())


def test_set_hyper_writes_back_under_torch_names():
    opt = OptimWrapper(opt=torch.optim.Adam(two_params(), lr=0.1))
    opt.set_hypers(mom=0.7, sqr_mom=0.9, wd=0.05)
    group = opt.param_groups[0]
    assert group['betas'] == (0.7, 0.9) and group['weight_decay'] == 0.05
    rms = OptimWrapper(opt=torch.optim.RMSprop(two_params(), lr=0.1))
    rms.set_hyper('sqr_mom', 0.5)
    assert rms.param_groups[0]['alpha'] == 0.5


def test_trainlib_optimizers_use_fastais_defaults():
    assert fastai_names(Adam(two_params()).hypers[0]) == dict(lr=1e-3, mom=0.9, sqr_mom=0.99, eps=1e-5, wd=0.01)
    assert fastai_names(SGD(two_params(), mom=0.9).hypers[0]) == dict(lr=1e-3, mom=0.9, wd=0.)
    assert fastai_names(RMSProp(two_params()).hypers[0]) == dict(lr=1e-2, mom=0., sqr_mom=0.99, eps=1e-8, wd=0.)


# ----------------------------------------------------------------- several groups
def three_groups(**kwargs):
    w, b = two_params()
    return Adam([[w], [b], [nn.Parameter(torch.zeros(1))]], **kwargs)


def test_set_hyper_with_a_scalar_a_list_or_a_slice():
    opt = three_groups()
    opt.set_hyper('lr', 0.1)
    assert [h['lr'] for h in opt.hypers] == [0.1, 0.1, 0.1]
    opt.set_hyper('mom', [0.9, 0.8, 0.7])
    assert [opt.get_hyper('mom', i) for i in range(3)] == [0.9, 0.8, 0.7]
    opt.set_hyper('lr', slice(1e-4, 1e-2))                # geometric from start to stop
    assert [h['lr'] for h in opt.hypers] == pytest.approx([1e-4, 1e-3, 1e-2])
    opt.set_hyper('lr', slice(1e-2))                      # stop/10 for all but the last group
    assert [h['lr'] for h in opt.hypers] == pytest.approx([1e-3, 1e-3, 1e-2])
    assert opt.get_hyper('lr') == pytest.approx(1e-2)     # the last group by default


def test_set_hyper_with_the_wrong_number_of_values():
    opt = three_groups()
    with pytest.raises(ValueError) as info:
        opt.set_hyper('lr', [0.1, 0.2])
    msg = str(info.value)
    assert "'lr'" in msg and '2 values' in msg and '3 parameter groups' in msg


# ---------------------------------------------------------------------- weight decay
def zero_grads(ps):
    for p in ps: p.grad = torch.zeros_like(p)


def test_decoupled_weight_decay_scales_params_that_have_a_gradient():
    w, b = two_params()
    frozen = nn.Parameter(torch.tensor([2.]))
    opt = SGD([w, b, frozen], lr=0.1, wd=0.5)
    zero_grads([w, b])                                    # frozen.grad stays None
    w0, b0 = w.detach().clone(), b.detach().clone()
    opt.step()
    torch.testing.assert_close(w.detach(), w0 * (1 - 0.1 * 0.5))
    torch.testing.assert_close(b.detach(), b0 * (1 - 0.1 * 0.5))
    assert frozen.item() == 2.


def test_params_flagged_do_wd_false_are_not_decayed():
    w, b = two_params()
    opt = SGD([w, b], lr=0.1, wd=0.5)
    opt.state[b]['do_wd'] = False
    zero_grads([w, b])
    b0 = b.detach().clone()
    opt.step()
    assert torch.equal(b.detach(), b0) and not torch.equal(w.detach(), two_params()[0].detach())


def test_l2_weight_decay_goes_into_the_gradient():
    w, b = two_params()
    opt = SGD([w, b], lr=0.1, wd=0.5, decouple_wd=False)
    opt.state[b]['do_wd'] = False
    w.grad, b.grad = torch.ones_like(w), torch.ones_like(b)
    w0, b0 = w.detach().clone(), b.detach().clone()
    opt.step()
    torch.testing.assert_close(w.detach(), w0 - 0.1 * (1 + 0.5 * w0))
    torch.testing.assert_close(b.detach(), b0 - 0.1)


def test_zero_grad_drops_the_gradients_or_keeps_the_tensors_when_asked():
    w, b = two_params()
    opt = SGD([w, b])
    w.grad, b.grad = torch.ones_like(w), torch.ones_like(b)
    grad = w.grad
    opt.zero_grad(set_to_none=False)
    assert w.grad is grad and w.grad.abs().sum() == 0 and b.grad.abs().sum() == 0
    opt.zero_grad()
    assert w.grad is None and b.grad is None


def test_state_dict_round_trip():
    w, b = two_params()
    opt = Adam([w, b], lr=0.1)
    w.grad, b.grad = torch.ones_like(w), -torch.ones_like(b)
    opt.step()
    opt.set_hyper('lr', 0.03)
    saved = opt.state_dict()
    other = Adam(two_params(), lr=0.5)
    other.load_state_dict(saved)
    assert other.get_hyper('lr') == 0.03
    mine, theirs = opt.state_dict()['state'], other.state_dict()['state']
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[i][k], theirs[i][k]) for i in mine for k in mine[i])


# ---------------------------------------------------------------- Adam against fastai
def load_adam_golden():
    text = (GOLDEN / 'fa2_adam_steps.json').read_text()
    return json.loads(''.join(line for line in text.splitlines() if not line.startswith('#')))


def replay_adam(opt_params, opt, golden):
    "Apply the recorded gradients step by step; return the parameters after each step."
    out = []
    for grads in golden['grads']:
        for p, g in zip(opt_params, grads): p.grad = torch.tensor(g)
        opt.step()
        out.append([p.detach().clone() for p in opt_params])
    return out


@pytest.mark.parametrize('case', ['bias_decayed', 'bias_exempt'])
def test_default_adam_matches_fastai(case):
    golden = load_adam_golden()
    ps = [nn.Parameter(torch.tensor(x)) for x in golden['init']]
    opt = Adam(ps, lr=0.01, wd=0.01)
    if case == 'bias_exempt': opt.state[ps[1]]['do_wd'] = False
    steps = replay_adam(ps, opt, golden)
    for got, expected in zip(steps, golden['cases'][case]):
        for p, e in zip(got, expected): torch.testing.assert_close(p, torch.tensor(e), atol=1e-6, rtol=0)


def test_learner_default_optimizer_matches_fastais_learner():
    golden = load_adam_golden()
    model = nn.Linear(3, 2)
    with torch.no_grad():
        for p, x in zip(model.parameters(), golden['init']): p.copy_(torch.tensor(x))
    learn = Learner(synth_dbunch(), model, loss_func=noop, lr=0.01)
    learn.create_opt()                                    # Adam, wd 0.01, biases spared (wd_bn_bias=False)
    steps = replay_adam(list(model.parameters()), learn.opt, golden)
    for p, e in zip(steps[-1], golden['cases']['bias_exempt'][-1]):
        torch.testing.assert_close(p, torch.tensor(e), atol=1e-6, rtol=0)
