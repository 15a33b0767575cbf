"""The fastai-2 face of OptimWrapper: names, per-group values, freezing, weight decay and its exemptions,
state dicts. The numbers of each algorithm are in test_optim_algorithms.py, the v1 face in test_optim_v1_face.py."""
import copy
import random
import warnings
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlib import DataLoaders, Learner, MSELossFlat, noop, ProgressCallback
from trainlib.optim import SGD, Adam, HyperLengthError, OptimWrapper, RMSProp, ranger


def model3():
    "Three parameter groups: Linear, BatchNorm, Linear."
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))


def split3(m): return [list(c.parameters()) for c in m]


def test_fastai_names_over_torch_keys():
    m = model3()
    adam = OptimWrapper(split3(m), opt=torch.optim.Adam, lr=0.1, mom=0.8, sqr_mom=0.95, wd=0.01)
    assert adam.opt.param_groups[0]['betas'] == (0.8, 0.95) and adam.opt.param_groups[0]['weight_decay'] == 0.01
    assert {k: adam.hypers[0][k] for k in ('lr', 'mom', 'sqr_mom', 'eps', 'wd')} == {
        'lr': 0.1, 'mom': 0.8, 'sqr_mom': 0.95, 'eps': 1e-8, 'wd': 0.01}
    rms = OptimWrapper(split3(m), opt=torch.optim.RMSprop, mom=0.5, sqr_mom=0.9)
    assert (rms.opt.param_groups[2]['momentum'], rms.opt.param_groups[2]['alpha']) == (0.5, 0.9)
    assert rms.get_hyper('sqr_mom', 0) == 0.9 and rms.n_groups == 3


def test_per_group_values_slices_and_lists():
    opt = SGD(split3(model3()), lr=1e-3)
    opt.set_hyper('lr', slice(1e-4, 1e-2))                      # geometric
    assert [h['lr'] for h in opt.hypers] == pytest.approx([1e-4, 1e-3, 1e-2])
    opt.set_hyper('lr', slice(None, 0.3))                        # [hi/10]*(n-1) + [hi]
    assert [h['lr'] for h in opt.hypers] == pytest.approx([0.03, 0.03, 0.3])
    opt.set_hypers(lr=np.array([1., 2., 3.]), wd=[0.1])          # arrays; a one-element list broadcasts
    assert [(h['lr'], h['wd']) for h in opt.hypers] == [(1., 0.1), (2., 0.1), (3., 0.1)]
    with pytest.raises(HyperLengthError, match=r"List len mismatch \(2 vs 3\): trying to set 2 values for 'lr'"):
        opt.set_hyper('lr', [1, 2])
    with pytest.raises(KeyError, match="get_hyper\\('nope'\\): the optimizer has no hyper-parameter 'nope'"):
        opt.get_hyper('nope')


def test_constructor_kwargs_go_to_torch_and_are_validated_there():
    m = model3()
    opt = OptimWrapper(split3(m), opt=torch.optim.SGD, momentum=0.9, nesterov=True, lr=0.1)
    assert opt.get_hyper('mom') == 0.9 and opt.opt.param_groups[0]['nesterov']
    with pytest.raises(ValueError, match='Invalid learning rate'):
        OptimWrapper(split3(m), opt=torch.optim.SGD, lr=-1.)
    with pytest.raises(ValueError, match='got both `params` and a built optimizer'):
        OptimWrapper(split3(m), opt=torch.optim.SGD(m.parameters()))
    dict_groups = [{'params': list(m[0].parameters()), 'lr': 0.5}, {'params': list(m[2].parameters())}]
    assert [h['lr'] for h in OptimWrapper(dict_groups, opt=torch.optim.SGD, lr=0.1).hypers] == [0.5, 0.1]


def test_freeze_to_keeps_force_train_parameters_trainable():
    m = model3()
    opt = Adam(split3(m))
    for p in m[1].parameters(): opt.state[p]['force_train'] = True
    opt.freeze()
    assert [p.requires_grad for p in m.parameters()] == [False, False, True, True, True, True]
    opt.unfreeze()
    assert all(p.requires_grad for p in m.parameters())
    with pytest.warns(UserWarning, match='whole model is frozen'):
        opt.freeze_to(3)


def _decayed(opt, ps):
    "Which of ``ps`` one step with zero gradients changes (only weight decay can)."
    before = [p.detach().clone() for p in ps]
    for p in ps: p.grad = torch.zeros_like(p)
    opt.step()
    return [not torch.equal(b, p) for b, p in zip(before, ps)]


