"""Metrics: objects that accumulate over the batches of a phase and give one value at its end.

They accumulate on the device of the predictions: nothing here reads a tensor back to the host
per batch. ``value`` is read once per epoch by the Recorder.
"""
from __future__ import annotations

import inspect
from functools import partial
from typing import Any, Callable

import torch
import torch.nn.functional as F

from .utils import class2attr, find_bs, to_detach

__all__ = ['Metric', 'AvgMetric', 'AvgLoss', 'AvgSmoothLoss', 'ValueMetric', 'AccumMetric', 'mk_metric',
           'flatten_check', 'accuracy', 'error_rate', 'top_k_accuracy', 'accuracy_multi', 'mse', 'rmse',
           'mae', 'msle', 'exp_rmspe', 'func_name']


def func_name(f: Any) -> str:
    "The name of a function, of the function behind a partial, or of the object's class."
    if isinstance(f, partial): return func_name(f.func)
    return getattr(f, '__name__', type(f).__name__)


class Metric:
    "The metric protocol: ``reset()``, ``accumulate(learn)``, ``value``, ``name``."
    def reset(self) -> None:
        "Start a new phase."
    def accumulate(self, learn: Any) -> None:
        "Take in the current batch (``learn.pred``, ``learn.yb``, ``learn.loss``...)."
    @property
    def value(self) -> Any:
        "The metric over the batches seen since ``reset``."
        raise NotImplementedError(f'{type(self).__name__} must define `value`')
    @property
    def name(self) -> str:
        "The column name: snake case of the class name without ``Metric``."
        return class2attr(self, 'Metric')


class AvgMetric(Metric):
    "The batch-size-weighted mean of ``func(pred, *yb)`` over a phase."
    def __init__(self, func: Callable) -> None: self.func = func
    def reset(self) -> None: self.total, self.count = 0., 0
    def accumulate(self, learn: Any) -> None:
        bs = find_bs(learn.yb)
        v = self.func(learn.pred, *learn.yb)
        if type(v) is not torch.Tensor or v.requires_grad: v = to_detach(v, cpu=False)   # else nothing to detach
        self.total = self.total + v * bs
        self.count += bs
    @property
    def value(self) -> Any: return self.total / self.count if self.count else None
    @property
    def name(self) -> str: return func_name(self.func)


class AvgLoss(Metric):
    "The batch-size-weighted mean of the loss over a phase."
    def reset(self) -> None: self.total, self.count = 0., 0
    def accumulate(self, learn: Any) -> None:
        bs = find_bs(learn.yb)
        self.total = self.total + learn.loss.mean().detach() * bs
        self.count += bs
    @property
    def value(self) -> Any: return self.total / self.count if self.count else None
    @property
    def name(self) -> str: return 'loss'


class _LazyDiv:
    "Smoothed value ``k`` of a run of :class:`AvgSmoothLoss` divided by ``denom``: computed when first called, then kept."
    __slots__ = ('owner', 'bufs', 'k', 'denom', 'result')

    def __init__(self, owner: 'AvgSmoothLoss', k: int, denom: float) -> None:
        self.owner, self.bufs, self.k, self.denom, self.result = owner, owner._slots, k, denom, None

    def __call__(self) -> torch.Tensor:
        if self.result is None:
            if self.owner._slots is self.bufs: self.owner.flush()     # still this run: smooth what is pending
            self.result = torch.div(self.bufs.get(self.k, self.owner.val), self.denom)
            self.owner = self.bufs = None
        return self.result


class ValueSlots:
    """0-d slots of device buffers of ``chunk`` values, each buffer made at once. Values kept one per
    batch in these slots hold no small tensor each, which would fragment the host allocator's heap
    between the large short-lived activations."""
    def __init__(self, chunk: int = 256) -> None:
        self.chunk, self.bufs = chunk, []    # bufs: (index of its first value, buffer)

    def write(self, k: int, values: torch.Tensor) -> None:
        "Values ``k, k+1, ...`` from the 1-d tensor ``values``, into the last buffer and new ones as needed."
        done, n = 0, len(values)
        while done < n:
            first, buf = self.bufs[-1] if self.bufs else (0, None)
            at = k + done - first
            if buf is None or at >= self.chunk or buf.dtype != values.dtype or buf.device != values.device:
                first, at, buf = k + done, 0, torch.empty(self.chunk, dtype=values.dtype, device=values.device)
                self.bufs.append((first, buf))
            m = min(n - done, self.chunk - at)
            buf[at:at + m] = values[done:done + m]
            done += m

    def get(self, k: int, before: Any = None) -> Any:
        "Value ``k`` (``before`` when ``k`` precedes every slot taken, e.g. -1: no value yet)."
        for first, buf in reversed(self.bufs):
            if first <= k: return buf[k - first]
        return before


