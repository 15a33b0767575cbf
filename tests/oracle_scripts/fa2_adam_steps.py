"""Record 20 steps of fastai 2.8.12's default Adam on a Linear(3, 2) with fixed gradients.

Run:  /tmp/trainlib-oracle/fa2/bin/python tests/oracle_scripts/fa2_adam_steps.py > tests/golden/fa2_adam_steps.json

The problem (rebuilt by tests/test_optim.py from the numbers stored in the output):
* weight = linspace(-1, 1, 6).view(2, 3), bias = [0.3, -0.2], one parameter group;
* at step t (0-based) each parameter gets ``grad = cos(0.7*t + 0.3*k)`` (k = 0, 1, ... over its
  elements, in row-major order): the same gradients whatever the parameters are;
* Adam(lr=0.01, wd=0.01), fastai's other defaults (mom 0.9, sqr_mom 0.99, eps 1e-5, decoupled wd);
* case 'bias_decayed': every parameter decayed; case 'bias_exempt': ``opt.state[bias]['do_wd'] = False``
  (what Learner does for biases unless wd_bn_bias=True).
Output: a header line, then JSON {'init', 'grads', 'cases': {name: [[weight, bias] after each step]}}.
"""
import json
import math

import fastai
import torch
from fastai.optimizer import Adam

N_STEPS = 20
INIT = [torch.linspace(-1, 1, 6).view(2, 3), torch.tensor([0.3, -0.2])]


def grad_at(t, p):
    return torch.tensor([math.cos(0.7 * t + 0.3 * k) for k in range(p.numel())]).view_as(p)


def run(exempt_bias):
    ps = [torch.nn.Parameter(x.clone()) for x in INIT]
    opt = Adam(ps, lr=0.01, wd=0.01)
    if exempt_bias: opt.state[ps[1]]['do_wd'] = False
    out = []
    for t in range(N_STEPS):
        for p in ps: p.grad = grad_at(t, p)
        opt.step()
        out.append([p.detach().tolist() for p in ps])
    return out


print(f'# tests/oracle_scripts/fa2_adam_steps.py, fastai {fastai.__version__}, torch {torch.__version__}')
print(json.dumps({'init': [x.tolist() for x in INIT],
                  'grads': [[grad_at(t, x).tolist() for x in INIT] for t in range(N_STEPS)],
                  'cases': {'bias_decayed': run(False), 'bias_exempt': run(True)}}))
