"Learner: construction, callback management, the loop's contract, evaluation, persistence, freezing."
import os
import pickle
import random
import re
import traceback
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tiny import blobs_dls, blobs_learner, quiet_learner, recording
from trainlib import (SGD, Adam, CancelFitException, Callback, CallbackError, CastToTensor, CSVLogger, CrossEntropyLossFlat,
                      DataLoaders, Learner, accuracy, error_rate,
                      MSELossFlat, ProgressCallback, Recorder, TrainEvalCallback, before_batch_cb, find_bs, load_learner,
                      noop)
from trainlib.testing import RegModel, synth_dbunch


# ------------------------------------------------------------------------------- construction
def test_constructor_defaults_are_fastais():
    dls = synth_dbunch()
    dls.path = Path('data/here')
    learn = Learner(dls, RegModel(), loss_func=MSELossFlat())
    assert learn.lr == 1e-3 and learn.moms == (0.95, 0.85, 0.95) and learn.wd is None
    assert learn.opt_func is Adam and learn.opt is None and learn.metrics == []
    assert learn.model_dir == 'models' and learn.path == Path('data/here')
    assert learn.wd_bn_bias is False and learn.train_bn is True
    assert [type(cb) for cb in learn.cbs] == [TrainEvalCallback, Recorder, CastToTensor, ProgressCallback]
    assert learn.n_epoch == 1 and learn.training is False and learn.logger is print
    assert Learner(dls, RegModel(), loss_func=MSELossFlat(), path='elsewhere').path == Path('elsewhere')


def test_no_default_callbacks_on_request():
    learn = Learner(synth_dbunch(), RegModel(), loss_func=MSELossFlat(), default_cbs=False)
    assert learn.cbs == [] and not hasattr(learn, 'recorder')


def test_loss_function_comes_from_the_training_dataset():
    dls = synth_dbunch()
    dls.train_ds.loss_func = MSELossFlat()
    assert Learner(dls, RegModel()).loss_func is dls.train_ds.loss_func


def test_missing_loss_function_error():
    with pytest.raises(ValueError, match=r'Could not infer loss function from the data, please pass a loss '
                                         r'function \(Learner\(\.\.\., loss_func=\.\.\.\)\)'):
        Learner(synth_dbunch(), RegModel())


def test_bad_model_and_loss_errors():
    with pytest.raises(TypeError, match='Learner: model must be a torch.nn.Module, got function'):
        Learner(synth_dbunch(), lambda x: x, loss_func=MSELossFlat())
    with pytest.raises(TypeError, match="Learner: loss_func must be callable .* got 'mse'"):
        Learner(synth_dbunch(), RegModel(), loss_func='mse')


@pytest.mark.parametrize('kwargs, message', [
    (dict(loss_func=nn.MSELoss), 'Learner: loss_func is the class MSELoss; pass an instance, MSELoss()'),
    (dict(opt_func=torch.optim.SGD(RegModel().parameters(), lr=0.1)),
     'Learner: opt_func must make the optimizer from the parameters (a class such as torch.optim.SGD, a partial of '
     'one, or a function), got SGD'),
    (dict(splitter=3), 'Learner: splitter must be a function model -> parameter groups, got 3'),
    (dict(lr='1e-3'), "Learner: lr must be a number, a slice(start, stop) or one number per parameter group, "
                      "got '1e-3'"),
    (dict(wd=[0.1, 'x']), "Learner: wd must be a number"),
    (dict(moms=3), 'Learner: moms must be three numbers (start, middle, end of the cycle), got 3'),
    (dict(dls=(1, 2)), 'Learner: dls must be a DataLoaders (with .train and .valid loaders), got tuple; wrap the '
                       'loaders: DataLoaders(train_dl, valid_dl)')])
def test_a_learner_argument_it_cannot_train_with_is_refused_when_it_is_built(kwargs, message):
    args = dict(dls=synth_dbunch(), model=RegModel(), loss_func=MSELossFlat()) | kwargs
    with pytest.raises(TypeError) as info:
        Learner(**args)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize('call, message', [
    (lambda learn: learn.fit(1, lr='1e-3'), "fit: lr must be a number"),
    (lambda learn: learn.fit(1, wd='0.1'), "fit: wd must be a number"),
    (lambda learn: learn.fit_one_cycle(1, lr_max='x'), "fit_one_cycle: lr must be a number"),
    (lambda learn: learn.fit(1, lr=slice(None)), "fit: lr must be a number")])
def test_a_fit_argument_it_cannot_train_with_is_refused_before_any_event(call, message):
    log = []
    learn = quiet_learner(cbs=Callback(before_fit=lambda cb: log.append('before_fit')))
    with pytest.raises(TypeError, match=re.escape(message)):
        call(learn)
    assert log == []


def test_learner_takes_the_hyper_parameters_fastai_takes():
    for lr in (0.1, 1, np.float32(0.1), np.array(0.1), torch.tensor(0.1), slice(1e-3), slice(1e-4, 1e-2), [0.1],
               np.array([0.1])):
        Learner(synth_dbunch(), RegModel(), loss_func=MSELossFlat(), lr=lr)
    quiet_learner().fit(1, lr=np.array(1e-3))
    with pytest.raises(TypeError, match="fit: lr must be a number"):
        quiet_learner().fit(1, lr=np.array('1e-3'))
    assert Learner(None, RegModel(), loss_func=MSELossFlat()).dls is None


class Unsized:
    "A loader without a length: batches from a generator."
    def __init__(self, batches): self.batches = batches
    def __iter__(self): return iter(self.batches)


def test_a_loader_without_a_length_is_named():
    batch = (torch.randn(4, 1), torch.randn(4, 1))
    learn = Learner(DataLoaders(Unsized([batch]), [batch], device='cpu'), RegModel(), loss_func=MSELossFlat())
    with pytest.raises(TypeError, match=r'^the Learner needs loaders with a length: Unsized has no len\(\)$'):
        learn.fit(1)


def test_an_opt_func_that_returns_no_optimizer_is_named():
    learn = Learner(synth_dbunch(), RegModel(), loss_func=MSELossFlat(), opt_func=lambda params, lr: list(params))
    with pytest.raises(TypeError, match=r'opt_func must return an optimizer \(an OptimWrapper or a torch '
                                        r'optimizer\), got list'):
        learn.fit(1)


