"""What a v1 callback method is called with: the whole state, or only its named parameters when it provably
cannot see the rest (``trainlib.v1.callback.call_plan``). Either way a callback sees what fastai 1 shows it."""
import functools
import sys
from functools import partial

import pytest
import torch

import fa1_scenarios as sc
from trainlib.v1 import Callback, CallbackHandler
from trainlib.v1.callback import call_plan

EVENTS = ('batch_begin', 'backward_begin', 'batch_end', 'epoch_end', 'train_end')


def _plain(ev, **kwargs):
    "Event ``ev`` and the state and extra kwargs of one call as comparable values (tensors as their values)."
    return ev, {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()
                if k not in ('pbar', 'metrics')}


class Reference(Callback):
    "Reads its ``**kwargs``: called with the whole state, as in fastai 1."
    def __init__(self): self.seen = []
    def on_batch_begin(self, **kwargs): self.seen.append(_plain('on_batch_begin', **kwargs))
    def on_backward_begin(self, **kwargs): self.seen.append(_plain('on_backward_begin', **kwargs))
    def on_batch_end(self, **kwargs): self.seen.append(_plain('on_batch_end', **kwargs))
    def on_epoch_end(self, **kwargs): self.seen.append(_plain('on_epoch_end', **kwargs))
    def on_train_end(self, **kwargs): self.seen.append(_plain('on_train_end', **kwargs))


class Named(Callback):
    "Named parameters (one with a default that is no state key, one that only some events have) and unread **kwargs."
    def __init__(self): self.seen = []
    def on_batch_begin(self, iteration, train, last_input, smooth_loss=None, not_a_key='dflt', **kwargs):
        self.seen.append(_plain('on_batch_begin', iteration=iteration, train=train, last_input=last_input, smooth_loss=smooth_loss,
                                not_a_key=not_a_key))
    def on_backward_begin(self, last_loss, smooth_loss, *, skip_bwd, **kwargs):
        self.seen.append(_plain('on_backward_begin', last_loss=last_loss, smooth_loss=smooth_loss, skip_bwd=skip_bwd))
    def on_batch_end(self, last_loss, num_batch, stop_epoch, **kwargs):
        self.seen.append(_plain('on_batch_end', last_loss=last_loss, num_batch=num_batch, stop_epoch=stop_epoch))
    def on_epoch_end(self, epoch, last_metrics, smooth_loss, **kwargs):
        self.seen.append(_plain('on_epoch_end', epoch=epoch, last_metrics=last_metrics, smooth_loss=smooth_loss))
    def on_train_end(self, exception, **kwargs):
        self.seen.append(_plain('on_train_end', exception=exception))


def logged(f):
    "A decorator whose wrapper forwards the kwargs (and records them)."
    @functools.wraps(f)
    def wrapper(self, **kwargs):
        self.seen.append(_plain(f.__name__, **kwargs))
        return f(self, **kwargs)
    return wrapper


class Decorated(Callback):
    "Decorated methods: the wrapper reads the kwargs, so it gets them all."
    def __init__(self): self.seen = []
    @logged
    def on_batch_begin(self, **kwargs): pass
    @logged
    def on_backward_begin(self, **kwargs): pass
    @logged
    def on_batch_end(self, **kwargs): pass
    @logged
    def on_epoch_end(self, **kwargs): pass
    @logged
    def on_train_end(self, **kwargs): pass


class UsesLocals(Callback):
    "Finds its kwargs through ``locals()``."
    def __init__(self): self.seen = []
    def on_batch_begin(self, **kwargs): self.seen.append(_plain('on_batch_begin', **locals()['kwargs']))
    def on_backward_begin(self, **kw): self.seen.append(_plain('on_backward_begin', **locals()['kw']))
    def on_batch_end(self, **kwargs): self.seen.append(_plain('on_batch_end', **locals()['kwargs']))
    def on_epoch_end(self, **kwargs): self.seen.append(_plain('on_epoch_end', **locals()['kwargs']))
    def on_train_end(self, **kwargs): self.seen.append(_plain('on_train_end', **locals()['kwargs']))


class PeeksFromHelper(Callback):
    "A nested helper reads the method's frame."
    def __init__(self): self.seen = []
    def on_batch_end(self, **kwargs):
        def peek(): return sys._getframe(1).f_locals['kwargs']
        self.seen.append(_plain('on_batch_end', **peek()))


def _fit(tmp_path, cbs):
    sc.PATH[0] = tmp_path
    torch.manual_seed(0)
    learn = sc.learner()
    learn.fit(1, 1e-3, callbacks=cbs)
    return learn


