"""What a v1 callback may return, and the errors for what it may not (golden section G, and the rule that
lets 1.0.46-style and 1.0.47+-style callbacks run in one list)."""
import pytest
import torch

import fa1_scenarios as sc
from trainlib.v1 import Callback, CallbackHandler, LearnerCallback, V1ReturnError, V1StateKeyError


class Ret(Callback):
    "Returns ``val`` from ``on_<ev>`` and records what on_train_end received."
    def __init__(self, ev, val):
        self.ends, self.calls = [], 0
        def method(**kwargs):
            self.calls += 1
            return val
        setattr(self, f'on_{ev}', method)
    def on_train_end(self, exception, **kwargs): self.ends.append(exception)


def fit_with(cb, tmp_path):
    sc.PATH[0] = tmp_path
    learn = sc.learner()
    learn.fit(1, 1e-3, callbacks=[cb])
    return learn


def test_old_style_true_from_on_batch_end_stops_the_epoch(tmp_path):
    # fastai 1.0.61 raised AttributeError ('bool' object has no attribute 'items'); 1.0.46 stopped the epoch
    cb = Ret('batch_end', True)
    learn = fit_with(cb, tmp_path)
    assert learn.recorder.nb_batches == [1]       # the training loop stopped after its first batch
    assert cb.calls == 2                           # ... and validation after its first batch
    assert cb.ends == [False]


def test_false_and_empty_dict_change_nothing(tmp_path):
    for cb in (Ret('batch_end', False), Ret('epoch_end', {})):
        learn = fit_with(cb, tmp_path)
        assert learn.recorder.nb_batches == [3] and cb.ends == [False]


@pytest.mark.parametrize('ev, val, key', [('batch_end', {'foo': 1}, 'foo'),
                                          ('batch_end', {'last_metrics': []}, 'last_metrics'),
                                          ('train_begin', {'stop_training': True}, 'stop_training')])
def test_unknown_state_key_is_an_error_naming_callback_event_and_key(ev, val, key, tmp_path):
    cb = Ret(ev, val)
    with pytest.raises(V1StateKeyError) as info:
        fit_with(cb, tmp_path)
    msg = str(info.value)
    assert msg.startswith(f"{key} isn't a valid key in the state of the callbacks.")
    assert f'`Ret.on_{ev}`' in msg and isinstance(info.value, Exception)
    # on_train_end always runs with the error (fastai 1.0.61 skipped it when on_train_begin failed)
    assert cb.ends == [info.value]


def test_pair_from_on_batch_begin_replaces_the_batch(tmp_path):
    # fastai 1.0.61: AttributeError; 1.0.46 unpacked it as (last_input, last_target) -- so do we
    cb = Ret('batch_begin', (1, 2))
    with pytest.raises(TypeError, match='linear'):
        fit_with(cb, tmp_path)                      # the model got the int 1 as its input
    assert len(cb.ends) == 1 and isinstance(cb.ends[0], TypeError)


@pytest.mark.parametrize('ev, val, expected', [('batch_begin', (1, 2, 3), 'a 2-tuple (last_input, last_target)'),
                                               ('backward_begin', 0.5, 'the new loss (a tensor)')])
def test_value_that_fits_no_rule_is_an_error(ev, val, expected, tmp_path):
    cb = Ret(ev, val)
    with pytest.raises(V1ReturnError) as info:
        fit_with(cb, tmp_path)
    assert str(info.value) == (f'`Ret.on_{ev}` returned {type(val).__name__} {val!r}: expected None, '
                               f'a dict of state updates, or {expected}')
    assert cb.ends == [info.value]


def test_a_loss_in_a_state_update_must_be_a_tensor(tmp_path):
    cb = Ret('backward_begin', {'last_loss': 0.5})
    with pytest.raises(V1ReturnError) as info:
        fit_with(cb, tmp_path)
    assert str(info.value) == ('`Ret.on_backward_begin` returned last_loss = float 0.5: expected the loss to '
                               'back-propagate (a tensor)')
    assert info.value.__notes__ == ['Exception occurred in `Ret` when calling event `on_backward_begin`']


