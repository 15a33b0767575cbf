"""The bridge itself: a v1 callback handed to a core (v2) Learner, the live state view, and no host sync."""
import pytest
import torch

import test_v1_learner as tl
from host_reads import count_host_reads
from trainlib import CallbackError
from trainlib.testing import synth_learner
from trainlib.v1 import Callback, V1Adapter, accuracy
from trainlib.v1.bridge import LearnerState, V1Driver


def test_v1_callback_on_a_core_learner():
    seen = []
    class V1Spy(Callback):
        def on_train_begin(self, n_epochs, **kwargs): seen.append(('train_begin', n_epochs))
        def on_batch_end(self, train, iteration, smooth_loss, **kwargs):
            if train: seen.append(('batch_end', iteration, type(smooth_loss).__name__))
        def on_epoch_end(self, epoch, **kwargs):
            seen.append(('epoch_end', epoch))
            return {'stop_training': True}
        def on_train_end(self, exception, **kwargs): seen.append(('train_end', exception))
    learn = synth_learner(n_trn=2)
    learn.logger = lambda *a: None
    learn.add_cb(V1Spy())
    assert any(isinstance(c, V1Adapter) for c in learn.cbs) and any(isinstance(c, V1Driver) for c in learn.cbs)
    learn.fit(3)
    assert seen == [('train_begin', 3), ('batch_end', 0, 'Tensor'), ('batch_end', 1, 'Tensor'), ('epoch_end', 0),
                    ('train_end', False)]
    assert len(learn.recorder.values) == 1             # the v2 Recorder saw the one epoch the v1 callback allowed
    learn.remove_cbs([c for c in learn.cbs if isinstance(c, V1Adapter)])
    assert not any(isinstance(c, V1Driver) for c in learn.cbs)


def test_state_is_a_live_view_of_the_learner():
    learn = tl.learner()
    learn.fit(1)
    state = LearnerState(learn)
    learn.xb, learn.yb = (torch.ones(2, 4),), (torch.zeros(2).long(),)
    state.show('last_input', 'last_target')
    assert state['last_input'] is learn.xb[0] and set(state) == {'last_input', 'last_target'}
    state['last_input'] = [torch.zeros(1), torch.ones(1)]           # two inputs: model(*xb)
    assert len(learn.xb) == 2 and isinstance(state['last_input'], list)
    state['epoch'] = 3
    assert 'epoch' in state and 'last_output' not in state and state.copy()['epoch'] == 3


def test_no_host_sync_per_batch_in_a_v1_fit(monkeypatch):
    "trainlib's own code reads no tensor back to the host per batch (the validation loss: once per epoch)."
    calls = count_host_reads(monkeypatch)
    learn = tl.learner(metrics=[accuracy])
    learn.fit(2)                                        # 2 epochs x (4 train + 2 valid) batches
    assert calls == ['cpu', 'numpy', 'item', 'item'] * 2      # per epoch: the valid loss, the Recorder's row as numbers


def test_learn_validate_inside_a_fit_is_a_run_of_its_own():
    "A v1 callback calling learn.validate() at on_epoch_end: the fit's callbacks do not see it, the fit goes on."
    outer_valid_batches, inner = [], []
    class EvalEachEpoch(tl.LearnerCallback):
        def on_batch_begin(self, train, **kwargs):
            if not train: outer_valid_batches.append(1)
        def on_epoch_end(self, **kwargs): inner.append(self.learn.validate())
    learn = tl.learner(metrics=[accuracy], callback_fns=[EvalEachEpoch])
    learn.fit(2)
    assert len(outer_valid_batches) == 4                       # 2 epochs x 2 valid batches, none from validate()
    assert learn.recorder.nb_batches == [4, 4] and len(learn.recorder.val_losses) == 2
    assert [len(r) for r in inner] == [2, 2] and float(inner[-1][0]) == float(learn.validate()[0])