class AvgSmoothLoss(Metric):
    """The debiased exponential moving average of the loss (``beta=0.98``), kept as a device tensor.

    ``accumulate`` only notes the batch's loss; the moving average is computed (the same ``lerp``
    per batch, in order, bit for bit) when a value is read or :attr:`pending_max` losses are noted:
    a run of small tensor ops in a row costs a fraction of one op between the model's, whose
    kernels and caches it would push out. A run's values are then copied, in one op, into device
    buffers of :attr:`chunk` values: whoever keeps every batch's value (the Recorder) keeps no small
    tensor per batch, which would fragment the host allocator's heap between the large short-lived
    activations. (A callback that changes ``learn.loss`` in place after the Recorder, in the same
    ``after_batch``, changes the smoothed value too.)"""
    chunk, pending_max = 256, 32

    def __init__(self, beta: float = 0.98) -> None:
        self.beta = beta
        self._pending: list = []
        self.reset()
    def reset(self) -> None:
        if self._pending: self.flush()          # the last run's values stay readable
        self.count, self.val, self._slots = 0, torch.tensor(0.), ValueSlots(self.chunk)
        self._pending = []
    def accumulate(self, learn: Any) -> None:
        self.count += 1
        pending = self._pending
        pending.append(learn.loss.detach())     # no graph kept (a cancelled backward leaves one whole)
        if len(pending) >= self.pending_max: self.flush()
    def flush(self) -> None:
        "Smooth the noted losses, in order, then keep the run's values in the device buffers."
        pending = self._pending
        if not pending: return
        val, beta, device, values = self.val, self.beta, pending[0].device, []
        if val.device != device: val = val.to(device)     # all noted in one phase: on one device
        for loss in pending:
            val = torch.lerp(loss.mean() if loss.dim() else loss, val, beta)   # a 0-d loss is its own mean
            values.append(val)
        self._slots.write(self.count - len(pending), torch.stack(values))
        self.val = val
        pending.clear()
    def lazy_value(self) -> Callable[[], torch.Tensor]:
        "A function giving the current ``value`` when first called: no tensor op until someone needs it."
        return _LazyDiv(self, self.count - 1, 1 - self.beta ** self.count)
    @property
    def value(self) -> torch.Tensor:
        self.flush()
        return torch.div(self.val, 1 - self.beta ** self.count)
    @property
    def name(self) -> str: return 'smooth_loss'


class ValueMetric(Metric):
    "A metric whose value is ``func()`` at the end of the phase (for values computed elsewhere)."
    def __init__(self, func: Callable, metric_name: str | None = None) -> None:
        self.func, self.metric_name = func, metric_name
    @property
    def value(self) -> Any: return self.func()
    @property
    def name(self) -> str: return self.metric_name or func_name(self.func)


class AccumMetric(Metric):
    """Keep every prediction and target of the phase (on their device) and apply ``func`` to them at the end:
    ``func(preds, targs, **kwargs)``, or ``func(targs, preds, ...)`` with ``invert_arg`` (sklearn's order),
    on numpy arrays with ``to_np``."""
    def __init__(self, func: Callable, dim_argmax: int | None = None, activation: Callable | None = None,
                 thresh: float | None = None, to_np: bool = False, invert_arg: bool = False, flatten: bool = True,
                 name: str | None = None, **kwargs) -> None:
        self.func, self.dim_argmax, self.activation, self.thresh = func, dim_argmax, activation, thresh
        self.to_np, self.invert_arg = to_np, invert_arg
        self.flatten, self.kwargs, self._name = flatten, kwargs, name
    def reset(self) -> None: self.preds, self.targs = [], []
    def accumulate(self, learn: Any) -> None:
        pred = learn.pred.detach()
        if self.activation is not None: pred = self.activation(pred)
        if self.dim_argmax is not None: pred = pred.argmax(dim=self.dim_argmax)
        if self.thresh is not None: pred = pred >= self.thresh
        self.preds.append(pred)
        self.targs.append(learn.yb[0].detach())
    @property
    def value(self) -> Any:
        if not self.preds: return None
        preds, targs = torch.cat(self.preds), torch.cat(self.targs)
        if self.flatten: preds, targs = flatten_check(preds, targs)
        if self.to_np: preds, targs = preds.cpu().numpy(), targs.cpu().numpy()
        return self.func(targs, preds, **self.kwargs) if self.invert_arg else self.func(preds, targs, **self.kwargs)
    @property
    def name(self) -> str: return self._name or func_name(self.func)


