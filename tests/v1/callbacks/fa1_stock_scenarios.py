"""The scenarios of the stock v1 callbacks, written once for both libraries: tests/v1/callbacks run them on
trainlib.v1, and tests/oracle_scripts/record_fa1_stock_callbacks.py runs this very file on fastai 1.0.61
(it swaps the import line below for fastai's star imports) to record tests/golden/fa1_stock_callbacks*.txt.

Each scenario returns a dict: per-batch lrs, momentums and smoothed losses, per-epoch validation losses and
metrics, the final weights' checksum and whatever else it observes; :func:`run` adds the printed lines and
the warnings (or the error raised).
"""
import contextlib
import io
import re
import warnings
from functools import partial

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from trainlib.v1 import *  # noqa: F403  (the oracle script swaps this line for fastai 1.0.61's star imports)

torch.set_num_threads(1)


# ---------------------------------------------------------------- the synthetic problem
def make_data(n_train=64, n_valid=32, bs=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n_train + n_valid, 4, generator=g)
    y = (X[:, 0] + X[:, 1] - X[:, 2] > 0).long()
    tr, va = TensorDataset(X[:n_train], y[:n_train]), TensorDataset(X[n_train:], y[n_train:])
    return DataBunch.create(tr, va, bs=bs, num_workers=0, path='.')


def make_model(bn=False):
    torch.manual_seed(0)
    if bn: return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


def learner(data=None, model=None, loss_func=None, **kwargs):
    kw = dict(add_time=False)
    kw.update(kwargs)
    return Learner(data or make_data(), model or make_model(), loss_func=loss_func or nn.CrossEntropyLoss(), **kw)


# ---------------------------------------------------------------- what is recorded
def num(v):
    "A number (tensor, numpy or python) as a python float; None stays None; arrays become lists."
    if v is None: return None
    if isinstance(v, torch.Tensor): return v.tolist() if v.dim() else v.item()
    if isinstance(v, np.ndarray): return v.tolist() if v.ndim else float(v)
    if isinstance(v, (list, tuple)): return [num(o) for o in v]
    return float(v)


def checksum(learn):
    return sum(p.detach().double().sum().item() for p in learn.model.parameters())


def summary(learn):
    r = learn.recorder
    out = {'lrs': num(r.lrs), 'moms': num(r.moms), 'losses': num(r.losses), 'val_losses': num(r.val_losses),
           'nb_batches': list(r.nb_batches), 'names': list(r.names), 'checksum': checksum(learn)}
    if r.metrics: out['metrics'] = num(r.metrics)
    if learn.opt is not None: out['opt_lr'], out['opt_mom'] = num(learn.opt.lr), num(learn.opt.mom)
    return out


class GroupLrs(Callback):
    "Every layer group's lr and momentum at each training batch (the Recorder keeps the last group only)."
    def __init__(self, learn): self.learn, self.lrs, self.moms = learn, [], []
    def on_batch_begin(self, train, **kwargs):
        if not train: return
        groups = self.learn.opt.opt.param_groups[::2]       # [wd, no_wd] torch groups per layer group
        self.lrs.append([g['lr'] for g in groups])
        self.moms.append([g['momentum'] if 'momentum' in g else g['betas'][0] for g in groups])


_ORACLE_NOISE = re.compile('pin_memory|TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD')
"Warnings of the oracle's torch-2 set-up, not of fastai."


class StdoutLines(io.TextIOBase):
    "Printed lines, without the progress bars."
    def __init__(self): self.buf, self.lines = '', []
    def isatty(self): return False
    def write(self, s):
        self.buf += s
        parts = re.split(r'[\r\n]', self.buf)
        self.buf = parts.pop()
        for line in parts:
            line = line.replace('█', '').rstrip()
            if line.strip() and not re.search(r'\d+\.\d+% \[|\|\s*\d+/\d+ \[', line) and 'Total time' not in line:
                self.lines.append(line)
        return len(s)


def run(fn):
    "fn()'s record, plus its printed lines and warnings (or the error it raised)."
    cap = StdoutLines()
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter('always')
        try:
            with contextlib.redirect_stdout(cap): out = fn()
        except Exception as e:
            out = {'raised': f'{type(e).__name__}: {e}'}
    out['printed'] = cap.lines
    out['warnings'] = sorted({str(w.message) for w in ws if issubclass(w.category, UserWarning)
                              and not _ORACLE_NOISE.search(str(w.message))})
    return out