def test_each_way_of_writing_a_method_sees_what_fastai_shows_it(tmp_path):
    ref, named, deco, loc, peek = Reference(), Named(), Decorated(), UsesLocals(), PeeksFromHelper()
    _fit(tmp_path, [ref, named, deco, loc, peek])
    assert len(ref.seen) == 3 * 3 + 2 * 2 + 1 + 1       # 3 training batches, 2 validation batches, epoch end, train end
    assert set(ref.seen[0][1]) == {'epoch', 'iteration', 'num_batch', 'skip_validate', 'n_epochs', 'stop_training',
                                   'train', 'stop_epoch', 'skip_step', 'skip_zero', 'skip_bwd', 'last_input',
                                   'last_target'}
    assert ref.seen[-1][1]['exception'] is False
    assert deco.seen == ref.seen and loc.seen == ref.seen
    assert peek.seen == [s for s in ref.seen if s[0] == 'on_batch_end'] and len(peek.seen) == 5
    assert [ev for ev, _ in named.seen] == [ev for ev, _ in ref.seen]
    for (_, want), (_, got) in zip(ref.seen, named.seen):
        expected = {k: want[k] for k in got if k in want}
        if 'not_a_key' in got: expected['not_a_key'] = 'dflt'
        if 'smooth_loss' in got and 'smooth_loss' not in want: expected['smooth_loss'] = None
        assert got == expected
    assert named.seen[0][1]['smooth_loss'] is None and named.seen[3][1]['smooth_loss'] is not None   # from batch 2 on


class NeedsLoss(Callback):
    "Names a key the state does not have yet at on_batch_begin of the first batch."
    def on_batch_begin(self, last_loss, **kwargs): pass


def test_missing_required_parameter_is_pythons_type_error_naming_callback_and_event(tmp_path):
    with pytest.raises(TypeError) as info:
        _fit(tmp_path, [NeedsLoss()])
    with pytest.raises(TypeError) as direct:
        NeedsLoss().on_batch_begin(epoch=0, iteration=0, train=True)       # what a call with the whole state raises
    assert str(info.value) == str(direct.value) == \
        "NeedsLoss.on_batch_begin() missing 1 required positional argument: 'last_loss'"
    assert 'Exception occurred in `NeedsLoss` when calling event `on_batch_begin`' in info.value.__notes__


def test_standalone_handler_passes_named_parameters_and_event_kwargs():
    class Cb(Callback):
        def __init__(self): self.seen = []
        def on_train_begin(self, n_epochs, metrics_names, **kwargs): self.seen.append((n_epochs, metrics_names))
        def on_batch_begin(self, last_input, train, not_there=3, **kwargs): self.seen.append((last_input, train, not_there))
        def on_train_end(self, exception, epoch, **kwargs): self.seen.append((exception, epoch))
    cb = Cb()
    h = CallbackHandler([cb])
    h.on_train_begin(2)
    h.on_batch_begin('x', 'y', train=False)
    h.on_train_end(False)
    assert cb.seen == [(2, []), ('x', False, 3), (False, 0)]


# ---------------------------------------------------------------------- the rule itself
class Plans(Callback):
    def noop(self, **kwargs): pass
    def named(self, a, b=1, *, c, **kwargs): return a
    def reads(self, **kwargs): return kwargs.get('a')
    def forwards(self, **kwargs): return super().on_batch_end(**kwargs)
    def deleted(self, **kwargs): del kwargs
    def closure(self, **kwargs): return lambda: kwargs
    def evals(self, **kwargs): return eval('kwargs')
    def frame(self, **kwargs): return sys._getframe().f_locals
    def nested_frame(self, **kwargs):
        def inner(): return sys._getframe(1)
        return inner
    def no_varkw(self, a): return a
    def posonly(self, a, /, **kwargs): return a
    def star_args(self, *args, d=0, **kwargs): return args
    def not_self(this, **kwargs): pass
    @staticmethod
    def static(a, **kwargs): return a
    @classmethod
    def klass(cls, **kwargs): pass


@pytest.mark.parametrize('name, plan', [
    ('noop', ()), ('named', ('a', 'b', 'c')), ('star_args', ('d',)), ('static', ('a',)),
    ('reads', None), ('forwards', None), ('deleted', None), ('closure', None), ('evals', None), ('frame', None),
    ('nested_frame', None), ('no_varkw', None), ('posonly', None), ('not_self', None), ('klass', None)])
def test_call_plan(name, plan):
    assert call_plan(getattr(Plans(), name)) == plan


def test_call_plan_of_other_callables_is_the_whole_state():
    assert call_plan(lambda **kw: None) == ()
    assert call_plan(partial(Plans.noop, Plans())) is None
    assert call_plan(dict) is None and call_plan(print) is None
