"""The callbacks of fastai.train (GradientClipping, BnFreeze, AccumulateScheduler), mixup, StopAfterNBatches,
CSVLogger and the star import (the runs against fastai: test_v1_stock_vs_fastai)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fa1_stock_scenarios import learner, make_data, make_model
from trainlib.v1 import (AccumulateScheduler, BnFreeze, Callback, CSVLogger, GradientClipping, MixUpCallback,
                         MixUpLoss, StopAfterNBatches)
from trainlib.v1.train import clip_grad

OURS = ['AccumulateScheduler', 'BnFreeze', 'CSVLogger', 'EarlyStoppingCallback', 'fit_fc', 'fit_one_cycle',
        'FlatCosAnnealScheduler', 'GeneralScheduler', 'GradientClipping', 'lr_find', 'LRFinder', 'mixup',
        'MixUpCallback', 'MixUpLoss', 'one_cycle_scheduler', 'OneCycleScheduler', 'ReduceLROnPlateauCallback',
        'SaveModelCallback', 'TerminateOnNaNCallback', 'TrackEpochCallback', 'TrackerCallback', 'TrainingPhase',
        'StopAfterNBatches', 'Stepper', 'Scheduler']


def quiet(**kwargs):
    return learner(silent=True, **kwargs)


def test_the_star_import_has_the_stock_callbacks_and_recipes():
    ns = {}
    exec('from trainlib.v1 import *', ns)
    assert [n for n in OURS if n not in ns] == []
    from trainlib.v1 import Learner
    assert all(callable(getattr(Learner, m)) for m in ('fit_one_cycle', 'lr_find', 'fit_fc', 'mixup', 'clip_grad'))


# ---------------------------------------------------------------- GradientClipping
def test_clip_grad_bounds_the_gradient_norm_before_each_step():
    norms = []
    class Norm(Callback):
        _order = 1                                      # after GradientClipping (0)
        def on_backward_end(self, **kwargs):
            norms.append(float(nn.utils.clip_grad_norm_(learn.model.parameters(), float('inf'))))
    learn = quiet()
    assert clip_grad(learn, 0.05) is learn and learn.callback_fns[-1].keywords == {'clip': 0.05}
    learn.fit(1, 0.1, callbacks=[Norm()])
    assert len(norms) == 8 and max(norms) <= 0.05 + 1e-6
    with pytest.raises(ValueError, match=r'GradientClipping: clip must be >= 0 .*, got -1'): GradientClipping(learn, -1)


# ---------------------------------------------------------------- BnFreeze
def test_bn_freeze_keeps_frozen_batchnorm_layers_in_eval_mode_while_training():
    model = make_model(bn=True)
    learn = quiet(model=model, callback_fns=[BnFreeze])
    for p in model[1].parameters(): p.requires_grad_(False)
    modes = []
    class Mode(Callback):
        def on_batch_begin(self, train, **kwargs):
            if train: modes.append((model.training, model[1].training))
    learn.fit(1, 1e-2, callbacks=[Mode()])
    assert set(modes) == {(True, False)} and model[1].running_mean.abs().sum() == 0


# ---------------------------------------------------------------- AccumulateScheduler
def _weights_after(bs, callbacks, loss_func):
    torch.manual_seed(0)
    learn = quiet(data=make_data(bs=bs), model=make_model(), loss_func=loss_func)
    torch.manual_seed(1)
    learn.fit(2, 1e-2, callbacks=callbacks(learn))
    return [p.detach() for p in learn.model.parameters()]


def test_accumulating_two_batches_of_8_is_training_on_batches_of_16():
    "n_step=2 with a summed loss = a mean loss on batches twice as large (same samples: the shuffle is the same)."
    acc = _weights_after(8, lambda l: [AccumulateScheduler(l, n_step=2)], nn.CrossEntropyLoss(reduction='sum'))
    big = _weights_after(16, lambda l: [], nn.CrossEntropyLoss())
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(acc, big))


def test_the_epoch_end_remainder_counts_training_samples_only():
    "8 batches, n_step=3: 2 batches (16 samples) are left at the epoch end; fastai also counted the 32 validation ones."
    seen = []
    class Spy(AccumulateScheduler):
        def on_epoch_end(self, **kwargs):
            seen.append(self.acc_samples)
            super().on_epoch_end(**kwargs)
    learn = quiet(loss_func=nn.CrossEntropyLoss(reduction='sum'))
    learn.fit(2, 1e-2, callbacks=[Spy(learn, n_step=3)])
    assert seen == [16, 16]


def test_accumulate_warns_about_a_mean_loss_and_checks_n_step():
    learn = quiet()
    with pytest.warns(UserWarning, match="For better gradients consider 'reduction=sum'"):
        learn.fit(1, 1e-2, callbacks=[AccumulateScheduler(learn, n_step=2)])
    with pytest.raises(ValueError, match=r'AccumulateScheduler: n_step must be an int >= 1 .*, got 0'):
        AccumulateScheduler(learn, n_step=0)


# ---------------------------------------------------------------- mixup
def test_mixup_mixes_training_batches_and_gives_the_loss_back():
    loss = nn.CrossEntropyLoss()
    learn = quiet(loss_func=loss)
    targets = []
    class Targets(Callback):
        _order = 1                                      # after MixUpCallback
        def on_batch_begin(self, last_target, train, **kwargs): targets.append((train, last_target))
    assert learn.mixup(alpha=0.4) is learn
    learn.fit(1, 1e-2, callbacks=[Targets()])
    train = [t for tr, t in targets if tr]
    assert all(t.shape == (8, 3) and t.dtype == torch.float32 and (t[:, 2] >= 0.5).all() for t in train)
    assert all(t.dim() == 1 for tr, t in targets if not tr)           # validation batches are left alone
    assert learn.loss_func is loss and loss.reduction == 'mean' and isinstance(learn.mix_up_callback, MixUpCallback)


def test_mixup_stack_x_and_float_targets():
    seen = []
    class Inputs(Callback):
        _order = 1
        def on_batch_begin(self, last_input, last_target, train, **kwargs):
            if train: seen.append((last_input, last_target))
    learn = quiet(loss_func=lambda out, y: F.mse_loss(out[:, 0], y))
    learn.model = nn.Sequential(nn.Linear(4, 2))
    learn.fit(1, 1e-2, callbacks=[MixUpCallback(learn, stack_y=False), Inputs()])
    x, y = seen[0]
    assert x.shape == (8, 4) and y.dtype == torch.float32 and ((y >= 0) & (y <= 1)).all()
    cb = MixUpCallback(learn, stack_x=True)
    new = cb.on_batch_begin(torch.ones(4, 3), torch.zeros(4).long(), train=True)
    assert isinstance(new['last_input'], list) and len(new['last_input']) == 3


def test_mixup_loss_of_a_loss_function_without_reduction_attribute():
    crit = MixUpLoss(F.cross_entropy, reduction='sum')
    out, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 1])
    mixed = torch.stack([y.float(), y.flip(0).float(), torch.full((4,), 0.75)], 1)
    exp = (0.75 * F.cross_entropy(out, y, reduction='none') + 0.25 * F.cross_entropy(out, y.flip(0), reduction='none'))
    assert torch.allclose(crit(out, mixed), exp.sum()) and torch.allclose(crit(out, y), F.cross_entropy(out, y, reduction='sum'))
    assert crit.get_old() is F.cross_entropy
    with pytest.raises(ValueError, match="MixUpLoss: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        MixUpLoss(F.cross_entropy, reduction='avg')


# ---------------------------------------------------------------- StopAfterNBatches, CSVLogger
def test_stop_after_n_batches_checks_its_argument():
    with pytest.raises(ValueError, match='StopAfterNBatches: n_batches must be an int >= 1, got 0'): StopAfterNBatches(0)


def test_csv_logger_writes_a_row_per_epoch_and_closes_the_file():
    learn = quiet(callback_fns=[CSVLogger])
    learn.fit(2, 1e-2)
    lines = (learn.path / 'history.csv').read_text().splitlines()
    assert lines[0] == 'epoch,train_loss,valid_loss' and [l.split(',')[0] for l in lines[1:]] == ['0', '1']
    assert learn.csv_logger.file is None
    try: import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match='pandas is needed here'): learn.csv_logger.read_logged_file()
    else: assert list(learn.csv_logger.read_logged_file().columns) == ['epoch', 'train_loss', 'valid_loss']
