"""Record fastai 1.0.61 ``OptimWrapper`` behaviour: create() layout, v1 hyper-parameter properties, true_wd steps.

Run:  /tmp/trainlib-oracle/fa1/bin/python tests/oracle_scripts/fa1_optim_wrapper.py > tests/golden/fa1_optim_wrapper.json

The model (rebuilt by tests/test_optim_v1_face.py from the stored initial weights):
  lg0 = Sequential(Linear(4,6), BatchNorm1d(6), ReLU(), Sequential(Linear(6,6)))
  lg1 = Sequential(Linear(6,3) [bias frozen], LayerNorm(3), Linear(3,2,bias=False))
Parameters are named '<group>.<child>.<name>' (e.g. '0.3.0.bias').
Output: a header line, then JSON.
"""
import json, warnings
from functools import partial
import torch
from torch import nn, optim
from fastai.callback import OptimWrapper
warnings.simplefilter('ignore')

OPT_FUNCS = {'adam': partial(optim.Adam, betas=(0.9, 0.99)), 'sgd': optim.SGD, 'rmsprop': optim.RMSprop}
HYPER_KEYS = ('lr', 'betas', 'momentum', 'alpha', 'weight_decay', 'eps')


def make_groups():
    torch.manual_seed(0)
    lg0 = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Sequential(nn.Linear(6, 6)))
    lg1 = nn.Sequential(nn.Linear(6, 3), nn.LayerNorm(3), nn.Linear(3, 2, bias=False))
    lg1[0].bias.requires_grad_(False)
    return [lg0, lg1]


def names_of(groups):
    return {id(p): f'{i}.{n}' for i, g in enumerate(groups) for n, p in g.named_parameters()}


def tolist(v): return v.tolist() if isinstance(v, torch.Tensor) else list(v) if isinstance(v, tuple) else v


def groups_view(opt, names):
    return [{'params': [names[id(p)] for p in pg['params']], **{k: tolist(pg[k]) for k in HYPER_KEYS if k in pg}}
            for pg in opt.opt.param_groups]


def props(opt): return {k: tolist(getattr(opt, k)) for k in ('lr', 'mom', 'beta', 'wd')}


def record_setters(opt, names):
    out = {}
    for attr, val in [('lr', 0.5), ('lr', [0.1, 0.2]), ('mom', 0.8), ('mom', [0.7, 0.75]), ('beta', 0.95),
                      ('beta', None), ('wd', 0.2), ('wd', [0.3, 0.4])]:
        setattr(opt, attr, val)
        out[f'{attr}={val}'] = {'groups': groups_view(opt, names), 'props': props(opt)}
    try: opt.lr = [1., 2., 3.]
    except AssertionError as e: out['error'] = f'{type(e).__name__}: {e}'
    return out


def record_steps(opt_name, true_wd, bn_wd):
    "Three steps with grads on some parameters only (the rest keep grad None); the grads are recorded too."
    groups = make_groups()
    opt = OptimWrapper.create(OPT_FUNCS[opt_name], [0.01, 0.05], groups, wd=0.1, true_wd=true_wd, bn_wd=bn_wd)
    ps = [p for g in groups for p in g.parameters()]
    gen = torch.Generator().manual_seed(7)
    grads = []
    for t in range(3):
        for i, p in enumerate(ps):
            p.grad = torch.randn(p.shape, generator=gen) if p.requires_grad and (i + t) % 3 else None
        grads.append([None if p.grad is None else p.grad.tolist() for p in ps])
        opt.step()
    return {'params': [p.detach().tolist() for p in ps], 'grads': grads,
            'weight_decay': [pg['weight_decay'] for pg in opt.opt.param_groups]}


def main():
    out = {'init': [p.detach().tolist() for g in make_groups() for p in g.parameters()], 'create': {}, 'steps': {}}
    for name, f in OPT_FUNCS.items():
        for true_wd, bn_wd in [(False, True), (False, False), (True, True), (True, False)]:
            groups = make_groups(); names = names_of(groups)
            opt = OptimWrapper.create(f, [0.001, 0.01], groups, wd=0.1, true_wd=true_wd, bn_wd=bn_wd)
            rec = {'groups': groups_view(opt, names), 'props': props(opt), 'n_params': opt.n_params,
                   'eps': opt.get_stat('eps') if 'eps' in opt.opt_keys else None, 'passthrough': [opt.no_such_name, len(opt.param_groups)]}
            if not true_wd and bn_wd: rec['setters'] = record_setters(opt, names)
            out['create'][f'{name} true_wd={true_wd} bn_wd={bn_wd}'] = rec
            out['steps'][f'{name} true_wd={true_wd} bn_wd={bn_wd}'] = record_steps(name, true_wd, bn_wd)
    groups = make_groups(); names = names_of(groups)
    opt = OptimWrapper.create(OPT_FUNCS['adam'], [0.001, 0.01], groups, wd=0.1, true_wd=True, bn_wd=False)
    opt.mom, opt.beta = 0.8, 0.95
    new = opt.new([nn.Sequential(*groups[0], *groups[1])])
    out['new'] = {'groups': groups_view(new, names), 'props': props(new), 'true_wd': new.true_wd, 'bn_wd': new.bn_wd}
    ps = [[p for p in g.parameters() if p.requires_grad] for g in groups]
    nwp = opt.new_with_params(ps)
    out['new_with_params'] = {'groups': groups_view(nwp, names), 'props': props(nwp)}
    print('# tests/oracle_scripts/fa1_optim_wrapper.py, fastai 1.0.61, torch', torch.__version__)
    print(json.dumps(out))


main()
