"Recorder: column names, one row of values per epoch, per-batch losses and lrs, JSON export, loss plot."
import json
from pathlib import Path

import pytest
import torch

from tiny import blobs_learner, quiet_learner
from trainlib import (AvgSmoothLoss, Metric, Callback, CancelTrainException, CancelValidException, History, ProgressCallback,
                      Recorder, accuracy, mae, noop)


def fitted(recorder=None, epochs=2, **kwargs):
    "A blobs Learner (3 train batches, 2 valid batches) fitted for ``epochs`` with ``recorder``'s settings."
    learn = blobs_learner(metrics=[accuracy], **kwargs)
    if recorder is not None:
        learn.remove_cb(Recorder)
        learn.add_cb(recorder)
    learn.logger = noop
    learn.fit(epochs)
    return learn


@pytest.mark.parametrize('settings, names', [
    (dict(), ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']),
    (dict(train_metrics=True), ['epoch', 'train_loss', 'train_accuracy', 'valid_loss', 'valid_accuracy', 'time']),
    (dict(valid_metrics=False), ['epoch', 'train_loss', 'accuracy', 'time']),
    (dict(add_time=False), ['epoch', 'train_loss', 'valid_loss', 'accuracy']),
])
def test_metric_names(settings, names):
    assert fitted(Recorder(**settings), epochs=1).recorder.metric_names == names


def test_valid_metrics_false_records_no_validation_column_as_fastai():
    # Figures from fastai 2.8.12 (the same seeded synth_learner(n_trn=2, metrics=[mae]), Recorder.valid_metrics=False):
    # the row is [0, 17.3987, '00:00'], then with train_metrics [17.1424, 3.5356], and validate() returns [].
    learn = quiet_learner(n_trn=2, n_val=2, metrics=[mae])
    learn.remove_cb(ProgressCallback)
    learn.recorder.valid_metrics = False
    rows = []
    learn.logger = rows.append
    learn.fit(1)
    assert learn.recorder.metric_names == ['epoch', 'train_loss', 'mae', 'time']
    assert rows[0][0] == 0 and rows[0][1:-1] == pytest.approx([17.39866065979004]) and rows[0][-1] == '00:00'
    assert learn.recorder.values == [pytest.approx([17.39866065979004])] and len(learn.final_record) == 1
    learn.recorder.train_metrics = True
    learn.fit(1)
    assert learn.recorder.metric_names == ['epoch', 'train_loss', 'mae', 'time']
    assert learn.recorder.values == [pytest.approx([17.142391204833984, 3.535645008087158])]
    assert learn.final_record == learn.recorder.values[-1]
    assert learn.validate() == []


def test_valid_metrics_false_validate_from_a_callback_during_a_fit_returns_no_column_either():
    seen = []
    probe = Callback(after_epoch=lambda cb: seen.append(cb.learn.validate()))
    learn = fitted(Recorder(valid_metrics=False), epochs=1, cbs=probe)
    assert seen == [[]] and len(learn.recorder.values[0]) == 1


def test_one_row_per_epoch_smoothed_train_loss_then_valid_loss_and_metrics():
    learn = fitted()
    rec = learn.recorder
    assert len(rec.values) == 2 and all(len(row) == 3 for row in rec.values)
    train_loss, valid_loss, acc = rec.values[-1]
    assert train_loss == pytest.approx(learn.smooth_loss.item())
    assert [valid_loss, acc] == pytest.approx(learn.validate(), abs=1e-6)
    assert all(isinstance(v, float) for row in rec.values for v in row)


def test_train_metrics_are_computed_on_the_training_batches():
    learn = fitted(Recorder(train_metrics=True), epochs=1)
    train_loss, train_acc, valid_loss, valid_acc = learn.recorder.values[0]
    assert 0 <= train_acc <= 1 and [valid_loss, valid_acc] == pytest.approx(learn.validate(), abs=1e-6)


def test_per_batch_losses_lrs_and_epoch_ends():
    learn = fitted(epochs=2)
    rec = learn.recorder
    assert len(rec.losses) == len(rec.lrs) == 6         # 48 items in batches of 16, two epochs
    assert rec.lrs == [0.1] * 6 and rec.iters == [3, 6]
    assert rec.losses[-1] == learn.smooth_loss and rec.values[-1][0] == pytest.approx(rec.losses[-1].item())


class RawLosses(Callback):
    "Keeps a copy of every training batch's loss."
    def before_fit(self) -> None: self.raw = []
    def after_batch(self) -> None:
        if self.training: self.raw.append(self.loss.detach().clone())


class ReadSometimes(Callback):
    "Reads learn.smooth_loss after some batches (what a progress bar does), keeping what it read."
    order = 60
    def before_fit(self) -> None: self.seen = {}
    def after_batch(self) -> None:
        if self.training and self.train_iter in (2, 3, 9): self.seen[self.train_iter] = self.smooth_loss.clone()


@pytest.mark.parametrize('pending_max', [32, 2, 1])
def test_losses_spread_over_device_buffers_are_the_debiased_moving_average_bit_for_bit(monkeypatch, pending_max):
    monkeypatch.setattr(AvgSmoothLoss, 'chunk', 4)       # 5 epochs of 3 batches: 15 values in 4 buffers
    monkeypatch.setattr(AvgSmoothLoss, 'pending_max', pending_max)   # smoothed in runs of 2, or each batch
    probe, reader = RawLosses(), ReadSometimes()
    learn = fitted(epochs=5, cbs=[probe, reader])
    val, expected = torch.tensor(0.), []
    for i, loss in enumerate(probe.raw, 1):
        val = torch.lerp(loss, val, 0.98)
        expected.append(torch.div(val, 1 - 0.98 ** i))
    losses = learn.recorder.losses
    assert len(losses) == 15 and all(l.dim() == 0 and torch.equal(l, e) for l, e in zip(losses, expected))
    assert learn.smooth_loss is losses[-1] and torch.equal(torch.stack(losses), torch.stack(expected))
    assert json.loads(learn.recorder.to_json())['losses'] == [e.item() for e in expected]
    assert all(torch.equal(v, expected[n - 1]) for n, v in reader.seen.items()) and len(reader.seen) == 3


def test_final_record_is_the_last_row():
    learn = fitted(epochs=1)
    assert learn.final_record == learn.recorder.values[-1]


def test_a_cancelled_training_phase_shortens_the_row():
    stop = Callback(after_batch=lambda cb: _raise(CancelTrainException) if cb.training else None)
    learn = fitted(cbs=stop, epochs=1)
    assert learn.recorder.metric_names[1:3] == ['train_loss', 'valid_loss']
    assert learn.recorder.values == [pytest.approx(learn.validate(), abs=1e-6)]   # [valid_loss, accuracy]


def test_a_cancelled_validation_leaves_only_the_train_loss():
    stop = Callback(before_validate=lambda cb: _raise(CancelValidException))
    learn = fitted(cbs=stop, epochs=1)
    assert len(learn.recorder.values[0]) == 1


def _raise(exc): raise exc


def test_the_history_round_trips_through_json():
    learn = fitted(epochs=2)
    text = learn.recorder.to_json('history.json')
    assert Path('history.json').read_text() == text
    history = History.from_json(text)
    assert history == learn.recorder.history()
    assert history.metric_names == learn.recorder.metric_names and history.values == learn.recorder.values
    assert history.losses == [v.item() for v in learn.recorder.losses] and history.iters == [3, 6]
    assert set(json.loads(text)) == {'metric_names', 'values', 'losses', 'lrs', 'iters', 'hps'}


def test_validate_resets_the_history_as_fastai_does():
    learn = fitted(epochs=2)
    learn.validate()
    assert len(learn.recorder.values) == 1 and learn.recorder.losses == []


def test_plot_loss_writes_a_png_without_a_display():
    learn = quiet_learner(n_trn=8)
    learn.fit(2)
    ax = learn.recorder.plot_loss(skip_start=5)
    train, valid = ax.get_lines()
    assert list(train.get_xdata()) == list(range(5, 16))
    assert list(valid.get_xdata()) == [8, 16]
    assert list(valid.get_ydata()) == [row[1] for row in learn.recorder.values]
    ax.figure.savefig('loss.png')
    assert Path('loss.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_plot_loss_options():
    learn = quiet_learner(n_trn=8)
    learn.fit(1)
    ax = learn.recorder.plot_loss(skip_start=0, with_valid=False, log=True, show_epochs=True)
    assert ax.get_yscale() == 'log'
    assert len(ax.get_lines()) == 2                     # the train loss and one epoch marker
    assert isinstance(learn.recorder.losses[0], torch.Tensor)


def test_a_failing_metric_is_named_in_the_error():
    def broken(pred, targ): raise ValueError('shapes differ')

    class NoValue(Metric):
        def reset(self): pass
        def accumulate(self, learn): pass
        @property
        def value(self): raise RuntimeError('nothing measured')
    with pytest.raises(ValueError) as info:
        blobs_learner(metrics=[broken]).fit(1)
    assert info.value.__notes__ == ['Exception occurred in metric `broken`',
                                    'Exception occurred in `Recorder` when calling event `after_batch`']
    with pytest.raises(RuntimeError) as info:
        blobs_learner(metrics=[NoValue()]).fit(1)
    assert info.value.__notes__ == ['Exception occurred in metric `no_value`',
                                    'Exception occurred in `Recorder` when calling event `after_validate`']
