"""Either Learner takes either generation of callbacks: how they are given, ordered, listed and named."""
import re
from functools import partial

import pytest

import trainlib
import trainlib.v1 as v1
from trainlib import Callback, CallbackError
from trainlib.v1.bridge import V1_ORDER_OFFSET, V1Adapter

from mixed_setup import fit, v1_learner, v2_learner


def make_v1_spy(log, tag):
    "A plain fastai-1 callback class (no constructor argument) that logs its on_train_begin."
    return type(f'Spy{tag}', (v1.Callback,), {'on_train_begin': lambda self, **kw: log.append(tag)})


class Remember(v1.LearnerCallback):
    "A LearnerCallback: built with the Learner, registered as learn.remember."
    def __init__(self, learn, tag='remember', log=None):
        super().__init__(learn)
        self.tag, self.log = tag, log
    def on_train_begin(self, **kwargs): self.log.append(self.tag)


class Probe(Callback):
    "A v2 callback that logs its before_fit."
    def __init__(self, log, tag='probe'): self.log, self.tag = log, tag
    def before_fit(self): self.log.append(self.tag)


# ---------------------------------------------------------------- 1. every way of handing over a callback
def test_a_v2_learner_takes_v1_callbacks_in_every_form():
    log = []
    learn = v2_learner(cbs=[make_v1_spy(log, 'instance')(), make_v1_spy(log, 'class'),
                            partial(Remember, tag='partial', log=log)])
    fit(learn, cbs=[make_v1_spy(log, 'fitcbs')])
    assert sorted(log) == ['class', 'fitcbs', 'instance', 'partial']
    assert isinstance(learn.remember, Remember) and learn.remember.learn is learn
    log.clear()
    learn.fit_one_cycle(1, 0.1, cbs=[partial(Remember, log=log, tag='one_cycle')])
    assert sorted(log) == ['class', 'instance', 'one_cycle', 'partial']    # fitcbs left with its fit
    log.clear()
    learn.lr_find(num_it=4, show_plot=False, suggest_funcs=None)            # attached v1 callbacks take part
    assert sorted(log) == ['class', 'instance', 'partial']


def test_a_v1_learner_takes_v2_callbacks_in_every_form():
    log = []
    learn = v1_learner(callbacks=[Probe(log, 'callbacks')],
                       callback_fns=[partial(Probe, log=log, tag='callback_fns'), partial(Remember, log=log)])
    learn.add_cb(Probe(log, 'add_cb'))
    learn.fit(1, callbacks=[Probe(log, 'fit')])
    assert sorted(log) == ['add_cb', 'callback_fns', 'callbacks', 'fit', 'remember']
    assert isinstance(learn.probe, Probe) and isinstance(learn.recorder, v1.Recorder)
    log.clear()
    learn.validate(callbacks=[Probe(log, 'validate')])
    assert sorted(log) == ['add_cb', 'callbacks', 'validate']          # validate: no callback_fns, as in fastai 1


def test_callbacks_that_cannot_be_made_say_why():
    with pytest.raises(CallbackError, match=r"callback_fns: expected a class or function that makes a callback.*"
                                            r"pass callback instances in `callbacks=`"):
        v1_learner(callback_fns=[Probe([])]).fit(1)
    with pytest.raises(CallbackError, match=r"callback_fns: .*<lambda>.* returned int, not a callback of either generation"):
        v1_learner(callback_fns=[lambda learn: 3]).fit(1)
    class NeedsTwo(v1.Callback):
        def __init__(self, a, b): pass
    with pytest.raises(CallbackError, match=r'cannot make a fastai-1 callback from .*NeedsTwo.*\(a, b\) takes neither'):
        v2_learner(cbs=[NeedsTwo])
    class BadOrder(v1.Callback): _order = 'first'
    with pytest.raises(CallbackError, match=r"callback `BadOrder\(v1\)`: `_order` must be a number, got 'first'"):
        v2_learner(cbs=[BadOrder()])
    class NanOrder(v1.Callback): _order = float('nan')
    with pytest.raises(CallbackError, match=r"callback `NanOrder\(v1\)`: `_order` must be a number, got nan"):
        v2_learner(cbs=[NanOrder()])


# ---------------------------------------------------------------- 2. one order scale
def order_of(learn, cls):
    return next(c.order for c in learn.cbs if isinstance(getattr(c, 'cb', c), cls))


@pytest.mark.parametrize('v1_order, core_order', [(0, 55), (-10, 45), (-20, 35), (999, 1054)])
def test_a_v1_callback_runs_at_55_plus_its_order(v1_order, core_order):
    cls = type('Placed', (v1.Callback,), {'_order': v1_order, 'on_batch_end': lambda self, **kw: None})
    assert order_of(v2_learner(cbs=[cls()]), cls) == core_order == V1_ORDER_OFFSET + v1_order


def loop_line(learn, event, capsys):
    "The callbacks show_training_loop lists at ``event``, as printed."
    learn.show_training_loop()
    out = capsys.readouterr().out
    return re.search(rf'- {event}\s*: (\[.*\])', out).group(1)


