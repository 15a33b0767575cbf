"""A callback written for fastai <= 1.0.46 (positional returns: a new batch, a new output, a new loss,
True to stop) runs unchanged, against tests/golden/legacy046_demo.txt (real fastai 1.0.46).

The one decided difference: epochs are 0-based at on_epoch_end, as in 1.0.61 (1.0.46 had already
incremented them), so the demo's ``return epoch >= 2`` stops after three epochs instead of two."""
import ast
import re
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

from trainlib.v1 import Callback, DataBunch, Learner, accuracy

GOLDEN = Path(__file__).resolve().parents[1] / 'golden' / 'legacy046_demo.txt'


class Legacy(Callback):
    "The demo's callback, as written for fastai 1.0.46."
    def __init__(self, log): self.log = log
    def on_train_begin(self, **kw): self.log.append(('train_begin', kw['epoch'])); return 'ignored'
    def on_epoch_begin(self, **kw): self.log.append(('epoch_begin', kw['epoch'])); return 'ignored'
    def on_batch_begin(self, last_input, last_target, train, **kw):
        self.log.append(('batch_begin', train)); return last_input * 0.5, last_target
    def on_loss_begin(self, last_output, **kw): return last_output * 1.5
    def on_backward_begin(self, last_loss, **kw): return last_loss * 2
    def on_backward_end(self, **kw): return False
    def on_step_end(self, **kw): return None
    def on_batch_end(self, train, num_batch, last_loss, **kw):
        self.log.append(('batch_end', train, num_batch, round(float(last_loss), 4)))
        return train and num_batch == 1
    def on_epoch_end(self, epoch, last_metrics, **kw):
        self.log.append(('epoch_end', epoch, [round(float(x), 4) for x in last_metrics]))
        return epoch >= 2
    def on_train_end(self, exception, **kw): self.log.append(('train_end', exception))


def golden():
    lines = GOLDEN.read_text().splitlines()
    rows = [l.split() for l in lines if re.match(r'^\d+\s', l)]
    log = [ast.literal_eval(l) for l in lines if l.startswith('(')]
    tail = re.match(r'recorder.nb_batches (\[.*\]) losses (\[.*\])', lines[-1])
    return rows, log, ast.literal_eval(tail.group(1)), ast.literal_eval(tail.group(2))


@pytest.fixture
def run(tmp_path, capsys):
    torch.manual_seed(0)
    X = torch.randn(40, 4); y = (X.sum(1) > 0).long()
    data = DataBunch.create(TensorDataset(X[:24], y[:24]), TensorDataset(X[24:], y[24:]), bs=8, path=tmp_path,
                            device='cpu')
    learn = Learner(data, nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)), loss_func=nn.CrossEntropyLoss(),
                    metrics=[accuracy])
    log = []
    learn.fit(5, 1e-3, callbacks=[Legacy(log)])
    return learn, log, capsys.readouterr().out


def test_legacy_callback_matches_fastai_1_0_46(run):
    learn, log, out = run
    rows, exp_log, exp_nb, exp_losses = golden()
    # the first two epochs are fastai 1.0.46's, with 0-based epochs at on_epoch_end
    exp = [(e[0], e[1] - 1, e[2]) if e[0] == 'epoch_end' else e for e in exp_log[:-1]]
    assert log[:len(exp)] == exp
    # then a third epoch, stopped by ``epoch >= 2``; on_train_end gets False
    assert [e[:2] for e in log[len(exp):] if e[0] in ('epoch_begin', 'epoch_end', 'train_end')] == \
        [('epoch_begin', 2), ('epoch_end', 2), ('train_end', False)]
    assert learn.recorder.nb_batches == exp_nb + [2]
    assert [round(float(x), 4) for x in learn.recorder.losses[:4]] == exp_losses
    # the printed table: same numbers, 0-based epochs, a time column
    got_rows = [l.split() for l in out.splitlines() if re.match(r'^\d+\s', l)]
    assert [r[1:4] for r in got_rows[:2]] == [r[1:4] for r in rows]
    assert [r[0] for r in got_rows] == ['0', '1', '2'] and all(re.match(r'\d\d:\d\d$', r[4]) for r in got_rows)
    assert out.splitlines()[0] == 'epoch     train_loss  valid_loss  accuracy  time    '
