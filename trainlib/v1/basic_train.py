"""fastai-1's ``Learner``, ``LearnerCallback``, ``Recorder`` and the module functions ``fit``,
``loss_batch``, ``validate``, ``get_preds``.

The v1 ``Learner`` *is* a core :class:`trainlib.learner.Learner` (a subclass): ``learn.fit`` runs the
core loop with the v1 callbacks bridged onto it (see :mod:`trainlib.v1.bridge`), so v1 and v2
callbacks, stock or not, share one loop. What differs is the v1 face: the constructor and its
defaults, ``data`` (= ``dls``), layer groups and their optimizer (the core :class:`~trainlib.optim.OptimWrapper`, v1 face),
``callback_fns`` re-created at every fit/get_preds, the v1 ``Recorder`` and its table. Its default
core callbacks are only ``TrainEvalCallback`` (train/eval switching); the v1 Recorder prints the table.

``loss_batch`` and ``validate`` are the hand-written-loop versions (with a standalone
``CallbackHandler``); the module ``fit`` runs the core loop.
"""
from __future__ import annotations

import time
from contextlib import nullcontext
import warnings
import weakref
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..callback import CallbackError
from ..callbacks.core import TrainEvalCallback
from ..learner import Learner as CoreLearner
from ..optim import OptimWrapper
from ..persistence import load_model, save_model
from ..progress import in_notebook
from ..recorder import format_time
from ..utils import camel2snake, noop, slice_values, to_detach, to_device
from .basic_data import DataBunch, DatasetType
from . import persist as _persist
from .persist import load_learner
from .bridge import V1Bar, is_v2_callback, made_class, make_callback, run_v1
from .callback import Callback, CallbackHandler, check_v1_callback, weighted_loss_mean
from .core import defaults, first_el, is_listy, listify
from .torch_core import AdamW, NoneReduceOnCPU, apply_init, bn_types, flatten_model, requires_grad, split_model

__all__ = ['Learner', 'BasicLearner', 'LearnerCallback', 'Recorder', 'RecordOnCPU', 'fit', 'train_epoch', 'loss_batch',
           'validate', 'get_preds', 'DatasetType', 'loss_func2activ', 'load_learner']

# ====================================================================== model helpers
_KINDS = {'cross_entropy_loss': 'softmax', 'cross_entropy': 'softmax', 'nll_loss': 'log_softmax',
          'poisson_nll_loss': 'exp', 'kl_div': 'exp', 'kl_div_loss': 'exp', 'bce_with_logits_loss': 'sigmoid',
          'binary_cross_entropy_with_logits': 'sigmoid'}


def _loss_kind(loss_func: Any) -> str:
    "What fastai 1 reads from the loss's (class or function) name: softmax, log_softmax, exp, sigmoid or ''."
    f = getattr(loss_func, 'func', loss_func)
    return _KINDS.get(camel2snake(getattr(f, '__name__', type(f).__name__)), '')


def loss_func2activ(loss_func: Any) -> Callable:
    "The activation that turns raw outputs into predictions for ``loss_func`` (softmax, exp, sigmoid or none)."
    act = getattr(loss_func, 'activation', None)
    if callable(act): return act
    kind = _loss_kind(loss_func)
    if kind == 'softmax': return partial(F.softmax, dim=-1)
    return {'log_softmax': torch.exp, 'exp': torch.exp, 'sigmoid': torch.sigmoid}.get(kind, noop)


def _argmax(p: torch.Tensor) -> torch.Tensor: return p.argmax(dim=-1)
def _over_half(p: torch.Tensor) -> torch.Tensor: return p > 0.5


def loss_func2decode(loss_func: Any) -> Callable:
    "How activated predictions are decoded for ``loss_func``: its ``decodes``, else argmax (classes), > 0.5 (binary) or as they are."
    dec = getattr(loss_func, 'decodes', None)
    if callable(dec): return dec
    return {'softmax': _argmax, 'log_softmax': _argmax, 'sigmoid': _over_half}.get(_loss_kind(loss_func), noop)


def _split_item(item: Any) -> tuple[list, Any]:
    "A dataset item as ``(inputs, target)``: a tuple's last element is the target, anything else is one input."
    if isinstance(item, (tuple, list)):
        if len(item) == 1: return [item[0]], None
        return list(item[:-1]), item[-1]
    return [item], None


