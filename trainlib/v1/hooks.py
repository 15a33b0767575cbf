"""fastai-1's ``fastai.callbacks.hooks``: the core's ``Hook``/``Hooks``/``hook_output(s)``, the v1
``HookCallback``/``ActivationStats`` (LearnerCallbacks), dummy batches, model sizes and ``Learner.summary``.

Unlike fastai 1, ``ActivationStats`` keeps its per-batch statistics on the device (no host read per batch)
and ``model_summary`` works on any data (fastai 1 needed data-block datasets).
"""
from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import torch
from torch import nn

from ..callbacks.hooks import Hook, Hooks, hook_output, hook_outputs
from .basic_data import DatasetType
from .basic_train import Learner, LearnerCallback
from .core import PrettyString, is_listy
from .torch_core import flatten_model, has_params, in_channels, one_param

__all__ = ['ActivationStats', 'Hook', 'HookCallback', 'Hooks', 'hook_output', 'hook_outputs', 'model_sizes',
           'num_features_model', 'model_summary', 'dummy_eval', 'dummy_batch']


class HookCallback(LearnerCallback):
    "Hooks ``self.hook`` on ``modules`` (default: every leaf with parameters) for the fit; removed at its end if ``do_remove``."

    def __init__(self, learn: Learner, modules: Sequence[nn.Module] | None = None, do_remove: bool = True) -> None:
        super().__init__(learn)
        self.modules, self.do_remove = modules, do_remove

    def on_train_begin(self, **kwargs: Any) -> None:
        "Hook ``self.hook`` on the modules (default: every leaf with parameters)."
        if not self.modules: self.modules = [m for m in flatten_model(self.learn.model) if has_params(m)]
        self.hooks = Hooks(self.modules, self.hook)

    def on_train_end(self, **kwargs: Any) -> None:
        "Remove the hooks (if ``do_remove``)."
        if self.do_remove: self.remove()

    def remove(self) -> None:
        "Remove the hooks."
        if getattr(self, 'hooks', None): self.hooks.remove()

    def __del__(self) -> None: self.remove()


class ActivationStats(HookCallback):
    "Mean and std of each hooked module's output at every training batch: ``stats[0|1, module, batch]`` after the fit."

    def on_train_begin(self, **kwargs: Any) -> None:
        "Hook the modules and start with no statistics."
        super().on_train_begin(**kwargs)
        self.stats = []

    def hook(self, m: nn.Module, i: Any, o: torch.Tensor) -> torch.Tensor:
        "``(mean, std)`` of the output, as one device tensor."
        return torch.stack((o.mean(), o.std()))

    def on_batch_end(self, train: bool, **kwargs: Any) -> None:
        "Keep the training batch's ``(mean, std)`` of every hooked module (on the device)."
        if train: self.stats.append(torch.stack(self.hooks.stored))

    def on_train_end(self, **kwargs: Any) -> None:
        "Remove the hooks and stack the statistics as ``stats[0|1, module, batch]``."
        super().on_train_end(**kwargs)
        if self.stats: self.stats = torch.stack(self.stats).permute(2, 1, 0)


def dummy_batch(m: nn.Module, size: tuple = (64, 64)) -> torch.Tensor:
    "A batch of one random image of ``size`` with as many channels as ``m`` takes (values in [-1, 1])."
    return one_param(m).new(1, in_channels(m), *size).requires_grad_(False).uniform_(-1., 1.)


def dummy_eval(m: nn.Module, size: tuple = (64, 64)) -> Any:
    "``m`` (in eval mode) on a ``dummy_batch`` of ``size``."
    return m.eval()(dummy_batch(m, size))


def model_sizes(m: nn.Module, size: tuple = (64, 64)) -> list:
    "The output shape of each child of ``m`` on a ``dummy_batch`` of ``size``."
    with hook_outputs(m) as hooks:
        dummy_eval(m, size)
        return [h.stored.shape for h in hooks]