def test_a_no_op_method_replaced_mid_fit_is_the_one_called_and_its_error_names_it():
    calls = []
    class Counter(Callback):
        def on_batch_end(self, **kwargs): calls.append('old')       # called with nothing (it cannot see kwargs)
    cb = Counter()
    def replaced(**kwargs):
        calls.append('new')
        if len(calls) == 3: raise ValueError('boom')
    learn = tl.learner()
    learn.fit(1, callbacks=[cb])
    n_batches = len(calls)
    assert n_batches > 2 and set(calls) == {'old'}
    calls.clear()
    cb.on_batch_end = lambda **kwargs: (calls.append('new'), cb.__dict__.pop('on_batch_end'))[0]
    learn.fit(1, callbacks=[cb])
    assert calls == ['new'] + ['old'] * (n_batches - 1)      # the instance's method, then the class's again
    calls.clear()
    Counter.on_batch_end = lambda self, **kwargs: replaced()
    try: learn.fit(1, callbacks=[cb])
    except ValueError as e: assert 'Exception occurred in `Counter` when calling event `on_batch_end`' in e.__notes__
    else: raise AssertionError('the error was swallowed')
    assert calls == ['new'] * 3


def test_a_bad_return_of_a_method_called_with_nothing_names_the_callback():
    from trainlib.v1.callback import V1StateKeyError
    class BadReturn(Callback):
        def on_batch_end(self, **kwargs): return {'no_such_key': 1}
    try: tl.learner().fit(1, callbacks=[BadReturn()])
    except V1StateKeyError as e:
        assert "no_such_key isn't a valid key" in str(e)
        assert 'Exception occurred in `BadReturn` when calling event `on_batch_end`' in e.__notes__
    else: raise AssertionError('the bad return was accepted')


def test_adjacent_v1_callbacks_share_one_dispatch_entry_per_batch_event_and_keep_their_order():
    from trainlib.v1.bridge import V1Listeners
    calls = []
    class First(Callback):
        _order = 1
        def on_batch_end(self, train, **kwargs): calls.append(('first', train))
    class Second(Callback):
        _order = 2
        def on_batch_end(self, **kwargs): calls.append('second')
        def on_epoch_end(self, **kwargs): calls.append('epoch_end')
    learn = synth_learner(n_trn=2, n_val=1)
    learn.logger = lambda *a: None
    learn.add_cbs([Second(), First()])
    entries = [e for e in learn._train_cbs['after_batch'] if isinstance(e, V1Listeners)]
    assert len(entries) == 1 and [type(a.cb).__name__ for a in entries[0].owners] == ['First', 'Second']
    assert sum(isinstance(e, V1Listeners) for e in learn._train_cbs['after_epoch']) == 1   # per-epoch: one each
    learn.fit(1)
    assert calls == [('first', True), 'second', ('first', True), 'second', ('first', False), 'second', 'epoch_end']


def test_a_v1_callback_removed_by_an_adjacent_one_mid_event_is_not_called_in_that_event():
    calls = []
    class Remover(Callback):
        _order = 1
        def on_batch_end(self, **kwargs):
            calls.append('remover')
            if len(calls) == 1: learn.remove_cbs([a for a in learn.cbs if isinstance(a, V1Adapter) and a.cb is victim])
    class Victim(Callback):
        _order = 2
        def on_batch_end(self, **kwargs): calls.append('victim')
    victim = Victim()
    learn = synth_learner(n_trn=2, n_val=0)
    learn.logger = lambda *a: None
    learn.add_cbs([Remover(), victim])
    learn.fit(1)
    assert calls == ['remover', 'remover']


def test_a_method_set_on_the_instance_mid_fit_is_called_from_the_next_call_on():
    calls = []
    class Switcher(Callback):
        def on_batch_end(self, **kwargs):
            calls.append('class')
            self.on_batch_end = lambda **kwargs: calls.append('instance')
    learn = synth_learner(n_trn=3, n_val=0)
    learn.logger = lambda *a: None
    learn.add_cb(Switcher())
    learn.fit(1)
    assert calls == ['class', 'instance', 'instance']


