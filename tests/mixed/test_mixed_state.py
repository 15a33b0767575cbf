"""One live state across generations: a chain v1, v2, v1, v2 (core orders 5, 10, 15, 20) where each link changes
the batch, the output and the loss; every link records what it saw, and every step is checked by hand."""
import pytest
import torch
import torch.nn.functional as F

import trainlib
import trainlib.v1 as v1

from mixed_setup import LR, TRAIN_X, TRAIN_Y, VALID_X, VALID_Y, W0, fit, v1_learner, v2_learner, weight

# each link: (input change, target change, output change, loss change)
LINKS = {'a': (lambda x: x + 1, lambda y: y, lambda o: o + 10, lambda l: l + 1),
         'b': (lambda x: x * 2, lambda y: y, lambda o: o * 3, lambda l: l * 2),
         'c': (lambda x: x - 3, lambda y: y + 100, lambda o: o - 1, lambda l: l + 3),
         'd': (lambda x: x * 5, lambda y: y, lambda o: o * 0.5, lambda l: l * 10)}


def v1_link(tag, order, seen, legacy):
    """A fastai-1 link at ``_order``: 1.0.47+ dict returns, or (``legacy``) 1.0.46 positional returns."""
    fx, fy, fo, fl = LINKS[tag]
    def on_batch_begin(self, last_input, last_target, train, **kwargs):
        seen.append((tag, 'x', train, last_input.clone(), last_target.clone()))
        new = fx(last_input), fy(last_target)
        return new if legacy else {'last_input': new[0], 'last_target': new[1]}
    def on_loss_begin(self, last_output, train, **kwargs):
        seen.append((tag, 'out', train, last_output.detach().clone()))
        return fo(last_output) if legacy else {'last_output': fo(last_output)}
    def on_backward_begin(self, last_loss, **kwargs):
        seen.append((tag, 'loss', True, last_loss.detach().clone()))
        return fl(last_loss) if legacy else {'last_loss': fl(last_loss)}
    def on_batch_end(self, last_loss, train, **kwargs):
        seen.append((tag, 'end', train, last_loss.clone()))
    return type(f'OldLink{tag.upper()}', (v1.Callback,), dict(
        _order=order, on_batch_begin=on_batch_begin, on_loss_begin=on_loss_begin,
        on_backward_begin=on_backward_begin, on_batch_end=on_batch_end))()


def v2_link(tag, order, seen):
    "A fastai-2 link at ``order``: changes learn.xb/yb, learn.pred and (training) learn.loss_grad."
    fx, fy, fo, fl = LINKS[tag]
    def before_batch(self):
        learn = self.learn
        seen.append((tag, 'x', learn.training, learn.xb[0].clone(), learn.yb[0].clone()))
        learn.xb, learn.yb = (fx(learn.xb[0]),), (fy(learn.yb[0]),)
    def after_pred(self):
        seen.append((tag, 'out', self.learn.training, self.learn.pred.detach().clone()))
        self.learn.pred = fo(self.learn.pred)
    def after_loss(self):
        if not self.learn.training: return
        seen.append((tag, 'loss', True, self.learn.loss_grad.detach().clone()))
        self.learn.loss_grad = fl(self.learn.loss_grad)
    def after_batch(self):
        seen.append((tag, 'end', self.learn.training, self.learn.loss.detach().clone()))
    return type(f'NewLink{tag.upper()}', (trainlib.Callback,), dict(
        order=order, before_batch=before_batch, after_pred=after_pred, after_loss=after_loss,
        after_batch=after_batch))()


def chain(seen):
    "v1 (_order -50: core 5), v2 (10), v1 (_order -40: core 15, old-style returns), v2 (20), given in reverse order."
    return [v2_link('d', 20, seen), v1_link('c', -40, seen, legacy=True), v2_link('b', 10, seen),
            v1_link('a', -50, seen, legacy=False)]