# ====================================================================== the module functions
def loss_batch(model: nn.Module, xb: Any, yb: Any, loss_func: Callable | None = None, opt: Any = None,
               cb_handler: CallbackHandler | None = None) -> Any:
    """One batch in a hand-written loop: forward, and with ``opt`` backward/step/zero_grad, through
    ``cb_handler``. Returns the loss (detached, on its device), or ``(output, first target)`` without a loss."""
    h = cb_handler if cb_handler is not None else CallbackHandler()
    xb = list(xb) if is_listy(xb) else [xb]
    yb = list(yb) if is_listy(yb) else [yb]
    out = h.on_loss_begin(model(*xb))
    if not loss_func: return to_detach(out), to_detach(yb[0])
    loss = loss_func(out, *yb)
    if opt is not None:
        loss, skip_bwd = h.on_backward_begin(loss)
        if not skip_bwd: loss.backward()
        if not h.on_backward_end(): opt.step()
        if not h.on_step_end(): opt.zero_grad()
    return loss.detach()


def validate(model: nn.Module, dl: Any, loss_func: Callable | None = None, cb_handler: CallbackHandler | None = None,
             pbar: Any = None, average: bool = True, n_batch: int | None = None) -> Any:
    """Evaluate ``model`` on ``dl`` in a hand-written loop: the batch-size-weighted mean loss
    (``np.float32``), or the list of batch results when not ``average``."""
    model.eval()
    with torch.no_grad():
        losses, nums = [], []
        if cb_handler is not None: cb_handler.set_dl(dl)
        for xb, yb in dl:
            if cb_handler is not None: xb, yb = cb_handler.on_batch_begin(xb, yb, train=False)
            losses.append(loss_batch(model, xb, yb, loss_func, cb_handler=cb_handler))
            nums.append(first_el(yb).shape[0])
            if cb_handler is not None and cb_handler.on_batch_end(losses[-1]): break
            if n_batch and len(nums) >= n_batch: break
        return weighted_loss_mean(losses, nums) if average else losses


def train_epoch(model: nn.Module, dl: Any, opt: Any, loss_func: Callable) -> None:
    "One plain training epoch of ``model`` on ``dl`` (no callbacks)."
    model.train()
    for xb, yb in dl:
        loss = loss_func(model(xb), yb)
        loss.backward()
        opt.step()
        opt.zero_grad()


def get_preds(model: nn.Module, dl: Any, pbar: Any = None, cb_handler: CallbackHandler | None = None,
              activ: Callable | None = None, loss_func: Callable | None = None, n_batch: int | None = None) -> list:
    "``[predictions, targets(, per-item losses)]`` of ``model`` on ``dl``, in a hand-written loop."
    res = [torch.cat(o) for o in zip(*validate(model, dl, cb_handler=cb_handler, pbar=pbar, average=False,
                                               n_batch=n_batch))]
    if loss_func is not None: res.append(_item_losses(loss_func, res[0], res[1]))
    if activ is not None: res[0] = activ(res[0])
    return res


def _item_losses(loss_func: Callable, out: torch.Tensor, targs: Any) -> torch.Tensor:
    """fastai 1's per-item losses: ``loss_func`` with ``reduction='none'`` on all the outputs at once, on the CPU,
    in whatever shape it gives them (``(n, c)`` for a multi-label BCE or a multi-column MSE)."""
    out, targs = to_detach(out, cpu=True), to_detach(targs, cpu=True)
    with NoneReduceOnCPU(loss_func) as lf:
        return lf(out, *targs) if isinstance(targs, (tuple, list)) else lf(out, targs)


def fit(epochs: int, learn: Any, callbacks: Any = None, metrics: Any = None) -> None:
    """Train ``learn`` (a trainlib Learner with an optimizer) for ``epochs`` epochs on the core loop, with the
    v1 ``callbacks`` and ``metrics``."""
    if not isinstance(learn, CoreLearner):
        raise TypeError(f'fit: learn must be a trainlib Learner (trainlib.v1.Learner or BasicLearner), '
                        f'got {type(learn).__name__}')
    train_dl = learn.dls.train
    if train_dl is None:
        raise ValueError('fit: the Learner has no training data (load_learner gives an empty DataBunch): set '
                         'learn.data = DataBunch.create(train_ds, valid_ds) first')
    assert len(train_dl) != 0, (f"Your training dataloader is empty, can't train a model. Use a smaller batch size "
                                f"(batch size={getattr(train_dl, 'batch_size', '?')} for "
                                f"{len(getattr(train_dl, 'dataset', []))} elements).")
    if learn.opt is None:
        raise ValueError('fit: learn.opt is None; create the optimizer first (learn.create_opt(lr, wd)) or call learn.fit')
    learn.n_epoch = epochs
    run_v1(learn, listify(callbacks), learn._run_fit, metrics=metrics, mode='fit', n_epochs=epochs,
           pbar=V1Bar(epochs))