# ---------------------------------------------------------------- scenarios: one_cycle.py / train.py
def one_cycle_default():
    learn = learner(metrics=[accuracy])
    torch.manual_seed(1)
    learn.fit_one_cycle(3, 1e-2)
    return summary(learn)


def one_cycle_a1_zero():
    "n = 3 batches, pct_start 0.3: a1 = 0, so phase 1 takes one step and the cosine down is cut short."
    learn = learner(data=make_data(n_train=24, n_valid=16))
    torch.manual_seed(1)
    learn.fit_one_cycle(1, 0.01)
    return summary(learn)


def one_cycle_sgd_groups():
    "SGD (fit_one_cycle turns momentum on), two layer groups with slice lrs, non-default settings."
    model = make_model()
    learn = learner(model=model, opt_func=torch.optim.SGD, layer_groups=[model[:2], model[2:]])
    rec = GroupLrs(learn)
    torch.manual_seed(1)
    learn.fit_one_cycle(2, slice(1e-3, 1e-2), moms=(0.9, 0.8), div_factor=10., pct_start=0.5, final_div=100.,
                        wd=0.1, callbacks=[rec])
    return dict(summary(learn), group_lrs=rec.lrs, group_moms=rec.moms, opt_wd=num(learn.opt.wd))


def one_cycle_resume():
    "start_epoch=2 of tot_epochs=4: the schedule jumps 2 epochs ahead and 2 epochs run."
    learn = learner()
    torch.manual_seed(1)
    learn.fit_one_cycle(4, 1e-2, tot_epochs=4, start_epoch=2)
    return summary(learn)


def one_cycle_seed000():
    "The fastai-1 docs' usage: a OneCycleScheduler made by hand, passed to fit (default lr), then fit_one_cycle(1)."
    learn = learner()
    learn.metrics = [accuracy]
    cb = OneCycleScheduler(learn, lr_max=0.01)
    torch.manual_seed(1)
    learn.fit(2, callbacks=cb)
    first = summary(learn)
    learn.fit_one_cycle(1)
    return {'fit': first, 'fit_one_cycle': summary(learn)}


def one_cycle_scheduler_fn():
    "train.py's one_cycle_scheduler(lr_max) as a callback_fn."
    learn = learner(callback_fns=[one_cycle_scheduler(0.02, pct_start=0.5)])
    torch.manual_seed(1)
    learn.fit(1)
    return summary(learn)


# ---------------------------------------------------------------- lr_finder.py
def lr_find_default():
    learn = learner()
    before = checksum(learn)
    torch.manual_seed(1)
    learn.lr_find()
    fig = learn.recorder.plot(suggestion=True, return_fig=True)
    return dict(summary(learn), checksum_before=before, min_grad_lr=float(learn.recorder.min_grad_lr),
                plotted=fig is not None, tmp_saved=(learn.path / learn.model_dir / 'tmp.pth').exists())


def lr_find_short():
    "num_it=20 from 1e-5 to 1 without stop_div; then plot(suggestion) with the default skips."
    learn = learner()
    torch.manual_seed(1)
    learn.lr_find(start_lr=1e-5, end_lr=1, num_it=20, stop_div=False)
    learn.recorder.plot(suggestion=True, return_fig=True)
    return summary(learn)


def lr_find_diverge():
    "The loss passes 4x its best before num_it: the finder stops early and prints the plot(skip_end) hint."
    learn = learner()
    torch.manual_seed(1)
    learn.lr_find(end_lr=1e5, num_it=200)
    return summary(learn)


def lr_find_too_short():
    "num_it=12: plot(suggestion) after skip_start=10, skip_end=5 has no points."
    learn = learner()
    torch.manual_seed(1)
    learn.lr_find(num_it=12)
    res = learn.recorder.plot(suggestion=True, return_fig=True)
    return dict(summary(learn), plot_returned=res is not None)


# ---------------------------------------------------------------- general_sched.py, flat_cos_anneal.py
def general_scheduler():
    "Two phases (6 + 10 batches) over lr, mom and Adam's eps; fit(3) stops when the phases are done."
    learn = learner()
    eps = []
    class Eps(Callback):
        def on_batch_begin(self, train, **kwargs):
            if train: eps.append(num(learn.opt.read_val('eps'))[-1])
    phases = [TrainingPhase(6).schedule_hp('lr', (1e-3, 1e-2), anneal=annealing_cos).schedule_hp('mom', 0.9)
                              .schedule_hp('eps', (1e-8, 1e-6)),
              TrainingPhase(10).schedule_hp('lr', (1e-2, 1e-4)).schedule_hp('mom', (0.9, 0.95))
                               .schedule_hp('eps', 1e-6)]
    torch.manual_seed(1)
    learn.fit(3, 1e-3, callbacks=[GeneralScheduler(learn, phases), Eps()])
    return dict(summary(learn), eps=eps)


