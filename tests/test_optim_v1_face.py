"""The fastai-1 face of OptimWrapper, against fastai 1.0.61 (tests/golden/fa1_optim_wrapper.json, made by
tests/oracle_scripts/fa1_optim_wrapper.py): create()'s [wd, no_wd] layout, the lr/mom/beta/wd properties,
true_wd/bn_wd steps, new() and new_with_params(); then what a v1 callback sees on a v2 optimizer."""
import copy
import json
from functools import partial
from pathlib import Path

import pytest
import torch
from torch import nn

from trainlib.optim import Adam, HyperLengthError, OptimWrapper, split_no_wd_params

GOLDEN = json.loads((Path(__file__).parent / 'golden' / 'fa1_optim_wrapper.json').read_text().split('\n', 1)[1])
OPT_FUNCS = {'adam': partial(torch.optim.Adam, betas=(0.9, 0.99)), 'sgd': torch.optim.SGD, 'rmsprop': torch.optim.RMSprop}
MODES = [(False, True), (False, False), (True, True), (True, False)]


def make_groups():
    "The oracle's two layer groups, with its initial weights; the bias of lg1[0] is frozen."
    lg0 = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Sequential(nn.Linear(6, 6)))
    lg1 = nn.Sequential(nn.Linear(6, 3), nn.LayerNorm(3), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        for p, v in zip([p for g in (lg0, lg1) for p in g.parameters()], GOLDEN['init']): p.copy_(torch.tensor(v))
    lg1[0].bias.requires_grad_(False)
    return [lg0, lg1]


def view(opt, groups):
    "The torch groups as the oracle printed them: parameter names, and the hyper-parameters it recorded."
    names = {id(p): f'{i}.{n}' for i, g in enumerate(groups) for n, p in g.named_parameters()}
    out = []
    for pg in opt.opt.param_groups:
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in pg.items()
             if k in ('lr', 'betas', 'momentum', 'alpha', 'weight_decay', 'eps')}
        out.append({'params': [names[id(p)] for p in pg['params']], **d})
    return out


def props(opt): return {k: getattr(opt, k) for k in ('lr', 'mom', 'beta', 'wd')}


def created(name, true_wd, bn_wd, lr=(0.001, 0.01)):
    groups = make_groups()
    return groups, OptimWrapper.create(OPT_FUNCS[name], list(lr), groups, wd=0.1, true_wd=true_wd, bn_wd=bn_wd)


@pytest.mark.parametrize('name', list(OPT_FUNCS))
@pytest.mark.parametrize('true_wd,bn_wd', MODES)
def test_create_layout_and_getters(name, true_wd, bn_wd):
    want = GOLDEN['create'][f'{name} true_wd={true_wd} bn_wd={bn_wd}']
    groups, opt = created(name, true_wd, bn_wd)
    assert view(opt, groups) == want['groups']          # [wd, no_wd] per layer group, frozen bias included
    assert props(opt) == pytest.approx(want['props'])   # getters read the last layer group
    assert opt.n_params == want['n_params'] and opt.n_groups == 2
    assert (opt.get_stat('eps') if 'eps' in opt.param_groups[0] else None) == want['eps']
    assert [opt.no_such_name, len(opt.param_groups)] == want['passthrough']
    assert (opt.true_wd, opt.bn_wd) == (true_wd, bn_wd)


@pytest.mark.parametrize('name', list(OPT_FUNCS))
def test_setters_write_both_groups_of_each_layer_group(name):
    want = GOLDEN['create'][f'{name} true_wd=False bn_wd=True']['setters']
    groups, opt = created(name, False, True)
    for attr, val in [('lr', 0.5), ('lr', [0.1, 0.2]), ('mom', 0.8), ('mom', [0.7, 0.75]), ('beta', 0.95),
                      ('beta', None), ('wd', 0.2), ('wd', [0.3, 0.4])]:
        setattr(opt, attr, val)
        assert view(opt, groups) == want[f'{attr}={val}']['groups'], (attr, val)
        assert props(opt) == pytest.approx(want[f'{attr}={val}']['props'])
    with pytest.raises(AssertionError, match=r'^List len mismatch \(3 vs 2\)') as err:
        opt.lr = [1., 2., 3.]
    assert isinstance(err.value, HyperLengthError) and isinstance(err.value, ValueError)
    assert want['error'].startswith('AssertionError: List len mismatch (3 vs 2)')