# ====================================================================== learners
class _V1Learner(CoreLearner):
    "What the v1 learners share: ``data`` is the core's ``dls``, and the only default core callback is TrainEval."

    def _v1_setup(self) -> None:
        self.add_cb(TrainEvalCallback())
        self.logger = noop              # the v1 Recorder prints the table; v2 loggers (CSVLogger) get its rows here

    def _split(self, b: Any) -> None:
        """fastai 1's batches are ``(x, y)`` pairs, ``x`` a list when the model takes several inputs and ``y`` when
        the loss takes several targets: ``model(*xb)``, ``loss_func(out, *yb)``. Loaders with ``n_inp`` split by it."""
        if getattr(self.__dict__['dls'], 'n_inp', None) is None and isinstance(b, (list, tuple)) and len(b) == 2:
            x, y = b
            self.xb = tuple(x) if isinstance(x, (list, tuple)) else (x,)
            self.yb = tuple(y) if isinstance(y, (list, tuple)) else (y,)
        else: super()._split(b)

    @property
    def data(self) -> Any:
        "The DataBunch (the core's ``dls``)."
        return self.dls

    @property
    def smooth_loss(self) -> Any:
        "The v1 Recorder's smoothed training loss of the last batch (smoothed when read), else what was set."
        sm = getattr(self.__dict__.get('recorder'), '_v1_smoothener', None)
        return sm.smooth if sm is not None and sm.n else self.__dict__.get('_smooth_loss')

    @smooth_loss.setter
    def smooth_loss(self, v: Any) -> None: self.__dict__['_smooth_loss'] = v

    @data.setter
    def data(self, v: Any) -> None: self.dls = v


class BasicLearner(_V1Learner):
    "fastai-1's minimal learner for the module ``fit``: a model, a loss, an optimizer and a DataBunch."

    def __init__(self, model: nn.Module, loss_func: Callable, opt: Any, data: Any) -> None:
        super().__init__(data, model, loss_func=loss_func, default_cbs=False)
        self._v1_setup()
        self.opt = opt


