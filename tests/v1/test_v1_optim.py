"""One OptimWrapper, two faces: the v1 Learner's optimizer is the core class, with fastai 1's settings."""
import torch
import torch.nn as nn

import trainlib.optim
import trainlib.v1
from test_v1_learner import learner


def test_v1_optim_wrapper_is_the_core_class():
    assert trainlib.v1.OptimWrapper is trainlib.optim.OptimWrapper
    learn = learner()
    learn.create_opt(1e-3, wd=0.1)
    opt = learn.opt
    assert type(opt) is trainlib.optim.OptimWrapper and opt.true_wd and opt.bn_wd
    assert repr(opt).startswith('OptimWrapper over Adam (') and repr(opt).endswith('True weight decay: True')
    assert opt.hypers[0]['lr'] == 1e-3 and opt.hypers[0]['wd'] == 0.1          # the v2 face reads the same groups


def test_zero_grad_drops_the_gradients_as_fastai_1_on_torch_2():
    learn = learner()
    learn.fit(1, 1e-3)
    assert all(p.grad is None for p in learn.model.parameters())


def test_load_restores_the_running_state_and_keeps_the_hyper_parameters(tmp_path):
    "fastai 1 keeps the wrapper's lr/mom after a load (lr_find leaves its last lr in opt.lr)."
    learn = learner(path=tmp_path)
    learn.fit(1, 1e-3)
    saved = {k: v.clone() for k, v in learn.opt.opt.state[learn.model[0].weight].items()}
    learn.save('w')
    learn.fit(1, 1e-3)
    learn.opt.lr, learn.opt.mom = 0.5, 0.8
    learn.load('w')
    state = learn.opt.opt.state[learn.model[0].weight]
    assert torch.equal(state['exp_avg'], saved['exp_avg']) and torch.equal(state['step'], saved['step'])
    assert (learn.opt.lr, learn.opt.mom) == (0.5, 0.8)
    assert all(g['lr'] == 0.5 and g['betas'] == (0.8, 0.99) for g in learn.opt.opt.param_groups)   # what the step uses


def test_a_fastai_1_opt_func_and_a_trainlib_one_build_the_same_layout():
    lin = nn.Sequential(nn.Linear(3, 2))
    for opt_func in (trainlib.v1.AdamW, trainlib.optim.Adam):
        opt = trainlib.v1.OptimWrapper.create(opt_func, 0.1, [lin], wd=0.2, true_wd=True)
        assert [len(g['params']) for g in opt.opt.param_groups] == [1, 1] and opt.lr == 0.1 and opt.wd == 0.2
        assert isinstance(opt.opt, torch.optim.Adam)
