"""The tensor and model helpers fastai-1 code gets from ``fastai.torch_core``.

Nested batches are walked like fastai 1 walks them: lists and tuples (which come back as lists) and dicts.
Where fastai fails on a leaf that is not a tensor (``to_device``/``to_half``/``to_float`` on an int) these
pass it through unchanged.

One helper of each kind: ``split_no_wd_params``, ``bias_types`` and ``no_wd_types`` are
:mod:`trainlib.optim`'s, ``set_bn_eval`` is :mod:`trainlib.callbacks.training`'s (a layer counts as frozen
when all its parameters are; one without parameters is skipped, where fastai 1 fails), ``flatten_check``
is :mod:`trainlib.metrics`' (a ValueError where fastai 1 asserts) and ``trainable_params`` is
:mod:`trainlib.utils`'. The helpers defined here that share a name with a core helper differ from it on
purpose, as fastai 1 does: ``to_detach``/``to_cpu``/``to_device`` give tuples back as lists,
``to_device(b)`` moves to ``defaults.device`` and ``to_cpu`` does not detach (the core's keep tuples,
leave ``device=None`` alone and detach); ``tensor([])`` is ``tensor(0)`` and int32 data is upgraded
(the core's ``tensor`` stacks a list of tensors).
"""
from __future__ import annotations

import functools
import math
import os
import random
import re
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor, nn, optim
from torch.utils.data.dataloader import default_collate

from ..callbacks.training import set_bn_eval
from ..metrics import flatten_check
from ..optim import bias_types, no_wd_types, split_no_wd_params
from ..persistence import atomic_save
from ..utils import trainable_params
from .core import ItemBase, PrePostInitMeta, defaults, ifnone, is_listy, is_pathlike, listify, recurse

__all__ = ['bn_types', 'bias_types', 'no_wd_types', 'is_pool_type', 'AdamW', 'tensor', 'Module', 'ParameterModule',
           'to_detach', 'to_data', 'to_cpu', 'to_half', 'to_float', 'to_device', 'data_collate', 'requires_grad',
           'has_params', 'trainable_params', 'children', 'num_children', 'range_children', 'children_and_parameters',
           'flatten_model', 'first_layer', 'last_layer', 'split_model_idx', 'split_model', 'get_param_groups',
           'split_no_wd_params', 'set_bn_eval', 'batch_to_half', 'bn2float', 'model2half', 'init_default',
           'cond_init', 'apply_leaf', 'apply_init', 'in_channels', 'ModelOnCPU', 'NoneReduceOnCPU', 'trange_of',
           'to_np', 'grab_idx', 'logit', 'logit_', 'set_all_seed', 'uniform', 'log_uniform', 'rand_bool',
           'uniform_int', 'one_param', 'try_int', 'get_model', 'flatten_check', 'remove_module_load', 'num_distrib',
           'rank_distrib', 'distrib_barrier', 'add_metrics', 'try_save', 'np_func']

bn_types = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
AdamW = functools.partial(optim.Adam, betas=(0.9, 0.99))
_INT_TYPES = (torch.int64, torch.int32, torch.int16)


def is_pool_type(layer: Any) -> bool:
    "True for a pooling layer (its class name ends in ``Pool1d``/``Pool2d``/``Pool3d``)."
    return re.search(r'Pool[123]d$', type(layer).__name__) is not None


def tensor(x: Any, *rest) -> Tensor:
    """A tensor from ``x`` (or from ``(x, *rest)``): lists go through ``torch.tensor``, anything else through
    ``torch.as_tensor``; an empty list gives ``tensor(0)`` and int32 data is upgraded to int64 with a warning."""
    if rest: x = (x,) + rest
    if is_listy(x) and len(x) == 0: return torch.tensor(0)
    res = torch.tensor(x) if is_listy(x) else torch.as_tensor(x)
    if res.dtype is torch.int32:
        warnings.warn('Tensor is int32: upgrading to int64; for better performance use int64 input')
        return res.long()
    return res


class Module(nn.Module, metaclass=PrePostInitMeta):
    "``nn.Module`` whose subclasses need not call ``super().__init__()``."
    def __pre_init__(self) -> None: nn.Module.__init__(self)
    def __init__(self) -> None: pass


