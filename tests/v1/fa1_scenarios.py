"""The scenarios of shared/oracle/fa1_trace.py, run with trainlib.v1, and a tracer that prints the same lines.

The oracle wrapped fastai 1.0.61's CallbackHandler; here the same observations come from the handler's
``tracer`` seam (state at the start of each event), a wrapper of ``CallbackHandler._call`` (one line per
callback, with the state keys it changed), the optimizer's step/zero_grad and a gradient hook.
OneCycleScheduler and LRFinder are written here, small and to the spec's formulas (§8.2, §8.3), until
the stock v1 callbacks exist.
"""
from __future__ import annotations

import contextlib
import io
import math
import re

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from trainlib.v1 import (Callback, CallbackHandler, DataBunch, Learner, LearnerCallback, OptimWrapper, Scheduler,
                         accuracy, annealing_exp)
from trainlib.v1.callback import AverageMetric, add_metrics, overridden_events

TRACE: list[str] = []
LEARN: list = [None]
PATH: list = ['.']    # where the Learners save (lr_find's 'tmp' weights)
_last_keys: list = [None]


def emit(s: str) -> None: TRACE.append(s)


# ---------------------------------------------------------------- value notation of the oracle trace
def fmt(v):
    "t(x)=0-d tensor, T[shape]{sum}=tensor, np32(x)=numpy scalar, as in the golden trace."
    if isinstance(v, torch.Tensor):
        if v.dim() == 0: return f"t({v.item():.6f}{',grad' if v.requires_grad else ''})"
        return f"T{list(v.shape)}{{{v.float().sum().item():.4f}}}"
    if isinstance(v, np.floating): return f'np{v.dtype.itemsize * 8}({float(v):.6f})'
    if isinstance(v, bool) or v is None or isinstance(v, int): return str(v)
    if isinstance(v, (str, BaseException)): return repr(v)
    if isinstance(v, float): return f'{v:.6g}'
    if isinstance(v, (list, tuple)):
        inner = ', '.join(fmt(o) for o in v)
        return f'[{inner}]' if isinstance(v, list) else f'({inner})'
    if callable(v) and hasattr(v, '__name__'): return v.__name__
    return f'<{type(v).__name__}>'


_SHOWN = {'train_begin': ['n_epochs', 'metrics', 'pbar'], 'epoch_begin': ['stop_training'],
          'batch_begin': ['last_input', 'last_target'], 'loss_begin': ['last_output'],
          'backward_begin': ['last_loss', 'smooth_loss', 'skip_bwd'], 'backward_end': ['skip_step'],
          'step_end': ['skip_zero'], 'batch_end': ['last_loss', 'smooth_loss', 'stop_epoch'],
          'epoch_end': ['last_metrics', 'smooth_loss', 'stop_training'], 'train_end': ['last_metrics']}
_FLAGS = ['stop_epoch', 'stop_training', 'skip_step', 'skip_zero', 'skip_bwd', 'skip_validate']


def tracer(h: CallbackHandler, ev: str, call_mets: bool) -> None:
    "One EVENT line: the state the metrics and callbacks are about to see."
    sd, learn = h.state_dict, LEARN[0]
    parts = [f"epoch={sd.get('epoch')}", f"iteration={sd.get('iteration')}", f"num_batch={sd.get('num_batch')}"]
    if 'train' in sd: parts.append(f"train={sd['train']}")
    parts += [f'{k}={fmt(sd[k])}' for k in _SHOWN[ev] if k in sd]
    flags = [k for k in _FLAGS if sd.get(k)]
    if flags: parts.append('FLAGS_TRUE=' + ','.join(flags))
    if learn is not None and ev == 'batch_begin' and getattr(learn, 'opt', None) is not None:
        parts.append(f'opt.lr={fmt(learn.opt.lr)} opt.mom={fmt(learn.opt.mom)} model.training={learn.model.training}')
    if learn is not None and ev == 'backward_end':
        g = learn.model[0].weight.grad
        parts.append(f"|grad(model[0].weight)|sum={'None' if g is None else f'{g.abs().sum().item():.6f}'}")
    parts += [f'kwarg {k}={fmt(v)}' for k, v in h._kw.items()]
    emit(f'EVENT on_{ev:<15} call_mets={str(call_mets):<5} ' + ' '.join(parts))
    keys = sorted(sd.keys())
    if keys != _last_keys[0]:
        emit(f'      state keys now: {keys}')
        _last_keys[0] = keys


