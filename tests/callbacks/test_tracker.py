"TerminateOnNaNCallback and the trackers: the batch or epoch they stop at, what they save, the lr they set."
import math

import pytest
import torch

from trainlib import (Callback, EarlyStoppingCallback, ReduceLROnPlateau, SaveModelCallback, ShortEpochCallback,
                      TerminateOnNaNCallback, TrackerCallback, ValueMetric)


class PoisonLoss(Callback):
    "Make the prediction (hence the loss) nan from training batch ``at`` (counted over the fit) on."
    def __init__(self, at): self.at = at
    def after_pred(self):
        if self.learn.training and self.learn.train_iter >= self.at: self.learn.pred = self.learn.pred * float('nan')


def scripted(values, name='scripted_loss'):
    "A metric column whose value at epoch ``e`` is ``values[e]``."
    it = iter(values)
    return ValueMetric(lambda: next(it), metric_name=name)


class Snapshots(Callback):
    "Keep the model's weights at the end of every epoch."
    order = 70
    def before_fit(self): self.weights = []
    def after_epoch(self): self.weights.append({k: v.clone() for k, v in self.learn.model.state_dict().items()})


def at_epoch_end(f):
    "A callback running ``f(learn)`` at the end of each epoch, after the trackers."
    cb = Callback(after_epoch=lambda self: f(self.learn))
    cb.order = 70
    return cb


def same_weights(model, state):
    return all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- TerminateOnNaNCallback
def test_terminate_on_nan_stops_on_the_batch_before_the_recorder_sees_it(quiet_learner, fa2):
    learn = quiet_learner(n_trn=10, cbs=[TerminateOnNaNCallback(), PoisonLoss(at=13)])
    learn.fit(3)
    report = (f'epoch={learn.epoch} iter={learn.iter} train_iter={learn.train_iter} '    # stopped on batch 3 of
              f'losses={len(learn.recorder.losses)} rows={len(learn.recorder.values)}')     # epoch 1
    assert [report] == fa2['terminate_on_nan']
    assert all(math.isfinite(float(v)) for v in learn.recorder.losses)


def test_terminate_on_nan_check_every_n_stops_within_the_window(quiet_learner):
    learn = quiet_learner(n_trn=10, cbs=[TerminateOnNaNCallback(check_every=4), PoisonLoss(at=5)])
    learn.fit(3)
    assert learn.train_iter == 8                   # read after batches 4 and 8: stopped 2 batches late
    assert len(learn.recorder.losses) == 7 and math.isnan(float(learn.recorder.losses[-1]))


def test_terminate_on_nan_checks_at_the_end_of_each_phase(quiet_learner):
    learn = quiet_learner(n_trn=10, cbs=[TerminateOnNaNCallback(check_every=100), PoisonLoss(at=9)])
    learn.fit(3)
    assert (learn.epoch, learn.train_iter, len(learn.recorder.values)) == (0, 10, 0)


def test_terminate_on_nan_leaves_validate_alone(quiet_learner):
    learn = quiet_learner(cbs=TerminateOnNaNCallback())
    with torch.no_grad(): learn.model.a.fill_(float('nan'))
    assert math.isnan(learn.validate()[0])


def test_terminate_on_nan_rejects_a_bad_window():
    with pytest.raises(ValueError, match=r'TerminateOnNaNCallback: check_every must be an int >= 1, got 0'):
        TerminateOnNaNCallback(check_every=0)


# ---------------------------------------------------------------- TrackerCallback
def test_tracker_names_the_missing_monitor_and_the_columns(quiet_learner):
    learn = quiet_learner(cbs=EarlyStoppingCallback(monitor='accuracy'))
    with pytest.raises(ValueError) as e: learn.fit(1)
    assert str(e.value) == ("EarlyStoppingCallback(monitor='accuracy') at before_fit: the Recorder has no column "
                            "'accuracy'; it records: train_loss, valid_loss")


def test_tracker_direction_follows_the_name():
    assert TrackerCallback('valid_loss').best is None
    assert TrackerCallback('error_rate').comp.__name__ == 'less'
    assert TrackerCallback('accuracy').comp.__name__ == 'greater'


def test_tracker_min_delta_and_new_best(quiet_learner):
    tracker = TrackerCallback(monitor='scripted_loss', min_delta=0.5)
    learn = quiet_learner(cbs=tracker, metrics=scripted([3., 2.8, 2.4, 2.]))
    seen = []
    learn.fit(4, cbs=at_epoch_end(lambda learn: seen.append((tracker.new_best, tracker.best))))
    assert seen == [(True, 3.), (False, 3.), (True, 2.4), (False, 2.4)]


def test_tracker_metric_improves_upwards(quiet_learner):
    tracker = TrackerCallback(monitor='score')
    learn = quiet_learner(cbs=tracker, metrics=scripted([0.5, 0.4, 0.9], name='score'))
    learn.fit(3)
    assert tracker.best == 0.9


# ---------------------------------------------------------------- EarlyStoppingCallback
def test_early_stopping_stops_after_patience_epochs(quiet_learner, capsys, fa2):
    learn = quiet_learner(cbs=EarlyStoppingCallback(monitor='scripted_loss', patience=2),
                          metrics=scripted([5., 4., 4.5, 4.2, 3., 2.]))
    learn.fit(6)
    printed = capsys.readouterr().out.splitlines()
    assert printed == ['No improvement since epoch 1: early stopping']
    assert printed + [f'epoch={learn.epoch} rows={len(learn.recorder.values)}'] == fa2['early_stopping']