def test_a_progress_callback_needs_a_recorder():
    learn = Learner(synth_dbunch(), RegModel(), loss_func=MSELossFlat(), default_cbs=False,
                    cbs=[TrainEvalCallback, ProgressCallback])
    with pytest.raises(CallbackError, match=r'ProgressCallback needs a Recorder on the Learner \(learn.recorder\)') \
            as e:
        learn.fit(1)
    assert e.value.__notes__ == ['Exception occurred in `ProgressCallback` when calling event `before_fit`']


def test_a_callback_name_must_be_an_identifier():
    class Oddly(Callback): name = 'not a name'
    with pytest.raises(CallbackError, match="callback `Oddly`: its name 'not a name' is not a valid attribute name"):
        quiet_learner().add_cb(Oddly())


def test_a_batch_without_a_tensor_has_no_batch_size():
    with pytest.raises(ValueError, match='no tensor found in the batch tuple to read the batch size from'):
        find_bs((['cat', 'dog'],))                  # (strings are not searched letter by letter)
    assert find_bs(('name', {'x': torch.zeros(3, 2)})) == 3
    assert find_bs((torch.zeros(5, 2), torch.zeros(3))) == 5 and find_bs((torch.tensor(1.), torch.zeros(4))) == 1


# -------------------------------------------------------------------------- callback management
class Tracer(Callback):
    "Remembers the Learner events it saw."
    def __init__(self): self.events = []
    def before_fit(self): self.events.append('before_fit')
    def after_fit(self): self.events.append('after_fit')


def test_add_cb_accepts_an_instance_or_a_class_and_registers_its_name():
    learn = quiet_learner()
    tracer = Tracer()
    assert learn.add_cb(tracer) is learn
    assert learn.tracer is tracer and tracer.learn is learn and learn.cbs[-1] is tracer
    learn.add_cbs([CastToTensor, Callback()])
    assert isinstance(learn.cbs[-2], CastToTensor) and learn.cast_to_tensor is learn.cbs[-2]
    assert learn.callback is learn.cbs[-1]


def test_add_cb_refuses_what_is_not_a_callback():
    with pytest.raises(CallbackError, match='cbs: expected a Callback .* got 42 of type int'):
        quiet_learner().add_cb(42)


def test_remove_cb_by_instance_or_by_class():
    learn = quiet_learner()
    t1, t2 = Tracer(), Tracer()
    learn.add_cbs([t1, t2])
    assert learn.tracer is t2                   # the last one added owns the name
    learn.remove_cb(t2)
    assert t2.learn is None and learn.tracer is t1 and t2 not in learn.cbs
    learn.add_cb(t2)
    learn.remove_cb(Tracer)                     # a class removes every instance
    assert not any(isinstance(cb, Tracer) for cb in learn.cbs) and not hasattr(learn, 'tracer')
    learn.remove_cbs([Recorder, ProgressCallback])
    assert [type(cb) for cb in learn.cbs] == [TrainEvalCallback, CastToTensor]


def test_added_cbs_and_removed_cbs_are_temporary():
    learn = quiet_learner()
    tracer = Tracer()
    with learn.added_cbs(tracer):
        assert learn.tracer is tracer
        learn.fit(1)
    assert tracer.events == ['before_fit', 'after_fit'] and tracer.learn is None and tracer not in learn.cbs
    progress = learn.progress
    with learn.removed_cbs(progress) as same:
        assert same is learn and progress not in learn.cbs
    assert learn.progress is progress and learn.cbs[-1] is progress


def test_a_callback_removed_during_after_fit_still_gets_its_after_fit():
    # fastai 2.8.12 runs each event over a copy of the callbacks: a manager (order 0) removing its helper (order 10)
    # in after_fit logs ['Manager.after_fit: removing helper', 'Helper.after_fit (cleanup)'], the helper detached
    # (trainlib detaches it when after_fit ends: its cleanup still has the Learner).
    # A callback switched off there is skipped, and one added there is not run, in both.
    log = []

    class Helper(Callback):
        order = 10
        def __init__(self, tag): self.tag = tag
        def after_fit(self): log.append((self.tag, self.learn is None))

    class Manager(Callback):
        def before_fit(self):
            self.removed, self.silenced = Helper('removed'), Helper('silenced')
            self.learn.add_cbs([self.removed, self.silenced])
        def after_fit(self):
            log.append(('manager', False))
            self.learn.remove_cb(self.removed)
            self.silenced.run = False
            self.learn.add_cb(Helper('added'))

    class Fails(Callback):
        order = 20
        def before_fit(self): raise RuntimeError('fit fails')

    learn = quiet_learner(cbs=[Manager()])
    learn.fit(1)
    assert log == [('manager', False), ('removed', False)]
    assert learn.manager.removed.learn is None and learn.manager.removed not in learn.cbs
    assert learn.manager.silenced.run is True                              # on again for the next fit
    log.clear()
    with pytest.raises(RuntimeError, match='fit fails'): quiet_learner(cbs=[Manager(), Fails()]).fit(1)
    assert log == [('manager', False), ('removed', False)]                 # also when the fit fails


def test_stock_callbacks_removed_during_after_fit_still_clean_up():
    class Dismiss(Callback):
        def after_fit(self): self.learn.remove_cbs([ProgressCallback, CSVLogger])
    learn = quiet_learner(cbs=[CSVLogger(), Dismiss()])
    logger = learn.logger
    learn.fit(1)
    assert learn.logger is logger and not any(isinstance(cb, (ProgressCallback, CSVLogger)) for cb in learn.cbs)


def test_the_context_managers_give_what_fastais_give():
    # fastai 2.8.12: no_bar and removed_cbs give the Learner; added_cbs, no_logging, no_mbar, loss_not_reduced
    # (either way) and validation_context give None; `with learn` gives the Learner
    learn = quiet_learner()
    for cm in (learn.no_bar(), learn.removed_cbs([]), learn):
        with cm as got: assert got is learn
    learn.loss_func = partial(F.mse_loss)
    for cm in (learn.added_cbs([]), learn.no_logging(), learn.no_mbar(), learn.loss_not_reduced(),
               learn.validation_context(inner=True)):
        with cm as got: assert got is None
    with learn.no_bar() as same:
        assert not any(isinstance(cb, ProgressCallback) for cb in same.cbs)
    assert isinstance(learn.cbs[-1], ProgressCallback)


def test_fit_cbs_are_there_for_that_fit_only():
    learn = quiet_learner()
    tracer = Tracer()
    learn.fit(1, cbs=tracer)
    assert tracer.events == ['before_fit', 'after_fit'] and tracer not in learn.cbs and tracer.learn is None


