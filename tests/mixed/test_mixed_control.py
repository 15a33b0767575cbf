"""Every way to stop or skip, crossing generations: v1 flags steering v2 callbacks, v2 Cancel exceptions seen by
v1 callbacks (as their flags), on both Learners, with the events each side sees and the weight updates."""
import pytest
import torch
import torch.nn.functional as F

import trainlib
import trainlib.v1 as v1
from trainlib import (CancelBackwardException, CancelBatchException, CancelEpochException, CancelFitException,
                      CancelStepException, CancelTrainException, CancelValidException)

from mixed_setup import LR, TRAIN_X, TRAIN_Y, VALID_X, VALID_Y, W0, fit, v1_learner, v2_learner, weight

BOTH = pytest.mark.parametrize('make', [v2_learner, v1_learner], ids=['v2-Learner', 'v1-Learner'])
FLAGS = ('train', 'skip_bwd', 'skip_step', 'skip_zero', 'stop_epoch')


class V2Trace(trainlib.Callback):
    "Records every event (order 30, before default v1 callbacks at 55); raises ``exc`` at ``event`` when ``when(learn)``."
    order = 30

    def __init__(self, trace, event=None, exc=None, when=lambda learn: True):
        self.trace, self.event, self.exc, self.when = trace, event, exc, when

    def __call__(self, event_name):
        if event_name == 'after_create': return
        self.trace.append(('v2', event_name))
        if event_name == self.event and self.when(self.learn): raise self.exc


class V1Trace(v1.Callback):
    "Records its events with the state that matters there; ``returns`` maps an event to f(state) -> return value."

    def __init__(self, trace, **returns): self.trace, self.returns = trace, returns

    def _log(self, ev, info, kwargs):
        self.trace.append(('v1', ev, info))
        f = self.returns.get(ev)
        return f(kwargs) if f is not None else None

    def on_train_begin(self, **kw): return self._log('train_begin', None, kw)
    def on_epoch_begin(self, **kw): return self._log('epoch_begin', None, kw)
    def on_batch_begin(self, **kw): return self._log('batch_begin', kw['train'], kw)
    def on_backward_begin(self, **kw): return self._log('backward_begin', None, kw)
    def on_backward_end(self, **kw): return self._log('backward_end', kw['skip_bwd'], kw)
    def on_step_end(self, **kw): return self._log('step_end', kw['skip_step'], kw)
    def on_batch_end(self, **kw): return self._log('batch_end', {k: kw[k] for k in FLAGS}, kw)
    def on_epoch_end(self, **kw):
        return self._log('epoch_end', (kw['epoch'], kw['num_batch'], kw['last_metrics'][0] is None), kw)
    def on_train_end(self, **kw):
        return self._log('train_end', (kw['epoch'], kw.get('stop_training'), kw['exception']), kw)


def v2_events(trace): return [e for g, e, *_ in trace if g == 'v2']
def v1_events(trace, ev): return [t[2] for t in trace if t[0] == 'v1' and t[1] == ev]


def grad(w, i):
    "The gradient of training batch ``i`` (0 or 1) at weight ``w``."
    x, y = TRAIN_X[2 * i:2 * i + 2], TRAIN_Y[2 * i:2 * i + 2]
    return (2 * (x * w - y) * x).mean().item()


def run(make, *cbs, n_epoch=1):
    learn = make()
    fit(learn, n_epoch, cbs=list(cbs))
    return learn


TRAIN_BATCH = ['before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward', 'before_step',
               'after_step', 'after_batch']


# ---------------------------------------------------------------- v1 flags -> the core loop and v2 callbacks
@BOTH
def test_v1_skip_bwd_cancels_backward_for_v2(make):
    trace = []
    learn = run(make, V1Trace(trace, backward_begin=lambda s: {'skip_bwd': True}), V2Trace(trace))
    batch = v2_events(trace)[v2_events(trace).index('before_batch'):][:9]
    assert batch == ['before_batch', 'after_pred', 'after_loss', 'after_cancel_backward', 'after_backward',
                     'before_step', 'after_step', 'after_batch', 'before_batch']          # v2 before_backward skipped
    assert v1_events(trace, 'backward_end') == [True, True] and weight(learn) == W0    # no gradient, no move


