"The Callback base class: names, attribute delegation, run flags, ordering and add-time checks."
import warnings

import pytest

from tiny import quiet_learner, recording
from trainlib import Callback, CallbackError, Recorder


# ---------------------------------------------------------------------------------------- names
@pytest.mark.parametrize('cls_name, attr', [
    ('HTTPServerCallback', 'http_server'), ('LRFinder', 'lr_finder'), ('MyCB', 'my_cb'),
    ('FP16TestCallback', 'fp16_test'), ('TestCallback2', 'test_callback2'), ('Callback', 'callback'),
    ('TrainEvalCallback', 'train_eval'), ('CSVLogger', 'csv_logger')])
def test_name_is_snake_case_without_callback_suffix(cls_name, attr):
    cls = Callback if cls_name == 'Callback' else type(cls_name, (Callback,), {})
    assert cls().name == attr


def test_repr_is_the_class_name():
    class ShowMe(Callback): pass
    assert repr(ShowMe()) == 'ShowMe'


# ---------------------------------------------------------------------------------- delegation
def test_reads_go_to_the_learner_then_to_the_model():
    learn = quiet_learner()
    cb = Callback()
    learn.add_cb(cb)
    assert cb.lr == learn.lr == 1e-3            # a Learner attribute
    assert cb.b is learn.model.b                # not on the Learner: found on the model
    assert cb.order == 0 and cb.run is True     # the callback's own class attributes win
    with pytest.raises(AttributeError, match=r"'Learner' object has no attribute 'nothing_here', "
                                             r"and neither has its model \(RegModel\)"):
        cb.nothing_here


def test_a_detached_callback_says_it_has_no_learner():
    with pytest.raises(AttributeError, match="'Callback' object has no attribute 'lr' "
                                             r"\(and it is not attached to a Learner"):
        Callback().lr


def test_writing_a_learner_attribute_warns_and_sets_it_on_the_callback():
    learn = quiet_learner()
    cb = Callback()
    learn.add_cb(cb)
    with pytest.warns(UserWarning) as rec:
        cb.lr = 123
    assert str(rec[0].message) == ('You are shadowing an attribute (lr) that exists in the learner. '
                                   'Use `self.learn.lr` to avoid this')
    assert rec[0].filename == __file__          # points at the line that wrote it
    assert cb.lr == 123 and learn.lr == 1e-3    # the Learner is untouched
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        cb.my_own_value = 1                     # a new name does not warn
        cb.learn.lr = 0.1                       # the way to change the loop's state


# ------------------------------------------------------------------------- Callback(event=f)
def test_event_functions_passed_as_keywords_become_methods():
    seen = []
    cb = Callback(before_fit=lambda self: seen.append(self))
    quiet_learner(cbs=cb).fit(1)
    assert seen == [cb]
    assert cb.name == 'callback'


def test_unknown_event_keyword_is_refused():
    with pytest.raises(CallbackError, match=r"Passed unknown events: \{'befor_fit'"):
        Callback(befor_fit=print)
    assert issubclass(CallbackError, TypeError) and issubclass(CallbackError, AssertionError)


def test_event_keyword_must_be_a_function():
    with pytest.raises(CallbackError, match=r'Callback\(after_batch=\.\.\.\) expects a function taking the '
                                            r'callback, got int'):
        Callback(after_batch=3)


def test_an_event_keyword_function_that_cannot_take_the_callback_is_refused_when_added():
    def forgot(): pass
    with pytest.raises(CallbackError) as info:
        quiet_learner(cbs=Callback(after_epoch=forgot))
    assert str(info.value) == ('callback `Callback`: `after_epoch` is given the callback as its argument, but '
                               'test_an_event_keyword_function_that_cannot_take_the_callback_is_refused_when_added.'
                               '<locals>.forgot takes none: expected `lambda cb: ...` or `def after_epoch(self)`')