class Learner(_V1Learner):
    """fastai-1's Learner: ``Learner(data, model, opt_func=AdamW, loss_func=None, metrics=None, true_wd=True,
    bn_wd=True, wd=1e-2, train_bn=True, path=None, model_dir='models', callback_fns=None, callbacks=None,
    layer_groups=None, add_time=True, silent=None)``, training on the core loop."""

    def __init__(self, data: DataBunch, model: nn.Module, opt_func: Callable = AdamW, loss_func: Callable | None = None,
                 metrics: Any = None, true_wd: bool = True, bn_wd: bool = True, wd: Any = defaults.wd,
                 train_bn: bool = True, path: str | Path | None = None, model_dir: str | Path = 'models',
                 callback_fns: Any = None, callbacks: Any = None, layer_groups: Any = None, add_time: bool = True,
                 silent: bool | None = None) -> None:
        if loss_func is None: loss_func = data.loss_func
        super().__init__(data, model, loss_func=loss_func, opt_func=opt_func, metrics=metrics,
                         path=path if path is not None else getattr(data, 'path', '.'), model_dir=model_dir, wd=wd,
                         train_bn=train_bn, default_cbs=False)
        self._v1_setup()
        self.true_wd, self.bn_wd, self.add_time = true_wd, bn_wd, add_time
        self.silent = defaults.silent if silent is None else silent
        device = getattr(data, 'device', None)
        if device is not None: model.to(device)
        self.layer_groups = list(layer_groups) if layer_groups else [nn.Sequential(*flatten_model(model))]
        self.callbacks = list(listify(callbacks)) + list(listify(defaults.extra_callbacks))
        for cb in self.callbacks:
            if not is_v2_callback(cb): check_v1_callback(cb)
        self.callback_fns = [partial(Recorder, add_time=self.add_time, silent=self.silent)] + list(listify(callback_fns))

    @property
    def metrics(self) -> list:
        "The v1 metrics: functions (wrapped in AverageMetric at each fit) or v1 Callbacks."
        return self._metrics

    @metrics.setter
    def metrics(self, v: Any) -> None: self._metrics = list(listify(v))

    # ------------------------------------------------------------------ training
    def _instantiate_fns(self) -> list:
        return [make_callback(f, self) for f in self.callback_fns + list(listify(defaults.extra_callback_fns))]

    def _check_name(self, name: Any, owner: Any, label: str) -> None:
        super()._check_name(name, owner, label)
        for f in self.__dict__.get('callback_fns', []):     # names its callback_fns take at every fit (learn.recorder)
            cls = made_class(f)
            if hasattr(cls, 'cb_name') and camel2snake(cls.__name__) == name and not isinstance(owner, cls):
                raise CallbackError(f'callback `{label}` would be registered as `learn.{name}`, which this fastai-1 '
                                    f'Learner gives to the `{cls.__name__}(v1)` its callback_fns make at every fit; '
                                    f'give the callback another name')

    def fit(self, epochs: int, lr: Any = defaults.lr, wd: Any = None, callbacks: Any = None) -> None:
        "Train for ``epochs`` epochs at ``lr`` (a float, one per layer group, or a slice) with weight decay ``wd``."
        lr = self.lr_range(lr)
        if wd is None: wd = self.wd
        if self.opt is None: self.create_opt(lr, wd)
        else: self.opt.lr, self.opt.wd = lr, wd
        fit(epochs, self, metrics=self.metrics, callbacks=self.callbacks + self._instantiate_fns() + listify(callbacks))

    def lr_range(self, lr: Any) -> Any:
        "``lr`` per layer group: a slice(stop) gives stop/10 for all but the last, slice(start, stop) a geometric range."
        if not isinstance(lr, slice): return lr
        return np.array(slice_values(lr, len(self.layer_groups)))

    def create_opt(self, lr: Any = None, wd: Any = 0.) -> None:
        "A new optimizer over the layer groups (``lr`` default ``defaults.lr``)."
        lr = self.lr_range(defaults.lr if lr is None else lr)
        self.opt = OptimWrapper.create(self.opt_func, lr, self.layer_groups, wd=wd, true_wd=self.true_wd,
                                       bn_wd=self.bn_wd)

    def split(self, split_on: Any) -> 'Learner':
        "New layer groups: cut the model before each module of ``split_on`` (or of ``split_on(model)``)."
        if callable(split_on) and not isinstance(split_on, nn.Module): split_on = split_on(self.model)
        self.layer_groups = split_model(self.model, split_on)
        return self

    def freeze_to(self, n: int) -> None:
        "Freeze the layer groups before ``n`` (BatchNorm layers stay trainable with ``train_bn``); new optimizer."
        for g in self.layer_groups[:n]:
            for layer in g:
                if not (self.train_bn and isinstance(layer, bn_types)): requires_grad(layer, False)
        for g in self.layer_groups[n:]: requires_grad(g, True)
        if hasattr(self.model, 'reset'): self.model.reset()
        self.create_opt(defaults.lr)

    def freeze(self) -> None:
        "Freeze every layer group but the last."
        assert len(self.layer_groups) > 1, 'freeze needs at least two layer groups: split the model first'
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        "Train every layer group."
        self.freeze_to(0)

    def init(self, init: Callable) -> None:
        "Initialise the model's trainable, non-batchnorm layers: ``init(weight)``, biases to 0."
        apply_init(self.model, init)

    # ------------------------------------------------------------------ evaluation
    def validate(self, dl: Any = None, callbacks: Any = None, metrics: Any = None) -> list:
        """``[valid_loss, *metrics]`` on ``dl`` (default the valid loader), with learn.callbacks (not
        callback_fns): on_train_begin, on_epoch_begin, the batches, on_epoch_end; no on_train_end."""
        dl = self.data.valid_dl if dl is None else dl
        metrics = self.metrics if metrics is None else metrics
        handler, _ = run_v1(self, self.callbacks + listify(callbacks), lambda: self._v1_validate_pass(dl),
                            metrics=metrics, mode='validate', n_epochs=1, pbar=None)
        return handler.state_dict['last_metrics']

    def _v1_validate_pass(self, dl: Any) -> None:
        "A validation pass with fit/epoch events (v1 callbacks get on_train_begin...); inside a fit, the fit's state comes back."
        with self._nested_pass() if self._running else nullcontext(), self.validation_context():
            self._do_epoch_validate(dl=dl)

    def get_preds(self, ds_type: DatasetType = DatasetType.Valid, activ: Callable | None = None,
                  with_loss: bool = False, n_batch: int | None = None, pbar: Any = None) -> list:
        """``[predictions, targets(, per-item losses)]`` on ``ds_type``, with learn.callbacks and fresh
        callback_fns (batch events only); ``activ`` defaults to the loss function's activation. The losses are the
        loss function's with ``reduction='none'``, in its shape (fastai 2 averages them to one per item)."""
        dl = self.data._needed_dl(ds_type, 'get_preds')       # None would make the core predict on the valid loader
        cbs = self.callbacks + self._instantiate_fns()
        _, (out, targs) = run_v1(self, cbs, lambda: CoreLearner.get_preds(self, dl=dl, act=noop, inner=True),
                                 mode='preds', n_batch=n_batch)
        losses = [_item_losses(self.loss_func, out, targs)] if with_loss else []
        activ = loss_func2activ(self.loss_func) if activ is None else activ
        return [activ(out), targs] + losses

    def pred_batch(self, ds_type: DatasetType = DatasetType.Valid, batch: Any = None, reconstruct: bool = False,
                   with_dropout: bool = False, activ: Callable | None = None) -> Any:
        "The activated predictions for one batch (``batch``, or the first of ``ds_type``); learn.callbacks see it."
        if batch is None: self.data._needed_dl(ds_type, 'pred_batch')
        xb, yb = batch if batch is not None else self.data.one_batch(ds_type, detach=False, denorm=False)
        device = getattr(self.data, 'device', None)
        if device is not None: xb, yb = to_device(xb, device), to_device(yb, device)
        handler = CallbackHandler(self.callbacks)
        xb, yb = handler.on_batch_begin(xb, yb, train=False)
        self.model.eval()
        if with_dropout:
            for m in self.model.modules():
                if isinstance(m, nn.modules.dropout._DropoutNd): m.train()
        with torch.no_grad(): out = loss_batch(self.model, xb, yb, cb_handler=handler)
        return (loss_func2activ(self.loss_func) if activ is None else activ)(out[0])

    def predict(self, item: Any, return_x: bool = False, batch_first: bool = True, with_dropout: bool = False,
                **kwargs: Any) -> tuple:
        """``(y, pred, raw_pred)`` for one dataset item: the input tensor, or a dataset's ``(x, y)`` tuple
        (every element but the last is an input, as in a batch). ``raw_pred`` is the activated output,
        ``pred`` its decoding (the class index for a classification loss, ``raw_pred > 0.5`` for a binary
        one, else ``raw_pred``) and ``y`` the class name when the data has ``classes``, else ``pred``."""
        xs, target = _split_item(item)
        device = next(iter(self.model.parameters()), torch.empty(0)).device
        xb = [torch.as_tensor(x).unsqueeze(0).to(device) for x in xs]
        yb = torch.as_tensor(target).unsqueeze(0).to(device) if target is not None else torch.zeros(1, device=device)
        res = self.pred_batch(batch=(xb if len(xb) > 1 else xb[0], yb), with_dropout=with_dropout)
        raw_pred = res[0] if batch_first else res[:, 0]
        pred = loss_func2decode(self.loss_func)(raw_pred)
        classes = getattr(self.data, 'classes', None)
        y = classes[int(pred)] if classes is not None and pred.numel() == 1 else pred
        return (xs[0] if len(xs) == 1 else xs, y, pred, raw_pred) if return_x else (y, pred, raw_pred)

    def predict_with_mc_dropout(self, item: Any, with_dropout: bool = True, n_times: int = 10, **kwargs: Any) -> list:
        "``predict(item)`` ``n_times`` with dropout on (Monte-Carlo dropout)."
        return [self.predict(item, with_dropout=with_dropout, **kwargs) for _ in range(n_times)]

    def interpret(self, ds_type: DatasetType = DatasetType.Valid) -> Any:
        "A :class:`~trainlib.v1.interpret.ClassificationInterpretation` of the predictions on ``ds_type``."
        from .interpret import ClassificationInterpretation
        return ClassificationInterpretation.from_learner(self, ds_type=ds_type)

    def summary(self, n: int = 70) -> str:
        "The layers (output shape, parameters, trainable), optimizer, loss and callbacks, as a table ``n`` wide."
        from .hooks import model_summary
        return model_summary(self, n)

    # ------------------------------------------------------------------ persistence
    export = _persist.export
    purge = _persist.purge
    destroy = _persist.destroy

    def save(self, file: Any = None, return_path: bool = False, with_opt: bool = True) -> Any:
        "Save the weights (and optimizer state) to ``path/model_dir/file.pth`` (or a file object), atomically."
        if file is None: raise ValueError('save: give a file name (saved as path/model_dir/<file>.pth) or a file object')
        target = self._model_file(file)
        save_model(target, self.model, self.opt, with_opt=with_opt)
        return target if return_path else None

    def load(self, file: Any = None, device: Any = None, strict: bool = True, with_opt: bool | None = None,
             purge: bool = False, remove_module: bool = False) -> 'Learner':
        """Load weights saved by :meth:`save` (no code runs: ``weights_only``); the optimizer's running state too
        when present. As in fastai 1, the hyper-parameters (``opt.lr``, ``mom``...) stay those set last."""
        if file is None: raise ValueError('load: give the file name used with save')
        if purge: self.purge(clear_opt=bool(with_opt))
        if self.opt is None: self.create_opt(defaults.lr, self.wd)
        if device is None: device = getattr(self.data, 'device', None)
        hypers = [{k: v for k, v in g.items() if k != 'params'} for g in self.opt.opt.param_groups]
        with warnings.catch_warnings():
            if with_opt is None: warnings.simplefilter('ignore')
            load_model(self._model_file(file), self.model, self.opt, with_opt=with_opt is not False, device=device,
                       strict=strict)
        groups = self.opt.opt.param_groups          # torch's load_state_dict made new group dicts
        if len(groups) == len(hypers):
            for g, h in zip(groups, hypers): g.update(h)
        return self