def test_learner_callback_initialising_in_on_epoch_begin_fails_in_get_preds(tmp_path):
    class InitInEpochBegin(LearnerCallback):
        def on_epoch_begin(self, **kwargs): self.n = 0
        def on_batch_end(self, **kwargs): self.n += 1
    sc.PATH[0] = tmp_path
    learn = sc.learner(callback_fns=[InitInEpochBegin])
    learn.fit(1)
    with pytest.raises(AttributeError, match="'Learner' object has no attribute 'n'") as info:
        learn.get_preds()
    assert 'Exception occurred in `InitInEpochBegin` when calling event `on_batch_end`' in info.value.__notes__


def test_keyboard_interrupt_reaches_on_train_end_as_false(tmp_path):
    class Interrupt(Callback):
        def on_batch_end(self, **kwargs): raise KeyboardInterrupt
    cb = Ret('epoch_begin', None)
    sc.PATH[0] = tmp_path
    with pytest.raises(KeyboardInterrupt) as info:
        sc.learner().fit(1, callbacks=[Interrupt(), cb])
    assert cb.ends == [False]
    assert info.value.__notes__ == ['Exception occurred in `Interrupt` when calling event `on_batch_end`']


# ---------------------------------------------------------------- the rule, event by event (standalone handler)
def handler(*cbs):
    h = CallbackHandler(list(cbs))
    h.on_train_begin(1)
    h.on_epoch_begin()
    return h


def test_old_style_values_have_their_old_meaning_per_event():
    x, y, out, loss = torch.ones(2, 3), torch.zeros(2), torch.ones(2, 4), torch.tensor(1.5, requires_grad=True)

    class Old(Callback):
        def on_train_begin(self, **kwargs): return 'ignored'
        def on_epoch_begin(self, **kwargs): return True
        def on_batch_begin(self, last_input, last_target, **kwargs): return last_input * 2, last_target + 1
        def on_loss_begin(self, last_output, **kwargs): return last_output * 3
        def on_backward_begin(self, last_loss, **kwargs): return last_loss * 4
        def on_backward_end(self, **kwargs): return 1
        def on_step_end(self, **kwargs): return torch.tensor([False, True])     # any true element: np.any
        def on_batch_end(self, **kwargs): return torch.tensor([0, 0])
        def on_epoch_end(self, **kwargs): return [0, 1]
        def on_train_end(self, **kwargs): return True
    h = handler(Old())
    assert 'stop_training' in h.state_dict and not h.state_dict['stop_training']
    xb, yb = h.on_batch_begin(x, y)
    assert torch.equal(xb, x * 2) and torch.equal(yb, y + 1)
    assert torch.equal(h.on_loss_begin(out), out * 3)
    new_loss, skip_bwd = h.on_backward_begin(loss)
    assert new_loss.item() == 6. and new_loss.requires_grad and skip_bwd is False
    assert h.state_dict['smooth_loss'].item() == pytest.approx(1.5)      # smoothed from the raw loss
    assert h.on_backward_end() is True and h.on_step_end() is True
    assert h.on_batch_end(new_loss.detach()) is False
    assert h.on_epoch_end(None) is True
    h.on_train_end(False)


def test_mapping_from_on_loss_begin_is_an_output_unless_all_its_keys_are_state_keys():
    class DictOutput(Callback):
        def on_loss_begin(self, last_output, **kwargs): return {'logits': last_output, 'aux': 0}
    class StateUpdate(Callback):
        def on_loss_begin(self, last_output, **kwargs): return {'last_output': last_output + 1}
    out = torch.zeros(2)
    assert handler(DictOutput()).on_loss_begin(out) == {'logits': out, 'aux': 0}
    assert torch.equal(handler(StateUpdate()).on_loss_begin(out), out + 1)


def test_updates_are_seen_by_later_callbacks_in_the_same_event():
    seen = []
    class First(Callback):
        _order = -1
        def on_batch_begin(self, **kwargs): return {'last_input': 'changed'}
    class Second(Callback):
        def on_batch_begin(self, last_input, **kwargs): seen.append(last_input)
    handler(Second(), First()).on_batch_begin('x', 'y')
    assert seen == ['changed']