def _same(a, b) -> bool:
    "Unchanged: the same object, or a view returning the same tensor storage (or a tuple of them)."
    if a is b: return True
    if isinstance(a, tuple) and isinstance(b, tuple): return len(a) == len(b) and all(map(_same, a, b))
    return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape \
        and a.dtype == b.dtype and a.data_ptr() == b.data_ptr()


def cbname(h, cb) -> str:
    n = f'AverageMetric({cb.name})' if isinstance(cb, AverageMetric) else type(cb).__name__
    return ('metric ' if any(cb is m for m in h.metrics) else '') + n


def traced_call(orig):
    "Wrap CallbackHandler._call: one line per callback call, with the keys whose value it changed."
    def _call(self, cb, event):
        before = self.state_dict.copy()
        try: orig(self, cb, event)
        except BaseException as e:
            emit(f'      {cbname(self, cb)}.on_{event}  !! raised {type(e).__name__}: {e}')
            raise
        after = self.state_dict.copy()
        changed = {k: v for k, v in after.items() if k not in before or not _same(before[k], v)}
        emit(f'      {cbname(self, cb)}.on_{event}' +
             (('  ==> state updated: ' + ', '.join(f'{k}={fmt(v)}' for k, v in changed.items())) if changed else ''))
    return _call


def install(monkeypatch) -> None:
    "Observe trainlib.v1 the way fa1_trace.py observed fastai (nothing changes behaviour)."
    TRACE.clear(); LEARN[0] = None; _last_keys[0] = None
    monkeypatch.setattr(CallbackHandler, 'tracer', staticmethod(tracer))
    monkeypatch.setattr(CallbackHandler, '_call', traced_call(CallbackHandler._call))
    step, zero = OptimWrapper.step, OptimWrapper.zero_grad
    def _step(self, *a):
        emit('   [opt.step]'); return step(self, *a)
    def _zero(self, *a):
        emit('   [opt.zero_grad]'); return zero(self, *a)
    monkeypatch.setattr(OptimWrapper, 'step', _step)
    monkeypatch.setattr(OptimWrapper, 'zero_grad', _zero)


class StdoutToTrace(io.TextIOBase):
    "Fold printed lines into the trace as ``[stdout]`` lines, in order."
    def __init__(self) -> None: self.buf = ''
    def write(self, s: str) -> int:
        self.buf += s
        *lines, self.buf = self.buf.split('\n')
        for line in lines:
            if line.strip(): emit(f'   [stdout] {line.rstrip()}')
        return len(s)


def run(fn) -> None:
    "Run a scenario: its prints and its result (or exception) go to the trace."
    try:
        with contextlib.redirect_stdout(StdoutToTrace()): r = fn()
        emit(f'-- returned: {fmt(r) if not isinstance(r, str) else r}')
    except BaseException as e:
        emit(f'-- RAISED {type(e).__name__}: {e}')
    _last_keys[0] = None


# ---------------------------------------------------------------- the synthetic problem
def make_data(seed=0, n_train=24, n_valid=16, bs=8) -> DataBunch:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n_train + n_valid, 4, generator=g)
    y = (X[:, 0] + X[:, 1] - X[:, 2] > 0).long()
    return DataBunch.create(TensorDataset(X[:n_train], y[:n_train]), TensorDataset(X[n_train:], y[n_train:]),
                            bs=bs, device='cpu', path=PATH[0])


