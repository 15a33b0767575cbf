"""Loss functions that flatten their inputs and know their activation and decoding.

``get_preds`` applies ``loss_func.activation`` to the predictions (softmax for cross-entropy,
sigmoid for BCE) and ``with_decoded=True`` applies ``loss_func.decodes`` (argmax, threshold).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = ['BaseLoss', 'CrossEntropyLossFlat', 'MSELossFlat', 'L1LossFlat', 'BCEWithLogitsLossFlat',
           'BCELossFlat']


class BaseLoss:
    "Wrap a torch loss class so that predictions and targets are flattened (``axis`` kept last)."
    def __init__(self, loss_cls: type, *args: Any, axis: int = -1, flatten: bool = True, floatify: bool = False,
                 is_2d: bool = True, **kwargs: Any) -> None:
        self.func = loss_cls(*args, **kwargs)
        self.axis, self.flatten, self.floatify, self.is_2d = axis, flatten, floatify, is_2d

    @property
    def reduction(self) -> str:
        "The torch loss's reduction (``'mean'``, ``'sum'``, ``'none'``); settable."
        return self.func.reduction

    @reduction.setter
    def reduction(self, v: str) -> None: self.func.reduction = v

    def __call__(self, inp: torch.Tensor, targ: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        if targ.dtype in (torch.int8, torch.int16, torch.int32) and not self.floatify: targ = targ.long()
        if self.floatify and targ.dtype != torch.float16: targ = targ.float()
        if self.flatten:
            if inp.dim() > 1 and self.axis != -1: inp = inp.transpose(self.axis, -1).contiguous()
            inp = inp.view(-1, inp.shape[-1]) if self.is_2d else inp.reshape(-1)
            targ = targ.reshape(-1)
        return self.func(inp, targ, **kwargs)

    def activation(self, x: torch.Tensor) -> torch.Tensor:
        "What turns raw predictions into the values ``get_preds`` returns."
        return x

    def decodes(self, x: torch.Tensor) -> torch.Tensor:
        "What turns activated predictions into decoded ones (``with_decoded=True``)."
        return x

    def to(self, device: Any) -> 'BaseLoss':
        "Move the wrapped loss (its weights, if any) to ``device``."
        self.func.to(device)
        return self

    def __repr__(self) -> str: return f'FlattenedLoss of {self.func}'


class CrossEntropyLossFlat(BaseLoss):
    "Cross-entropy over the class axis ``axis``; activation softmax, decodes argmax."
    def __init__(self, *args: Any, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(nn.CrossEntropyLoss, *args, axis=axis, **kwargs)
    def activation(self, x: torch.Tensor) -> torch.Tensor: return F.softmax(x, dim=self.axis)
    def decodes(self, x: torch.Tensor) -> torch.Tensor: return x.argmax(dim=self.axis)


class MSELossFlat(BaseLoss):
    "Mean squared error of flattened predictions and targets."
    def __init__(self, *args: Any, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(nn.MSELoss, *args, axis=axis, floatify=True, is_2d=False, **kwargs)


class L1LossFlat(BaseLoss):
    "Mean absolute error of flattened predictions and targets."
    def __init__(self, *args: Any, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(nn.L1Loss, *args, axis=axis, floatify=True, is_2d=False, **kwargs)


class BCEWithLogitsLossFlat(BaseLoss):
    "Binary cross-entropy on logits; activation sigmoid, decodes ``> thresh``."
    def __init__(self, *args: Any, axis: int = -1, thresh: float = 0.5, **kwargs: Any) -> None:
        super().__init__(nn.BCEWithLogitsLoss, *args, axis=axis, floatify=True, is_2d=False, **kwargs)
        self.thresh = thresh
    def activation(self, x: torch.Tensor) -> torch.Tensor: return torch.sigmoid(x)
    def decodes(self, x: torch.Tensor) -> torch.Tensor: return x > self.thresh


class BCELossFlat(BaseLoss):
    "Binary cross-entropy on probabilities; decodes ``> thresh``."
    def __init__(self, *args: Any, axis: int = -1, thresh: float = 0.5, **kwargs: Any) -> None:
        super().__init__(nn.BCELoss, *args, axis=axis, floatify=True, is_2d=False, **kwargs)
        self.thresh = thresh
    def decodes(self, x: torch.Tensor) -> torch.Tensor: return x > self.thresh