def test_a_callback_already_attached_and_passed_to_fit_runs_once_and_stays_attached_once():
    # fastai 2.8.12 keeps one copy too (but runs it twice in that fit and leaves it with learn=None)
    tracer = Tracer()
    learn = quiet_learner(cbs=[tracer])
    learn.fit(1, cbs=[tracer])
    assert tracer.events == ['before_fit', 'after_fit'] and tracer.learn is learn
    assert sum(cb is tracer for cb in learn.cbs) == 1 and learn.tracer is tracer
    for run in (lambda: learn.fit(1), lambda: learn.validate(cbs=[tracer]), lambda: learn.get_preds(cbs=tracer)):
        tracer.events = []
        run()
        assert tracer.events == ['before_fit', 'after_fit'] and sum(cb is tracer for cb in learn.cbs) == 1
    with learn.added_cbs([tracer, tracer]): assert sum(cb is tracer for cb in learn.cbs) == 1
    assert tracer.learn is learn and tracer in learn.cbs


def test_a_callback_given_twice_to_fit_runs_once_and_leaves_with_the_fit():
    tracer = Tracer()
    learn = quiet_learner()
    learn.fit(1, cbs=[tracer, tracer])
    assert tracer.events == ['before_fit', 'after_fit'] and tracer not in learn.cbs and tracer.learn is None


@pytest.mark.parametrize('cls_name, kind', [('Fit', 'method'), ('X', 'property'), ('Metrics', 'property')])
def test_a_callback_cannot_take_the_name_of_a_learner_member(cls_name, kind):
    cb = type(cls_name, (Callback,), {})()
    with pytest.raises(CallbackError, match=f'callback `{cls_name}` would be registered as '
                                            f'`learn.{cls_name.lower()}`, which is a Learner {kind}'):
        quiet_learner().add_cb(cb)


@pytest.mark.parametrize('cls_name, state', [('Model', 'RegModel'), ('Training', 'bool'), ('Opt', 'None'),
                                             ('Loss', 'None')])
def test_a_callback_cannot_take_the_name_of_learner_state(cls_name, state):
    cb = type(cls_name, (Callback,), {})()
    learn = quiet_learner()
    with pytest.raises(CallbackError, match=f'callback `{cls_name}` would be registered as `learn.{cls_name.lower()}`, '
                                            f'which already holds the Learner state {state}; rename the callback'):
        learn.add_cb(cb)
    assert cb not in learn.cbs


def test_two_classes_cannot_share_a_name():
    first, second = type('Probe', (Callback,), {}), type('Probe', (Callback,), {})
    learn = quiet_learner(cbs=first())
    with pytest.raises(CallbackError, match='callbacks `Probe` and `Probe` both want to be `learn.probe`; give one '
                                            'of them another `name`'):
        learn.add_cb(second())
    learn.add_cb(first())                       # two instances of one class are fine
    assert learn.probe is learn.cbs[-1]


def test_a_name_attribute_chooses_the_registration():
    class Fit(Callback): name = 'fit_watcher'
    learn = quiet_learner(cbs=Fit())
    assert isinstance(learn.fit_watcher, Fit)


def test_ordered_cbs_lists_the_listeners_of_an_event_in_dispatch_order():
    learn = quiet_learner()
    assert learn.ordered_cbs('before_batch') == [learn.cast_to_tensor]
    assert learn.ordered_cbs('after_batch') == [learn.train_eval, learn.recorder, learn.progress]
    assert learn.ordered_cbs('after_cancel_fit') == []


def test_show_training_loop_prints_fastais_skeleton(capsys):
    learn = quiet_learner(cbs=recording('Watcher', ['after_step'], [], order=3)())
    learn.show_training_loop()
    lines = capsys.readouterr().out.splitlines()
    assert lines[:4] == ['Start Fit', '   - before_fit     : [TrainEvalCallback, Recorder, ProgressCallback]',
                         '  Start Epoch Loop', '     - before_epoch   : [Recorder, ProgressCallback]']
    assert '         - before_batch   : [CastToTensor]' in lines
    assert '         - after_step     : [Watcher]' in lines
    assert '         - **CBs same as train batch**: []' in lines
    assert lines[-2:] == [' - after_cancel_fit: []', ' - after_fit      : [ProgressCallback]']


def test_before_batch_cb_changes_the_batch_in_training_and_validation():
    phases, inputs = [], []

    def double_inputs(cb, xb, yb):
        phases.append(cb.training)
        return (xb[0] * 2,), yb

    cb = before_batch_cb(double_inputs)
    learn = quiet_learner(cbs=[cb, Callback(after_pred=lambda spy: inputs.append(spy.learn.x))])
    assert cb.name == 'callback'
    learn.fit(1)
    assert phases == [True, False]
    assert torch.equal(inputs[-1], learn.dls.valid_ds.tensors[0] * 2)


def test_calling_the_learner_fires_events():
    log = []
    learn = quiet_learner(cbs=recording('Spy', ['before_fit', 'after_cancel_fit'], log)())
    learn('before_fit')
    learn(['after_cancel_fit', 'before_fit'])
    assert log == [('before_fit', 'Spy'), ('after_cancel_fit', 'Spy'), ('before_fit', 'Spy')]
    with pytest.raises(ValueError, match="unknown event 'before_fitt'; the events are: after_create, before_fit"):
        learn('before_fitt')


def test_after_create_reaches_the_callbacks_given_to_the_constructor_only():
    log = []
    spy = recording('Spy', ['after_create'], log)
    learn = quiet_learner(cbs=spy())
    learn.add_cb(recording('Late', ['after_create'], log)())
    assert log == [('after_create', 'Spy')]


# ----------------------------------------------------------------------------------- fit
@pytest.mark.parametrize('n_epoch', [1.5, -1, True, '2', None])
def test_fit_validates_n_epoch(n_epoch):
    with pytest.raises(ValueError, match=f'fit: n_epoch must be a non-negative int, got {n_epoch!r}'):
        quiet_learner().fit(n_epoch)


def test_fit_lr_sets_the_optimizer_only():
    learn = quiet_learner()
    learn.fit(1, lr=0.5)
    assert learn.opt.hypers[0]['lr'] == 0.5 and learn.lr == 1e-3
    learn.fit(1)
    assert learn.opt.hypers[0]['lr'] == 1e-3


