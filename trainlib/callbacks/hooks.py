"""Hooks on modules (``Hook``, ``Hooks``, ``hook_output(s)``), ``HookCallback`` that keeps hooks on
the model during a fit, and ``ActivationStats``, which records each layer's activation statistics."""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn

from ..callback import Callback
from ..utils import to_detach

__all__ = ['Hook', 'Hooks', 'hook_output', 'hook_outputs', 'leaf_modules', 'HookCallback', 'ActivationStats']


class Hook:
    """Call ``hook_func(module, input, output)`` at each forward (or, with ``is_forward=False``, backward)
    pass of ``m`` and keep what it returns in ``stored``. A context manager: leaving it removes the hook."""

    def __init__(self, m: nn.Module, hook_func: Callable, is_forward: bool = True, detach: bool = True,
                 cpu: bool = False) -> None:
        self.hook_func, self.detach, self.cpu = hook_func, detach, cpu
        register = m.register_forward_hook if is_forward else m.register_full_backward_hook
        self.hook = register(self.hook_fn)
        self.stored: Any = None
        self.removed = False

    def hook_fn(self, module: nn.Module, input: Any, output: Any) -> None:
        "Apply ``hook_func`` (to detached tensors, unless ``detach=False``) and keep its result."
        if self.detach: input, output = to_detach(input, cpu=self.cpu), to_detach(output, cpu=self.cpu)
        self.stored = self.hook_func(module, input, output)

    def remove(self) -> None:
        "Remove the hook from the module (once)."
        if not self.removed:
            self.hook.remove()
            self.removed = True

    def __enter__(self) -> 'Hook': return self
    def __exit__(self, *args: Any) -> None: self.remove()


def _output(m: nn.Module, i: Any, o: Any) -> Any:
    return o if isinstance(o, (torch.Tensor, list, tuple)) else list(o)


def hook_output(module: nn.Module, detach: bool = True, cpu: bool = False, grad: bool = False) -> Hook:
    "A ``Hook`` that keeps the output of ``module`` (its gradient with ``grad=True``) in ``stored``."
    return Hook(module, _output, is_forward=not grad, detach=detach, cpu=cpu)


class Hooks:
    "A ``Hook`` on each module of ``ms``, with the same ``hook_func``; indexable, a context manager."

    def __init__(self, ms: Iterable[nn.Module], hook_func: Callable, is_forward: bool = True,
                 detach: bool = True, cpu: bool = False) -> None:
        self.hooks = [Hook(m, hook_func, is_forward, detach, cpu) for m in ms]

    def __getitem__(self, i: int) -> Hook: return self.hooks[i]
    def __len__(self) -> int: return len(self.hooks)
    def __iter__(self) -> Any: return iter(self.hooks)

    @property
    def stored(self) -> list:
        "What each hook stored last."
        return [h.stored for h in self.hooks]

    def remove(self) -> None:
        "Remove every hook."
        for h in self.hooks: h.remove()

    def __enter__(self) -> 'Hooks': return self
    def __exit__(self, *args: Any) -> None: self.remove()


def hook_outputs(modules: Iterable[nn.Module], detach: bool = True, cpu: bool = False, grad: bool = False) -> Hooks:
    "``Hooks`` that keep the outputs of ``modules`` (their gradients with ``grad=True``)."
    return Hooks(modules, _output, is_forward=not grad, detach=detach, cpu=cpu)


def leaf_modules(m: nn.Module, include_paramless: bool = False) -> list[nn.Module]:
    "The modules of ``m`` without children (only those with parameters unless ``include_paramless``)."
    return [c for c in m.modules() if not list(c.children())
            and (include_paramless or next(c.parameters(), None) is not None)]