@pytest.mark.parametrize('name', list(OPT_FUNCS))
@pytest.mark.parametrize('true_wd,bn_wd', MODES)
def test_steps_decay_like_fastai1(name, true_wd, bn_wd):
    "true_wd: p *= 1 - lr*wd on every parameter of the wd groups (no-wd ones if bn_wd), with or without grad."
    want = GOLDEN['steps'][f'{name} true_wd={true_wd} bn_wd={bn_wd}']
    groups, opt = created(name, true_wd, bn_wd, lr=(0.01, 0.05))
    ps = [p for g in groups for p in g.parameters()]
    for grads in want['grads']:
        for p, g in zip(ps, grads): p.grad = None if g is None else torch.tensor(g)
        opt.step()
    for p, w in zip(ps, want['params']): torch.testing.assert_close(p.detach(), torch.tensor(w), atol=1e-6, rtol=0)
    assert [pg['weight_decay'] for pg in opt.opt.param_groups] == want['weight_decay']


def test_new_and_new_with_params_keep_the_hyper_parameters():
    groups, opt = created('adam', True, False)
    opt.mom, opt.beta = 0.8, 0.95
    new = opt.new([nn.Sequential(*groups[0], *groups[1])])
    want = GOLDEN['new']
    assert view(new, groups) == want['groups'] and props(new) == pytest.approx(want['props'])
    assert (new.true_wd, new.bn_wd) == (want['true_wd'], want['bn_wd'])
    nwp = opt.new_with_params([[p for p in g.parameters() if p.requires_grad] for g in groups])
    assert view(nwp, groups) == GOLDEN['new_with_params']['groups']
    assert props(nwp) == pytest.approx(GOLDEN['new_with_params']['props'])


def test_split_no_wd_params_scans_direct_children_only():
    groups = make_groups()
    wd0, no_wd0, wd1, no_wd1 = [{id(p) for p in ps} for ps in split_no_wd_params(groups)]
    assert id(groups[0][3][0].bias) in wd0              # a bias inside a nested Sequential is decayed
    assert id(groups[1][0].bias) in no_wd1              # a frozen bias is kept
    assert len(no_wd0) == 3 and len(wd1) == 2


def test_zero_grad_drops_gradients_and_clear_resets_state():
    groups, opt = created('adam', True, True)
    ps = [p for p in groups[0].parameters()]
    for p in ps: p.grad = torch.ones_like(p)
    opt.step()
    assert len(opt.opt.state) == len(ps)
    opt.zero_grad()
    assert all(p.grad is None for p in ps)              # fastai 1 on torch 2
    opt.clear()
    assert len(opt.opt.state) == 0 and opt.lr == 0.01


def test_swapping_the_torch_optimizer_rereads_the_layout():
    "fastai 1's GAN trainer does `learn.opt.opt = other.opt`: the properties then read the new optimizer."
    groups, opt = created('adam', True, True)
    other = opt.new([groups[1]])
    other.lr = 0.3
    opt.opt = other.opt
    assert opt.n_groups == 1 and opt.lr == 0.3 and opt.n_params == 5


def test_get_state_and_load_with_state_and_layer_group_round_trip():
    groups, opt = created('sgd', False, False)
    opt.mom = [0.5, 0.6]
    for p in groups[1].parameters(): p.grad = torch.ones_like(p)
    opt.step()
    state = opt.get_state()
    assert state['lr'] == [0.001, 0.01] and state['mom'] == [0.5, 0.6] and state['beta'] is None
    res = OptimWrapper.load_with_state_and_layer_group(state, groups)
    assert props(res) == props(opt) and res.bn_wd is False
    assert res.read_val('momentum') == [0.5, 0.6]
    assert [g['weight_decay'] for g in res.param_groups] == [0.1, 0., 0.1, 0.]