def test_fit_zero_epochs_still_fires_before_and_after_fit():
    log = []
    quiet_learner(cbs=recording('Spy', ['before_fit', 'before_epoch', 'after_fit'], log)()).fit(0)
    assert log == [('before_fit', 'Spy'), ('after_fit', 'Spy')]


def test_start_epoch_skips_the_first_epochs():
    learn = quiet_learner(n_trn=2)
    learn.fit(3, start_epoch=2)
    assert learn.recorder.values[:2] == [[], []] and len(learn.recorder.values[2]) == 2
    assert learn.train_iter == 2                # only the last epoch trained
    assert not any(type(cb).__name__ == 'SkipToEpoch' for cb in learn.cbs)


def test_state_is_cleaned_after_fit():
    learn = quiet_learner()
    learn.fit(1)
    assert (learn.dl, learn.xb, learn.yb, learn.pred, learn.loss) == (None, (None,), (None,), None, None)
    assert learn.loss_grad is not None and learn.smooth_loss is not None and learn.final_record is not None


class TwoInputs(nn.Module):
    "``w*a + b``: a model that takes two inputs."
    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
    def forward(self, a, b): return self.w * a + b


def three_tensor_dls(n_inp=None, as_list=False):
    "Loaders whose batches hold three tensors (a tuple, or a list when ``as_list``)."
    t = [torch.randn(32, 1) for _ in range(3)]
    collate = (lambda items: [torch.stack(c) for c in zip(*items)]) if as_list else None
    dl = DataLoader(TensorDataset(*t), batch_size=16, collate_fn=collate)
    return DataLoaders(dl, dl, device='cpu', n_inp=n_inp)


@pytest.mark.parametrize('as_list', [False, True])
def test_batches_are_split_into_inputs_and_targets(as_list):
    seen = {}
    spy = Callback(before_batch=lambda cb: seen.update(xb=cb.learn.xb, yb=cb.learn.yb))
    learn = Learner(three_tensor_dls(as_list=as_list), TwoInputs(), loss_func=F.mse_loss, cbs=spy)
    learn.fit(1)                                # default: every element but the last is an input
    assert type(seen['xb']) is tuple and len(seen['xb']) == 2 and type(seen['yb']) is tuple and len(seen['yb']) == 1

    def two_targets(pred, y1, y2): return F.mse_loss(pred, y1) + F.mse_loss(pred, y2)
    learn = Learner(three_tensor_dls(n_inp=1, as_list=as_list), nn.Linear(1, 1), loss_func=two_targets, cbs=spy)
    learn.fit(1)
    assert len(seen['xb']) == 1 and len(seen['yb']) == 2


def test_n_inp_two_feeds_two_inputs_to_the_model():
    learn = Learner(three_tensor_dls(n_inp=2), TwoInputs(), loss_func=F.mse_loss)
    learn.logger = noop
    learn.fit(1)
    assert learn.model.w.item() != 1.0 and len(learn.recorder.values[0]) == 2


def test_the_model_moves_to_the_data_device_and_batches_follow_the_model():
    seen = {}

    class Probe(Callback):
        order = -5                              # after TrainEvalCallback (-10) moved the model
        def before_fit(self): seen['model'] = self.learn.model.a.device
        def before_batch(self):
            seen['batch'] = self.learn.x.device
            raise CancelFitException

    learn = quiet_learner(cbs=Probe())
    learn.dls.to('meta')                        # a device that exists everywhere
    learn.fit(1)
    assert seen == {'model': torch.device('meta'), 'batch': torch.device('meta')}

    learn = quiet_learner(cbs=[Probe(), Callback(before_fit=lambda cb: cb.learn.model.to('meta'))])
    learn.fit(1)                                # data device cpu, model elsewhere: batches go to the model
    assert seen['batch'] == torch.device('meta')


def test_one_batch_runs_a_whole_training_step():
    log = []
    events = ['before_batch', 'after_pred', 'after_loss', 'before_backward', 'after_backward', 'before_step',
              'after_step', 'after_batch']
    learn = quiet_learner(cbs=recording('Spy', events, log)())
    learn.create_opt()
    learn.training = True
    a_before = learn.model.a.detach().clone()
    learn.one_batch(3, learn.dls.one_batch())
    assert [e for e, _ in log] == events and learn.iter == 3
    assert not torch.equal(learn.model.a.detach(), a_before) and learn.model.a.grad is None


# ------------------------------------------------------------------ exceptions and after_fit
class Boom(Callback):
    "Raises at one event."
    def __init__(self, event='after_batch'):
        self.error = RuntimeError('boom')
        setattr(self, event, self.explode)
    def explode(self): raise self.error


def test_after_fit_runs_when_the_fit_fails_and_sees_the_exception():
    seen = []
    watcher = Callback(after_fit=lambda cb: seen.append(cb.learn.exception))
    boom = Boom()
    learn = quiet_learner(cbs=[boom, watcher])
    learn.logger = print
    with pytest.raises(RuntimeError) as info:
        learn.fit(1)
    assert info.value is boom.error and seen == [boom.error] and learn.exception is None
    assert info.value.__notes__ == ['Exception occurred in `Boom` when calling event `after_batch`']
    last = traceback.extract_tb(info.value.__traceback__)[-1]
    assert last.name == 'explode' and last.filename == __file__
    assert learn.logger is print                # ProgressCallback restored the logger


def test_every_after_fit_runs_even_if_one_raises():
    seen = []
    learn = quiet_learner(cbs=[Boom('after_fit'), Callback(after_fit=lambda cb: seen.append('ran'))])
    with pytest.raises(RuntimeError, match='boom') as info:
        learn.fit(1)
    assert seen == ['ran']
    assert info.value.__notes__ == ['Exception occurred in `Boom` when calling event `after_fit`']


def test_a_failing_after_fit_is_noted_on_the_original_error():
    boom = Boom('before_epoch')
    learn = quiet_learner(cbs=[boom, Boom('after_fit')])
    with pytest.raises(RuntimeError) as info:
        learn.fit(1)
    assert info.value is boom.error
    assert info.value.__notes__[-1] == 'after_fit also failed: RuntimeError: boom'


@pytest.mark.parametrize('event, run', [('after_pred', lambda learn: learn.fit(1)),
                                        ('before_epoch', lambda learn: learn.get_preds())])
