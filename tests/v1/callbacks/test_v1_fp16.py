"fastai-1's MixedPrecision, learn.to_fp16()/to_fp32(): the core's autocast and GradScaler behind fastai 1's arguments."
import numpy as np
import pytest
import torch
from torch import nn

from fa1_stock_scenarios import learner
from trainlib import Callback as CoreCallback
from trainlib.callbacks import fp16
from trainlib.v1 import Callback, MixedPrecision

ON_CPU = pytest.mark.filterwarnings('ignore:MixedPrecision.*float16 training needs CUDA:UserWarning')


def quiet(**kwargs):
    return learner(silent=True, **kwargs)


class OutputDtype(Callback):
    "Records the dtype of the model's output as the v1 callbacks see it, and whether autocast is on."
    def __init__(self): self.seen = set()

    def on_loss_begin(self, last_output, train, **kwargs):
        self.seen.add((train, last_output.dtype, torch.is_autocast_enabled('cpu')))


def losses(learn):
    return np.array([float(l) for l in learn.recorder.losses] + [float(l) for l in learn.recorder.val_losses])


def test_to_fp16_trains_under_bfloat16_autocast_on_the_cpu():
    learn, probe = quiet(), OutputDtype()
    assert learn.to_fp16() is learn and learn.mixed_precision is learn.mp_cb and learn.callbacks == [learn.mp_cb]
    with pytest.warns(UserWarning, match='float16 training needs CUDA; on cpu it runs in bfloat16 autocast'):
        learn.fit(2, 1e-2, callbacks=[probe])
    assert probe.seen == {(True, torch.bfloat16, True), (False, torch.bfloat16, True)}
    assert not torch.is_autocast_enabled('cpu') and learn.scaler is None
    assert not any(isinstance(cb, fp16.MixedPrecision) for cb in learn.cbs)      # on the Learner for the fit only
    assert all(p.dtype == torch.float32 for p in learn.model.parameters())


@ON_CPU
def test_losses_stay_close_to_float32_training():
    fp32, mixed = quiet(), quiet().to_fp16()
    for learn in (fp32, mixed):
        torch.manual_seed(1)                                    # the same shuffles
        learn.fit(3, 1e-2)
    np.testing.assert_allclose(losses(mixed), losses(fp32), atol=5e-3)


@ON_CPU
def test_loss_fp32_false_leaves_the_output_in_half_precision():
    dtypes = []
    learn = quiet().to_fp16(loss_fp32=False)
    learn.add_cb(CoreCallback(after_loss=lambda cb: dtypes.append(cb.learn.pred.dtype)))
    learn.fit(1, 1e-2)
    assert set(dtypes) == {torch.bfloat16}


@ON_CPU
def test_to_fp32_goes_back_to_float32():
    learn, probe = quiet(callback_fns=[MixedPrecision]).to_fp16(), OutputDtype()
    assert learn.to_fp32() is learn
    assert learn.callbacks == [] and len(learn.callback_fns) == 1 and 'mixed_precision' not in vars(learn)
    learn.fit(1, 1e-2, callbacks=[probe])
    assert probe.seen == {(True, torch.float32, False), (False, torch.float32, False)}
    learn.to_bf16().to_fp32()                                   # the core's helpers share the Learner
    assert not any(isinstance(cb, fp16.MixedPrecision) for cb in learn.cbs)


@ON_CPU
def test_callback_fns_make_one_per_fit_registered_as_learn_mixed_precision():
    learn, probe = quiet(callback_fns=[MixedPrecision]), OutputDtype()
    learn.fit(1, 1e-2, callbacks=[probe])
    first = learn.mixed_precision
    learn.fit(1, 1e-2)
    assert isinstance(first, MixedPrecision) and learn.mixed_precision is not first and first._order == 999
    assert {dtype for _, dtype, _ in probe.seen} == {torch.bfloat16}


@ON_CPU
def test_validate_runs_in_mixed_precision_and_get_preds_in_float32():
    learn, probe = quiet().to_fp16(), OutputDtype()
    learn.callbacks.append(probe)
    assert np.isfinite(learn.validate()[0]) and probe.seen == {(False, torch.bfloat16, True)}
    probe.seen.clear()
    preds, _ = learn.get_preds()                    # no on_train_begin: no autocast (see MixedPrecision's doc)
    assert probe.seen == {(False, torch.float32, False)} and preds.dtype == torch.float32
    assert not torch.is_autocast_enabled('cpu') and not any(isinstance(cb, fp16.MixedPrecision) for cb in learn.cbs)


def test_bad_arguments_are_refused():
    learn = quiet()
    with pytest.raises(ValueError, match=r'MixedPrecision: max_noskip must be an int >= 1 .*, got 0'):
        learn.to_fp16(max_noskip=0)
    with pytest.raises(ValueError, match=r'MixedPrecision: loss_scale must be None or > 0, got -1'):
        MixedPrecision(learn, loss_scale=-1)
    with pytest.raises(ValueError, match=r'MixedPrecision: clip must be None or > 0 .*, got 0'):
        MixedPrecision(learn, clip=0)


