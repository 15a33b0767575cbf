"""TerminateOnNaNCallback, TrackerCallback and its subclasses, TrackEpochCallback: what they monitor, what they
say, and where trainlib does better than fastai 1.0.61 (the runs against fastai: test_v1_stock_vs_fastai)."""
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from fa1_stock_scenarios import learner, make_data
from trainlib.v1 import (Callback, EarlyStoppingCallback, ReduceLROnPlateauCallback, SaveModelCallback,
                         TerminateOnNaNCallback, TrackEpochCallback, TrackerCallback, accuracy)


def quiet(**kwargs):
    return learner(silent=True, **kwargs)


def test_an_unknown_monitor_fails_when_training_starts():
    learn = quiet(metrics=[accuracy])
    with pytest.raises(ValueError, match=r"EarlyStoppingCallback\(monitor='acc'\) at on_train_begin: the Recorder has "
                                         r"no column 'acc'; it records: train_loss, valid_loss, accuracy"):
        learn.fit(1, callbacks=[EarlyStoppingCallback(learn, monitor='acc')])


@pytest.mark.parametrize('make, words', [
    (lambda l: TrackerCallback(l, mode='best'), "TrackerCallback: mode must be 'auto', 'min' or 'max', got 'best'"),
    (lambda l: SaveModelCallback(l, every='batch'), "SaveModelCallback: every must be 'improvement' or 'epoch', "
                                                    "got 'batch'"),
    (lambda l: ReduceLROnPlateauCallback(l, factor=0), 'ReduceLROnPlateauCallback: factor must be > 0, got 0')])
def test_bad_settings_fail_when_built(make, words):
    with pytest.raises(ValueError, match=words): make(quiet())


def test_mode_auto_minimises_losses_and_errors_and_maximises_the_rest():
    learn = quiet()
    assert TrackerCallback(learn).operator.__name__ == 'less'
    assert TrackerCallback(learn, monitor='error_rate').operator.__name__ == 'less'
    assert TrackerCallback(learn, monitor='accuracy').operator.__name__ == 'greater'
    assert TrackerCallback(learn, monitor='accuracy', mode='min').operator.__name__ == 'less'


def test_the_monitored_value_of_an_epoch():
    seen = []
    class Watch(TrackerCallback):
        def on_epoch_end(self, **kwargs): seen.append(self.get_monitor_value())
    learn = quiet(metrics=[accuracy], add_time=True)
    learn.fit(1, callbacks=[Watch(learn, monitor='train_loss'), Watch(learn, monitor='accuracy')])
    r = learn.recorder
    assert seen[0] == pytest.approx(float(r.losses[-1])) and seen[1] == r.metrics[-1][0]


def test_save_model_loads_only_what_this_fit_saved():
    "Without any validation loss nothing improves: fastai loaded a stale 'bestmodel' file; trainlib leaves the weights."
    learn = quiet(data=make_data(n_valid=0))
    learn.save('bestmodel')                                # a stale file of the untrained model
    untrained = [p.detach().clone() for p in learn.model.parameters()]
    learn.fit(1, 1e-2, callbacks=[SaveModelCallback(learn)])
    assert not any(torch.equal(a, p) for a, p in zip(untrained, learn.model.parameters()))


def test_save_model_resuming_from_a_missing_epoch_file(capsys):
    learn = learner(add_time=False)
    learn.fit_one_cycle(2, 1e-2, start_epoch=1, callbacks=[SaveModelCallback(learn, every='epoch', name='m')])
    out = capsys.readouterr().out.splitlines()
    assert out[1] == 'Model m_0 not found.' and sorted(p.name for p in Path('models').iterdir()) == ['m_1.pth']


def test_reduce_lr_waits_while_the_lr_is_at_min_lr(capsys):
    "The default min_lr (1e-3) often prevents any reduction: the lr must be above it."
    waits = []
    class Watch(ReduceLROnPlateauCallback):
        def on_epoch_end(self, **kwargs):
            super().on_epoch_end(**kwargs)
            waits.append(self.wait)
    learn = learner()
    learn.fit(6, 0.3, callbacks=[Watch(learn, patience=0, min_lr=0.3)])
    assert max(waits) >= 1 and 'reducing lr' not in capsys.readouterr().out and learn.opt.lr == 0.3


def test_terminate_on_nan_in_validation():
    "A NaN validation loss stops the validation at that batch and the fit at the epoch's end."
    def loss(out, y): return F.cross_entropy(out, y) * (1 if torch.is_grad_enabled() else float('nan'))
    learn = quiet(loss_func=loss)
    seen = []
    class Count(Callback):
        def on_batch_end(self, train, **kwargs): seen.append(train)
    learn.fit(3, 1e-2, callbacks=[TerminateOnNaNCallback(), Count()])
    assert seen == [True] * 8 + [False] and learn.recorder.nb_batches == [8]


def test_terminate_on_nan_leaves_get_preds_alone():
    learn = quiet(callbacks=[TerminateOnNaNCallback()])
    preds, targets = learn.get_preds()
    assert preds.shape == (32, 2) and targets.shape == (32,)


def test_track_epoch_resumes_after_the_saved_epoch():
    learn = quiet(callback_fns=[TrackEpochCallback])
    learn.fit(2, 1e-2)
    assert Path('models/epoch').read_text() == '1'
    learn.fit(3, 1e-2)                                  # starts at epoch 2: one epoch left
    assert learn.recorder.nb_batches == [8] and Path('models/epoch').read_text() == '2'
    learn.track_epoch_callback.restart()
    assert not Path('models/epoch').exists()


def test_track_epoch_keeps_the_last_saved_epoch_when_a_write_fails(monkeypatch):
    learn = quiet(callback_fns=[TrackEpochCallback])
    learn.fit(2, 1e-2)

    def crash(src, dst): raise OSError('power cut')
    monkeypatch.setattr(os, 'replace', crash)
    with pytest.raises(OSError, match='power cut'):
        learn.fit(3, 1e-2)
    assert Path('models/epoch').read_text() == '1' and os.listdir('models') == ['epoch']


def test_track_epoch_with_an_epoch_offset():
    "fastai 1.0.61 ignored epoch_offset (and then failed on the missing start_epoch): trainlib starts there."
    learn = quiet()
    learn.fit(3, 1e-2, callbacks=[TrackEpochCallback(learn, epoch_offset=2)])
    assert learn.recorder.nb_batches == [8] and Path('models/epoch').read_text() == '2'