def test_keyboard_interrupt_also_runs_after_fit(event, run):
    seen = []

    def interrupt(cb): raise KeyboardInterrupt
    learn = quiet_learner(cbs=[Callback(**{event: interrupt}), Callback(after_fit=lambda cb: seen.append(1))])
    with pytest.raises(KeyboardInterrupt):
        run(learn)
    assert seen == [1] and learn._running == 0


@pytest.mark.parametrize('event', ['before_fit', 'before_epoch', 'before_batch', 'after_epoch'])
@pytest.mark.parametrize('run', ['validate', 'get_preds'])
def test_an_evaluation_run_also_runs_after_fit_when_it_fails(run, event):
    seen = []
    boom = Boom(event)
    learn = quiet_learner(cbs=[boom, Callback(after_fit=lambda cb: seen.append(cb.learn.exception))])
    with pytest.raises(RuntimeError) as info:
        getattr(learn, run)()
    assert info.value is boom.error and seen == [boom.error]
    assert learn.exception is None and learn._running == 0


def test_an_evaluation_run_raises_its_own_error_when_after_epoch_also_fails():
    seen = []
    first = Boom('after_batch')
    learn = quiet_learner(cbs=[first, Boom('after_epoch'), Callback(after_fit=lambda cb: seen.append(cb.learn.exception))])
    with pytest.raises(RuntimeError) as info:
        learn.validate()
    assert info.value is first.error and seen == [first.error]
    assert info.value.__notes__[-1] == 'after_epoch also failed: RuntimeError: boom'


# ------------------------------------------------------------------ changing the loss
def first_grad(after_loss):
    "``(a, a.grad)`` in the first training batch of a seeded Learner, with ``after_loss`` run at after_loss."
    torch.manual_seed(0); random.seed(0)
    seen = []
    learn = quiet_learner(cbs=[Callback(after_loss=after_loss),
                               Callback(after_backward=lambda cb: seen.append((cb.model.a.detach().clone(),
                                                                               cb.model.a.grad.clone())))])
    learn.fit(1)
    return seen[0]


def test_a_penalty_added_to_learn_loss_is_backpropagated():
    def penalise(cb): cb.learn.loss += 10 * cb.learn.model.a.pow(2).sum()     # fastbook style
    a, plain = first_grad(noop)
    a2, penalised = first_grad(penalise)
    assert torch.equal(a, a2)
    torch.testing.assert_close(penalised, plain + 20 * a)


def test_a_detached_loss_assigned_to_learn_loss_does_not_break_backward():
    _, plain = first_grad(noop)
    _, logged = first_grad(lambda cb: setattr(cb.learn, 'loss', cb.learn.loss.detach() * 0))
    assert torch.equal(logged, plain)           # the gradient of the real loss


# ------------------------------------------------------------------------------- evaluation
def test_validate_returns_the_loss_and_metrics_on_any_loader():
    learn = blobs_learner(metrics=[lambda p, t: (p.argmax(1) == t).float().mean()])
    x, y = learn.dls.valid_ds.tensors
    with torch.no_grad(): logits = learn.model(x)
    loss, acc = learn.validate()
    assert loss == pytest.approx(F.cross_entropy(logits, y).item(), abs=1e-6)
    assert acc == pytest.approx((logits.argmax(1) == y).float().mean().item(), abs=1e-6)
    xt, yt = learn.dls.train_ds.tensors
    with torch.no_grad(): train_loss = F.cross_entropy(learn.model(xt), yt).item()
    assert learn.validate(ds_idx=0)[0] == pytest.approx(train_loss, abs=1e-6)
    other = DataLoader(TensorDataset(xt[:5], yt[:5]), batch_size=2)
    with torch.no_grad(): small_loss = F.cross_entropy(learn.model(xt[:5]), yt[:5]).item()
    assert learn.validate(dl=other)[0] == pytest.approx(small_loss, abs=1e-6)


def test_get_preds_in_data_order_with_activation():
    learn = blobs_learner()
    preds, targs = learn.get_preds(ds_idx=0)       # the shuffled training loader, read in order
    x, y = learn.dls.train_ds.tensors
    with torch.no_grad(): expected = F.softmax(learn.model(x), dim=-1)
    torch.testing.assert_close(preds, expected)
    assert torch.equal(targs, y)


def test_get_preds_on_a_given_loader_in_its_data_order():
    learn = blobs_learner()
    x, y = learn.dls.valid_ds.tensors
    shuffled = DataLoader(TensorDataset(x, y), batch_size=6, shuffle=True, drop_last=True)
    preds, targs = learn.get_preds(dl=shuffled)       # every item, in order
    assert torch.equal(targs, y)
    with torch.no_grad(): torch.testing.assert_close(preds, F.softmax(learn.model(x), dim=-1))


def test_get_preds_on_a_shuffled_dropping_training_loader_gives_every_item_in_dataset_order():
    learn = Learner(blobs_dls(n_train=50), nn.Linear(2, 2), loss_func=CrossEntropyLossFlat())
    assert learn.dls.train.drop_last and len(learn.dls.train) == 3              # 48 of the 50 items a pass
    preds, targs = learn.get_preds(ds_idx=0)
    x, y = learn.dls.train_ds.tensors
    assert torch.equal(targs, y)
    with torch.no_grad(): torch.testing.assert_close(preds, F.softmax(learn.model(x), dim=-1))
    synth = quiet_learner(n_trn=3)                                              # fastai's own shuffling sampler
    assert torch.equal(synth.get_preds(ds_idx=0)[1], synth.dls.train_ds.tensors[1])


class LongestFirst(torch.utils.data.Sampler):
    "Batches of 4 items, largest first coordinate first (as a sampler that sorts by length does)."
    def __init__(self, x): self.idxs = x[:, 0].argsort(descending=True).tolist()
    def __iter__(self): return iter([self.idxs[i:i + 4] for i in range(0, len(self.idxs), 4)])
    def __len__(self): return (len(self.idxs) + 3) // 4


def test_get_preds_reorder_puts_a_loader_with_its_own_batches_back_in_dataset_order():
    learn = blobs_learner()
    x, y = learn.dls.valid_ds.tensors
    dl = DataLoader(TensorDataset(x, y), batch_sampler=LongestFirst(x))
    inputs, preds, targs, losses = learn.get_preds(dl=dl, with_input=True, with_loss=True, act=noop)
    with torch.no_grad(): logits = learn.model(x)
    assert torch.equal(inputs, x) and torch.equal(targs, y)
    torch.testing.assert_close(preds, logits)
    torch.testing.assert_close(losses, F.cross_entropy(logits, y, reduction='none'))
    first = x[:, 0].argsort(descending=True)
    raw_inputs, _, raw_targs = learn.get_preds(dl=dl, with_input=True, reorder=False)
    assert torch.equal(raw_inputs, x[first]) and torch.equal(raw_targs, y[first])     # the sampler's order