class HookCallback(Callback):
    """Keep hooks on ``modules`` (default: the model's leaf modules with parameters) during the fit.

    The hook is ``hook=f(module, input, output)`` or a ``hook`` method of a subclass. With ``every=N``
    the hooks are on only for the training batches where ``train_iter % N == 0``. Deviations from
    fastai: ``cpu=False`` by default (fastai copies every hooked tensor to the CPU, a host sync per
    batch), and with ``every`` the hooks are removed after the batch they were added for (fastai
    checks the counter again after it has moved on, and piles hooks up)."""
    _stateattrs = ('hooks',)

    def __init__(self, modules: Iterable[nn.Module] | None = None, every: int | None = None,
                 remove_end: bool = True, is_forward: bool = True, detach: bool = True, cpu: bool = False,
                 include_paramless: bool = False, hook: Callable | None = None) -> None:
        if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f'{type(self).__name__}: every must be None or a positive int, got {every!r}')
        if hook is not None: self.hook = hook
        elif type(self).hook is HookCallback.hook:
            raise TypeError(f'{type(self).__name__}: pass hook=f(module, input, output), or subclass '
                            f'HookCallback and define a `hook(self, module, input, output)` method')
        self.modules = list(modules) if modules is not None else None
        self.every, self.remove_end, self.is_forward = every, remove_end, is_forward
        self.detach, self.cpu, self.include_paramless = detach, cpu, include_paramless
        self.hooks: Hooks | None = None

    def hook(self, module: nn.Module, input: Any, output: Any) -> Any:
        "What to keep for ``module`` at each pass (given as ``hook=`` or defined by a subclass)."
        raise NotImplementedError

    def before_fit(self) -> None:
        "Choose the modules; register the hooks (unless ``every``)."
        if self.modules is None: self.modules = leaf_modules(self.learn.model, self.include_paramless)
        if self.every is None: self._register()

    def before_batch(self) -> None:
        "Register the hooks on every ``every``-th training batch."
        if self.every is not None and self.learn.training and self.learn.train_iter % self.every == 0:
            self._register()

    def after_batch(self) -> None:
        "Remove the hooks registered for this batch (with ``every``)."
        if self.every is not None: self._remove()

    def after_fit(self) -> None:
        "Remove the hooks (unless ``remove_end=False``)."
        if self.remove_end: self._remove()

    def _register(self) -> None:
        self._remove()
        self.hooks = Hooks(self.modules, self.hook, self.is_forward, self.detach, self.cpu)

    def _remove(self) -> None:
        if self.hooks is not None:
            self.hooks.remove()
            self.hooks = None


class ActivationStats(HookCallback):
    """Record the mean, std and share of values <= 0.05 of each hooked module's output, per training
    batch, as device tensors (fastai reads three numbers per layer per batch back to the host), and with
    ``with_hist`` a 40-bin histogram of the values in [0, 10]. ``stats[b][i]`` is the dict of batch ``b``,
    module ``i``; ``layer_stats(i)`` reads them all at once; ``plot_layer_stats``, ``color_dim`` plot them."""
    order = -20
    _stateattrs = ('hooks', 'stats')

    def __init__(self, with_hist: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.with_hist = with_hist
        self.stats: list = []

    def before_fit(self) -> None:
        super().before_fit()
        self.stats = []

    def hook(self, module: nn.Module, input: Any, output: Any) -> Any:
        "The statistics of ``output`` (a list of them for a tuple of outputs)."
        if isinstance(output, (tuple, list)):
            return [self.hook(module, input, o) for o in _flat(output) if isinstance(o, torch.Tensor)]
        o = output.float()
        res = {'mean': o.mean(), 'std': o.std(), 'near_zero': (o <= 0.05).float().mean()}
        if self.with_hist: res['hist'] = o.histc(40, 0, 10)
        return res

    def after_batch(self) -> None:
        "Keep this batch's statistics."
        if self.learn.training and self.hooks is not None: self.stats.append(self.hooks.stored)
        super().after_batch()

    def layer_stats(self, idx: int) -> tuple[list, list, list]:
        "``(means, stds, near_zeros)`` of module ``idx``, one value per recorded batch."
        rows = [b[idx] for b in self.stats]
        if not rows: return [], [], []
        host = torch.stack([torch.stack([r['mean'], r['std'], r['near_zero']]) for r in rows]).cpu()
        return tuple(host[:, k].tolist() for k in range(3))

    def hist(self, idx: int) -> torch.Tensor:
        "Module ``idx``'s histograms (``with_hist``), one column per batch, as ``log(1 + count)``."
        if not self.with_hist:
            raise ValueError('ActivationStats.hist: record the histograms with ActivationStats(with_hist=True)')
        return torch.stack([b[idx]['hist'] for b in self.stats]).t().float().log1p().cpu()

    def color_dim(self, idx: int, figsize: tuple = (10, 5), ax: Any = None) -> Any:
        "The 'colorful dimension' plot of module ``idx``: its histograms over the batches, as an image."
        import matplotlib.pyplot as plt
        if ax is None: _, ax = plt.subplots(figsize=figsize)
        ax.imshow(self.hist(idx).numpy(), origin='lower')
        ax.axis('off')
        return ax

    def plot_layer_stats(self, idx: int) -> Any:
        "Plot module ``idx``'s mean, std and share near zero over the batches, side by side."
        import matplotlib.pyplot as plt
        _, axs = plt.subplots(1, 3, figsize=(12, 3))
        for values, ax, title in zip(self.layer_stats(idx), axs, ('mean', 'std', '% near zero')):
            ax.plot(values)
            ax.set_title(title)
        return axs


def _flat(o: Any) -> list:
    out = []
    for x in o: out += _flat(x) if isinstance(x, (tuple, list)) else [x]
    return out