def expected_batch(x, y, w, train):
    """What each link sees at each step of one batch, the loss the loop reports and the new weight."""
    w = torch.tensor([[w]], requires_grad=True)
    steps, tags = [], 'abcd'
    for t in tags:
        steps.append((t, 'x', train, x, y))
        x, y = LINKS[t][0](x), LINKS[t][1](y)
    out = x @ w.T
    for t in tags:
        steps.append((t, 'out', train, out.detach()))
        out = LINKS[t][2](out)
    loss = F.mse_loss(out, y)
    if not train: return steps, loss.detach(), w.item()
    reported = loss
    for t in tags:
        steps.append((t, 'loss', True, loss.detach()))
        loss = LINKS[t][3](loss)
        if t in 'ac': reported = loss                 # v1 returns set the reported loss too; v2 sets loss_grad only
    loss.backward()
    return steps, reported.detach(), (w - LR * w.grad).item()


def check_seen(seen, expected):
    assert [s[:3] for s in seen] == [e[:3] for e in expected]
    for got, exp in zip(seen, expected):
        for g, e in zip(got[3:], exp[3:]): torch.testing.assert_close(g, e, msg=lambda m: f'{got[:3]}: {m}')


@pytest.mark.parametrize('make', [v2_learner, v1_learner], ids=['v2-Learner', 'v1-Learner'])
def test_a_chain_of_alternating_callbacks_composes_at_every_step(make):
    seen = []
    learn = make()
    fit(learn, cbs=chain(seen))
    w, expected = W0, []
    for i in (0, 2):                                   # two training batches, the weight moves after each
        steps, reported, w_new = expected_batch(TRAIN_X[i:i + 2], TRAIN_Y[i:i + 2], w, train=True)
        expected += steps + [(t, 'end', True, reported) for t in 'abcd']
        w = w_new
    steps, val_loss, _ = expected_batch(VALID_X, VALID_Y, w, train=False)
    expected += steps + [(t, 'end', False, val_loss) for t in 'abcd']
    check_seen(seen, expected)
    assert weight(learn) == pytest.approx(w, rel=1e-6)
    row = learn.recorder.values[-1]                    # v2 Recorder, or the v1 Recorder's v2 face
    assert row[1] == pytest.approx(val_loss.item(), rel=1e-6) == learn.final_record[1]


# ---------------------------------------------------------------- metrics: how each generation sees the other's
def first_input(out, *targets):
    "A metric both generations can use: the mean prediction."
    return out.mean()


class LastMetrics(v1.Callback):
    "Records last_metrics as a v1 callback sees it, and adds a column of its own."
    def __init__(self): self.seen = []
    def on_epoch_end(self, last_metrics, **kwargs):
        self.seen.append([float(v) for v in last_metrics])
        return {'last_metrics': last_metrics + [42.]}


class RowReader(trainlib.Callback):
    "Records what a v2 callback reading the Recorder sees at the end of each epoch (order 60, as trackers)."
    order = 60
    def __init__(self): self.rows = []
    def after_epoch(self): self.rows.append((list(self.learn.final_record), list(self.learn.recorder.values[-1]),
                                             self.learn.recorder.metric_names))


@pytest.mark.parametrize('make', [v2_learner, v1_learner], ids=['v2-Learner', 'v1-Learner'])
def test_metrics_cross_generations(make):
    seen, v1_cb, v2_cb = [], LastMetrics(), RowReader()
    learn = make(metrics=[first_input])
    fit(learn, 2, cbs=[v1_cb, v2_cb])
    valid_loss, metric = learn.recorder.values[-1][1:3]
    # v1 callbacks: last_metrics = [valid_loss, *the Learner's metrics] (a v2 Learner's v2 metrics included)
    assert v1_cb.seen[-1] == pytest.approx([valid_loss, metric])
    assert metric == pytest.approx((VALID_X * weight(learn)).mean().item(), rel=1e-6)
    # v2 callbacks: learn.final_record and recorder.values of this epoch, with metric_names naming the columns;
    # what the v1 callback added to last_metrics (after the Recorder) is not part of the row, as in fastai 1
    final_record, row, names = v2_cb.rows[-1]
    assert final_record == row == pytest.approx(learn.recorder.values[-1]) and len(row) == 3
    assert names == ['epoch', 'train_loss', 'valid_loss', 'first_input', 'time'] and len(v2_cb.rows) == 2
    assert learn.smooth_loss is not None and float(learn.smooth_loss) == pytest.approx(row[0])