def make_model(seed=0) -> nn.Module:
    torch.manual_seed(seed)
    m = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    m[0].weight.register_hook(lambda g: emit('   [autograd] backward() reached model[0].weight'))
    return m


class MeanTarget(Callback):
    "A Callback used as a metric: mean validation target, appended with add_metrics."
    def on_epoch_begin(self, **kwargs): self.tot, self.n = 0., 0
    def on_batch_end(self, last_target, **kwargs):
        self.tot += last_target.float().sum().item(); self.n += last_target.shape[0]
    def on_epoch_end(self, last_metrics, **kwargs): return add_metrics(last_metrics, self.tot / self.n)


class ExtraColumn(LearnerCallback):
    "A LearnerCallback in callback_fns, before the Recorder (-20), adding a printed column."
    _order = -20
    def __init__(self, learn):
        super().__init__(learn)
        self.count = 0
    def on_train_begin(self, **kwargs): self.learn.recorder.add_metric_names(['n_valid_seen'])
    def on_epoch_begin(self, **kwargs): self.count = 0
    def on_batch_end(self, train, last_target, **kwargs):
        if not train: self.count += last_target.shape[0]
    def on_epoch_end(self, last_metrics, **kwargs): return {'last_metrics': last_metrics + [self.count]}


class V1Custom(Callback):
    "A user callback returning 1.0.61-style dicts from most events."
    def on_batch_begin(self, last_input, last_target, train, **kwargs):
        if train: return {'last_input': last_input * 0.5}
    def on_loss_begin(self, last_output, **kwargs): return {'last_output': last_output * 1.5}
    def on_backward_begin(self, last_loss, **kwargs): return {'last_loss': last_loss * 2}
    def on_backward_end(self, epoch, num_batch, **kwargs):
        if epoch == 1 and num_batch == 1: return {'skip_step': True}
    def on_step_end(self, epoch, num_batch, **kwargs):
        if epoch == 1 and num_batch == 1: return {'skip_zero': True}
    def on_epoch_end(self, last_metrics, **kwargs): return {'last_metrics': last_metrics + [-1.0]}


def _cos(start, end, pct): return end + (start - end) / 2 * (np.cos(np.pi * pct) + 1)


class OneCycleScheduler(LearnerCallback):
    "§8.2: cosine warm-up of lr (and down of momentum) over 30% of the batches, then back."
    def __init__(self, learn, lr_max, moms=(0.95, 0.85), div_factor=25., pct_start=0.3):
        super().__init__(learn)
        self.lr_max, self.moms, self.div, self.pct = lr_max, moms, div_factor, pct_start
    def on_train_begin(self, n_epochs, **kwargs):
        n = len(self.learn.data.train_dl) * n_epochs
        a1 = int(n * self.pct)
        low, final = self.lr_max / self.div, self.lr_max / (self.div * 1e4)
        self.phases = [((low, self.lr_max), self.moms, max(1, a1)), ((self.lr_max, final), self.moms[::-1], n - a1)]
        self.phase, self.i = 0, 0
        self.learn.opt.lr, self.learn.opt.mom = low, self.moms[0]
    def on_batch_end(self, train, **kwargs):
        if not train: return None
        if self.phase >= len(self.phases): return {'stop_training': True, 'stop_epoch': True}
        lrs, moms, n = self.phases[self.phase]
        self.i += 1
        self.learn.opt.lr, self.learn.opt.mom = _cos(*lrs, self.i / n), _cos(*moms, self.i / n)
        if self.i >= n: self.phase, self.i = self.phase + 1, 0
        return None


def fit_one_cycle(learn, cyc_len, max_lr):
    learn.fit(cyc_len, learn.lr_range(max_lr), callbacks=[OneCycleScheduler(learn, learn.lr_range(max_lr))])


