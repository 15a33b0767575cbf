"ShortEpochCallback, GradientAccumulation, GradientClip, BnFreeze: how many batches run, the update, the mode."
from functools import partial

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlib import (BnFreeze, Callback, DataLoaders, GradientAccumulation, GradientClip, Learner, MSELossFlat, SGD,
                      ShortEpochCallback, noop)
from trainlib.testing import RegModel


class CountBatches(Callback):
    "Count the batches that reach the model, per phase."
    def before_fit(self): self.n_train, self.n_valid = 0, 0
    def after_pred(self):
        if self.learn.training: self.n_train += 1
        else: self.n_valid += 1


class CountSteps(Callback):
    "Count the optimizer steps."
    def before_fit(self): self.n = 0
    def after_step(self): self.n += 1


def regression_learner(bs, n=32, model=None, cbs=None, lr=0.1):
    "A quiet Learner on ``n`` fixed points (no shuffle), batches of ``bs``, plain SGD."
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 1, generator=g)
    ds = TensorDataset(x, 2 * x + 3)
    dls = DataLoaders(DataLoader(ds, batch_size=bs), DataLoader(ds, batch_size=bs), device='cpu')
    learn = Learner(dls, model or RegModel(), loss_func=MSELossFlat(), opt_func=partial(SGD, mom=0.), lr=lr,
                    cbs=cbs, default_cbs=True)
    learn.remove_cb(learn.progress)
    learn.logger = noop
    return learn


# ---------------------------------------------------------------- ShortEpochCallback
def test_short_epoch_stops_each_phase_after_pct_of_it(quiet_learner, fa2):
    learn = quiet_learner(n_trn=10, n_val=8, cbs=[ShortEpochCallback(pct=0.25), CountBatches()])
    learn.fit(2)
    counts = learn.count_batches
    assert (counts.n_train, counts.n_valid, learn.recorder.values) == (2 * 4, 2 * 3, [[], []])  # no value logged
    assert [f'train={counts.n_train} valid={counts.n_valid} rows={learn.recorder.values}'] == fa2['short_epoch']


def test_short_epoch_can_keep_the_whole_validation(quiet_learner):
    learn = quiet_learner(n_trn=10, n_val=8, cbs=[ShortEpochCallback(pct=0.25, short_valid=False), CountBatches()])
    learn.fit(1)
    assert (learn.count_batches.n_train, learn.count_batches.n_valid) == (4, 8)


# ---------------------------------------------------------------- GradientAccumulation
def test_accumulating_four_batches_of_8_is_one_batch_of_32():
    torch.manual_seed(0); big = RegModel()
    torch.manual_seed(0); small = RegModel()
    one = regression_learner(bs=32, model=big, cbs=CountSteps())
    acc = regression_learner(bs=8, model=small, cbs=[GradientAccumulation(n_acc=32), CountSteps()])
    one.fit(2); acc.fit(2)
    assert one.count_steps.n == acc.count_steps.n == 2
    for p, q in zip(big.parameters(), small.parameters()): torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-6)


def test_gradient_accumulation_restores_loss_grad_for_the_step():
    seen = []
    probe = Callback(before_step=lambda cb: seen.append((cb.learn.loss_grad.detach().clone(), cb.learn.loss.clone())))
    probe.order = 7
    learn = regression_learner(bs=8, cbs=[GradientAccumulation(n_acc=32), probe])
    learn.fit(1)
    assert len(seen) == 1 and torch.equal(*seen[0])     # the 4th batch: the step runs with the unscaled loss


def test_gradient_accumulation_rejects_a_bad_count():
    with pytest.raises(ValueError, match=r'GradientAccumulation: n_acc must be a positive int .* got 0'):
        GradientAccumulation(n_acc=0)


# ---------------------------------------------------------------- GradientClip
def grad_norms(**kwargs):
    norms = []
    probe = Callback(before_step=lambda cb: norms.append(
        torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in cb.learn.model.parameters()])).item()))
    probe.order = 12
    learn = regression_learner(bs=8, cbs=[probe] + kwargs.pop('cbs', []), lr=0.01)
    learn.fit(1)
    return norms


def test_gradient_clip_limits_the_norm_of_the_gradients():
    torch.manual_seed(0); free = grad_norms()
    torch.manual_seed(0); clipped = grad_norms(cbs=[GradientClip(max_norm=0.5)])
    assert free[0] > 0.5 and clipped[0] == pytest.approx(0.5, rel=1e-5)     # same first batch, same weights
    assert all(n <= 0.5 * (1 + 1e-5) for n in clipped)


# ---------------------------------------------------------------- BnFreeze
def bn_model(affine=True):
    return nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4, affine=affine), nn.Linear(4, 1))


def test_bn_freeze_keeps_the_statistics_of_frozen_batchnorm():
    model = bn_model()
    for p in model[1].parameters(): p.requires_grad_(False)
    modes = []
    probe = Callback(after_pred=lambda cb: modes.append(model[1].training) if cb.learn.training else None)
    learn = regression_learner(bs=8, model=model, cbs=[BnFreeze(), probe])
    before = model[1].running_mean.clone()
    learn.fit(1)
    assert modes == [False] * 4                       # the frozen layer stays in eval mode while training
    assert torch.equal(model[1].running_mean, before)


def test_bn_freeze_leaves_trainable_and_parameterless_batchnorm_alone():
    for model in (bn_model(), bn_model(affine=False)):
        learn = regression_learner(bs=8, model=model, cbs=BnFreeze())
        before = model[1].running_mean.clone()
        learn.fit(1)
        assert not torch.equal(model[1].running_mean, before)
