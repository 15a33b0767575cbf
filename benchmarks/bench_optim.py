"""Per-batch cost of the optimizer layer: hyper-parameter access (ParamScheduler sets two per batch,
Recorder reads one) and the step of Adam with decoupled weight decay and do_wd flags.

Run by hand from the repository root (not a test):
    /work/main/.venv/bin/python benchmarks/bench_optim.py
    /tmp/trainlib-oracle/fa2/bin/python benchmarks/bench_optim.py     # adds fastai 2.8.12's Optimizer
"""
import importlib
import sys
import timeit
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

torch.set_num_threads(1)


def model() -> nn.Module:
    "A stack of 20 small Linear+BatchNorm blocks: 80 parameter tensors in 3 groups, so overhead dominates."
    return nn.Sequential(*[nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8)) for _ in range(20)])


def groups(m: nn.Module) -> list:
    ps = list(m.parameters())
    return [ps[:24], ps[24:56], ps[56:]]


def flag(opt, m: nn.Module) -> None:
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.Linear)):
            for p in ([mod.bias] if isinstance(mod, nn.Linear) else list(mod.parameters())): opt.state[p]['do_wd'] = False


def bench(name: str, make) -> None:
    torch.manual_seed(0)
    m = model()
    opt = make(groups(m))
    flag(opt, m)
    for p in m.parameters(): p.grad = torch.randn_like(p)
    lrs = np.array([1e-4, 1e-3, 1e-2])
    n = 2000
    t_hyp = min(timeit.repeat(lambda: (opt.set_hyper('lr', lrs), opt.set_hyper('mom', 0.9), opt.hypers[-1]['lr']),
                              number=n, repeat=5)) / n
    opt.step()
    t_step = min(timeit.repeat(opt.step, number=200, repeat=5)) / 200
    print(f'{name:32s} set_hyper x2 + hypers[-1]: {t_hyp * 1e6:7.1f} us   step: {t_step * 1e6:8.1f} us')


def bench_torch_floor() -> None:
    "Plain torch.optim.AdamW on the same parameters, no wrapper and no flags: the floor for a step."
    torch.manual_seed(0)
    m = model()
    opt = torch.optim.AdamW([{'params': g} for g in groups(m)], lr=1e-3, weight_decay=0.01)
    for p in m.parameters(): p.grad = torch.randn_like(p)
    opt.step()
    t_step = min(timeit.repeat(opt.step, number=200, repeat=5)) / 200
    print(f'{"torch.optim.AdamW (no wrapper)":32s} {"":35s}   step: {t_step * 1e6:8.1f} us')


def bench_library(label: str, module: str) -> None:
    "The same four optimizers from trainlib or fastai (whichever this python can import)."
    try: lib = importlib.import_module(module)
    except ImportError:
        print(f'({module} is not importable with this python)')
        return
    bench(f'{label} Adam', lambda ps: lib.Adam(ps, lr=1e-3))
    bench(f'{label} RAdam', lambda ps: lib.RAdam(ps, lr=1e-3, wd=0.01))
    bench(f'{label} ranger', lambda ps: lib.ranger(ps, lr=1e-3))
    bench(f'{label} OptimWrapper(AdamW)', lambda ps: lib.OptimWrapper(ps, opt=torch.optim.AdamW, lr=1e-3))


bench_torch_floor()
bench_library('trainlib', 'trainlib.optim')
bench_library('fastai 2', 'fastai.optimizer')