class LRFinder(LearnerCallback):
    "§8.3: exponential lr from start to end over num_it batches, no validation, weights restored at the end."
    def __init__(self, learn, start_lr, end_lr, num_it):
        super().__init__(learn)
        self.start, self.end, self.num_it = start_lr, end_lr, num_it
    def on_train_begin(self, **kwargs):
        self.learn.save('tmp')
        self.learn.opt.lr = self.start
        self.sched = Scheduler((self.start, self.end), self.num_it, annealing_exp)
        self.stop, self.best = None, 0
        return {'skip_validate': True}
    def on_batch_end(self, iteration, smooth_loss, **kwargs):
        if iteration == 0 or smooth_loss < self.best: self.best = smooth_loss
        self.learn.opt.lr = self.sched.step()
        if self.sched.is_done or smooth_loss > 4 * self.best or torch.isnan(smooth_loss):
            if self.stop is None: self.stop = iteration
            return {'stop_epoch': True, 'stop_training': True}
        return None
    def on_epoch_end(self, **kwargs):
        if self.stop is not None: return {'stop_training': True}
        return None
    def on_train_end(self, **kwargs):
        self.learn.load('tmp', purge=False)
        print('LR Finder is complete, type {learner_name}.recorder.plot() to see the graph.')


def lr_find(learn, start_lr, end_lr, num_it):
    epochs = math.ceil(num_it / len(learn.data.train_dl))
    learn.fit(epochs, start_lr, callbacks=[LRFinder(learn, start_lr, end_lr, num_it)])


class StopEarly(Callback):
    def on_batch_end(self, train, num_batch, **kwargs):
        if train and num_batch == 1: return {'stop_epoch': True, 'stop_training': True}


class SkipBwd(Callback):
    def on_backward_begin(self, num_batch, **kwargs):
        if num_batch == 0: return {'skip_bwd': True}


class Boom(Callback):
    def on_batch_end(self, train, num_batch, **kwargs):
        if train and num_batch == 1: raise RuntimeError('boom in on_batch_end')
    def on_train_end(self, exception, **kwargs): print(f'Boom.on_train_end got exception={exception!r}')


def learner(**kwargs) -> Learner:
    kw = dict(loss_func=nn.CrossEntropyLoss(), add_time=False)
    kw.update(kwargs)
    learn = Learner(make_data(), make_model(), **kw)
    LEARN[0] = learn
    return learn


# ---------------------------------------------------------------- the scenarios, by section of the golden trace
def scenario_a():
    learn = learner(metrics=[accuracy, MeanTarget()], callback_fns=[ExtraColumn], callbacks=[V1Custom()])
    torch.manual_seed(1)
    fit_one_cycle(learn, 2, 1e-2)
    r = learn.recorder
    emit('-- summary after fit_one_cycle(2, 1e-2):')
    emit(f'   learn.recorder.names       = {r.names}')
    emit(f'   learn.recorder.losses      = {fmt(r.losses)}   (smooth_loss per train batch)')
    emit(f'   learn.recorder.val_losses  = {fmt(r.val_losses)}')
    emit(f'   learn.recorder.metrics     = {fmt(r.metrics)}')
    emit(f'   learn.recorder.lrs         = {fmt([float(x) for x in r.lrs])}')
    emit(f'   learn.recorder.moms        = {fmt([float(x) for x in r.moms])}')
    emit(f'   learn.recorder.nb_batches  = {r.nb_batches}')
    emit(f"   learn.extra_column is the ExtraColumn instance: {type(getattr(learn, 'extra_column', None)).__name__}")
    o = learn.opt
    emit(f'   opt: lr={fmt(o.lr)} mom={fmt(o.mom)} beta={fmt(o.beta)} wd={fmt(o.wd)} true_wd={o.true_wd} '
         f'bn_wd={o.bn_wd} n_param_groups={len(o.opt.param_groups)}')
    emit(f'   param checksum = {sum(p.detach().double().sum().item() for p in learn.model.parameters()):.8f}')
    return learn