def test_get_preds_with_everything():
    learn = blobs_learner()
    inputs, preds, targs, decoded, losses = learn.get_preds(with_input=True, with_decoded=True, with_loss=True)
    x, y = learn.dls.valid_ds.tensors
    with torch.no_grad(): logits = learn.model(x)
    assert torch.equal(inputs, x) and torch.equal(targs, y)
    assert torch.equal(decoded, logits.argmax(-1))
    torch.testing.assert_close(losses, F.cross_entropy(logits, y, reduction='none'))
    assert learn.loss_func.reduction == 'mean'     # restored


def _times_100(order):
    "A callback of ``order`` that multiplies the batch's input by 100 in before_batch (a normalisation, say)."
    class Times100(Callback):
        def before_batch(self) -> None: self.learn.xb = (self.learn.xb[0] * 100,)
    Times100.order = order
    return Times100()


@pytest.mark.parametrize('order, attached, factor', [(1, True, 1), (5, False, 1), (0, True, 100), (0, False, 100),
                                                     (-1, True, 100)])
def test_get_preds_inputs_are_the_batch_before_callbacks_of_higher_order_change_it(order, attached, factor):
    # fastai 2.8.12 records the inputs in GatherPredsCallback.before_batch (order 0, added after get_preds' cbs):
    # with this callback its returned inputs were x (order 1 or 5) and x*100 (order 0 or -1), attached or in cbs=.
    learn = blobs_learner()
    scale = _times_100(order)
    if attached: learn.add_cb(scale)
    inputs, preds, _ = learn.get_preds(with_input=True, act=noop, cbs=None if attached else [scale])
    x = learn.dls.valid_ds.tensors[0]
    assert torch.equal(inputs, x * factor)
    with torch.no_grad(): torch.testing.assert_close(preds, learn.model(x * 100))   # the model saw the scaled input


def test_get_preds_act_replaces_the_activation():
    learn = blobs_learner()
    raw, _ = learn.get_preds(act=noop)
    with torch.no_grad(): torch.testing.assert_close(raw, learn.model(learn.dls.valid_ds.tensors[0]))


def test_get_preds_inner_fires_only_the_validation_events():
    log = []
    events = ['before_fit', 'before_epoch', 'before_validate', 'after_validate', 'after_epoch', 'after_fit']
    learn = blobs_learner()
    learn.logger = noop
    learn.fit(1)                                # inner=True is for use inside a fit (as in fastai)
    learn.get_preds(inner=True, cbs=recording('Spy', events, log)())
    assert [e for e, _ in log] == ['before_validate', 'after_validate']
    log.clear()
    learn.get_preds(cbs=recording('Spy', events, log)())
    assert [e for e, _ in log] == events
    assert not hasattr(learn, 'spy')                # cbs= are there for that call only


LOOP_STATE = ('dl', 'xb', 'yb', 'pred', 'loss', 'loss_grad', 'iter', 'n_iter', 'training', 'epoch', 'train_iter',
              'pct_train', 'smooth_loss')


class EvaluateDuringFit(Callback):
    "Calls get_preds (inner or not) and validate in the middle of a training phase and at the end of each epoch."
    def __init__(self): self.changed, self.preds, self.scores = [], [], []

    def evaluate(self):
        learn = self.learn
        before = {k: getattr(learn, k) for k in LOOP_STATE}
        modes = learn.model.training
        self.preds.append(learn.get_preds(inner=True)[0])
        learn.get_preds()                                   # inner=False: also an inner pass inside a fit
        self.scores.append(learn.validate())
        self.changed += [k for k in LOOP_STATE if getattr(learn, k) is not before[k]]
        if learn.model.training != modes: self.changed.append('model.training')

    def after_batch(self):
        if self.learn.training and self.learn.iter == 1: self.evaluate()

    def after_epoch(self): self.evaluate()


def fitted_blobs(cbs=()):
    torch.manual_seed(0)
    learn = Learner(blobs_dls(n_train=50, shuffle_train=False), nn.Linear(2, 2), loss_func=CrossEntropyLossFlat(),
                    lr=0.1, metrics=accuracy, cbs=list(cbs))
    learn.logger = noop
    learn.fit(2)
    return learn


def test_get_preds_and_validate_from_a_callback_leave_the_running_fit_alone():
    spy = EvaluateDuringFit()
    learn, twin = fitted_blobs([spy]), fitted_blobs()
    assert spy.changed == []                            # dl, xb, training, model.train() ... all as they were
    assert learn.recorder.values == twin.recorder.values and learn.recorder.losses == twin.recorder.losses
    assert learn.recorder.iters == twin.recorder.iters and torch.equal(learn.model.weight, twin.model.weight)
    assert learn.recorder.metric_names == ['epoch', 'train_loss', 'valid_loss', 'accuracy', 'time']
    x, y = learn.dls.valid_ds.tensors
    with torch.no_grad(): torch.testing.assert_close(spy.preds[-1], F.softmax(learn.model(x), -1))
    assert spy.scores[-1] == pytest.approx(learn.recorder.values[-1][1:], abs=1e-6)   # after the epoch: same model
    assert len(spy.preds) == len(spy.scores) == 4 and not hasattr(learn, 'gather_preds')


def test_a_pass_between_the_loss_and_backward_leaves_the_batchs_loss_alone():
    class PredsAtAfterLoss(Callback):         # a pass between the loss and the batch's backward
        def after_loss(self):
            if self.training and self.iter == 1: self.learn.get_preds()

    learn, twin = fitted_blobs([PredsAtAfterLoss()]), fitted_blobs()
    assert learn.recorder.losses == twin.recorder.losses and torch.equal(learn.model.weight, twin.model.weight)


def test_a_pass_inside_a_phase_keeps_that_phases_progress_bar(monkeypatch):
    import io, sys
    class Terminal(io.StringIO):
        def isatty(self): return True
    monkeypatch.setattr(sys, 'stdout', Terminal())
    monkeypatch.setattr(ProgressCallback, 'refresh_every', 0.)
    learn = fitted_blobs([EvaluateDuringFit()])
    out = sys.stdout.getvalue()
    assert out.count('[0/4 ') == 2 and out.count('[4/4 ') == 2        # one bar per training phase, run to the end
    assert learn.progress.pbar is None and learn.progress._nested == 0