# ------------------------------------------------------------------------------- run flags
def test_order_run_train_run_valid_and_run_match_fastai():
    # fastai 2.8.12, fa2_trace.txt section 5: six callbacks, one train and one valid batch
    log = []
    events = ('before_fit', 'before_train', 'before_batch', 'after_batch', 'before_validate', 'after_fit')
    cbs = [recording('CbA', events, log, order=5)(), recording('CbB', events, log, order=-20)(),
           recording('CbC', events, log, order=5)(), recording('CbD', events, log, order=1, run_valid=False)(),
           recording('CbE', events, log, order=2, run_train=False)(), recording('CbF', events, log, order=3)()]

    class Disabler(Callback):
        order = -50
        def before_fit(self): self.learn.cb_f.run = False

    learn = quiet_learner(cbs=cbs + [Disabler()])
    learn.fit(1)
    every = ['CbB', 'CbD', 'CbE', 'CbA', 'CbC']
    expected = ([('before_fit', n) for n in every] + [('before_train', n) for n in every]
                + [('before_batch', n) for n in ['CbB', 'CbD', 'CbA', 'CbC']]
                + [('after_batch', n) for n in ['CbB', 'CbD', 'CbA', 'CbC']]
                + [('before_validate', n) for n in every]
                + [('before_batch', n) for n in ['CbB', 'CbE', 'CbA', 'CbC']]
                + [('after_batch', n) for n in ['CbB', 'CbE', 'CbA', 'CbC']]
                + [('after_fit', n) for n in every])
    assert log == expected
    assert learn.cb_f.run is True               # run is switched back on after after_fit


def test_dispatch_tables_hold_only_the_listeners_and_follow_every_change():
    learn = quiet_learner(default_cbs=False)
    assert all(methods == [] for table in (learn._train_cbs, learn._valid_cbs) for methods in table.values())
    batch_only = recording('BatchOnly', ['after_batch'], [], run_valid=False)()
    learn.add_cb(batch_only)
    listeners = {e: [m.__self__ for m in ms] for e, ms in learn._train_cbs.items() if ms}
    assert listeners == {'after_batch': [batch_only]} and learn._valid_cbs['after_batch'] == []
    phases = recording('Phases', ['before_validate', 'after_batch'], [], run_valid=False)()
    learn.add_cb(phases)
    assert [m.__self__ for m in learn._valid_cbs['before_validate']] == [phases]    # not an inner-loop event
    assert [m.__self__ for m in learn._train_cbs['after_batch']] == [batch_only, phases]
    phases.order = -1                                                              # re-sorted at once
    assert [m.__self__ for m in learn._train_cbs['after_batch']] == [phases, batch_only]
    batch_only.run = False
    assert [m.__self__ for m in learn._train_cbs['after_batch']] == [phases]
    learn.remove_cb(phases)
    assert learn._train_cbs['after_batch'] == [] and learn._valid_cbs['before_validate'] == []


def test_an_event_method_set_on_an_added_callback_is_heard_at_once_and_checked():
    heard = []
    cb = Callback()
    learn = quiet_learner(cbs=cb, n_trn=2)
    cb.after_batch = lambda: heard.append(learn.training)        # fastai calls getattr(cb, event)() each time
    learn.fit(1)
    assert heard == [True, True, False]
    del cb.after_batch
    learn.fit(1)
    assert heard == [True, True, False]
    with pytest.raises(CallbackError, match=r'callback `Callback`: event method `before_batch\(x\)` cannot be called '
                                            r'as an event'):
        cb.before_batch = lambda x: None
    assert 'before_batch' not in cb.__dict__


def test_a_function_set_on_the_instance_is_its_callbacks_even_when_the_tables_change_mid_event():
    heard = []

    class Adder(Callback):
        order = -1
        def after_batch(self): self.learn.add_cb(Callback())         # replaces the tables in the middle of the event

    holder = Callback()
    learn = quiet_learner(cbs=[Adder(), holder])
    holder.after_batch = lambda: heard.append(learn.training)
    learn.fit(1)
    assert heard == [True, False]


