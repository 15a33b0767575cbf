"""``MixedPrecision``: training under ``torch.autocast``, with a ``GradScaler`` for float16 on CUDA."""
from __future__ import annotations

import warnings
from enum import Enum
from typing import Any

import torch
from torch.amp import GradScaler

from ..callback import Callback
from ..events import CancelStepException

__all__ = ['AMPMode', 'MixedPrecision', 'amp_plan']

_SCALER_ARGS = ('init_scale', 'growth_factor', 'backoff_factor', 'growth_interval', 'enabled')


class AMPMode(str, Enum):
    "The precisions ``MixedPrecision`` trains in."
    FP16 = 'fp16'
    BF16 = 'bf16'


def amp_plan(amp_mode: AMPMode, device_type: str) -> tuple[torch.dtype, bool]:
    """``(autocast dtype, use a GradScaler)`` for ``amp_mode`` on a device type: float16 with a scaler
    on CUDA; bfloat16 (same range as float32: no scaler) for bf16, and for everything off CUDA."""
    if device_type == 'cuda':
        if amp_mode is AMPMode.FP16: return torch.float16, True
        if not torch.cuda.is_bf16_supported():
            raise ValueError("MixedPrecision(amp_mode='bf16'): this GPU does not support bfloat16; use amp_mode='fp16'")
        return torch.bfloat16, False
    if amp_mode is AMPMode.FP16:
        warnings.warn(f"MixedPrecision(amp_mode='fp16'): float16 training needs CUDA; on {device_type} it runs "
                      f"in bfloat16 autocast, without a GradScaler", stacklevel=2)
    return torch.bfloat16, False


def _to_float(o: Any) -> Any:
    if isinstance(o, torch.Tensor): return o.float() if o.dtype in (torch.float16, torch.bfloat16) else o
    if isinstance(o, (tuple, list)): return type(o)(_to_float(t) for t in o)
    return o


class _StepProbe:
    "Stands for the optimizer in ``GradScaler.step``: records whether the scaler let the step happen."

    def __init__(self, learn: Any) -> None:
        self.learn, self.stepped = learn, False

    @property
    def param_groups(self) -> list:
        "The real optimizer's groups (the scaler unscales their gradients in place)."
        return self.learn.opt.param_groups

    def step(self, *args: Any, **kwargs: Any) -> None: self.stepped = True


class MixedPrecision(Callback):
    """Run the forward pass and the loss under ``torch.autocast`` (entered at ``before_batch``, left at
    ``after_loss``); predictions come out as float32.

    On CUDA, ``amp_mode='fp16'`` uses float16 and a ``torch.amp.GradScaler`` (``**kwargs`` go to it;
    it is ``learn.scaler`` during the fit): the loss is scaled before backward, the gradients are
    unscaled before the step (so ``GradientClip``, order 11, sees true gradients), a step whose
    gradients hold inf/nan is skipped with ``CancelStepException``, and ``scaler.update()`` runs after
    each step. ``amp_mode='bf16'`` and every non-CUDA device use bfloat16 and no scaler.

    Host syncs: none of its own. Whether to skip a step is decided on the host by ``GradScaler.step``
    itself (one read of its inf flag per step, unavoidable with a plain optimizer); this callback
    learns the outcome from that same call. ``scales`` keeps the scale of each step as a device tensor
    (fastai reads it back per step). Better than fastai: autocast is also left when the batch is
    cancelled or fails between ``before_batch`` and ``after_loss``."""
    order = 10
    _stateattrs = ('autocast', 'scales', '_probe')

    def __init__(self, amp_mode: str | AMPMode = AMPMode.FP16, **kwargs: Any) -> None:
        try: self.amp_mode = AMPMode(amp_mode)
        except ValueError:
            raise ValueError(f"MixedPrecision: amp_mode must be 'fp16' or 'bf16', got {amp_mode!r}") from None
        unknown = sorted(set(kwargs) - set(_SCALER_ARGS))
        if unknown:
            raise TypeError(f'MixedPrecision: unknown GradScaler argument(s) {", ".join(unknown)}; '
                            f'expected some of {", ".join(_SCALER_ARGS)}')
        self.kwargs = kwargs
        self.autocast: Any = None
        self.scales: list = []
        self._probe: _StepProbe | None = None
        self._autocasting = False
        self._checked = False       # the scaler checked this step's gradients: update() is due
        self._no_backward = False   # the backward of this batch was cancelled

    def before_fit(self) -> None:
        "Choose the dtype for the model's device; create the scaler."
        learn = self.learn
        device_type = _device_type(learn)
        dtype, scaled = amp_plan(self.amp_mode, device_type)
        scaled = scaled and self.kwargs.get('enabled', True)
        self.autocast = torch.autocast(device_type, dtype=dtype)
        learn.scaler = GradScaler(device_type, **self.kwargs) if scaled else None
        self.scales, self._probe, self._checked = [], _StepProbe(learn), False

    def before_batch(self) -> None:
        "Enter autocast for the forward pass."
        self.autocast.__enter__()
        self._autocasting = True

    def after_pred(self) -> None:
        "Cast the predictions back to float32 for the loss and metrics."
        self.learn.pred = _to_float(self.learn.pred)

    def _leave_autocast(self) -> None:
        "Leave autocast: once the loss is computed, or when a batch or a phase ended inside the forward pass."
        if self._autocasting:
            self._autocasting = False
            self.autocast.__exit__(None, None, None)

    after_loss = after_cancel_batch = after_train = after_validate = _leave_autocast

    def before_backward(self) -> None:
        "Scale the loss that backward uses (float16 only)."
        scaler = self.learn.scaler
        if scaler is not None: self.learn.loss_grad = scaler.scale(self.learn.loss_grad)

    def after_cancel_backward(self) -> None:
        "No backward this batch: there are no scaled gradients for the scaler to check."
        self._no_backward = True

    def before_step(self) -> None:
        "Unscale the gradients; skip the step when they are not finite."
        scaler = self.learn.scaler
        if scaler is None: return
        if self._no_backward:          # the optimizer steps on the gradients as they are, as without AMP
            self._no_backward = False
            return
        probe = self._probe
        probe.stepped = False
        scaler.step(probe)
        self._checked = True
        if not probe.stepped: raise CancelStepException
        self.scales.append(scaler._get_scale_async().detach().clone())

    def after_step(self) -> None:
        "Let the gradient scaler adjust its scale (not when an earlier callback skipped the step: nothing was checked)."
        if self._checked:
            self._checked = False
            self.learn.scaler.update()

    def after_fit(self) -> None:
        "Leave autocast and drop the scaler."
        self._leave_autocast()
        self.autocast, self._probe, self.learn.scaler = None, None, None


def _device_type(learn: Any) -> str:
    p = next(iter(learn.model.parameters()), None)
    if p is not None: return p.device.type
    device = getattr(learn.dls, 'device', None)
    return torch.device(device).type if device is not None else 'cpu'