def test_defaults_of_both_generations_interleave_as_documented(capsys):
    class Late(v1.LearnerCallback):
        def on_train_begin(self, **kwargs): self.learn.show_training_loop()     # the loop as this fit runs it
        def on_batch_end(self, **kwargs): pass
        def on_epoch_end(self, **kwargs): pass
    learn = v2_learner(cbs=[Late])
    # v1 default (55): after TrainEval (-10) and the v2 Recorder (50), before Progress (60)
    assert loop_line(learn, 'after_batch', capsys) == '[TrainEvalCallback, Recorder, Late(v1), ProgressCallback]'
    fit(v1_learner(callback_fns=[Late]), cbs=[trainlib.EarlyStoppingCallback(patience=5)])
    out = capsys.readouterr().out
    # the v1 Recorder (-10 -> 45) records the row before Late (55) and before the v2 trackers (63) read it
    assert re.search(r'- after_epoch\s*: \[Recorder\(v1\), Late\(v1\), EarlyStoppingCallback\]', out)
    assert re.search(r'- after_batch\s*: \[TrainEvalCallback, Late\(v1\)\]', out)


def test_run_before_and_run_after_name_either_generation():
    log = []
    class OldFirst(v1.Callback):
        _order = 100                                        # core 155: would run last
        run_before = 'NewSecond'
        def on_batch_begin(self, **kwargs): log.append('old-first')
    class NewSecond(Callback):
        def before_batch(self): log.append('new-second')
    class NewThird(Callback):
        order = -50
        run_after = OldFirst                               # a v1 class
        def before_batch(self): log.append('new-third')
    learn = v2_learner(cbs=[NewThird(), NewSecond(), OldFirst()])
    fit(learn)
    # OldFirst moves up to NewSecond's place; NewThird (order -50) then runs as early as its run_after allows
    assert log[:3] == ['old-first', 'new-third', 'new-second']
    class Loop(v1.Callback):
        run_after = 'NewSecond'
        run_before = 'NewSecond'
        def on_batch_begin(self, **kwargs): pass
    with pytest.raises(CallbackError, match=r'cycle between the callbacks NewSecond, Loop\(v1\)'):
        learn.add_cb(Loop())


def test_show_training_loop_lists_both_generations(capsys):
    class OldCb(v1.Callback):
        def on_batch_begin(self, **kwargs): pass
        def on_backward_begin(self, **kwargs): pass
        def on_train_end(self, **kwargs): pass
    v2_learner(cbs=[OldCb(), Probe([])]).show_training_loop()
    out = capsys.readouterr().out
    assert re.search(r'- before_fit\s*: \[TrainEvalCallback, Probe, Recorder, ProgressCallback\]', out)
    assert re.search(r'- before_batch\s*: \[CastToTensor, OldCb\(v1\)\]', out)
    assert re.search(r'- after_loss\s*: \[OldCb\(v1\)\]', out)          # on_backward_begin
    assert re.search(r'- after_fit\s*: \[OldCb\(v1\), ProgressCallback\]', out)
    assert 'V1Driver' not in out                                        # the bridge's own callbacks are not listed


# ---------------------------------------------------------------- 3. learn.<name> for both, and clashes
def test_names_of_both_generations():
    class OneCycleScheduler(v1.LearnerCallback):
        def on_train_begin(self, **kwargs): pass
    class PlainOld(v1.Callback):
        def on_train_begin(self, **kwargs): pass
    class GradClipCallback(Callback):
        def before_step(self): pass
    plain = PlainOld()
    learn = v2_learner(cbs=[OneCycleScheduler, plain, GradClipCallback()])
    assert isinstance(learn.one_cycle_scheduler, OneCycleScheduler) and learn.plain_old is plain
    assert isinstance(learn.grad_clip, GradClipCallback) and isinstance(learn.recorder, trainlib.Recorder)
    learn.remove_cb(next(c for c in learn.cbs if isinstance(c, V1Adapter) and c.cb is plain))
    assert not hasattr(learn, 'plain_old')


def test_defaults_never_clash_and_a_user_made_clash_names_both():
    learn = v2_learner()
    with pytest.raises(CallbackError, match=r'callbacks `Recorder` and `Recorder\(v1\)` both want to be `learn.recorder`'):
        learn.add_cb(v1.Recorder)
    assert isinstance(learn.recorder, trainlib.Recorder)               # untouched by the refused one
    learn = v1_learner()
    with pytest.raises(CallbackError, match=r'callback `Recorder` would be registered as `learn.recorder`, which this '
                                            r'fastai-1 Learner gives to the `Recorder\(v1\)` its callback_fns make'):
        learn.add_cb(trainlib.Recorder())
    fit(learn)                                     # and its own defaults: the v1 Recorder, TrainEval
    assert isinstance(learn.recorder, v1.Recorder)
    class Reporter(Callback): pass
    class OldReporter(v1.Callback): pass
    learn.add_cb(Reporter())
    OldReporter.__name__ = 'Reporter'
    with pytest.raises(CallbackError, match=r'callbacks `Reporter` and `Reporter\(v1\)` both want to be `learn.reporter`'):
        learn.add_cb(OldReporter())
