"Collecting predictions, targets, inputs and losses batch by batch (what ``get_preds`` runs)."
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ..callback import Callback
from ..utils import find_bs, to_detach

__all__ = ['GatherPredsCallback']


def _cat(items: list, dim: int) -> Any:
    if not items: return None
    first = items[0]
    if isinstance(first, torch.Tensor):
        return torch.cat(items, dim=dim) if first.dim() else torch.stack(items)
    if isinstance(first, (tuple, list)): return type(first)(_cat([o[i] for o in items], dim) for i in range(len(first)))
    return items


def _take(x: Any, order: torch.Tensor | None, dim: int) -> Any:
    if order is None or x is None: return x
    if isinstance(x, torch.Tensor): return x.index_select(dim, order.to(x.device))
    if isinstance(x, (tuple, list)): return type(x)(_take(o, order, dim) for o in x)
    return x


_BLOCK = 32


def _keep(items: list, item: Any, dim: int) -> None:
    """Append ``item``; every ``_BLOCK`` items, join the last ones into one (``_cat`` of the whole list
    gives the same result): many small tensors kept between large transient ones fragment the heap."""
    items.append(item)
    if len(items) % _BLOCK or not isinstance(item, torch.Tensor) or not item.dim(): return
    block = items[-_BLOCK:]
    if any(not isinstance(t, torch.Tensor) or t.dim() != item.dim() for t in block): return
    try: joined = _cat(block, dim)
    except RuntimeError: return                      # shapes that do not join: left for the final _cat to report
    items[-_BLOCK:] = [joined]


class GatherPredsCallback(Callback):
    """Keep each validation batch's predictions (and targets, inputs, per-item losses) on the CPU.

    With ``save_preds``/``save_targs`` (a folder), each batch is written there as ``<i>.pt`` instead
    of being kept, so memory stays flat whatever the size of the data. The inputs (``with_input``) are
    the batch as it was at ``before_batch`` at order 0, as in fastai: before the callbacks of a higher
    order (``CastToTensor``, ``MixedPrecision``, a normalisation...) change ``learn.xb``."""
    order = 0
    _stateattrs = ('preds', 'targets', 'inputs', 'losses')

    def __init__(self, with_input: bool = False, with_loss: bool = False, save_preds: Any = None,
                 save_targs: Any = None, with_preds: bool = True, with_targs: bool = True,
                 concat_dim: int = 0) -> None:
        self.with_input, self.with_loss, self.with_preds, self.with_targs = with_input, with_loss, with_preds, with_targs
        self.save_preds = Path(save_preds) if save_preds is not None else None
        self.save_targs = Path(save_targs) if save_targs is not None else None
        self.concat_dim = concat_dim
        self._xb = None
        # Only a pass that returns the inputs listens to before_batch (the others pay nothing per batch).
        if with_input: self.before_batch = self._note_input

    def _note_input(self) -> None:
        "Note the batch's inputs as they are now (a reference, no copy): after_batch keeps them."
        self._xb = self.learn.xb

    def before_validate(self) -> None:
        "Start empty lists (and create the folders to save to)."
        self.preds, self.targets, self.inputs, self.losses = [], [], [], []
        self._count = 0
        for d in (self.save_preds, self.save_targs):
            if d is not None: d.mkdir(parents=True, exist_ok=True)

    def after_batch(self) -> None:
        "Keep (or save) the batch's predictions, targets, inputs and losses."
        learn = self.learn
        if not hasattr(learn, 'pred'): return
        i = self._count
        self._count += 1
        d = self.concat_dim
        if self.with_input:
            xb = learn.xb if self._xb is None else self._xb      # (None: the batch was cancelled before order 0)
            self._xb = None
            _keep(self.inputs, to_detach(xb[0] if len(xb) == 1 else xb), d)
        if self.with_preds:
            pred = to_detach(learn.pred)
            if self.save_preds is None: _keep(self.preds, pred, d)
            else: torch.save(pred, self.save_preds / f'{i}.pt')
        if self.with_targs and len(learn.yb):
            targ = to_detach(learn.yb[0] if len(learn.yb) == 1 else learn.yb)
            if self.save_targs is None: _keep(self.targets, targ, d)
            else: torch.save(targ, self.save_targs / f'{i}.pt')
        if self.with_loss:
            bs = find_bs(learn.yb)
            loss = learn.loss if learn.loss.numel() == bs else learn.loss.view(bs, -1).mean(1)
            _keep(self.losses, to_detach(loss), 0)

    def all_tensors(self, order: torch.Tensor | None = None) -> tuple:
        """``(inputs, preds, targets, losses)`` concatenated along ``concat_dim`` (None where not kept), with
        the items taken in ``order`` when given (the permutation that puts them in dataset order)."""
        d = self.concat_dim
        return (_take(_cat(self.inputs, d), order, d) if self.with_input else None,
                _take(_cat(self.preds, d), order, d) if self.with_preds and self.save_preds is None else None,
                _take(_cat(self.targets, d), order, d) if self.with_targs and self.save_targs is None else None,
                _take(_cat(self.losses, 0), order, 0) if self.with_loss else None)
