"""Record fastai 2.8.12's training recipes and lr-finder suggestions for tests/test_schedule.py.

Run (from the repository root, with the fastai 2.8.12 oracle venv):
    /tmp/trainlib-oracle/fa2/bin/python tests/oracle_scripts/fa2_sched_recipes.py > tests/golden/fa2_sched_recipes.txt

The first output line names this script and the versions; the rest is one JSON document.
Data: the portable variant P of ../shared/oracle/fa2_numbers.py (torch.manual_seed(0); 160 train and
32 valid points of y = 2x + 3 + noise; RegModel drawn right after; bs 16, train NOT shuffled),
SGD(mom=0.9), MSELossFlat. `reg_splitter` puts RegModel.a and RegModel.b in two parameter groups.
This file is never imported by trainlib or by the test suite.
"""
import functools, json, warnings
import numpy as np, torch
from torch.utils.data import TensorDataset
import fastai
from fastai.learner import Learner
from fastai.callback.all import *
from fastai.optimizer import SGD
from fastai.losses import MSELossFlat
from fastai.data.core import TfmdDL, DataLoaders
from fastai.test_utils import RegModel
from fastcore.basics import noop

warnings.simplefilter('ignore')


def make_data():
    torch.manual_seed(0)
    x_tr = torch.randn(160, 1); y_tr = 2 * x_tr + 3 + 0.1 * torch.randn(160, 1)
    x_va = torch.randn(32, 1); y_va = 2 * x_va + 3 + 0.1 * torch.randn(32, 1)
    return x_tr, y_tr, x_va, y_va


def reg_splitter(m): return [[m.a], [m.b]]


def portable_learner(groups=1):
    x_tr, y_tr, x_va, y_va = make_data()
    model = RegModel()
    dls = DataLoaders(TfmdDL(TensorDataset(x_tr, y_tr), bs=16, shuffle=False, num_workers=0),
                      TfmdDL(TensorDataset(x_va, y_va), bs=16, num_workers=0))
    kw = {'splitter': reg_splitter} if groups == 2 else {}
    learn = Learner(dls, model, loss_func=MSELossFlat(), opt_func=functools.partial(SGD, mom=0.9), lr=1e-3, **kw)
    learn.remove_cb(ProgressCallback); learn.logger = noop
    return learn


class Log(Callback):
    "Per training batch: fit index, epoch, iter, raw loss, lr of every group, mom, smooth loss; values per fit."
    order = 1000
    def __init__(self): self.rows, self.values, self.n_fit = [], [], 0
    def after_batch(self):
        if not self.training: return
        self.rows.append([self.n_fit, self.epoch, self.iter, float(self.loss),
                          [float(h['lr']) for h in self.opt.hypers], float(self.opt.hypers[-1]['mom']),
                          float(self.smooth_loss)])
    def after_fit(self):
        self.values.append([[float(v) for v in row] for row in self.recorder.values])
        self.n_fit += 1


def run(fn, groups=1):
    learn = portable_learner(groups)
    log = Log(); learn.add_cb(log)
    fn(learn)
    return {'rows': log.rows, 'values': log.values, 'n_epoch': learn.n_epoch,
            'params': {n: p.detach().view(-1).tolist() for n, p in learn.model.named_parameters()},
            'hps': {k: [float(v) for v in vs] for k, vs in learn.recorder.hps.items()}}


out = {'recipes': {
    'fit_sgdr(3, 1, lr_max=0.05)': run(lambda l: l.fit_sgdr(3, 1, lr_max=0.05)),
    'fit_flat_cos(2, lr=0.05)': run(lambda l: l.fit_flat_cos(2, lr=0.05)),
    'fit_one_cycle(2, lr_max=slice(1e-3, 1e-1)) [2 groups]':
        run(lambda l: l.fit_one_cycle(2, lr_max=slice(1e-3, 1e-1)), groups=2),
    'fine_tune(2, base_lr=0.1) [2 groups]': run(lambda l: l.fine_tune(2, base_lr=0.1), groups=2),
}}

# lr_find on the portable data: the default run (num_it=100) with every suggestion function
learn = portable_learner()
before = {n: p.detach().clone() for n, p in learn.model.named_parameters()}
sugg = learn.lr_find(show_plot=False, suggest_funcs=(valley, slide, minimum, steep))
out['lr_find'] = {'suggestions': dict(sugg._asdict()), 'n_epoch': learn.n_epoch,
                  'lrs': [float(x) for x in learn.recorder.lrs], 'losses': [float(x) for x in learn.recorder.losses],
                  'params_restored': all(torch.equal(before[n], p) for n, p in learn.model.named_parameters()),
                  'opt_lr_after': float(learn.opt.hypers[-1]['lr'])}

# the suggestion functions on fixed curves (the inputs are recorded too, as float32 values)
rng = np.random.RandomState(0)
def curve(n, noise):
    lrs = 1e-7 * (10 / 1e-7) ** (np.arange(n) / n)
    x = np.log10(lrs)
    loss = 2.5 - 1.5 / (1 + np.exp(-(x + 3) * 2)) + np.exp((x - 0.3) * 2.5) + noise * rng.randn(n)
    return lrs.astype(np.float32), loss.astype(np.float32)

curves = {'smooth_90': curve(90, 0.0), 'noisy_90': curve(90, 0.05), 'noisy_40': curve(40, 0.2),
          'short_2': (np.array([1e-7, 1.3894955e-06], np.float32), np.array([3.0, 2.5], np.float32)),
          'flat_20': (curve(20, 0.0)[0], np.full(20, 1.5, np.float32))}
res = {}
for name, (lrs, losses) in curves.items():
    t_lrs, t_losses = torch.tensor(lrs), torch.tensor(losses)
    r = {'lrs': [float(v) for v in lrs], 'losses': [float(v) for v in losses]}
    for f in (valley, slide, minimum, steep):
        try: r[f.__name__] = f(t_lrs, t_losses, 100)[0]
        except Exception as e: r[f.__name__] = f'{type(e).__name__}'
    res[name] = r
out['suggestions'] = res

# valley on small random curves with ties (integer losses): [lrs, losses, valley] per case
cases = []
for n in list(range(1, 31)) * 2:
    lrs = (1e-7 * 10 ** (8 * np.arange(n) / max(n, 1))).astype(np.float32)
    losses = rng.randint(0, 6, size=n).astype(np.float32)
    cases.append([[float(v) for v in lrs], [float(v) for v in losses],
                  valley(torch.tensor(lrs), torch.tensor(losses), 100)[0]])
out['valley_cases'] = cases

def dump(o, ind=0):
    "JSON with one line per leaf list (and per row of a list of rows)."
    pad = ' ' * (ind + 1)
    if isinstance(o, dict):
        items = [f'{pad}{json.dumps(k)}: {dump(v, ind + 1)}' for k, v in o.items()]
        return '{\n' + ',\n'.join(items) + '\n' + ' ' * ind + '}'
    if isinstance(o, list) and o and all(isinstance(v, list) for v in o):
        return '[\n' + ',\n'.join(pad + json.dumps(v) for v in o) + '\n' + ' ' * ind + ']'
    return json.dumps(o)


print(f'# produced by tests/oracle_scripts/fa2_sched_recipes.py with fastai {fastai.__version__}, torch {torch.__version__}')
print(dump(out))