def mk_metric(m: Any) -> Metric:
    "A Metric from ``m``: a Metric class is instantiated, a Metric kept, a function wrapped in AvgMetric."
    if isinstance(m, type) and issubclass(m, Metric): return m()
    if isinstance(m, Metric): return m
    if not callable(m):
        raise TypeError(f'metrics: expected a function (pred, *targets) -> value or a Metric, got {m!r}')
    if _max_positional(m) < 2:
        raise TypeError(f'metrics: `{func_name(m)}{inspect.signature(m)}` cannot be called as a metric, with the '
                        f'predictions and the targets: expected `def {func_name(m)}(pred, targ)`')
    return AvgMetric(m)


def _max_positional(f: Callable) -> float:
    "How many positional arguments ``f`` can take (infinite with ``*args`` or when its signature is unknown)."
    try: params = inspect.signature(f).parameters.values()
    except (TypeError, ValueError): return float('inf')
    if any(p.kind is p.VAR_POSITIONAL for p in params): return float('inf')
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params)


def flatten_check(inp: torch.Tensor, targ: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    "Flatten both tensors and check they have the same number of elements."
    if inp.dim() != 1: inp = inp.reshape(-1)            # a view when contiguous, else a copy: one op each
    if targ.dim() != 1: targ = targ.reshape(-1)
    if len(inp) != len(targ):
        raise ValueError(f'expected predictions and targets of the same size, got {len(inp)} and {len(targ)}')
    return inp, targ


def accuracy(inp: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    "Share of items whose argmax over ``axis`` equals the target."
    pred, targ = flatten_check(inp.argmax(dim=axis), targ)
    return (pred == targ).float().mean()


def error_rate(inp: torch.Tensor, targ: torch.Tensor, axis: int = -1) -> torch.Tensor:
    "1 - accuracy."
    return 1 - accuracy(inp, targ, axis=axis)


def top_k_accuracy(inp: torch.Tensor, targ: torch.Tensor, k: int = 5, axis: int = -1) -> torch.Tensor:
    "Share of items whose target is among the ``k`` largest predictions."
    inp = inp.topk(k=k, dim=axis)[1]
    targ = targ.unsqueeze(dim=axis).expand_as(inp)
    return (inp == targ).sum(dim=-1).float().mean()


def accuracy_multi(inp: torch.Tensor, targ: torch.Tensor, thresh: float = 0.5, sigmoid: bool = True) -> torch.Tensor:
    "Multi-label accuracy: prediction above ``thresh`` (after a sigmoid) equals the 0/1 target."
    if sigmoid: inp = inp.sigmoid()
    return ((inp > thresh) == targ.bool()).float().mean()


def mse(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    "Mean squared error."
    return F.mse_loss(*flatten_check(inp, targ))


def mae(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    "Mean absolute error."
    inp, targ = flatten_check(inp, targ)
    return torch.abs(inp - targ).mean()


def msle(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    "Mean squared logarithmic error."
    inp, targ = flatten_check(inp, targ)
    return F.mse_loss(torch.log(1 + inp), torch.log(1 + targ))


def _rmse(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(F.mse_loss(inp, targ))


def _exp_rmspe(inp: torch.Tensor, targ: torch.Tensor) -> torch.Tensor:
    inp, targ = torch.exp(inp), torch.exp(targ)
    return torch.sqrt((((targ - inp) / targ) ** 2).mean())


rmse = AccumMetric(_rmse)
"Root mean squared error over the whole phase (not a mean of per-batch values); named ``_rmse`` as in fastai."

exp_rmspe = AccumMetric(_exp_rmspe)
"Root mean squared percentage error of ``exp`` of predictions and targets, over the whole phase (``_exp_rmspe``)."