@pytest.mark.parametrize('decouple_wd', [True, False, None])
def test_do_wd_flags_are_honoured_in_every_mode(decouple_wd):
    "Decoupled, L2, and torch's own weight_decay (fastai 2.8 ignores the flags there; trainlib moves the "
    "flagged parameters into a no-wd companion group)."
    lin = nn.Linear(3, 2)
    opt = OptimWrapper([lin.parameters()], opt=torch.optim.SGD, decouple_wd=decouple_wd, lr=0.1, wd=0.5)
    opt.state[lin.bias]['do_wd'] = False
    assert _decayed(opt, [lin.weight, lin.bias]) == [True, False]
    assert opt.n_groups == 1 and opt.get_hyper('wd') == 0.5
    opt.state[lin.bias]['do_wd'] = True                          # flags can change between steps
    assert _decayed(opt, [lin.weight, lin.bias]) == [True, True]


def test_torch_weight_decay_split_keeps_hyper_parameter_groups():
    m = model3()
    opt = OptimWrapper(split3(m), opt=torch.optim.AdamW, lr=0.1, weight_decay=0.2)
    for p in [m[0].bias, m[1].weight, m[1].bias]: opt.state[p]['do_wd'] = False
    assert len(opt.param_groups) == 5 and opt.n_groups == 3        # groups 0 and 1 gained a companion
    assert [g['weight_decay'] for g in opt.param_groups] == [0.2, 0., 0.2, 0., 0.2]
    assert [len(ps) for ps in opt.param_lists] == [2, 2, 2]
    opt.set_hyper('wd', [0.1, 0.2, 0.3])
    opt.set_hyper('lr', 0.05)
    assert [g['weight_decay'] for g in opt.param_groups] == [0.1, 0., 0.2, 0., 0.3]
    assert all(g['lr'] == 0.05 for g in opt.param_groups) and opt.hypers[1]['wd'] == 0.2


def test_learner_wd_bn_bias_false_with_a_wrapped_torch_optimizer():
    "Learner(opt_func=partial(OptimWrapper, opt=torch.optim.AdamW)): norm layers and biases are not decayed."
    x = torch.randn(16, 3)
    dls = DataLoaders(DataLoader(TensorDataset(x, x[:, :2]), batch_size=8), DataLoader(TensorDataset(x, x[:, :2]), batch_size=8))
    m = model3()
    learn = Learner(dls, m, loss_func=MSELossFlat(), opt_func=partial(OptimWrapper, opt=torch.optim.AdamW),
                    splitter=split3, cbs=[], default_cbs=True)
    learn.remove_cb(ProgressCallback); learn.logger = noop
    learn.create_opt()
    assert learn.opt.get_hyper('wd') == 0.01 and learn.opt.n_groups == 3
    learn.opt.set_hyper('wd', 1.)                               # zero grads: only the decay moves weights
    assert _decayed(learn.opt, list(m.parameters())) == [True, False, False, False, True, False]


def test_state_dict_round_trip_keeps_wd_and_layout():
    m = model3()
    opt = Adam(split3(m), lr=0.1, wd=0.3)
    opt.set_hyper('lr', [0.1, 0.2, 0.3])
    for p in m.parameters(): p.grad = torch.ones_like(p)
    opt.step()
    sd = opt.state_dict()
    new = Adam(split3(m), lr=1e-3)
    new.load_state_dict(copy.deepcopy(sd))
    assert new.hypers == opt.hypers and new.get_hyper('wd') == 0.3
    torch.testing.assert_close(new.opt.state[m[0].weight]['exp_avg'], opt.opt.state[m[0].weight]['exp_avg'])
    torch_owned = OptimWrapper(split3(m), opt=torch.optim.Adam)       # the saved decoupled wd becomes torch's
    torch_owned.load_state_dict(copy.deepcopy(sd))
    assert torch_owned.get_hyper('wd', 1) == 0.3 and torch_owned.opt.param_groups[1]['weight_decay'] == 0.3


def test_state_dict_round_trip_of_a_split_torch_wd_optimizer():
    def make():
        opt = OptimWrapper(split3(m), opt=torch.optim.SGD, lr=0.1, weight_decay=0.2, momentum=0.9)
        opt.state[m[0].bias]['do_wd'] = False                        # the Learner flags right after creating
        return opt
    m = model3()
    opt = make()
    for p in m.parameters(): p.grad = torch.ones_like(p)
    opt.step()
    new = make()
    new.load_state_dict(opt.state_dict())
    assert len(new.param_groups) == 4 and [g['weight_decay'] for g in new.param_groups] == [0.2, 0., 0.2, 0.2]
    assert torch.equal(new.opt.state[m[0].bias]['momentum_buffer'], opt.opt.state[m[0].bias]['momentum_buffer'])


def test_clear_state_keeps_flags():
    m = model3()
    opt = RMSProp(split3(m), mom=0.9)
    opt.state[m[0].bias]['do_wd'] = False
    for p in m.parameters(): p.grad = torch.ones_like(p)
    opt.step()
    opt.clear_state()
    assert len(opt.opt.state) == 0 and opt.state[m[0].bias] == {'do_wd': False}