def test_early_stopping_skips_epochs_without_a_complete_row(quiet_learner):
    # validation is cut short every epoch, so the rows have no valid_loss: fastai reads a shifted column
    learn = quiet_learner(cbs=[EarlyStoppingCallback(patience=1), ShortEpochCallback(pct=0.5)])
    learn.fit(3)
    assert learn.epoch == 2 and len(learn.recorder.values) == 3


def test_trackers_stay_quiet_in_validate_and_get_preds(quiet_learner, capsys):
    learn = quiet_learner(cbs=[EarlyStoppingCallback(patience=0), SaveModelCallback()])
    learn.validate()
    learn.get_preds()
    assert capsys.readouterr().out == ''
    assert not (learn.path / 'models').exists()


def test_trackers_switch_off_under_an_lr_finder(quiet_learner):
    class LRFinder(Callback):
        "Stands for the lr finder (what matters is its name, ``lr_finder``)."
    learn = quiet_learner(cbs=EarlyStoppingCallback(monitor='no_such_column', patience=0))
    learn.fit(2, cbs=LRFinder())                  # no error about the column, no stop
    assert learn.epoch == 1 and learn.early_stopping.run


# ---------------------------------------------------------------- SaveModelCallback
def models(learn):
    return f'files={sorted(p.name for p in (learn.path / "models").iterdir())}'


def test_save_model_saves_improvements_and_loads_the_best(quiet_learner, capsys, fa2):
    snaps = Snapshots()
    learn = quiet_learner(cbs=SaveModelCallback(monitor='scripted_loss'), metrics=scripted([3., 1., 2.]), lr=0.1)
    learn.fit(3, cbs=snaps)
    assert capsys.readouterr().out.splitlines() + [models(learn)] == fa2['save_model']
    assert learn.save_model.last_saved_path == learn.path / 'models' / 'model.pth'
    assert same_weights(learn.model, snaps.weights[1]) and not same_weights(learn.model, snaps.weights[2])


def test_save_model_every_n_epochs(quiet_learner, fa2):
    learn = quiet_learner(cbs=SaveModelCallback(every_epoch=2))
    learn.fit(5)
    assert [models(learn)] == fa2['save_model_every_epoch'] == ["files=['model_0.pth', 'model_2.pth', 'model_4.pth']"]


def test_save_model_at_end_saves_the_final_weights_unless_the_fit_fails(quiet_learner):
    learn = quiet_learner(cbs=SaveModelCallback(at_end=True), lr=0.1)
    learn.fit(2)
    file = learn.path / 'models' / 'model.pth'
    assert same_weights(learn.model, torch.load(file, weights_only=True))

    def boom(cb):
        if cb.learn.epoch == 1: raise RuntimeError('boom')
    snaps = Snapshots()
    with pytest.raises(RuntimeError, match='boom'): learn.fit(3, cbs=[snaps, Callback(after_train=boom)])
    saved = torch.load(file, weights_only=True)
    assert not same_weights(learn.model, saved)         # the weights of the failed fit are not saved...
    assert all(torch.equal(v, snaps.weights[0][k]) for k, v in saved.items())   # ...its best epoch's are


def test_save_model_never_loads_a_stale_file(quiet_learner):
    learn = quiet_learner(cbs=SaveModelCallback(monitor='scripted_loss'), metrics=scripted([math.nan] * 2), lr=0.1)
    learn.save('model', with_opt=False)
    stale = {k: v.clone() for k, v in learn.model.state_dict().items()}
    learn.fit(2)                                    # nan never improves: nothing saved, nothing to load
    assert not same_weights(learn.model, stale)


def test_save_model_loads_the_best_when_the_fit_fails(quiet_learner):
    snaps = Snapshots()
    learn = quiet_learner(cbs=SaveModelCallback(monitor='scripted_loss'), metrics=scripted([1., 2., 3.]), lr=0.1)

    def boom(cb):
        if cb.learn.epoch == 2: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): learn.fit(3, cbs=[snaps, Callback(after_train=boom)])
    assert same_weights(learn.model, snaps.weights[0])


def test_save_model_rejects_every_epoch_with_at_end():
    with pytest.raises(ValueError, match='every_epoch and at_end cannot both be set'):
        SaveModelCallback(every_epoch=True, at_end=True)


# ---------------------------------------------------------------- ReduceLROnPlateau
@pytest.mark.parametrize('case,kwargs,values', [('reduce_lr', {'factor': 10.}, [2., 3., 3., 1., 4.]),
                                                  ('reduce_lr_min_lr', {'min_lr': 5e-4}, [2., 3., 3., 3.])])
def test_reduce_lr_on_plateau_divides_the_lr(quiet_learner, capsys, fa2, case, kwargs, values):
    learn = quiet_learner(cbs=ReduceLROnPlateau(monitor='scripted_loss', **kwargs), metrics=scripted(values), lr=0.01)
    lrs = []
    learn.fit(len(values), cbs=at_epoch_end(lambda learn: lrs.append(learn.opt.get_hyper('lr'))))
    assert capsys.readouterr().out.splitlines() + [f'lrs={lrs}'] == fa2[case]


def test_reduce_lr_on_plateau_stops_at_min_lr_in_every_group(quiet_learner, capsys):
    learn = quiet_learner(cbs=ReduceLROnPlateau(monitor='scripted_loss', min_lr=5e-4),
                          metrics=scripted([2., 3., 3., 3.]), splitter=lambda m: [[m.a], [m.b]])
    learn.fit(4, lr=[0.004, 0.01])
    assert [h['lr'] for h in learn.opt.hypers] == [5e-4, 5e-4]
    assert capsys.readouterr().out.splitlines() == ['Epoch 1: reducing lr to 0.001', 'Epoch 2: reducing lr to 0.0005']