def num_features_model(m: nn.Module) -> int:
    "The number of channels ``m`` outputs (trying larger dummy images until the model accepts one)."
    sz = 64
    while True:
        try: return model_sizes(m, size=(sz, sz))[-1][1]
        except Exception:
            sz *= 2
            if sz > 2048: raise


def _layer_params(m: nn.Module) -> tuple[int, bool]:
    "fastai 1's count for a layer: its ``weight`` and ``bias`` sizes, trainable if the weight is."
    w, b = getattr(m, 'weight', None), getattr(m, 'bias', None)
    n = (w.numel() if isinstance(w, torch.Tensor) else 0) + (b.numel() if isinstance(b, torch.Tensor) else 0)
    return n, bool(isinstance(w, torch.Tensor) and w.requires_grad)


def _one_input(learn: Learner) -> Any:
    "The first item of the first batch the Learner's data gives (train, else valid, else test)."
    data = learn.data
    ds_type = next((t for t in (DatasetType.Train, DatasetType.Valid, DatasetType.Test) if data.dl(t) is not None), None)
    if ds_type is None:
        raise ValueError('summary: the Learner has no data (an empty DataBunch, as load_learner gives) to pass '
                         'through the model; set learn.data first')
    x = data.one_batch(ds_type, detach=False, denorm=False)[0]
    return [o[:1] for o in x] if is_listy(x) else [x[:1]]


def _describe_opt_func(f: Any) -> str:
    if isinstance(f, partial):
        args = [f"'{f.func.__module__}.{f.func.__qualname__}'"] + [repr(a) for a in f.args]
        return ', '.join(args + [f'{k}={v!r}' for k, v in f.keywords.items()])
    return f"'{getattr(f, '__module__', '')}.{getattr(f, '__qualname__', type(f).__name__)}'"


def model_summary(m: Learner, n: int = 70) -> PrettyString:
    "A table of the Learner's layers (output shape, parameters, trainable), its optimizer, loss and callbacks."
    layers = flatten_model(m.model)
    xb = [o.to(one_param(m.model).device) for o in _one_input(m)]
    with hook_outputs(layers) as hooks:
        m.model.eval()(*xb)
        sizes = [None if h.stored is None else h.stored.shape[1:] for h in hooks]
    rule, thin = '=' * n + '\n', '_' * n + '\n'
    res = f'{type(m.model).__name__}\n{rule}{"Layer (type)":<20} {"Output Shape":<20} {"Param #":<10} {"Trainable":<10}\n{rule}'
    total = trainable = 0
    for layer, size in zip(layers, sizes):
        if size is None: continue
        n_params, train = _layer_params(layer)
        total, trainable = total + n_params, trainable + n_params * train
        res += f'{type(layer).__name__:<20} {str(list(size)):<20} {n_params:<10,} {str(train):<10}\n{thin}'
    res += (f'\nTotal params: {total:,}\nTotal trainable params: {trainable:,}\n'
            f'Total non-trainable params: {total - trainable:,}\nOptimized with {_describe_opt_func(m.opt_func)}\n')
    if m.true_wd: res += 'Using true weight decay as discussed in https://www.fast.ai/2018/07/02/adam-weight-decay/ \n'
    opt_desc = str(m.opt_func)
    if 'wd' in opt_desc or 'weight_decay' in opt_desc:
        res += '\x1b[1;31m Specifying weight decay in the optimizer has no effect, Learner will overwrite \x1b[0m \n'
    if 'lr' in opt_desc or 'learning_rate' in opt_desc:
        res += ('\x1b[1;31m Specifying lr in the optimizer has no effect, pass it to fit or the defaults.lr will '
                'apply \x1b[0m \n')
    res += f'Loss function : {type(m.loss_func).__name__}\n{rule}Callbacks functions applied \n'
    res += '\n'.join(f'    {type(cb).__name__}' for cb in m.callbacks)
    return PrettyString(res)