@BOTH
def test_v1_skip_step_cancels_the_step_for_v2(make):
    trace = []
    learn = run(make, V1Trace(trace, backward_end=lambda s: True), V2Trace(trace))     # 1.0.46 style: True
    assert 'before_step' not in v2_events(trace) and v2_events(trace).count('after_cancel_step') == 2
    assert v1_events(trace, 'step_end') == [True, True] and weight(learn) == W0


@BOTH
def test_v1_skip_zero_keeps_the_gradients_for_the_next_batch(make):
    trace = []
    learn = run(make, V1Trace(trace, step_end=lambda s: {'skip_zero': s['iteration'] == 0}))
    w1 = W0 - LR * grad(W0, 0)
    assert weight(learn) == pytest.approx(w1 - LR * (grad(W0, 0) + grad(w1, 1)), rel=1e-6)
    assert [f['skip_zero'] for f in v1_events(trace, 'batch_end')[:2]] == [True, False]


@BOTH
def test_v1_stop_epoch_ends_the_phase_for_v2(make):
    trace = []
    learn = run(make, V1Trace(trace, batch_end=lambda s: True), V2Trace(trace), n_epoch=2)
    ev = v2_events(trace)
    assert ev[ev.index('after_batch') + 1:][:3] == ['after_cancel_train', 'after_train', 'before_validate']
    assert ev.count('after_cancel_train') == ev.count('after_cancel_validate') == 2   # training and validation
    assert v1_events(trace, 'epoch_end') == [(0, 1, False), (1, 1, False)]            # one train batch per epoch
    w1 = W0 - LR * grad(W0, 0)
    assert weight(learn) == pytest.approx(w1 - LR * grad(w1, 0), rel=1e-6)


@BOTH
def test_v1_stop_training_cancels_the_fit_for_v2(make):
    trace = []
    stop_first = lambda s: {'stop_training': True} if s['iteration'] == 0 else None
    run(make, V1Trace(trace, batch_end=stop_first), V2Trace(trace), n_epoch=3)
    ev = v2_events(trace)
    assert ev[-4:] == ['after_validate', 'after_epoch', 'after_cancel_fit', 'after_fit']
    assert ev.count('before_epoch') == 1 and ev.count('after_batch') == 3              # the epoch ran to its end
    assert v1_events(trace, 'train_end') == [(1, True, False)]


@BOTH
def test_v1_skip_validate_cancels_validation_for_v2(make):
    trace = []
    learn = run(make, V1Trace(trace, train_begin=lambda s: {'skip_validate': True}), V2Trace(trace), n_epoch=2)
    ev = v2_events(trace)
    assert 'before_validate' not in ev and ev.count('after_cancel_validate') == 2
    assert ev.count('after_batch') == 4 and learn.model.training                      # no validation batch
    assert v1_events(trace, 'epoch_end') == [(0, 2, True), (1, 2, True)]


# ---------------------------------------------------------------- v2 Cancel exceptions -> v1 callbacks
@BOTH
def test_v2_cancel_batch_is_a_batch_v1_sees_end_with_its_flags_set(make):
    trace = []
    first = lambda learn: learn.training and learn.iter == 0
    learn = run(make, V1Trace(trace), V2Trace(trace, 'before_batch', CancelBatchException, first))
    assert [t[1] for t in trace if t[0] == 'v1'][:4] == ['train_begin', 'epoch_begin', 'batch_end', 'batch_begin']
    ends = v1_events(trace, 'batch_end')
    assert ends[0] == dict(train=True, skip_bwd=True, skip_step=True, skip_zero=True, stop_epoch=False)
    assert ends[1] == dict(train=True, skip_bwd=False, skip_step=False, skip_zero=False, stop_epoch=False)
    assert v1_events(trace, 'epoch_end') == [(0, 2, False)]                           # both batches counted
    assert weight(learn) == pytest.approx(W0 - LR * grad(W0, 1), rel=1e-6)            # only batch 1 moved it


