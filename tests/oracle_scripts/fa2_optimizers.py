"""Record 20 steps of each fastai 2.8.12 optimizer on four parameters with deterministic gradients.

Run:  /tmp/trainlib-oracle/fa2/bin/python tests/oracle_scripts/fa2_optimizers.py > tests/golden/fa2_optimizers.json

The problem (replayed by tests/test_optim_algorithms.py from the numbers stored in the output):
* two parameter groups: [w1 (3x4), b1 (3)] and [w2 (2x3), n2 (2)]; b1 and n2 have ``do_wd=False``;
* lr = [0.01, 0.03] and wd = 0.1 (unless the case says otherwise);
* at step t (0-based) every parameter gets ``grad = 0.5*p + noise[t][i]``, except w2 whose grad is
  None at steps 5, 6, 7 (so the optimizer skips it);
* before step 10: ``set_hyper('lr', [0.02, 0.05])`` and ``set_hyper('mom', 0.8)``.
Output: a header line, then JSON {'init', 'noise', 'spec' (the cases below),
'cases': {name: {'hypers', 'params', 'state'}}}.
"""
import json, warnings
import torch
from fastai.optimizer import Adam, Lamb, Lookahead, QHAdam, RAdam, RMSProp, SGD, ranger
warnings.simplefilter('ignore')

SHAPES = [(3, 4), (3,), (2, 3), (2,)]
N_STEPS = 20

def tolist(x): return x.tolist() if isinstance(x, torch.Tensor) else x

gen = torch.Generator().manual_seed(2024)
INIT = [torch.randn(s, generator=gen) for s in SHAPES]
NOISE = [[torch.randn(s, generator=gen) * 0.3 for s in SHAPES] for _ in range(N_STEPS)]

CASES = {  # name: (optimizer, its keyword arguments besides lr=[0.01, 0.03], Lookahead's arguments or None)
    'adam': ('Adam', {'wd': 0.1}, None),
    'adam_l2': ('Adam', {'wd': 0.1, 'decouple_wd': False}, None),
    'sgd': ('SGD', {'wd': 0.1}, None),
    'sgd_mom': ('SGD', {'mom': 0.9, 'wd': 0.1}, None),
    'sgd_l2': ('SGD', {'mom': 0.9, 'wd': 0.1, 'decouple_wd': False}, None),
    'rmsprop': ('RMSProp', {'wd': 0.1}, None),
    'rmsprop_mom': ('RMSProp', {'mom': 0.9, 'wd': 0.1}, None),
    'radam': ('RAdam', {'wd': 0.1}, None),
    'radam_l2': ('RAdam', {'wd': 0.1, 'decouple_wd': False}, None),
    'radam_beta': ('RAdam', {'wd': 0.1, 'beta': 2.}, None),
    'qhadam': ('QHAdam', {'wd': 0.1}, None),
    'lamb': ('Lamb', {'wd': 0.1}, None),
    'lookahead_sgd': ('SGD', {'mom': 0.9, 'wd': 0.1}, {'k': 4, 'alpha': 0.3}),
    'ranger': ('ranger', {}, None),
}
OPTS = dict(Adam=Adam, SGD=SGD, RMSProp=RMSProp, RAdam=RAdam, QHAdam=QHAdam, Lamb=Lamb, ranger=ranger)


def maker(opt_name, kwargs, lookahead):
    def make(ps):
        opt = OPTS[opt_name](ps, lr=[0.01, 0.03], **kwargs)
        return opt if lookahead is None else Lookahead(opt, **lookahead)
    return make

def run(make):
    ps = [p.clone().requires_grad_() for p in INIT]
    opt = make([ps[:2], ps[2:]])
    for p in (ps[1], ps[3]): opt.state[p]['do_wd'] = False
    hypers = [dict(h) for h in opt.hypers]
    for t in range(N_STEPS):
        if t == 10: opt.set_hypers(lr=[0.02, 0.05], mom=0.8)
        for i, p in enumerate(ps):
            p.grad = None if (i == 2 and 5 <= t <= 7) else (0.5 * p.detach() + NOISE[t][i])
        opt.step()
    inner = getattr(opt, 'opt', opt)
    state = [{k: tolist(v) for k, v in inner.state[p].items()} for p in ps]
    out = {'hypers': hypers, 'params': [p.detach().tolist() for p in ps], 'state': state}
    if hasattr(opt, 'slow_weights'):
        out['lookahead'] = {'count': opt.count, 'slow': [w.tolist() for pg in opt.slow_weights for w in pg]}
    return out

print('# tests/oracle_scripts/fa2_optimizers.py, fastai 2.8.12, torch', torch.__version__)
print(json.dumps({'init': [p.tolist() for p in INIT], 'noise': [[n.tolist() for n in row] for row in NOISE],
                  'spec': CASES, 'cases': {name: run(maker(*spec)) for name, spec in CASES.items()}}))