def test_a_fastbook_name_set_on_the_instance_wins_over_the_class_and_warns():
    heard = []

    class Plain(Callback):
        def before_validate(self): heard.append('class')

    cb = Plain()
    learn = quiet_learner(cbs=cb)
    with pytest.warns(DeprecationWarning, match='callback `Plain`: the event name `begin_validate` is deprecated'):
        cb.begin_validate = lambda: heard.append('instance')
    learn.fit(1)
    assert heard == ['instance']


def test_a_run_hears_the_callbacks_as_they_are_when_it_starts():
    heard = []

    class Patched(Callback):
        def before_validate(self): heard.append('old')

    class Other(Callback):
        def before_validate(self): heard.append('other')

    class Spy(Callback):
        def before_validate(self): heard.append('spy')

    learn = quiet_learner(cbs=[Patched(), Spy()])
    learn.fit(1)
    Patched.before_validate = lambda self: heard.append('new')      # fastcore's @patch does this
    learn.cbs.remove(learn.spy)                                     # a list changed behind add_cb/remove_cb
    learn.fit(1)
    learn.patched.__dict__['run'] = False                           # a flag written behind __setattr__
    learn.validate()                                                # (and set back on by its after_fit)
    learn.patched.__class__ = Other
    learn.validate()
    assert heard == ['old', 'spy', 'new', 'other']


def test_copies_loss_set_on_an_added_callback_takes_effect():
    same = []

    class Reader(Callback):
        def after_loss(self):
            if self.training: same.append(self.learn.loss is self.learn.loss_grad)
        def after_batch(self): self.copies_loss = False                  # from the next batch on

    quiet_learner(cbs=Reader(), n_trn=2).fit(1)
    assert same == [False, True]


def test_a_flag_that_cannot_be_dispatched_changes_nothing():
    class A(Callback): pass

    class B(Callback): run_after = A

    learn = quiet_learner(cbs=[A(), B()])
    tables = learn._train_cbs, learn._valid_cbs
    with pytest.raises(CallbackError, match='run_before/run_after form a cycle between the callbacks A, B'):
        learn.a.run_after = B
    assert 'run_after' not in learn.a.__dict__ and learn.a.run_after is None
    with pytest.raises(CallbackError, match="callback `A`: `order` must be a number, got 'late'"):
        learn.a.order = 'late'
    with pytest.raises(CallbackError, match="callback `A`: `order` must be a number, got nan"):
        learn.a.order = float('nan')          # it would scramble the sort
    with pytest.raises(CallbackError, match="callback `A`: `run` must be True or False, got 0"):
        learn.a.run = 0
    assert (learn._train_cbs, learn._valid_cbs) == tables and not learn._train_cbs.stale
    learn.b.run_valid = False
    del learn.b.run_valid                                           # back to the class's value, heard at once
    assert learn._valid_cbs is not tables[1] and not learn._valid_cbs.stale
    learn.fit(1)


def test_callbacks_removed_or_added_mid_event_take_effect_at_the_next_listener():
    log = []
    late = recording('Late', ['after_batch', 'after_fit'], log, order=5)()
    other = recording('Other', ['after_batch', 'after_fit'], log, order=6, run_valid=False)()
    newcomer = recording('Newcomer', ['after_batch', 'after_fit'], log, order=7, run_valid=False)()

    class Remover(Callback):
        order = 1
        def after_batch(self):
            if self.training and self.iter == 0: self.learn.remove_cb(late); self.learn.add_cb(newcomer)
        def after_fit(self): self.learn.remove_cb(newcomer)

    learn = quiet_learner(cbs=[Remover(), late, other], n_trn=2)
    learn.fit(1)
    assert log == [('after_batch', 'Other'),                                # batch 0: Late is gone, Newcomer not yet heard
                   ('after_batch', 'Other'), ('after_batch', 'Newcomer'),   # batch 1
                   ('after_fit', 'Other'), ('after_fit', 'Newcomer')]       # after_fit (cleanup): removed there, still heard