# ====================================================================== callbacks that know their Learner
class LearnerCallback(Callback):
    """A v1 callback bound to a Learner (kept as a weak reference), registered as ``learn.<cb_name>``;
    attributes it does not have are looked up on the Learner."""

    def __init__(self, learn: Any) -> None:
        self.learn = learn
        self.exclude, self.not_min = ['_learn'], []
        name, label = self.cb_name, f'{type(self).__name__}(v1)'
        if isinstance(learn, CoreLearner):
            if learn._learner_owns(name) is not None:     # the Learner's own name wins (its loop or methods need it)
                warnings.warn(f'`{label}` is not registered as `learn.{name}`, which is the Learner\'s own; keep a '
                              f'reference to the callback, or rename its class (or set `cb_name`) to reach it from '
                              f'the Learner', stacklevel=2)
                return
            learn._check_name(name, self, label)
        setattr(learn, name, self)

    @property
    def learn(self) -> Any:
        "The Learner (None once it is gone)."
        ref = self.__dict__.get('_learn')
        return ref() if ref is not None else None

    @learn.setter
    def learn(self, learn: Any) -> None: self.__dict__['_learn'] = weakref.ref(learn)

    @property
    def cb_name(self) -> str:
        "The attribute name on the Learner: ``camel2snake`` of the class name."
        return camel2snake(type(self).__name__)

    def __getattr__(self, k: str) -> Any:
        if k.startswith('__') or k == '_learn': raise AttributeError(k)
        learn = self.learn
        if learn is None: raise AttributeError(f'{type(self).__name__!r} object has no attribute {k!r}')
        return getattr(learn, k)

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != '_learn'}     # a weak reference does not pickle

    def __setstate__(self, state: dict) -> None: self.__dict__.update(state)