def test_get_preds_streams_to_folders():
    learn = blobs_learner()
    preds, targs = learn.get_preds(save_preds='preds', save_targs='targs')
    assert preds is None and targs is None
    assert sorted(os.listdir('preds')) == sorted(os.listdir('targs')) == ['0.pt', '1.pt']   # 20 items, bs 16
    saved = torch.cat([torch.load(f'preds/{i}.pt') for i in range(2)])
    expected, _ = learn.get_preds(act=noop)
    torch.testing.assert_close(saved, expected)     # the raw model outputs, batch by batch
    assert torch.equal(torch.cat([torch.load(f'targs/{i}.pt') for i in range(2)]), learn.dls.valid_ds.tensors[1])
    # MIGRATION.md, section 3, reads them back this way (fastai names them 0, 1 ... and also returns them)
    read = torch.cat([torch.load(f'preds/{i}.pt', weights_only=True) for i in range(len(os.listdir('preds')))])
    torch.testing.assert_close(learn.loss_func.activation(read), learn.get_preds()[0])


def test_get_preds_concat_dim():
    learn = quiet_learner(n_val=2)
    preds, targs = learn.get_preds()
    side_by_side, targs2 = learn.get_preds(concat_dim=1)
    assert side_by_side.shape == (16, 2) and targs2.shape == (16, 2)
    torch.testing.assert_close(side_by_side, torch.cat([preds[:16], preds[16:]], dim=1))


def test_predict_a_raw_item_with_the_vocab():
    learn = blobs_learner()
    learn.logger = noop
    learn.fit(3)
    label, cls, probs = learn.predict(torch.tensor([3., 0.]))
    assert label == 'pos' and cls == 1 and probs.shape == (2,) and probs[1] > 0.5
    with torch.no_grad(): torch.testing.assert_close(probs, F.softmax(learn.model(torch.tensor([3., 0.])), -1))
    inp, label, cls, _ = learn.predict(torch.tensor([-3., 0.]), with_input=True)
    assert torch.equal(inp, torch.tensor([-3., 0.])) and label == 'neg' and cls == 0


def test_predict_without_a_vocab_returns_the_decoded_prediction():
    learn = quiet_learner()
    decoded, dec, pred = learn.predict(torch.tensor([2.]))
    with torch.no_grad(): expected = learn.model(torch.tensor([[2.]]))[0]
    assert torch.equal(decoded, dec) and torch.equal(pred, expected)


# ------------------------------------------------------------------------------ persistence
def test_export_and_load_learner_round_trip():
    learn = blobs_learner(metrics=[])
    learn.logger = noop
    learn.fit(1)
    item = torch.tensor([1., -1.])
    expected = learn.predict(item)
    path = learn.export()
    assert path == Path('export.pkl') and learn.opt is not None and learn.dls.train is not None
    loaded = load_learner(path)
    assert loaded.opt is None and loaded.dls.vocab == ['neg', 'pos']
    assert [type(cb) for cb in loaded.cbs] == [type(cb) for cb in learn.cbs] and loaded.recorder.learn is loaded
    got = loaded.predict(item)
    assert got[0] == expected[0] and torch.equal(got[2], expected[2])


def test_export_with_the_default_callbacks_and_metrics(capsys):
    learn = blobs_learner(metrics=[accuracy, error_rate])
    learn.fit(2)
    item, x, y = torch.tensor([1., -1.]), *learn.dls.valid_ds.tensors
    expected, scores = learn.predict(item), learn.validate()
    loaded = load_learner(learn.export('model.pkl'))
    assert [type(cb) for cb in loaded.cbs] == [TrainEvalCallback, Recorder, CastToTensor, ProgressCallback]
    assert loaded.opt is None and len(loaded.dls) == 0 and loaded.dls.vocab == ['neg', 'pos']
    with pytest.raises(IndexError, match=r'DataLoaders has 0 loader\(s\): there is no dls\[0\]'): loaded.dls.train
    assert [m.name for m in loaded.metrics] == ['accuracy', 'error_rate']
    for attr in Recorder._stateattrs: assert attr not in vars(loaded.recorder)          # dropped, as in fastai
    assert loaded.progress.mbar is None and loaded.progress.pbar is None
    assert loaded.logger is print and loaded.progress.learn is loaded
    got = loaded.predict(item)
    assert got[0] == expected[0] and torch.equal(got[2], expected[2])
    other = DataLoaders(DataLoader(TensorDataset(x, y), batch_size=8), DataLoader(TensorDataset(x, y), batch_size=8))
    assert loaded.validate(dl=other.valid) == pytest.approx(scores, abs=1e-6)
    capsys.readouterr()
    loaded.dls = other
    loaded.fit(1)                                       # new data: it trains and prints its table again
    assert capsys.readouterr().out.startswith('epoch     train_loss  valid_loss  accuracy  error_rate  time')


def test_export_names_the_part_that_cannot_be_pickled():
    learn = blobs_learner(metrics=[accuracy, lambda p, t: (p.argmax(1) == t).float().mean()])
    learn.create_opt()
    dls, opt = learn.dls, learn.opt
    with pytest.raises((pickle.PicklingError, AttributeError)) as e:      # (which one depends on the Python)
        learn.export()
    assert 'Learner.export: learn.metrics[1] (AvgMetric) cannot be pickled' in ''.join(e.value.__notes__)
    assert list(Path('.').iterdir()) == [] and learn.dls is dls and learn.opt is opt     # nothing written, restored


def test_save_and_load_weights_and_optimizer_state():
    learn = quiet_learner()
    learn.fit(1, lr=0.1)
    path = learn.save('ckpt')
    assert path == Path('models/ckpt.pth') and path.exists()
    weights = {k: v.clone() for k, v in learn.model.state_dict().items()}
    momentum = learn.opt.state_dict()['state'][0]['momentum_buffer'].clone()
    learn.fit(1, lr=0.1)
    assert learn.load('ckpt') is learn
    assert all(torch.equal(v, weights[k]) for k, v in learn.model.state_dict().items())
    assert torch.equal(learn.opt.state_dict()['state'][0]['momentum_buffer'], momentum)


