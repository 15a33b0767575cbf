"""fastai-1's mixup (https://arxiv.org/abs/1710.09412): ``MixUpCallback`` mixes the inputs and targets of
each training batch, ``MixUpLoss`` computes the loss of the mixed targets."""
from __future__ import annotations

from functools import partial
from typing import Any, Callable

import numpy as np
import torch

from ..basic_train import LearnerCallback
from ..torch_core import Module
from ._checks import check_arg

__all__ = ['MixUpCallback', 'MixUpLoss']


class MixUpCallback(LearnerCallback):
    """Mix each training batch with a shuffled copy of itself: item ``i`` becomes ``λ_i·x_i + (1-λ_i)·x_j``
    with ``λ_i = max(λ, 1-λ)``, ``λ ~ Beta(alpha, alpha)`` (numpy's global RNG; the shuffle uses torch's).
    ``stack_x`` passes ``[x, x_shuffled, λ]`` to the model instead; ``stack_y`` (default) makes the target
    ``[y, y_shuffled, λ]`` and wraps the loss in :class:`MixUpLoss` for the fit; otherwise the target
    is mixed as a float."""

    def __init__(self, learn: Any, alpha: float = 0.4, stack_x: bool = False, stack_y: bool = True) -> None:
        super().__init__(learn)
        check_arg(alpha > 0, type(self).__name__, 'alpha', '> 0 (the Beta distribution parameter)', alpha)
        self.alpha, self.stack_x, self.stack_y = alpha, stack_x, stack_y

    def on_train_begin(self, **kwargs: Any) -> None:
        "Wrap the loss in MixUpLoss (with ``stack_y``)."
        if self.stack_y: self.learn.loss_func = MixUpLoss(self.learn.loss_func)

    def on_batch_begin(self, last_input: Any, last_target: Any, train: bool, **kwargs: Any) -> dict | None:
        "Mix a training batch."
        if not train: return None
        bs = last_target.size(0)
        lam = np.random.beta(self.alpha, self.alpha, bs)
        lam = torch.as_tensor(np.maximum(lam, 1 - lam), dtype=last_input.dtype, device=last_input.device)
        shuffle = torch.randperm(bs).to(last_input.device)
        x1, y1 = last_input[shuffle], last_target[shuffle]
        if self.stack_x: new_input = [last_input, x1, lam]
        else:
            shape = [bs] + [1] * (x1.dim() - 1)
            new_input = last_input * lam.view(shape) + x1 * (1 - lam).view(shape)
        if self.stack_y:
            new_target = torch.cat([last_target[:, None].float(), y1[:, None].float(), lam[:, None].float()], 1)
        else:
            w = lam.unsqueeze(1).float() if last_target.dim() == 2 else lam
            new_target = last_target.float() * w + y1.float() * (1 - w)
        return {'last_input': new_input, 'last_target': new_target}

    def on_train_end(self, **kwargs: Any) -> None:
        "Give the Learner its loss function back."
        if self.stack_y and isinstance(self.learn.loss_func, MixUpLoss):
            self.learn.loss_func = self.learn.loss_func.get_old()


class MixUpLoss(Module):
    """The loss ``crit`` for mixed targets: with a target ``[y1, y2, λ]`` (2-d) it is
    ``λ·crit(out, y1) + (1-λ)·crit(out, y2)`` per item, then reduced (``reduction``: 'mean', 'sum' or 'none');
    a plain target gives ``crit`` per item, reduced."""

    def __init__(self, crit: Callable, reduction: str = 'mean') -> None:
        super().__init__()
        check_arg(reduction in ('mean', 'sum', 'none'), 'MixUpLoss', 'reduction', "'mean', 'sum' or 'none'", reduction)
        if hasattr(crit, 'reduction'):
            self.crit, self.old_red = crit, crit.reduction
            crit.reduction = 'none'
        else: self.crit, self.old_crit = partial(crit, reduction='none'), crit
        self.reduction = reduction

    def forward(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        "The (reduced) loss of ``output`` for a mixed target ``[y1, y2, λ]`` or a plain one."
        if target.dim() == 2:
            lam = target[:, 2]
            d = self.crit(output, target[:, 0].long()) * lam + self.crit(output, target[:, 1].long()) * (1 - lam)
        else: d = self.crit(output, target)
        if self.reduction == 'mean': return d.mean()
        if self.reduction == 'sum': return d.sum()
        return d

    def get_old(self) -> Callable:
        "The loss function this one wraps, as it was."
        if hasattr(self, 'old_crit'): return self.old_crit
        self.crit.reduction = self.old_red
        return self.crit