class ParameterModule(Module):
    "A module holding one loose parameter ``p`` (so ``flatten_model`` can list it); forward is the identity."
    def __init__(self, p: nn.Parameter): self.val = p
    def forward(self, x: Any) -> Any: return x


def to_detach(b: Any, cpu: bool = True) -> Any:
    "Every tensor of the nested ``b`` detached (and moved to the CPU when ``cpu``)."
    return recurse(lambda x: (x.detach().cpu() if cpu else x.detach()) if isinstance(x, Tensor) else x, b)


def to_data(b: Any) -> Any:
    "Every ``ItemBase`` of the nested ``b`` replaced by its ``data``."
    return recurse(lambda x: x.data if isinstance(x, ItemBase) else x, b)


def to_cpu(b: Any) -> Any:
    "Every tensor of the nested ``b`` moved to the CPU."
    return recurse(lambda x: x.cpu() if isinstance(x, Tensor) else x, b)


def _cast_floats(b: Any, cast: Callable) -> Any:
    return recurse(lambda x: cast(x) if isinstance(x, Tensor) and x.dtype not in _INT_TYPES else x, b)


def to_half(b: Any) -> Any:
    "Every non-integer tensor of the nested ``b`` in float16."
    return _cast_floats(b, Tensor.half)


def to_float(b: Any) -> Any:
    "Every non-integer tensor of the nested ``b`` in float32."
    return _cast_floats(b, Tensor.float)


def to_device(b: Any, device: torch.device | str | None = None) -> Any:
    "Every tensor of the nested ``b`` on ``device`` (``defaults.device`` when None), without blocking."
    device = ifnone(device, defaults.device)
    return recurse(lambda x: x.to(device, non_blocking=True) if isinstance(x, Tensor) else x, b)


def data_collate(batch: Any) -> Any:
    "``default_collate`` of the batch's items (``ItemBase`` items replaced by their data)."
    return default_collate(to_data(batch))


def requires_grad(m: nn.Module, b: bool | None = None) -> bool | None:
    """Without ``b``: whether the first parameter of ``m`` requires grad (None if ``m`` has no parameters).
    With ``b``: set ``requires_grad`` of every parameter to ``b``."""
    ps = list(m.parameters())
    if not ps: return None
    if b is None: return ps[0].requires_grad
    for p in ps: p.requires_grad_(b)
    return None


def has_params(m: nn.Module) -> bool:
    "True if ``m`` has at least one parameter."
    return next(iter(m.parameters()), None) is not None


def children(m: nn.Module) -> list:
    "The direct children of ``m``."
    return list(m.children())


def num_children(m: nn.Module) -> int:
    "The number of direct children of ``m``."
    return len(children(m))


def range_children(m: nn.Module) -> range:
    "``range(num_children(m))``."
    return range(num_children(m))


def children_and_parameters(m: nn.Module) -> list:
    "The children of ``m``, then each of its own parameters not inside a child, wrapped in a ParameterModule."
    kids = children(m)
    in_kids = {id(p) for c in kids for p in c.parameters()}
    return kids + [ParameterModule(p) for p in m.parameters() if id(p) not in in_kids]


def flatten_model(m: nn.Module) -> list:
    "The leaf modules of ``m`` in order (loose parameters as ParameterModules); ``[m]`` for a leaf."
    if not num_children(m): return [m]
    return [leaf for c in children_and_parameters(m) for leaf in flatten_model(c)]


def first_layer(m: nn.Module) -> nn.Module:
    "The first leaf module of ``m``."
    return flatten_model(m)[0]


def last_layer(m: nn.Module) -> nn.Module:
    "The last leaf module of ``m``."
    return flatten_model(m)[-1]


def split_model_idx(model: nn.Module, idxs: list) -> list:
    "The leaf layers of ``model`` cut at the indices ``idxs``, as ``nn.Sequential`` groups."
    layers = flatten_model(model)
    idxs = list(idxs)
    if idxs[0] != 0: idxs = [0] + idxs
    if idxs[-1] != len(layers): idxs.append(len(layers))
    return [nn.Sequential(*layers[i:j]) for i, j in zip(idxs[:-1], idxs[1:])]