def test_an_error_in_a_listener_of_a_replaced_table_names_its_callback():
    class Adder(Callback):
        def before_batch(self): self.learn.add_cb(Callback())     # replaces the tables mid-event

    class Boom(Callback):
        order = 1
        def before_batch(self): raise ValueError('boom')

    learn = quiet_learner(cbs=[Adder(), Boom()])
    with pytest.raises(ValueError, match='boom') as e: learn.fit(1)
    assert e.value.__notes__ == ['Exception occurred in `Boom` when calling event `before_batch`']


def test_a_callback_that_silences_itself_runs_again_next_fit():
    log = []

    class Once(Callback):
        def before_fit(self): log.append('before_fit')
        def after_batch(self):
            log.append('after_batch')
            self.run = False
        def after_fit(self): log.append('after_fit')

    learn = quiet_learner(cbs=Once())
    learn.fit(2)
    assert log == ['before_fit', 'after_batch']
    assert learn.once.run is True
    learn.fit(1)
    assert log == ['before_fit', 'after_batch'] * 2


def test_calling_a_callback_directly_applies_the_same_rules():
    log = []
    cb = recording('Direct', ['after_batch', 'after_fit'], log, run_valid=False)()
    learn = quiet_learner(cbs=cb)
    learn.training = False
    cb('after_batch')                           # filtered: a batch event in validation
    learn.training = True
    cb('after_batch')
    cb.run = False
    cb('after_fit')                             # not run, but switches run back on
    assert log == [('after_batch', 'Direct')] and cb.run is True


def test_changing_order_after_adding_reorders_dispatch():
    log = []
    first, second = (recording(n, ['before_fit'], log)() for n in ('First', 'Second'))
    learn = quiet_learner(cbs=[first, second])
    second.order = -1
    learn.fit(1)
    assert log == [('before_fit', 'Second'), ('before_fit', 'First')]


# -------------------------------------------------------------------- run_before / run_after
def test_run_before_and_run_after_order_by_class_or_by_name():
    log = []
    early, late = recording('Early', ['after_fit'], log), recording('Late', ['after_fit'], log)
    before_early = recording('BeforeEarly', ['after_fit'], log, run_before=early)          # by class
    after_recorder = recording('AfterRecorder', ['after_fit'], log, run_after='recorder')  # by name (order 0 < 50)
    after_late = recording('AfterLate', ['after_fit'], log, run_after=['Late'])            # by class name, a list
    learn = quiet_learner(cbs=[early(), late(), after_late(), before_early(), after_recorder()])
    learn.fit(1)
    assert [name for _, name in log] == ['BeforeEarly', 'Early', 'Late', 'AfterLate', 'AfterRecorder']
    assert [type(cb).__name__ for cb in learn.ordered_cbs('after_fit')] == \
        ['BeforeEarly', 'Early', 'Late', 'AfterLate', 'AfterRecorder', 'ProgressCallback']


def test_ties_keep_insertion_order():
    log = []
    cbs = [recording(n, ['before_fit'], log)() for n in ('Zed', 'Alpha', 'Mid')]
    quiet_learner(cbs=cbs).fit(1)
    assert log == [('before_fit', 'Zed'), ('before_fit', 'Alpha'), ('before_fit', 'Mid')]


def test_run_before_outranks_order():
    log = []
    late = recording('Late', ['before_fit'], log, order=100)
    eager = recording('Eager', ['before_fit'], log, order=200, run_before=late)
    quiet_learner(cbs=[late(), eager()]).fit(1)
    assert log == [('before_fit', 'Eager'), ('before_fit', 'Late')]


def test_run_before_moves_only_the_callback_that_declares_it():
    log = []
    first, second = recording('First', ['before_fit'], log), recording('Second', ['before_fit'], log)
    pushy = recording('Pushy', ['before_fit'], log, run_before='First')
    quiet_learner(cbs=[first(), second(), pushy()]).fit(1)
    assert [name for _, name in log] == ['Pushy', 'First', 'Second']     # First still precedes Second