def scenario_d():
    learn = learner(metrics=[accuracy])
    torch.manual_seed(1)
    learn.fit(2, 1e-3, callbacks=[StopEarly()])
    return f'nb_batches={learn.recorder.nb_batches} val_losses={fmt(learn.recorder.val_losses)}'


def scenario_e():
    learn = learner()
    torch.manual_seed(1)
    learn.fit(1, 1e-3, callbacks=[SkipBwd(), Boom()])


def scenario_f():
    learn = learner()
    torch.manual_seed(1)
    lr_find(learn, start_lr=1e-5, end_lr=1, num_it=5)
    r = learn.recorder
    return (f'lrs={fmt([float(x) for x in r.lrs])} losses={fmt(r.losses)} nb_batches={r.nb_batches} '
            f'val_losses={fmt(r.val_losses)} opt.lr after={fmt(learn.opt.lr)}')


def run_all(monkeypatch, path) -> dict[str, list[str]]:
    "Every section's trace lines, as trainlib.v1 produces them (Learners save under ``path``)."
    install(monkeypatch)
    PATH[0] = path
    out, holder = {}, {}

    def section(name, fn):
        TRACE.clear()
        run(fn)
        out[name] = list(TRACE)
    section('A', lambda: (holder.setdefault('learn', scenario_a()), 'ok')[1])
    learn = holder.get('learn')
    LEARN[0] = learn
    section('B', lambda: learn.validate())
    section('C', lambda: (lambda r: [fmt(o) for o in r] + [f"learn.recorder has .losses: {hasattr(learn.recorder, 'losses')}"])(learn.get_preds()))
    section('D', scenario_d)
    section('E', scenario_e)
    section('F', scenario_f)
    return out


# ---------------------------------------------------------------- reading the golden trace
_CLASSES = {c.__name__: c for c in (MeanTarget, ExtraColumn, V1Custom, OneCycleScheduler, LRFinder, StopEarly,
                                    SkipBwd, Boom)}
_CALL = re.compile(r'^      (\w+)\.on_(\w+)$')


def _listens(name: str, ev: str) -> bool:
    if name == 'Recorder':
        from trainlib.v1 import Recorder
        return ev in overridden_events(Recorder.__new__(Recorder))
    cls = _CLASSES.get(name)
    return cls is None or ev in overridden_events(cls.__new__(cls))


def golden_sections(text: str) -> dict[str, list[str]]:
    """The body of each section of the golden trace, keeping what trainlib.v1 is compared on: the lines
    of the loop's own bookkeeping ('<= handler', '[validate()') are dropped, and so are calls of event
    methods a callback does not override (trainlib dispatches only those; none of them changes anything)."""
    bar = '=' * 100
    lines = text.splitlines()
    out, i = {}, 0
    while i < len(lines):
        if lines[i] == bar and i + 1 < len(lines) and lines[i + 1][:2] in {f'{c}.' for c in 'ABCDEFG'}:
            name = lines[i + 1][0]
            j = lines.index(bar, i + 1) + 1
            k = j
            while k < len(lines) and lines[k] != bar: k += 1
            out[name] = [normalize(l) for l in lines[j:k] if keep(l)]
            while out[name] and not out[name][-1]: out[name].pop()
            i = k
        else: i += 1
    return out


def keep(line: str) -> bool:
    if line.startswith(('   <= handler', '   [validate()')): return False
    m = _CALL.match(line)
    return not (m and not _listens(m.group(1), m.group(2)))


def normalize(line: str) -> str:
    "The master bar is fastprogress's in fastai and trainlib's V1Bar here; the checksum is compared to 6 decimals."
    line = re.sub(r'pbar=<\w+>', 'pbar=<bar>', line)
    m = re.match(r'(\s*param checksum = )(-?\d+\.\d+)$', line)
    return f'{m.group(1)}{float(m.group(2)):.6f}' if m else line
