"""fastai-1's ``MixedPrecision`` (``fastai.callbacks.fp16``): a fastai-1 face over the core's
:class:`trainlib.callbacks.fp16.MixedPrecision` (``torch.autocast``, and ``torch.amp.GradScaler`` for float16)."""
from __future__ import annotations

from typing import Any

from torch import nn

from ...callbacks.fp16 import MixedPrecision as CoreMixedPrecision
from ..basic_train import LearnerCallback
from ._checks import check_arg, is_count

__all__ = ['MixedPrecision']


class _V1Autocast(CoreMixedPrecision):
    """The core ``MixedPrecision`` for one fit, placed where fastai 1's ran (order 999: after the other
    callbacks), with fastai 1's extras: output left in half precision without ``loss_fp32``, gradient
    clipping after the unscale, and the loss scale kept in ``[min_scale, max_scale]`` after each update
    (no host sync). It takes itself off the Learner when its fit ends."""
    order = 999
    name = '_v1_autocast'       # learn.mixed_precision is the fastai-1 callback

    def __init__(self, loss_fp32: bool, clip: float | None, min_scale: float, max_scale: float, **kwargs: Any) -> None:
        super().__init__('fp16', **kwargs)
        self.loss_fp32, self.clip, self.min_scale, self.max_scale = loss_fp32, clip, min_scale, max_scale
        self._fits = 0

    def before_fit(self) -> None:
        "Set up (once: a v1 ``learn.validate()`` inside the fit fires before_fit again)."
        self._fits += 1
        if self._fits == 1: super().before_fit()

    def after_fit(self) -> None:
        "At the end of the outer fit: leave autocast, drop the scaler, leave the Learner."
        self._fits -= 1
        if self._fits: return
        super().after_fit()
        self.learn.remove_cb(self)

    def after_pred(self) -> None:
        "Cast the output to float32 for the loss (fastai 1's ``loss_fp32``)."
        if self.loss_fp32: super().after_pred()

    def before_step(self) -> None:
        "Unscale the gradients (the step is skipped on inf/nan), then clip their norm to ``clip``."
        super().before_step()
        if self.clip is not None: nn.utils.clip_grad_norm_(self.learn.model.parameters(), self.clip)

    def after_step(self) -> None:
        "Update the scale (after a step it checked), then keep it within ``[min_scale, max_scale]``."
        updating = self._checked
        super().after_step()
        if updating: self.learn.scaler._get_scale_async().clamp_(self.min_scale, self.max_scale)


class MixedPrecision(LearnerCallback):
    """Train in mixed precision: ``MixedPrecision(learn, loss_scale=None, max_noskip=1000, dynamic=True,
    clip=None, flat_master=False, max_scale=2**24, loss_fp32=True)`` (``learn.to_fp16()`` adds one), as
    ``learn.mixed_precision``.

    For each fit it puts the core's autocast ``MixedPrecision`` on the Learner (``learn.mixed_precision.amp``):
    on CUDA float16 autocast with a ``torch.amp.GradScaler``; elsewhere bfloat16 autocast, no scaler (with
    a warning). fastai 1's arguments map onto the scaler:

    - ``loss_scale`` -> ``init_scale`` (default 2**16, or 512 when not ``dynamic``, as fastai 1);
    - ``max_noskip`` -> ``growth_interval``: the scale doubles after that many steps without overflow,
      and halves (the step skipped) on inf/nan gradients;
    - ``dynamic=False``: the scale stays ``loss_scale``; ``max_scale`` caps a dynamic scale (and 1 floors
      it, as in fastai 1);
    - ``clip``: the gradients' norm is clipped after the unscale, before the step;
    - ``loss_fp32``: the output is cast to float32 before the loss (the callbacks with a lower ``_order``
      see it in half precision, as in fastai 1).

    Replaced by autocast, torch's recommended AMP, with the same observable training and less memory
    traffic: fastai 1's float16 copy of the model with float32 master weights (copied back after each
    step) and ``flat_master`` (accepted, no effect). The model keeps float32 weights, the inputs are not
    converted, and the optimizer steps the model's own parameters (its state is not rebuilt per fit).
    ``learn.get_preds()`` and ``pred_batch`` fire no on_train_begin: they predict in float32 (fastai 1: in
    float16, the model being half). As in fastai 1, the v1 callbacks' ``on_backward_end`` sees scaled gradients.
    Better than fastai 1: a step with inf/nan gradients is skipped also with a static scale (fastai 1
    stepped on them); the overflow check reads no gradient back to the host (fastai 1: one read per
    parameter per step)."""
    _order = 999

    def __init__(self, learn: Any, loss_scale: float | None = None, max_noskip: int = 1000, dynamic: bool = True,
                 clip: float | None = None, flat_master: bool = False, max_scale: float = 2 ** 24,
                 loss_fp32: bool = True) -> None:
        super().__init__(learn)
        who = type(self).__name__
        check_arg(loss_scale is None or loss_scale > 0, who, 'loss_scale', 'None or > 0', loss_scale)
        check_arg(is_count(max_noskip, 1), who, 'max_noskip', 'an int >= 1 (steps before the scale grows)', max_noskip)
        check_arg(clip is None or clip > 0, who, 'clip', 'None or > 0 (a maximum gradient norm)', clip)
        check_arg(max_scale >= 1, who, 'max_scale', '>= 1', max_scale)
        self.dynamic, self.max_noskip, self.clip, self.flat_master = dynamic, max_noskip, clip, flat_master
        self.max_scale, self.loss_fp32 = max_scale, loss_fp32
        self.loss_scale = loss_scale if loss_scale is not None else 2. ** 16 if dynamic else 512.
        self.amp: _V1Autocast | None = None

    def make_amp(self) -> _V1Autocast:
        "The core callback that trains one fit in mixed precision, with these settings."
        scale = float(self.loss_scale)
        low, high = (1., float(self.max_scale)) if self.dynamic else (scale, scale)
        return _V1Autocast(self.loss_fp32, self.clip, low, high, init_scale=scale, growth_interval=self.max_noskip)

    def on_train_begin(self, **kwargs: Any) -> None:
        "Put a fresh core ``MixedPrecision`` on the Learner for this fit (``amp``; it leaves at the fit's end)."
        learn = self.learn
        if self.amp is not None and self.amp in learn.cbs: return
        self.amp = self.make_amp()
        learn.add_cb(self.amp)
        self.amp.before_fit()               # added during before_fit: its own before_fit has not run