def test_read_val_set_val_and_stats():
    _, opt = created('adam', False, True)
    assert opt.read_val('betas') == ([0.9, 0.9], [0.99, 0.99])
    opt.set_val('betas', ([0.8, 0.7], [0.9, 0.95]))
    assert (opt.mom, opt.beta) == (0.7, 0.95)
    opt.set_val('weight_decay', [0.5, 0.6], bn_groups=False)
    assert [g['weight_decay'] for g in opt.param_groups] == [0.5, 0.1, 0.6, 0.1]
    opt.set_stat('eps', 1e-3)
    assert opt.get_stat('eps') == 1e-3 and opt.get_stat('lr') == 0.01


def test_v1_face_on_a_v2_optimizer():
    "A v1 callback in a v2 Learner writes learn.opt.lr/mom/wd: the same torch groups the v2 face reads."
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = Adam([list(model[:2].parameters()), list(model[2].parameters())], lr=1e-3)
    opt.lr = [0.1, 0.2]
    opt.mom, opt.beta, opt.wd = 0.8, 0.95, 0.05
    assert opt.hypers[0]['lr'] == 0.1 and opt.get_hyper('mom') == 0.8 and opt.get_hyper('sqr_mom') == 0.95
    assert opt.opt.param_groups[1]['betas'] == (0.8, 0.95) and opt.opt.param_groups[1]['wd'] == 0.05
    assert opt.true_wd and opt.bn_wd
    opt.state[model[1].weight]['do_wd'] = False
    assert not opt.bn_wd
    with pytest.raises(ValueError, match='bn_wd: this optimizer has no \\[wd, no_wd\\] group pairs'):
        opt.bn_wd = True
    with pytest.raises(AttributeError):
        opt._private_name
    assert opt.defaults['lr'] == 1e-3                    # passthrough to the torch optimizer


def test_true_wd_switches_where_the_decay_lives():
    _, opt = created('sgd', False, True)
    opt.true_wd = True
    assert [g['weight_decay'] for g in opt.param_groups] == [0.] * 4 and opt.wd == 0.1
    opt.true_wd = False
    assert [g['weight_decay'] for g in opt.param_groups] == [0.1] * 4
    opt.bn_wd = False
    assert [g['weight_decay'] for g in opt.param_groups] == [0.1, 0., 0.1, 0.]


def test_a_v1_wrapper_survives_deepcopy():
    _, opt = created('adam', True, False)
    twin = copy.deepcopy(opt)
    twin.lr = 0.5
    assert (opt.lr, twin.lr, twin.bn_wd, twin.true_wd) == (0.01, 0.5, False, True)


def test_create_accepts_a_trainlib_opt_func():
    "create(trainlib.Adam, ...) builds on its torch optimizer, keeping fastai 2's eps and betas."
    groups = make_groups()
    opt = OptimWrapper.create(Adam, 0.01, groups, wd=0.1, true_wd=True)
    assert (opt.lr, opt.mom, opt.beta, opt.wd, opt.get_stat('eps')) == (0.01, 0.9, 0.99, 0.1, 1e-5)
    assert len(opt.param_groups) == 4 and opt.true_wd


def test_a_callback_writing_the_v1_properties_drives_the_v2_loop():
    "A fastai-1 style write (`learn.opt.lr = ...`) inside a fit is what the step uses and the Recorder logs."
    from trainlib import Callback, ProgressCallback, noop
    from trainlib.testing import synth_learner

    class V1StyleScheduler(Callback):
        def before_batch(self):
            self.learn.opt.lr, self.learn.opt.mom = 0.05, 0.5
    learn = synth_learner(cbs=V1StyleScheduler())
    learn.remove_cb(ProgressCallback); learn.logger = noop
    learn.fit(1, lr=0.1)
    assert learn.recorder.lrs == [0.05] * 10
    assert learn.opt.opt.param_groups[0]['momentum'] == 0.5 and learn.opt.hypers[-1]['mom'] == 0.5