def general_scheduler_resume():
    learn = learner()
    phases = [TrainingPhase(8).schedule_hp('lr', (1e-3, 1e-2)), TrainingPhase(16).schedule_hp('lr', (1e-2, 1e-3))]
    torch.manual_seed(1)
    learn.fit(3, 1e-3, callbacks=[GeneralScheduler(learn, phases, start_epoch=1)])
    return summary(learn)


def flat_cos():
    learn = learner()
    torch.manual_seed(1)
    learn.fit_fc(2, lr=1e-2)
    return summary(learn)


def flat_cos_default_lr():
    "fit_fc's default lr is slice(3e-3): fastai passes the slice itself to the scheduler."
    learn = learner()
    torch.manual_seed(1)
    learn.fit_fc()
    return summary(learn)


# ---------------------------------------------------------------- tracker.py
def early_stopping():
    "Monitoring a metric needs add_time=True in fastai 1.0.61 (see early_stopping_no_time)."
    learn = learner(metrics=[accuracy], add_time=True)
    torch.manual_seed(1)
    learn.fit(8, 3e-2, callbacks=[EarlyStoppingCallback(learn, monitor='accuracy', min_delta=0.01, patience=1)])
    return summary(learn)


def early_stopping_no_time():
    "With add_time=False fastai cannot see the last metric: it warns each epoch and never stops."
    learn = learner(metrics=[accuracy])
    torch.manual_seed(1)
    learn.fit(8, 3e-2, callbacks=[EarlyStoppingCallback(learn, monitor='accuracy', min_delta=0.01, patience=1)])
    return summary(learn)


def early_stopping_valid_loss():
    learn = learner()
    torch.manual_seed(1)
    learn.fit(6, 0.3, callbacks=[EarlyStoppingCallback(learn, patience=0)])
    return summary(learn)


def save_model_improvement():
    learn = learner(metrics=[accuracy])
    torch.manual_seed(1)
    learn.fit(4, 0.3, callbacks=[SaveModelCallback(learn, name='best')])
    files = sorted(p.name for p in (learn.path / learn.model_dir).iterdir())
    return dict(summary(learn), files=files)


def save_model_metric():
    learn = learner(metrics=[accuracy], add_time=True)
    torch.manual_seed(1)
    learn.fit(3, 1e-2, callbacks=[SaveModelCallback(learn, monitor='accuracy', name='acc')])
    return summary(learn)


def save_model_every_epoch():
    learn = learner()
    torch.manual_seed(1)
    learn.fit(2, 1e-2, callbacks=[SaveModelCallback(learn, every='epoch', name='m')])
    torch.manual_seed(2)
    learn.fit_one_cycle(3, 1e-2, start_epoch=2, callbacks=[SaveModelCallback(learn, every='epoch', name='m')])
    files = sorted(p.name for p in (learn.path / learn.model_dir).iterdir())
    return dict(summary(learn), files=files)


def reduce_lr_on_plateau():
    learn = learner()
    torch.manual_seed(1)
    learn.fit(6, 0.3, callbacks=[ReduceLROnPlateauCallback(learn, patience=0, factor=0.5, min_lr=1e-3)])
    return summary(learn)


def reduce_lr_groups():
    "Two layer groups at slice(1e-3, 0.3): fastai sets every group to the last group's lr times factor."
    model = make_model()
    learn = learner(model=model, layer_groups=[model[:2], model[2:]])
    rec = GroupLrs(learn)
    torch.manual_seed(1)
    learn.fit(5, slice(1e-3, 0.3), callbacks=[ReduceLROnPlateauCallback(learn, patience=0, factor=0.5), rec])
    return dict(summary(learn), group_lrs=rec.lrs, group_moms=rec.moms)


def terminate_on_nan():
    learn = learner()
    class NanAt(Callback):
        def on_backward_begin(self, last_loss, iteration, **kwargs):
            if iteration == 10: return {'last_loss': last_loss * float('nan')}
    torch.manual_seed(1)
    learn.fit(3, 1e-2, callbacks=[NanAt(), TerminateOnNaNCallback()])
    return summary(learn)