@BOTH
def test_v2_cancel_backward_and_step_are_v1_skip_bwd_and_skip_step(make):
    trace = []
    learn = run(make, V1Trace(trace), V2Trace(trace, 'before_backward', CancelBackwardException))
    assert v1_events(trace, 'backward_end') == [True, True] and weight(learn) == W0
    assert [f['skip_bwd'] for f in v1_events(trace, 'batch_end')] == [True, True, False]   # (the valid batch)
    trace = []
    learn = run(make, V1Trace(trace), V2Trace(trace, 'before_step', CancelStepException))
    assert v1_events(trace, 'step_end') == [True, True] and weight(learn) == W0
    assert [f['skip_step'] for f in v1_events(trace, 'batch_end')] == [True, True, False]


@BOTH
def test_v2_cancel_train_raised_before_v1s_batch_end_still_counts_the_batch(make):
    trace = []
    first = lambda learn: learn.training and learn.iter == 0
    run(make, V1Trace(trace), V2Trace(trace, 'after_batch', CancelTrainException, first))
    ev = [t[1] for t in trace if t[0] == 'v1']
    assert ev == ['train_begin', 'epoch_begin', 'batch_begin', 'backward_begin', 'backward_end', 'step_end',
                  'batch_begin', 'batch_end', 'epoch_end', 'train_end']     # batch 0 ended before v1 got there
    assert v1_events(trace, 'epoch_end') == [(0, 1, False)] and v1_events(trace, 'train_end') == [(1, False, False)]


@BOTH
def test_v2_cancel_validate_and_epoch_leave_v1_without_a_validation_loss(make):
    trace = []
    learn = run(make, V1Trace(trace), V2Trace(trace, 'before_validate', CancelValidException), n_epoch=2)
    assert all(f['train'] for f in v1_events(trace, 'batch_end'))                  # no validation batch
    assert v1_events(trace, 'epoch_end') == [(0, 2, True), (1, 2, True)]
    v1_row = isinstance(learn.recorder, v1.Recorder)                                # its row: [train_loss, None]
    assert learn.recorder.values[-1][1:] == ([None] if v1_row else [])              # no valid_loss for v2 either
    trace = []
    run(make, V1Trace(trace), V2Trace(trace, 'before_train', CancelEpochException), n_epoch=2)
    assert [t[1] for t in trace if t[0] == 'v1'] == ['train_begin'] + ['epoch_begin', 'epoch_end'] * 2 + ['train_end']
    assert v1_events(trace, 'epoch_end') == [(0, 0, True), (1, 0, True)]
    assert v1_events(trace, 'train_end') == [(2, False, False)]


@BOTH
def test_v2_cancel_fit_after_v1s_epoch_end_is_stop_training_for_v1(make):
    "A v2 tracker (order 63) stops the fit at after_epoch: v1 callbacks (55) had their on_epoch_end."
    trace = []
    class Stop(V2Trace): order = 63
    learn = run(make, V1Trace(trace), Stop(trace, 'after_epoch', CancelFitException), n_epoch=3)
    assert v1_events(trace, 'epoch_end') == [(0, 2, False)]
    assert v1_events(trace, 'train_end') == [(1, True, False)]                       # one epoch done; stopped
    assert len(learn.recorder.values) == 1


@BOTH
def test_a_v1_callback_may_raise_a_cancel_exception_too(make):
    trace = []
    def cancel(state): raise CancelBatchException
    learn = run(make, V1Trace(trace, batch_begin=lambda s: cancel(s) if s['train'] else None), V2Trace(trace))
    ev = v2_events(trace)
    assert ev[ev.index('before_batch'):][:3] == ['before_batch', 'after_cancel_batch', 'after_batch']
    assert weight(learn) == W0


def test_a_v2_learners_validate_is_a_v1_validate_for_v1_callbacks():
    "learn.validate() on a v2 Learner: v1 callbacks get fastai 1's validate events; their stop_training stops nothing."
    trace = []
    learn = v2_learner(cbs=[V1Trace(trace, epoch_end=lambda s: {'stop_training': True})])
    res = learn.validate()
    assert [t[1] for t in trace] == ['train_begin', 'epoch_begin', 'batch_begin', 'batch_end', 'epoch_end']
    assert res[0] == pytest.approx(F.mse_loss(VALID_X * W0, VALID_Y).item())
    trace.clear()
    fit(learn, 2)                                      # a fit: on_train_end, and stop_training stops it
    assert v1_events(trace, 'train_end') == [(1, True, False)]