class RecordOnCPU(Callback):
    "Keep a CPU copy of the current batch's input and target (``self.input``, ``self.target``)."
    def on_batch_begin(self, last_input: Any, last_target: Any, **kwargs: Any) -> None:
        self.input, self.target = to_detach(last_input), to_detach(last_target)


class Recorder(LearnerCallback):
    """Record losses, lrs, momentums and metrics of a fit, and print the epoch table (``_order`` -10).

    ``losses`` holds the smoothed training loss of every batch (device tensors), ``val_losses`` and
    ``metrics`` one entry per epoch, ``nb_batches`` the training batches of each epoch.

    Its v2 face, for v2 callbacks (trackers, loggers) on a fastai-1 Learner: ``values`` (one row
    ``[train_loss, valid_loss, *metrics]`` of numbers per epoch, the row it prints), ``metric_names``
    (= ``names``), ``iters``; it sets ``learn.final_record`` (each epoch) and ``learn.smooth_loss`` (each
    batch), and hands ``[epoch, *row, time]`` to ``learn.logger`` (a no-op unless a v2 logger is there)."""
    _order = -10

    def __init__(self, learn: Any, add_time: bool = True, silent: bool = False) -> None:
        super().__init__(learn)
        if getattr(learn, 'opt', None) is None: learn.create_opt(defaults.lr, learn.wd)
        self.add_time, self.silent = add_time, silent
        self._added_met_names: list = []

    _v1_smoothener = None     # the run's SmoothenValue (its handler sets it at on_train_begin): ``losses`` are its values

    @property
    def losses(self) -> list:
        "The smoothed training loss of every batch of the fit (device tensors; smoothed when this is read)."
        losses, sm = self.__dict__.get('_losses'), self._v1_smoothener
        if losses is None: raise AttributeError('losses')       # no fit yet, as in fastai
        if sm is not None and sm.n > self._taken:
            new = sm.values(self._taken)
            self._taken += len(new)
            losses.extend(new)
        return losses

    @losses.setter
    def losses(self, v: list) -> None:
        self._losses = v
        sm = self._v1_smoothener
        self._taken = sm.n if sm is not None else 0     # later batches are appended

    @property
    def opt(self) -> Any:
        "The Learner's optimizer."
        return self.learn.opt

    def add_metric_names(self, names: list) -> None:
        "Column names for the values callbacks add to ``last_metrics`` (call before on_train_begin)."
        self._added_met_names = list(names)

    def on_train_begin(self, pbar: Any, metrics_names: list, **kwargs: Any) -> None:
        self.pbar = pbar
        self.metrics_names = list(metrics_names) + list(self._added_met_names)
        self.names = ['epoch', 'train_loss', 'valid_loss'] + self.metrics_names + (['time'] if self.add_time else [])
        if not self.silent and pbar is not None: pbar.write(self.names, table=True)
        self._taken = 0
        self.losses, self.val_losses, self.lrs, self.moms, self.metrics, self.nb_batches = [], [], [], [], [], []
        self.values, self.iters = [], []
        self.start_epoch = time.time()

    @property
    def metric_names(self) -> list:
        "The v2 name of ``names``: the table's columns."
        return self.__dict__.get('names', [])

    def on_epoch_begin(self, **kwargs: Any) -> None:
        self.start_epoch = time.time()

    def on_batch_begin(self, train: bool, **kwargs: Any) -> None:
        if train:
            opt = self.opt
            read = getattr(opt, 'v1_lr_mom', None)    # one call instead of ~10 through the lr/mom properties
            lr, mom = read() if read is not None else (opt.lr, opt.mom)
            self.lrs.append(lr)
            self.moms.append(mom)

    def on_epoch_end(self, epoch: int, num_batch: int, last_metrics: Any, smooth_loss: Any = None, **kwargs: Any) -> None:
        self.nb_batches.append(num_batch)
        last_metrics = [None] if last_metrics is None else last_metrics
        self.val_losses.append(last_metrics[0])
        if len(last_metrics) > 1: self.metrics.append(last_metrics[1:])
        self.values.append([_number(v) for v in [smooth_loss, *last_metrics]])     # one host read per epoch
        self.iters.append(sum(self.nb_batches))
        self.learn.final_record = list(self.values[-1])
        took = [format_time(time.time() - self.start_epoch)] if self.add_time else []
        self.learn.logger([epoch, *self.values[-1], *took])          # for v2 loggers, as the v2 Recorder does
        self.format_stats([epoch, smooth_loss] + list(last_metrics))

    def format_stats(self, stats: list) -> None:
        "Print one row of the table: '#na#' for None, ints as they are, other numbers with 6 decimals."
        cells = ['#na#' if s is None else str(s) if isinstance(s, int) else f'{s:.6f}' for s in stats]
        if self.add_time: cells.append(format_time(time.time() - self.start_epoch))
        if not self.silent and self.pbar is not None: self.pbar.write(cells, table=True)

    # ------------------------------------------------------------------ plots (headless: pass return_fig=True)
    def _done(self, fig: Any, return_fig: bool | None) -> Any:
        if (defaults.return_fig if return_fig is None else return_fig): return fig
        if in_notebook():
            import matplotlib.pyplot as plt
            plt.show()
        return None

    def plot_lr(self, show_moms: bool = False, skip_start: int = 0, skip_end: int = 0, return_fig: bool | None = None) -> Any:
        "Learning rate (and momentum with ``show_moms``) against the iteration."
        import matplotlib.pyplot as plt
        lrs, its = _trim(self.lrs, skip_start, skip_end), _trim(list(range(len(self.lrs))), skip_start, skip_end)
        if show_moms:
            fig, axs = plt.subplots(1, 2, figsize=(12, 4))
            axs[0].plot(its, lrs); axs[0].set_xlabel('Iterations'); axs[0].set_ylabel('Learning Rate')
            axs[1].plot(its, _trim(self.moms, skip_start, skip_end)); axs[1].set_xlabel('Iterations')
            axs[1].set_ylabel('Momentum')
        else:
            fig, ax = plt.subplots()
            ax.plot(its, lrs); ax.set_xlabel('Iterations'); ax.set_ylabel('Learning Rate')
        return self._done(fig, return_fig)

    def plot(self, skip_start: int = 10, skip_end: int = 5, suggestion: bool = False, return_fig: bool | None = None,
             show_grid: bool = False, **kwargs: Any) -> Any:
        "Loss against learning rate (log scale), e.g. after lr_find; ``suggestion`` marks the steepest descent."
        import matplotlib.pyplot as plt
        lrs = [float(x) for x in _trim(self.lrs, skip_start, skip_end)]
        losses = [float(x) for x in _trim(self.losses, skip_start, skip_end)]
        if kwargs.get('k') is not None:
            from scipy.interpolate import UnivariateSpline
            losses = list(UnivariateSpline(range(len(losses)), losses, **kwargs)(range(len(losses))))
        fig, ax = plt.subplots()
        ax.plot(lrs, losses); ax.set_ylabel('Loss'); ax.set_xlabel('Learning Rate'); ax.set_xscale('log')
        if show_grid: ax.grid(True)
        if suggestion:
            if len(losses) < 2:
                print('Failed to compute the gradients, there might not be enough points.')
                return None
            mg = int(np.gradient(np.array(losses)).argmin())
            print(f'Min numerical gradient: {lrs[mg]:.2E}')
            ax.plot(lrs[mg], losses[mg], markersize=10, marker='o', color='red')
            self.min_grad_lr = lrs[mg]
            print(f'Min loss divided by 10: {lrs[int(np.argmin(losses))] / 10:.2E}')
        return self._done(fig, return_fig)

    def _epoch_ends(self, skip_start: int, skip_end: int) -> list[int]:
        "Indices of the epochs whose end lies inside the plotted window of batches."
        ends = np.cumsum(self.nb_batches)
        n = len(self.losses)
        return [i for i, e in enumerate(ends) if e - 1 >= skip_start and e <= n - skip_end]

    def plot_losses(self, skip_start: int = 0, skip_end: int = 0, return_fig: bool | None = None,
                    show_grid: bool = False) -> Any:
        "Smoothed training loss per batch and validation loss at each epoch end."
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots()
        its = _trim(list(range(len(self.losses))), skip_start, skip_end)
        ax.plot(its, [float(x) for x in _trim(self.losses, skip_start, skip_end)], label='Train')
        ends = np.cumsum(self.nb_batches)
        pts = [(ends[i], float(self.val_losses[i])) for i in self._epoch_ends(skip_start, skip_end)
               if self.val_losses[i] is not None]
        if pts: ax.plot(*zip(*pts), label='Validation')
        ax.set_ylabel('Loss'); ax.set_xlabel('Batches processed'); ax.legend()
        if show_grid: ax.grid(True)
        return self._done(fig, return_fig)

    def plot_metrics(self, skip_start: int = 0, skip_end: int = 0, return_fig: bool | None = None,
                     show_grid: bool = False) -> Any:
        "Each metric against the number of batches processed, one plot per metric."
        import matplotlib.pyplot as plt
        assert len(self.metrics) != 0, 'There are no metrics to plot.'
        n = len(self.metrics[0])
        fig, axes = plt.subplots(n, 1, figsize=(6, 4 * n), squeeze=False)
        ends, idx = np.cumsum(self.nb_batches), self._epoch_ends(skip_start, skip_end)
        for i, ax in enumerate(axes[:, 0]):
            ax.plot([ends[j] for j in idx], [float(self.metrics[j][i]) for j in idx])
            ax.set_ylabel(str(self.metrics_names[i]) if i < len(self.metrics_names) else f'metric {i}')
            ax.set_xlabel('Batches processed')
            if show_grid: ax.grid(True)
        return self._done(fig, return_fig)


def _number(v: Any) -> Any:
    "A one-element tensor or numpy scalar as a Python number; anything else as it is."
    if isinstance(v, torch.Tensor) and v.numel() == 1: return v.item()
    return v.item() if isinstance(v, np.generic) else v


def _trim(vals: list, skip_start: int, skip_end: int) -> list:
    vals = list(vals)
    return vals[skip_start:-skip_end] if skip_end > 0 else vals[skip_start:]