def test_flags_survive_deepcopy_and_keep_being_tracked():
    lin = nn.Linear(2, 2)
    opt = OptimWrapper([lin.parameters()], opt=torch.optim.SGD, decouple_wd=None, lr=0.1, wd=0.5)
    twin = copy.deepcopy(opt)
    twin_lin_bias = twin.param_lists[0][1]
    twin.state[twin_lin_bias]['do_wd'] = False
    assert len(twin.param_groups) == 2 and len(opt.param_groups) == 1


def test_get_and_set_hyper_are_views_on_the_torch_groups():
    "No copy: a value written into the torch groups by anyone is what get_hyper and the v1 face read."
    opt = Adam(split3(model3()))
    opt.opt.param_groups[2]['betas'] = (0.7, 0.9)
    assert opt.get_hyper('mom') == opt.mom == 0.7 and opt.hypers[2]['sqr_mom'] == opt.beta == 0.9
    opt.opt.add_param_group({'params': [nn.Parameter(torch.ones(1))], 'lr': 0.5})
    assert opt.n_groups == 4 and opt.lr == 0.5


@pytest.mark.parametrize('opt_func', [Adam, ranger, partial(OptimWrapper, opt=torch.optim.AdamW)])
def test_learner_save_and_load_restore_the_optimizer_without_running_code(opt_func):
    "learn.save/load go through torch.load(weights_only=True): the wrapper's state dict must be plain data."
    from trainlib.testing import synth_dbunch
    def make():
        learn = Learner(synth_dbunch(), nn.Linear(1, 1), loss_func=MSELossFlat(), opt_func=opt_func, lr=0.01)
        learn.remove_cb(ProgressCallback); learn.logger = noop
        return learn
    learn = make()
    learn.fit(1)
    learn.opt.set_hyper('wd', np.float64(0.25))
    learn.save('m')
    other = make()
    with warnings.catch_warnings():
        warnings.simplefilter('error')                          # no "Could not load the optimizer state."
        other.load('m')
    assert other.opt.hypers == learn.opt.hypers and other.opt.get_hyper('wd') == 0.25
    assert set(other.opt.state_dict()['state']) == set(learn.opt.state_dict()['state'])


def test_freeze_needs_several_groups():
    opt = Adam([nn.Linear(2, 2).weight])
    with pytest.raises(ValueError, match='freeze: the optimizer has a single parameter group'):
        opt.freeze()


def test_writing_through_hypers_sets_the_hyper_parameter_the_step_uses():
    # fastai 2.8.12 on this case (synth_learner, seed 0, n_trn=2, SGD mom 0.9): lrs [0.05, 0.05],
    # parameters [0.337793, 0.603527] (scratch script of the 12-08 review, repro_hypers_mutation.py).
    from trainlib import Callback
    from trainlib.testing import synth_learner
    torch.manual_seed(0); random.seed(0); np.random.seed(0)
    learn = synth_learner(n_trn=2)
    learn.remove_cb(ProgressCallback)
    learn.logger = noop
    learn.create_opt()
    learn.opt.hypers[-1]['lr'] = 0.5
    assert learn.opt.hypers[-1]['lr'] == 0.5 == learn.opt.get_hyper('lr')
    learn.add_cb(Callback(before_step=lambda cb: cb.opt.hypers[0].__setitem__('lr', 0.05)))
    learn.fit(1, lr=0.01)
    assert learn.recorder.lrs == [0.05, 0.05]
    assert [round(p.item(), 6) for p in learn.model.parameters()] == [0.337793, 0.603527]


def test_a_hypers_mapping_adds_a_new_name_to_its_group_only_and_refuses_deletion():
    opt = OptimWrapper([[nn.Parameter(torch.ones(1))], [nn.Parameter(torch.ones(1))]], opt=torch.optim.SGD, lr=0.1)
    opt.hypers[1]['beta'] = 0.5
    assert 'beta' in opt.hypers[1] and 'beta' not in opt.hypers[0]
    assert dict(opt.hypers[0]) == {k: v for k, v in opt.hypers[1].items() if k != 'beta'}
    with pytest.raises(TypeError, match=r"opt.hypers\[0\]: hyper-parameter 'lr' cannot be deleted"):
        del opt.hypers[0]['lr']


def test_all_params_lists_each_parameter_with_its_group_state_and_hypers():
    a, b, c = (nn.Parameter(torch.ones(1)) for _ in range(3))
    opt = OptimWrapper([[a, b], [c]], opt=torch.optim.SGD, lr=[0.1, 0.2])
    c.grad = torch.ones(1)
    assert [(p is q, group, h['lr']) for (p, group, state, h), q in zip(opt.all_params(), (a, b, c))] == \
        [(True, [a, b], 0.1), (True, [a, b], 0.1), (True, [c], 0.2)]
    assert [p for p, *_ in opt.all_params(with_grad=True)] == [c]
    assert [p for p, *_ in opt.all_params(-1)] == [c] and [p for p, *_ in opt.all_params(slice(0, 1))] == [a, b]
    assert opt.all_params()[0][2] is opt.state[a]
