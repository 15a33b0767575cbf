"CSVLogger: the file it writes, the logger it chains to and gives back."
import pytest

from trainlib import CSVLogger, Callback, accuracy, noop
from trainlib.testing import synth_learner


def lines(path):
    return path.read_text().splitlines()


def test_csv_logger_writes_the_header_then_a_row_per_epoch(quiet_learner, fa2):
    rows = []
    learn = quiet_learner(cbs=CSVLogger())
    learn.logger = rows.append
    learn.fit(2)
    header, *body = lines(learn.path / 'history.csv')
    cells = [line.split(',') for line in body]
    assert [header] + [f'row {i}: {len(c)} cells, epoch {c[0]}, time {c[-1]}' for i, c in enumerate(cells)] \
        == fa2['csv_logger']
    assert body == [','.join(str(c) for c in row) for row in rows]      # each row also went to the old logger
    assert [b.split(',')[:3] for b in body] == [[str(e)] + [str(v) for v in vals]
                                                for e, vals in enumerate(learn.recorder.values)]
    assert learn.logger == rows.append and learn.csv_logger.read_log()[0] == header.split(',')


def test_csv_logger_appends_and_writes_under_a_folder(quiet_learner):
    learn = quiet_learner(cbs=CSVLogger(fname='logs/run.csv', append=True))
    learn.fit(1); learn.fit(2)
    assert [line.split(',')[0] for line in lines(learn.path / 'logs' / 'run.csv')] == ['epoch', '0', 'epoch', '0', '1']


def test_csv_logger_gives_the_logger_back_when_the_fit_fails(quiet_learner):
    learn = quiet_learner(cbs=CSVLogger())

    def boom(cb):
        if cb.learn.epoch == 1: raise RuntimeError('boom')
    with pytest.raises(RuntimeError, match='boom'): learn.fit(3, cbs=Callback(after_train=boom))
    assert learn.logger is noop and learn.csv_logger.file is None
    assert len(lines(learn.path / 'history.csv')) == 2       # the header and epoch 0


def test_csv_logger_is_left_alone_by_validate(quiet_learner):
    learn = quiet_learner(cbs=CSVLogger(), metrics=accuracy)
    learn.fit(1)
    before = (learn.path / 'history.csv').read_text()
    learn.validate()
    learn.get_preds()
    assert (learn.path / 'history.csv').read_text() == before and learn.logger is noop


def test_csv_logger_behind_the_progress_table(capsys):
    learn = synth_learner(cbs=CSVLogger())
    learn.fit(1)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ['epoch', 'train_loss', 'valid_loss', 'time'] and printed[1].startswith('0 ')
    assert learn.logger is print                              # fastai leaves the progress table's writer here
    assert len(lines(learn.path / 'history.csv')) == 2