def track_epoch():
    learn = learner(callback_fns=[TrackEpochCallback])
    torch.manual_seed(1)
    learn.fit(2, 1e-2)
    saved = (learn.path / learn.model_dir / 'epoch').read_text()
    torch.manual_seed(2)
    learn.fit_one_cycle(4, 1e-2)
    return dict(summary(learn), saved_after_first=saved, saved=(learn.path / learn.model_dir / 'epoch').read_text())


# ---------------------------------------------------------------- csv_logger.py
def csv_logger():
    learn = learner(metrics=[accuracy], callback_fns=[CSVLogger])
    torch.manual_seed(1)
    learn.fit(2, 1e-2)
    first = (learn.path / 'history.csv').read_text()
    learn.callback_fns[-1] = partial(CSVLogger, filename='log', append=True)
    learn.fit(1, 1e-2)
    learn.fit(1, 1e-2)
    return dict(summary(learn), history=first, log=(learn.path / 'log.csv').read_text())


# ---------------------------------------------------------------- mixup.py
def mixup_default():
    learn = learner(metrics=[accuracy]).mixup()
    np.random.seed(3)
    torch.manual_seed(1)
    learn.fit(2, 1e-2)
    return dict(summary(learn), loss_func=type(learn.loss_func).__name__,
                reduction=learn.loss_func.reduction)


def mixup_alpha():
    learn = learner(loss_func=torch.nn.functional.cross_entropy).mixup(alpha=1.0)
    np.random.seed(4)
    torch.manual_seed(1)
    learn.fit(1, 1e-2)
    return dict(summary(learn), loss_func=learn.loss_func.__name__)


# ---------------------------------------------------------------- misc.py, train.py
def stop_after_n_batches():
    learn = learner()
    torch.manual_seed(1)
    learn.fit(2, 1e-2, callbacks=[StopAfterNBatches(n_batches=3)])
    return summary(learn)


def clip_grad_fn():
    learn = learner().clip_grad(0.05)
    torch.manual_seed(1)
    learn.fit(2, 0.1)
    return summary(learn)


def bn_freeze():
    model = make_model(bn=True)
    learn = learner(model=model, layer_groups=[model[:3], model[3:]], train_bn=False, callback_fns=[BnFreeze])
    learn.freeze()
    torch.manual_seed(1)
    learn.fit(1, 1e-2)
    return dict(summary(learn), running_mean=num(model[1].running_mean.sum()), bn_training=model[1].training)


def accumulate_remainder():
    "8 batches, n_step=3: steps after batches 3 and 6, the remainder at epoch end; no validation data."
    data = make_data(n_valid=0)
    learn = learner(data=data, loss_func=nn.CrossEntropyLoss(reduction='sum'))
    torch.manual_seed(1)
    learn.fit(2, 1e-2, callbacks=[AccumulateScheduler(learn, n_step=3)])
    return summary(learn)


def accumulate_mean_loss_warns():
    data = make_data(n_valid=0)
    learn = learner(data=data)
    torch.manual_seed(1)
    learn.fit(1, 1e-2, callbacks=[AccumulateScheduler(learn, n_step=3, drop_last=True)])
    return summary(learn)


def accumulate_exact():
    "8 batches, n_step=2: the last batch of the epoch steps, so on_epoch_end finds no gradients (torch >= 2)."
    learn = learner(loss_func=nn.CrossEntropyLoss(reduction='sum'))
    torch.manual_seed(1)
    learn.fit(2, 1e-2, callbacks=[AccumulateScheduler(learn, n_step=2)])
    return summary(learn)


SCENARIOS = [one_cycle_default, one_cycle_a1_zero, one_cycle_sgd_groups, one_cycle_resume, one_cycle_seed000,
             one_cycle_scheduler_fn, lr_find_default, lr_find_short, lr_find_diverge, lr_find_too_short, general_scheduler,
             general_scheduler_resume, flat_cos, flat_cos_default_lr, early_stopping, early_stopping_no_time, early_stopping_valid_loss,
             save_model_improvement, save_model_metric, save_model_every_epoch, reduce_lr_on_plateau, reduce_lr_groups,
             terminate_on_nan, track_epoch, csv_logger, mixup_default, mixup_alpha, stop_after_n_batches, clip_grad_fn,
             bn_freeze, accumulate_remainder, accumulate_mean_loss_warns, accumulate_exact]