def split_model(model: nn.Module | None = None, splits: Any = None) -> list:
    """Layer groups of ``model``: cut before each module of ``splits``, or (when ``splits`` holds lists of
    modules) one ``nn.Sequential`` per list."""
    splits = listify(splits)
    if isinstance(splits[0], nn.Module):
        layers = flatten_model(model)
        return split_model_idx(model, [layers.index(first_layer(s)) for s in splits])
    return [nn.Sequential(*s) for s in splits]


def get_param_groups(layer_groups: Any) -> list:
    "One list of trainable parameters per layer group (taken from each group's children)."
    return [[p for c in g.children() for p in trainable_params(c)] for g in layer_groups]


def batch_to_half(b: Any) -> list:
    "``[input in half precision, target unchanged]`` of the batch ``b``."
    return [to_half(b[0]), b[1]]


def bn2float(module: nn.Module) -> nn.Module:
    "Put every batchnorm layer of ``module`` back in float32; returns ``module``."
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm): m.float()
    return module


def model2half(model: nn.Module) -> nn.Module:
    "``model`` in half precision, except its batchnorm layers."
    return bn2float(model.half())


def init_default(m: nn.Module, func: Callable | None = nn.init.kaiming_normal_) -> nn.Module:
    "Initialise ``m.weight`` with ``func`` and fill ``m.bias`` with 0; returns ``m``."
    if func:
        if hasattr(m, 'weight'): func(m.weight)
        if hasattr(m, 'bias') and hasattr(m.bias, 'data'): m.bias.data.fill_(0.)
    return m


def cond_init(m: nn.Module, init_func: Callable) -> None:
    "``init_default(m, init_func)`` unless ``m`` is a batchnorm layer or is frozen."
    if not isinstance(m, bn_types) and requires_grad(m): init_default(m, init_func)


def apply_leaf(m: nn.Module, f: Callable) -> None:
    "Call ``f`` on ``m`` and on every module inside it, parents first."
    for module in m.modules(): f(module)


def apply_init(m: nn.Module, init_func: Callable) -> None:
    "Initialise every non-batchnorm, trainable layer of ``m`` with ``init_func``."
    apply_leaf(m, functools.partial(cond_init, init_func=init_func))


def in_channels(m: nn.Module) -> int:
    "The number of input channels of the first layer of ``m`` that has a weight."
    for layer in flatten_model(m):
        if hasattr(layer, 'weight'): return layer.weight.shape[1]
    raise ValueError(f'in_channels: no layer with a weight in {type(m).__name__}')


class ModelOnCPU:
    "Context manager: the model on the CPU inside the ``with`` block, back on its device after."
    def __init__(self, model: nn.Module): self.model = model

    def __enter__(self) -> nn.Module:
        self.device = one_param(self.model).device
        return self.model.cpu()

    def __exit__(self, *exc) -> None: self.model = self.model.to(self.device)


class NoneReduceOnCPU:
    """Context manager giving ``loss_func`` with ``reduction='none'`` (its ``weight`` on the CPU); both are
    restored on exit. A loss without a ``reduction`` attribute is called with ``reduction='none'``."""
    def __init__(self, loss_func: Callable): self.loss_func, self.device, self.old_red = loss_func, None, None

    def __enter__(self) -> Callable:
        lf = self.loss_func
        if getattr(lf, 'weight', None) is not None:
            self.device, lf.weight = lf.weight.device, lf.weight.cpu()
        if not hasattr(lf, 'reduction'): return functools.partial(lf, reduction='none')
        self.old_red, lf.reduction = lf.reduction, 'none'
        return lf

    def __exit__(self, *exc) -> None:
        if self.device is not None: self.loss_func.weight = self.loss_func.weight.to(self.device)
        if self.old_red is not None: self.loss_func.reduction = self.old_red


def trange_of(x: Any) -> Tensor:
    "``torch.arange(len(x))``."
    return torch.arange(len(x))


def to_np(x: Any) -> np.ndarray:
    "The tensor ``x`` as a numpy array (detached, on the CPU); an array is returned as it is."
    if isinstance(x, np.ndarray): return x
    return x.detach().cpu().numpy()


def grab_idx(x: Any, i: int, batch_first: bool = True) -> Any:
    "Item ``i`` of the batch ``x`` (or of each tensor of the list ``x``), on the CPU."
    take = (lambda o: o[i].cpu()) if batch_first else (lambda o: o[:, i].cpu())
    return [take(o) for o in x] if is_listy(x) else take(x)


