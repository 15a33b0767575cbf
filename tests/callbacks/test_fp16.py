"MixedPrecision and Learner.to_fp16/to_bf16/to_fp32: the dtypes inside the batch, the scaler's steps."
import math

import pytest
import torch
from torch import nn

from trainlib.events import CancelBackwardException
from trainlib import CancelBatchException, CancelStepException, Callback, MixedPrecision
from trainlib.callbacks import fp16


def probe(order, **events):
    "A callback running ``f(learn)`` at the given events, at ``order``."
    cb = Callback(**{e: (lambda f: lambda self: f(self.learn))(f) for e, f in events.items()})
    cb.order = order
    return cb


def test_bf16_autocast_around_forward_and_loss_only(quiet_learner):
    seen = {}
    raw = probe(5, after_pred=lambda l: seen.setdefault('raw', l.pred.dtype))
    out = probe(20, after_pred=lambda l: seen.setdefault('pred', l.pred.dtype),
                before_backward=lambda l: seen.setdefault('bwd', torch.is_autocast_enabled('cpu')))
    learn = quiet_learner(model=nn.Linear(1, 1), cbs=[raw, out])
    learn.to_bf16().fit(1)
    assert seen == {'raw': torch.bfloat16, 'pred': torch.float32, 'bwd': False}
    assert learn.scaler is None and math.isfinite(learn.recorder.values[0][1])


def test_to_fp16_on_cpu_trains_in_bfloat16_and_says_so(quiet_learner):
    learn = quiet_learner().to_fp16()
    with pytest.warns(UserWarning, match="float16 training needs CUDA; on cpu it runs in bfloat16 autocast"):
        learn.fit(1)
    assert isinstance(learn.mixed_precision, MixedPrecision) and learn.scaler is None


def test_precision_helpers_keep_one_callback(quiet_learner):
    learn = quiet_learner()
    learn.to_fp16().to_bf16()
    assert [type(cb) for cb in learn.cbs].count(MixedPrecision) == 1 and learn.mixed_precision.amp_mode == 'bf16'
    learn.to_fp32()
    assert not any(isinstance(cb, MixedPrecision) for cb in learn.cbs)


def test_autocast_is_left_when_the_batch_is_cancelled(quiet_learner):
    def cancel(learn):
        if learn.iter == 0: raise CancelBatchException
    states = []
    learn = quiet_learner(cbs=[MixedPrecision('bf16'), probe(20, after_pred=cancel),
                               probe(20, after_batch=lambda l: states.append(torch.is_autocast_enabled('cpu')))])
    learn.fit(1)
    assert not any(states) and not torch.is_autocast_enabled('cpu')


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="MixedPrecision: amp_mode must be 'fp16' or 'bf16', got 'fp8'"):
        MixedPrecision('fp8')
    with pytest.raises(TypeError, match='MixedPrecision: unknown GradScaler argument.s. init_scal'):
        MixedPrecision(init_scal=2.)


# ---------------------------------------------------------------- the CUDA float16 path, run on the CPU
@pytest.fixture
def fp16_with_scaler(monkeypatch):
    "Make MixedPrecision use float16 and a GradScaler on the CPU, as it does on CUDA."
    monkeypatch.setattr(fp16, 'amp_plan', lambda amp_mode, device_type: (torch.float16, True))


def test_scaler_scales_the_loss_and_unscales_before_the_step(quiet_learner, fp16_with_scaler):
    grads = {}
    grab = lambda key: lambda l: grads.setdefault(key, l.model.a.grad.clone())  # noqa: E731
    learn = quiet_learner(cbs=[MixedPrecision(init_scale=1024.), probe(5, after_backward=grab('scaled')),
                               probe(11, before_step=grab('unscaled'))])
    learn.fit(1)
    torch.testing.assert_close(grads['scaled'], grads['unscaled'] * 1024)
    assert len(learn.mixed_precision.scales) == 10 and learn.scaler is None     # the scaler lives for the fit


def test_scaler_skips_the_step_on_inf_gradients_and_backs_off(quiet_learner, fp16_with_scaler):
    def poison(learn):
        if learn.iter == 2: learn.model.a.grad.fill_(float('inf'))
    weights, events = [], []
    watch = probe(0, after_backward=poison, after_cancel_step=lambda l: events.append(('cancel_step', l.iter)),
                  after_batch=lambda l: weights.append(l.model.a.detach().clone()) if l.training else None)
    learn = quiet_learner(cbs=[MixedPrecision(init_scale=256., growth_interval=1000), watch])
    learn.fit(1)
    assert events == [('cancel_step', 2)]
    assert torch.equal(weights[1], weights[2]) and not torch.equal(weights[2], weights[3])
    assert [s.item() for s in learn.mixed_precision.scales] == [256.] * 2 + [128.] * 7


def test_a_step_skipped_before_the_scaler_looked_does_not_update_it(quiet_learner, fp16_with_scaler):
    def skip_odd(learn):
        if learn.iter % 2: raise CancelStepException
    learn = quiet_learner(cbs=[MixedPrecision(init_scale=256.), probe(5, before_step=skip_odd)])
    learn.fit(1)
    assert len(learn.mixed_precision.scales) == 5       # the fit ran through: the 5 steps taken were scaled


def test_a_cancelled_backward_on_the_first_batch_steps_without_the_scaler(quiet_learner, fp16_with_scaler):
    "The scaler never scaled a loss yet (it sets its scale up lazily): the step must not go through it."
    def no_first_backward(learn):
        if learn.train_iter == 0: raise CancelBackwardException
    learn = quiet_learner(cbs=[probe(-5, before_backward=no_first_backward), MixedPrecision(init_scale=256.)])
    learn.fit(1)
    assert len(learn.mixed_precision.scales) == 9       # batches 1..9 went through the scaler, batch 0 did not