# ---------------------------------------------------------------- the CUDA float16 path, run on the CPU
@pytest.fixture
def fp16_with_scaler(monkeypatch):
    "Make the core MixedPrecision use float16 and a GradScaler on the CPU, as it does on CUDA."
    monkeypatch.setattr(fp16, 'amp_plan', lambda amp_mode, device_type: (torch.float16, True))


class Grads(Callback):
    "Keeps the gradients v1 callbacks see at on_backward_end; poisons them with inf at the given iterations."
    def __init__(self, learn, poison=()): self.learn, self.poison, self.grads = learn, poison, []

    def on_backward_end(self, iteration, **kwargs):
        p = self.learn.model[0].weight
        if iteration in self.poison: p.grad.fill_(float('inf'))
        self.grads.append(p.grad.clone())


def unscaled_grads(learn):
    "A core callback after the v1 MixedPrecision's unscale: the gradients the optimizer steps with."
    grads = []
    cb = CoreCallback(before_step=lambda cb: grads.append(cb.learn.model[0].weight.grad.clone()))
    cb.order = 1000
    learn.add_cb(cb)
    return grads


def scales(learn):
    return [s.item() for s in learn.mixed_precision.amp.scales]


def test_the_loss_is_scaled_and_the_gradients_unscaled_before_the_step(fp16_with_scaler):
    learn = quiet().to_fp16(loss_scale=256)
    seen, stepped = Grads(learn), unscaled_grads(learn)
    learn.fit(1, 1e-2, callbacks=[seen])
    assert len(stepped) == 8 and scales(learn) == [256.] * 8 and learn.scaler is None
    for scaled, unscaled in zip(seen.grads, stepped): torch.testing.assert_close(scaled, unscaled * 256)


def test_inf_gradients_skip_the_step_and_halve_the_scale(fp16_with_scaler):
    learn = quiet().to_fp16(loss_scale=256)
    weights = []
    learn.add_cb(CoreCallback(after_batch=lambda cb: weights.append(cb.learn.model[0].weight.detach().clone())
                              if cb.learn.training else None))
    learn.fit(1, 1e-2, callbacks=[Grads(learn, poison={2})])
    assert torch.equal(weights[1], weights[2]) and not torch.equal(weights[2], weights[3])
    assert scales(learn) == [256.] * 2 + [128.] * 5


def test_the_scale_grows_every_max_noskip_steps_up_to_max_scale(fp16_with_scaler):
    learn = quiet().to_fp16(loss_scale=256, max_noskip=2, max_scale=1024)
    learn.fit(1, 1e-2)
    assert scales(learn) == [256., 256., 512., 512., 1024., 1024., 1024., 1024.]


def test_a_static_scale_never_changes_but_still_skips_inf_steps(fp16_with_scaler):
    learn = quiet().to_fp16(dynamic=False, max_noskip=1)
    assert learn.mp_cb.loss_scale == 512                        # fastai 1's static default
    learn.fit(1, 1e-2, callbacks=[Grads(learn, poison={2})])
    assert scales(learn) == [512.] * 7


def test_clip_bounds_the_unscaled_gradient_norm(fp16_with_scaler):
    learn = quiet().to_fp16(clip=1e-3)
    stepped = unscaled_grads(learn)
    learn.fit(1, 1e-2)
    assert max(float(g.norm()) for g in stepped) <= 1e-3 + 1e-6


def test_steps_skipped_by_a_v1_callback_leave_the_scaler_alone(fp16_with_scaler):
    class EveryOther(Callback):
        def on_backward_end(self, iteration, **kwargs): return {'skip_step': iteration % 2 == 1}
    learn = quiet().to_fp16(loss_scale=256, max_noskip=1)
    learn.fit(1, 1e-2, callbacks=[EveryOther()])
    assert scales(learn) == [256., 512., 1024., 2048.]


def test_a_validate_inside_the_fit_keeps_the_fits_scaler(fp16_with_scaler):
    class ValidateEachEpoch(Callback):
        def __init__(self, learn): self.learn, self.scalers = learn, []
        def on_epoch_end(self, **kwargs):
            self.learn.validate()
            self.scalers.append(self.learn.scaler)
    learn = quiet().to_fp16(loss_scale=256, max_noskip=4)
    cb = ValidateEachEpoch(learn)
    learn.fit(2, 1e-2, callbacks=[cb])
    assert cb.scalers[0] is cb.scalers[1] is not None
    assert scales(learn) == [256.] * 4 + [512.] * 4 + [1024.] * 4 + [2048.] * 4     # the growth went on