def logit(x: Tensor) -> Tensor:
    "The logit of ``x`` clamped to [1e-7, 1-1e-7] (so never infinite)."
    x = x.clamp(1e-7, 1 - 1e-7)
    return -(1 / x - 1).log()


def logit_(x: Tensor) -> Tensor:
    "``logit`` computed in place in ``x``."
    x.clamp_(1e-7, 1 - 1e-7)
    return x.reciprocal_().sub_(1).log_().neg_()


def set_all_seed(seed: int) -> None:
    "Seed numpy, torch and Python's ``random``."
    np.random.seed(seed)
    torch.manual_seed(seed)
    random.seed(seed)


def uniform(low: float, high: float | None = None, size: Any = None) -> Any:
    "A float drawn uniformly in [low, high] (a tensor of shape ``size`` when given)."
    high = ifnone(high, low)
    return random.uniform(low, high) if size is None else torch.empty(*listify(size)).uniform_(low, high)


def log_uniform(low: float, high: float, size: Any = None) -> Any:
    "A float drawn log-uniformly in [low, high] (a tensor of shape ``size`` when given)."
    res = uniform(math.log(low), math.log(high), size)
    return math.exp(res) if size is None else res.exp_()


def rand_bool(p: float, size: Any = None) -> Any:
    "True with probability ``p`` (a bool tensor of shape ``size`` when given)."
    return uniform(0, 1, size) < p


def uniform_int(low: int, high: int, size: Any = None) -> Any:
    "An int drawn uniformly in [low, high], both included (a tensor of shape ``size`` when given)."
    return random.randint(low, high) if size is None else torch.randint(low, high + 1, size)


def one_param(m: nn.Module) -> Tensor:
    "The first parameter of ``m``."
    return next(m.parameters())


def try_int(o: Any) -> Any:
    "``int(o)`` for scalars (0-d tensors and arrays included); anything sized, or not convertible, as it is."
    if isinstance(o, (np.ndarray, Tensor)): return int(o) if o.ndim == 0 else o
    if hasattr(o, '__len__') or getattr(o, '__array_interface__', False): return o
    try: return int(o)
    except (TypeError, ValueError): return o


def get_model(model: nn.Module) -> nn.Module:
    "The model inside a ``DataParallel``/``DistributedDataParallel`` wrapper, else ``model``."
    wrappers = (nn.DataParallel, nn.parallel.DistributedDataParallel)
    return model.module if isinstance(model, wrappers) else model


def remove_module_load(state_dict: dict) -> OrderedDict:
    "``state_dict`` with the first 7 characters (``module.``) cut from every key."
    return OrderedDict((k[7:], v) for k, v in state_dict.items())


def num_distrib() -> int:
    "The number of processes of a distributed run (``WORLD_SIZE``), 0 outside one."
    return int(os.environ.get('WORLD_SIZE', 0))


def rank_distrib() -> int:
    "The rank of this process in a distributed run (``RANK``), 0 outside one."
    return int(os.environ.get('RANK', 0))


def distrib_barrier() -> None:
    "Wait for every process of a distributed run (nothing outside one)."
    if num_distrib() > 1: torch.distributed.barrier()


def add_metrics(last_metrics: Any, mets: Any) -> dict:
    "``{'last_metrics': listify(last_metrics) + listify(mets)}``: the return value that adds metric values."
    return {'last_metrics': listify(last_metrics) + listify(mets)}


def try_save(state: Any, path: Any = None, file: Any = None) -> None:
    "``torch.save(state)`` to ``path/file`` (``file`` a name; written atomically) or to the open binary stream ``file``."
    target = Path(ifnone(path, '.')) / file if is_pathlike(file) else file
    try:
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            if not is_pathlike(file): return torch.save(state, file)
            atomic_save(state, target, mkdir=False)         # (fastai 1 made no folder)
    except OSError as e:
        raise OSError(f"{e}\n Can't write {target}. Pass an absolute writable pathlib obj `fname`.") from e


def np_func(f: Callable) -> Callable:
    "``f`` (numpy arrays in and out) as a function taking tensors and returning a tensor."
    @functools.wraps(f)
    def _inner(*args, **kwargs):
        return tensor(f(*[to_np(a) if isinstance(a, Tensor) else a for a in args], **kwargs))
    return _inner