def test_last_loss_changed_in_place_at_on_backward_begin_is_the_loss_of_on_batch_end_as_in_fastai_1():
    # fastai 1 back-propagates and records one tensor: no copy of the loss for v1 callbacks
    seen = []
    class Double(Callback):
        def on_backward_begin(self, last_loss, **kwargs):
            seen.append(float(last_loss.detach()))
            last_loss.mul_(2)
        def on_batch_end(self, last_loss, train, **kwargs):
            if train: seen.append(float(last_loss))
    learn = synth_learner(n_trn=2, n_val=0)
    learn.logger = lambda *a: None
    learn.fit(1, cbs=[Double()])
    assert len(seen) == 4 and seen[1] == 2 * seen[0] and seen[3] == 2 * seen[2]


def test_a_plain_v1_callback_named_like_a_learner_member_runs_without_being_registered():
    # fastai 1.0.61 runs every one of these (scratch script of the 12-08 review, bug_reserved_names.py): it never
    # registered a plain Callback on the Learner. trainlib registers it only where the name is free.
    for cls_name in ['Logger', 'Loss', 'Training', 'Epoch', 'Pred', 'Metrics', 'Model', 'Path', 'Lock', 'Summary',
                     'Exception', 'Iter', 'Dl', 'Opt', 'Wd', 'Lr', 'Unfreeze']:
        epochs = []
        cls = type(cls_name, (Callback,), {'on_epoch_end': lambda self, epoch, **kwargs: epochs.append(epoch)})
        learn = tl.Learner(tl.data(n_train=8, n_valid=8), tl.model(), loss_func=torch.nn.CrossEntropyLoss(),
                           silent=True)
        learn.fit(1, callbacks=[cls()])
        if cls_name in ('Loss', 'Unfreeze'):              # attached to the Learner, for several fits
            learn.add_cb(cls())
            learn.fit(1)
            assert epochs == [0, 0]
            learn.remove_cb(next(c for c in learn.cbs if isinstance(c, V1Adapter)))
        assert epochs[0] == 0 and not isinstance(getattr(learn, cls_name.lower()), cls), cls_name
    assert learn.unfreeze.__func__ is tl.Learner.unfreeze


def test_a_plain_v1_callback_may_unfreeze_the_learner_it_is_named_after():
    # fastai 1.0.61 on this case (scratch script of the 12-08 review, bug_name_shadow.py): 'unfrozen at epoch 1',
    # then 4 trainable parameters
    class Unfreeze(Callback):
        def __init__(self, learn): self.learn, self.at = learn, []
        def on_epoch_begin(self, epoch, **kwargs):
            if epoch == 1:
                self.learn.unfreeze(); self.learn.opt.lr = 1e-3; self.at.append(epoch)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    learn = tl.Learner(tl.data(), model, loss_func=torch.nn.CrossEntropyLoss(), silent=True)
    learn.split([model[2]]); learn.freeze()
    assert sum(p.requires_grad for p in model.parameters()) == 2
    cb = Unfreeze(learn)
    learn.fit(2, 1e-2, callbacks=[cb])
    assert cb.at == [1] and sum(p.requires_grad for p in model.parameters()) == 4
    assert learn.unfreeze.__func__ is tl.Learner.unfreeze


def test_two_v1_callbacks_of_different_classes_still_cannot_share_a_name():
    first, second = type('Probe', (Callback,), {}), type('Probe', (Callback,), {})
    learn = tl.learner()
    with pytest.raises(CallbackError, match=r'callbacks `Probe\(v1\)` and `Probe\(v1\)` both want to be `learn.probe`'):
        learn.fit(1, callbacks=[first(), second()])