def test_a_v2_metric_in_a_v1_learner_is_driven_as_a_v1_metric():
    learn = v1_learner(metrics=[trainlib.AccumMetric(first_input), trainlib.mae])
    res = learn.validate()
    preds = VALID_X * W0
    assert [float(v) for v in res[1:]] == pytest.approx([preds.mean().item(), (preds - VALID_Y).abs().mean().item()])
    fit(learn)
    assert learn.recorder.names[3:5] == ['first_input', 'mae'] and len(learn.recorder.metrics[0]) == 2


def test_v1_sees_a_v2_fastbook_style_loss_change():
    "A v2 callback that changes learn.loss in after_loss (fastbook style, leaving loss_grad): v1 reads that loss."
    seen = []
    class Penalty(trainlib.Callback):
        order = 0
        def after_loss(self):
            if self.training: self.learn.loss = self.learn.loss + 1
    class Reader(v1.Callback):
        def on_backward_begin(self, last_loss, **kwargs): seen.append(last_loss.detach().clone())
    learn = v2_learner(cbs=[Penalty(), Reader()])
    fit(learn)
    raw = F.mse_loss(TRAIN_X[:2] * W0, TRAIN_Y[:2])
    assert seen[0].item() == pytest.approx(raw.item() + 1)
    assert len(seen) == 2                              # two training batches


def test_v2_trackers_and_loggers_work_on_a_v1_learner(capsys):
    "They read the v1 Recorder's row (values, metric_names) and get it as a logger row, as from the v2 Recorder."
    learn = v1_learner(callbacks=[trainlib.SaveModelCallback(), trainlib.EarlyStoppingCallback(patience=1)],
                       callback_fns=[trainlib.CSVLogger])
    learn.fit(4, 0.3)                                  # too high an lr: the validation loss gets worse at once
    rows = [line.split(',') for line in open('history.csv').read().splitlines()]
    assert rows[0] == ['epoch', 'train_loss', 'valid_loss', 'time'] and len(rows) == 3
    assert [float(r[2]) for r in rows[1:]] == pytest.approx([v for _, v in learn.recorder.values])
    assert float(learn.recorder.val_losses[0]) < float(learn.recorder.val_losses[1])
    out = capsys.readouterr().out
    assert 'Better model found at epoch 0' in out and 'No improvement since epoch 0: early stopping' in out
    torch.testing.assert_close(learn.model.weight, torch.load('models/model.pth', weights_only=True)['weight'])


def test_each_v1_callback_sees_what_ran_before_it_in_the_same_event():
    """In one event, a v1 callback sees the change a v1 return made, a v1 callback writing ``learn`` directly and a
    v2 callback in between (even an in-place change of ``learn.loss``)."""
    seen = []
    def reader(tag, order):
        def on_loss_begin(self, last_output, **kwargs): seen.append((tag, 'out', last_output.detach().clone()))
        def on_backward_begin(self, last_loss, **kwargs): seen.append((tag, 'loss', last_loss.detach().clone()))
        return type(f'Reader{tag}', (v1.Callback,), dict(_order=order, on_loss_begin=on_loss_begin,
                                                          on_backward_begin=on_backward_begin))()
    class Triple(v1.Callback):
        _order = -49
        def on_loss_begin(self, last_output, **kwargs): return {'last_output': last_output * 3}
    class Direct(v1.Callback):
        _order = -47
        def __init__(self, learn): self.learn = learn
        def on_loss_begin(self, **kwargs): self.learn.pred = self.learn.pred + 1
    class Doubler(trainlib.Callback):
        order = 10                                     # between v1 _order -46 (core 9) and -40 (core 15)
        def after_pred(self): self.learn.pred = self.learn.pred * 2
        def after_loss(self):
            if self.training: self.learn.loss.mul_(2)
    learn = v1_learner()
    fit(learn, cbs=[reader('0', -50), Triple(), reader('1', -48), Direct(learn), reader('2', -46), Doubler(),
                    reader('3', -40)])
    out = TRAIN_X[:2] * W0
    want_out = [out, out * 3, out * 3 + 1, (out * 3 + 1) * 2]
    loss = F.mse_loss(want_out[-1], TRAIN_Y[:2])
    want = [(t, 'out', o) for t, o in zip('0123', want_out)] + [(t, 'loss', loss) for t in '012'] + [('3', 'loss', loss * 2)]
    check_seen([(t, k, True, v) for t, k, v in seen[:8]], [(t, k, True, v) for t, k, v in want])