def test_checkpoints_in_sub_folders_of_model_dir_stay_apart():
    learn = quiet_learner()
    learn.fit(1, lr=0.1)
    a = learn.save('run_a/best')
    first = {k: v.clone() for k, v in learn.model.state_dict().items()}
    learn.fit(1, lr=0.1)
    b = learn.save(Path('run_b') / 'best.pth')
    assert (a, b) == (Path('models/run_a/best.pth'), Path('models/run_b/best.pth'))
    learn.load('run_a/best')
    assert all(torch.equal(v, first[k]) for k, v in learn.model.state_dict().items())


def test_an_absolute_path_gets_pth_as_a_relative_name_does(tmp_path):
    # fastai 2.8.12: learn.save('/abs/weights') writes and returns /abs/weights.pth
    learn = quiet_learner()
    learn.fit(1, lr=0.1)
    saved = learn.save(tmp_path / 'elsewhere' / 'weights')
    assert saved == tmp_path / 'elsewhere' / 'weights.pth' and os.listdir(tmp_path / 'elsewhere') == ['weights.pth']
    assert learn.save(str(tmp_path / 'named.pth')) == tmp_path / 'named.pth'      # not named.pth.pth
    weights = {k: v.clone() for k, v in learn.model.state_dict().items()}
    learn.fit(1, lr=0.1)
    assert learn.load(str(tmp_path / 'elsewhere' / 'weights')) is learn           # finds weights.pth
    assert all(torch.equal(v, weights[k]) for k, v in learn.model.state_dict().items())
    assert not Path('models').exists()


def test_load_without_optimizer_state_warns():
    learn = quiet_learner()
    learn.save('bare', with_opt=False)
    with pytest.warns(UserWarning, match="Saved file doesn't contain an optimizer state."):
        learn.load('bare')
    learn.load('bare', with_opt=False)          # asked for weights only: no warning


def test_load_strict_reports_mismatched_keys():
    learn = quiet_learner()
    torch.save({'a': torch.ones(1)}, 'partial.pth')
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "b"'):
        learn.load(Path('partial.pth').absolute(), with_opt=False)
    learn.load(Path('partial.pth').absolute(), with_opt=False, strict=False)
    assert learn.model.a.item() == 1.0


def test_load_maps_tensors_to_the_requested_device(monkeypatch):
    learn = quiet_learner()
    learn.create_opt()
    learn.save('ckpt')
    seen = []
    real_load = torch.load
    monkeypatch.setattr(torch, 'load', lambda *a, **k: seen.append(k) or real_load(*a, **k))
    learn.load('ckpt')
    learn.load('ckpt', device='cpu')
    assert [k['map_location'] for k in seen] == [learn.dls.device, 'cpu']
    assert all(k['weights_only'] is True for k in seen)


class Payload:
    "An object whose unpickling would create a file."
    def __reduce__(self): return (Path.touch, (Path('pwned'),))


def test_load_refuses_a_file_that_would_run_code():
    learn = quiet_learner()
    torch.save({'model': learn.model.state_dict(), 'opt': Payload()}, 'evil.pth')
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        learn.load(Path('evil.pth').absolute())
    assert not Path('pwned').exists()


def test_a_checkpoint_saved_by_fastai_loads_its_weights(recwarn):
    # Written by fastai 2.8.12's learn.save (tests/oracle_scripts/fa2_checkpoint.py), which printed
    # a=-0.3068872094154358 b=-0.12577049434185028. Its optimizer part holds fastcore L lists.
    ckpt = Path(__file__).parent / 'golden' / 'fa2_checkpoint.pth'
    learn = quiet_learner()
    learn.load(ckpt, with_opt=False)
    assert (learn.model.a.item(), learn.model.b.item()) == (-0.3068872094154358, -0.12577049434185028)
    assert len(recwarn) == 0
    with pytest.warns(UserWarning, match='Could not load the optimizer state.'):     # fastai's state layout
        quiet_learner().load(ckpt)


def test_save_is_atomic(monkeypatch):
    learn = quiet_learner()
    learn.save('ckpt')
    good = Path('models/ckpt.pth').read_bytes()

    def failing_save(obj, f, **kwargs):
        f.write(b'half a checkpoint')
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', failing_save)
    with pytest.raises(OSError, match='disk full'):
        learn.save('ckpt')
    with pytest.raises(OSError, match='disk full'):
        learn.save('fresh')
    assert Path('models/ckpt.pth').read_bytes() == good
    assert sorted(os.listdir('models')) == ['ckpt.pth']     # no temporary file, no partial file


# -------------------------------------------------------------------------------- freezing
def bn_net():
    "Linear -> BatchNorm -> Linear, split in two groups: body (first Linear and the norm) and head."
    return nn.Sequential(nn.Linear(1, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))


def two_groups(m): return [list(m[0].parameters()) + list(m[1].parameters()), list(m[2].parameters())]


def test_freeze_trains_only_the_last_group_except_norm_layers():
    learn = Learner(synth_dbunch(), bn_net(), loss_func=MSELossFlat(), splitter=two_groups,
                    opt_func=partial(SGD, mom=0.9))
    learn.logger = noop
    learn.freeze()
    body, norm, head = (learn.model[i].weight for i in range(3))
    assert not body.requires_grad and norm.requires_grad and head.requires_grad    # train_bn keeps the norm
    before = [p.detach().clone() for p in (body, norm, head)]
    learn.fit(1, lr=0.1)
    assert torch.equal(body, before[0]) and not torch.equal(norm, before[1]) and not torch.equal(head, before[2])
    learn.unfreeze()
    assert all(p.requires_grad for p in learn.model.parameters())
    learn.freeze_to(1)
    assert not body.requires_grad and head.requires_grad


def test_freeze_to_clears_the_optimizer_state():
    learn = Learner(synth_dbunch(), bn_net(), loss_func=MSELossFlat(), splitter=two_groups,
                    opt_func=partial(SGD, mom=0.9))
    learn.logger = noop
    learn.fit(1)
    assert len(learn.opt.opt.state) > 0
    learn.freeze_to(0)
    assert len(learn.opt.opt.state) == 0 and all(p.requires_grad for p in learn.model.parameters())


def test_freeze_to_past_the_last_group_warns():
    learn = Learner(synth_dbunch(), bn_net(), loss_func=MSELossFlat(), splitter=two_groups, train_bn=False)
    with pytest.warns(UserWarning, match=r'freeze_to\(2\): the optimizer has only 2 parameter group\(s\), so the '
                                         r'whole model is frozen'):
        learn.freeze_to(2)
    assert not any(p.requires_grad for p in learn.model.parameters())