def test_a_cycle_is_refused_when_the_callback_is_added():
    class Ping(Callback): run_before = 'Pong'
    class Pong(Callback): run_before = Ping
    class Bystander(Callback): run_after = Ping      # blocked by the cycle, but not part of it
    learn = quiet_learner(cbs=[Ping(), Bystander()])
    before = list(learn.cbs)
    with pytest.raises(CallbackError, match='run_before/run_after form a cycle between the callbacks Ping, Pong'):
        learn.add_cb(Pong())
    assert learn.cbs == before and not hasattr(learn, 'pong')


# ------------------------------------------------------------------------- add-time checks
def test_misspelt_event_method_warns_when_added():
    class Typo(Callback):
        def after_bach(self): pass
    learn = quiet_learner()
    with pytest.warns(UserWarning, match=r'callback `Typo` defines `after_bach`, which is not an event and '
                                         r'will never be called; did you mean `after_batch`\?') as rec:
        learn.add_cb(Typo())
    assert rec[0].filename == __file__


def test_fastai1_method_name_in_a_v2_callback_warns():
    class OldStyle(Callback):
        def on_batch_end(self, **kwargs): pass
    with pytest.warns(UserWarning, match='callback `OldStyle` defines `on_batch_end`, a fastai-1 event name that '
                                         'a v2 callback never receives: rename it `after_batch`'):
        quiet_learner().add_cb(OldStyle())


def test_event_method_with_a_required_argument_is_refused():
    class NeedsArg(Callback):
        def after_batch(self, learn): pass
    learn = quiet_learner()
    with pytest.raises(CallbackError, match=r'callback `NeedsArg`: event method `after_batch\(learn\)` cannot be '
                                            r'called as an event; events pass no arguments: expected '
                                            r'`def after_batch\(self\)`'):
        learn.add_cb(NeedsArg())
    assert not any(isinstance(cb, NeedsArg) for cb in learn.cbs)


def test_event_method_with_optional_arguments_is_fine():
    class Optional(Callback):
        def after_batch(self, verbose=False, **kwargs): pass
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        quiet_learner(cbs=Optional()).fit(1)


def test_event_attribute_that_is_not_callable_is_refused():
    class NotAMethod(Callback): after_batch = 3
    with pytest.raises(CallbackError, match='callback `NotAMethod`: `after_batch` must be a method taking no '
                                            'arguments, got int'):
        quiet_learner(cbs=NotAMethod())


def test_order_must_be_a_number():
    class Wordy(Callback): order = 'late'
    with pytest.raises(CallbackError, match="callback `Wordy`: `order` must be a number, got 'late'"):
        quiet_learner().add_cb(Wordy())


def test_run_flags_must_be_booleans():
    class Vague(Callback): run_valid = 'no'
    with pytest.raises(CallbackError, match="callback `Vague`: `run_valid` must be True or False, got 'no'"):
        quiet_learner().add_cb(Vague())


# ------------------------------------------------------------------- fastbook's begin_* names
def test_deprecated_begin_names_still_run_with_a_deprecation_warning():
    log = []

    class Fastbook(Callback):
        def begin_fit(self): log.append('begin_fit')
        def begin_epoch(self): log.append('begin_epoch')
        def begin_train(self): log.append('begin_train')
        def begin_batch(self): log.append('begin_batch')
        def begin_validate(self): log.append('begin_validate')

    learn = quiet_learner()
    with pytest.warns(DeprecationWarning) as rec:
        learn.add_cb(Fastbook())
    messages = sorted(str(w.message) for w in rec)
    assert messages[0] == 'callback `Fastbook`: the event name `begin_batch` is deprecated, use `before_batch`'
    assert len(messages) == 5 and all(w.filename == __file__ for w in rec)   # shown by Python's default filters
    learn.fit(1)
    assert log == ['begin_fit', 'begin_epoch', 'begin_train', 'begin_batch', 'begin_validate', 'begin_batch']
    assert 'Fastbook' in [type(cb).__name__ for cb in learn.ordered_cbs('before_fit')]


def test_recorder_is_a_callback_registered_by_name():
    learn = quiet_learner()
    assert isinstance(learn.recorder, Recorder) and learn.recorder.learn is learn
