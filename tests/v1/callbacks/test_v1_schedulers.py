"""OneCycleScheduler, GeneralScheduler/TrainingPhase, FlatCosAnnealScheduler and Scheduler/Stepper: the v1
schedulers as fastai-1 code uses and subclasses them (their numbers against fastai: test_v1_stock_vs_fastai)."""
import sys
from pathlib import Path

import numpy as np
import pytest

from fa1_stock_scenarios import learner, make_data, make_model
from trainlib.v1 import (FlatCosAnnealScheduler, GeneralScheduler, OneCycleScheduler, Scheduler, Stepper,
                         TrainingPhase, annealing_cos, annealing_exp, annealing_linear, one_cycle_scheduler)

if str(Path(__file__).parents[1]) not in sys.path: sys.path.insert(0, str(Path(__file__).parents[1]))
from host_reads import count_host_reads  # noqa: E402  (tests/v1/host_reads.py)


def small(**kwargs):
    "3 training batches and 2 validation batches per epoch, no table printed."
    return learner(data=make_data(n_train=24, n_valid=16), silent=True, **kwargs)


def test_one_cycle_warms_up_then_anneals_and_leaves_the_last_value_in_the_optimizer():
    learn = small()
    learn.fit_one_cycle(4, 1e-2)                       # 12 batches, 3 of warm-up
    lrs, moms = np.array(learn.recorder.lrs), np.array(learn.recorder.moms)
    assert lrs[0] == pytest.approx(1e-2 / 25) and lrs[3] == pytest.approx(1e-2) and lrs.argmax() == 3
    assert moms[0] == 0.95 and moms[3] == pytest.approx(0.85) and np.all(np.diff(lrs[3:]) < 0)
    assert learn.opt.lr == pytest.approx(1e-2 / 25 / 1e4) and learn.opt.mom == pytest.approx(0.95)
    assert isinstance(learn.one_cycle_scheduler, OneCycleScheduler)       # registered as learn.<cb_name>


@pytest.mark.parametrize('pct_start, nb_batches', [(0.5, [3, 1]), (0.3, [3, 2])])
def test_one_cycle_stops_the_fit_after_tot_epochs(pct_start, nb_batches):
    """The schedule covers tot_epochs (3 batches); the first training batch after it stops the fit (validation
    still runs). With 3*0.3 < 1 batch of warm-up, the warm-up still takes one: the cycle lasts 4 batches."""
    learn = small()
    learn.fit(3, callbacks=[OneCycleScheduler(learn, 1e-2, pct_start=pct_start, tot_epochs=1)])
    assert learn.recorder.nb_batches == nb_batches and len(learn.recorder.val_losses) == 2


def test_one_cycle_discriminative_lrs_are_element_wise():
    model = make_model()
    learn = learner(model=model, layer_groups=[model[:2], model[2:]], silent=True)
    seen = []
    class PerGroup(OneCycleScheduler):
        "A subclass recording every layer group's lr: subclasses of the stock callbacks keep working."
        def on_batch_end(self, train, **kwargs):
            if train: seen.append([g['lr'] for g in self.opt.opt.param_groups[::2]])
            return super().on_batch_end(train, **kwargs)
    learn.fit(1, callbacks=[PerGroup(learn, lr_max=[1e-3, 1e-2])])
    assert isinstance(learn.per_group.lr_max, np.ndarray)
    assert all(b == pytest.approx(10 * a) for a, b in seen)


def test_one_cycle_scheduler_as_a_callback_fn():
    learn = small(callback_fns=[one_cycle_scheduler(0.02, pct_start=0.5)])
    learn.fit(2)
    assert learn.one_cycle_scheduler.lr_max == 0.02 and learn.one_cycle_scheduler.pct_start == 0.5
    assert max(learn.recorder.lrs) == pytest.approx(0.02)


@pytest.mark.parametrize('kwargs, words', [
    (dict(pct_start=1.5), 'OneCycleScheduler: pct_start must be between 0 and 1, got 1.5'),
    (dict(div_factor=0), 'OneCycleScheduler: div_factor must be > 0, got 0'),
    (dict(final_div=-1.), 'OneCycleScheduler: final_div must be None or > 0, got -1.0')])
def test_one_cycle_rejects_bad_arguments_when_built(kwargs, words):
    with pytest.raises(ValueError, match=words): OneCycleScheduler(small(), 1e-2, **kwargs)


def test_schedulers_read_no_tensor_per_batch(monkeypatch):
    "A scheduled fit reads back from tensors exactly what a plain fit does (once per epoch, never per batch)."
    def reads(fit):
        with monkeypatch.context() as m:
            calls = count_host_reads(m)
            fit(small())
        return calls
    plain = reads(lambda l: l.fit(2, 1e-2))
    assert plain == reads(lambda l: l.fit_one_cycle(2, 1e-2))
    assert plain == reads(lambda l: l.fit(2, callbacks=[GeneralScheduler(l, [TrainingPhase(6).schedule_hp('lr', 1e-3)])]))


# ---------------------------------------------------------------- Scheduler / Stepper
def test_scheduler_steps_from_start_to_end():
    s = Scheduler((1., 3.), 4)                                   # a tuple: linear by default
    assert [s.step() for _ in range(4)] == [1.5, 2., 2.5, 3.] and s.is_done
    s.restart()
    assert s.n == 0 and not s.is_done
    assert Scheduler(0.5, 0).n_iter == 1 and Scheduler(0.5, 3).step() == 0.5    # a start alone: constant
    assert Scheduler([1., 2.], 2).start == [1., 2.]                              # a list is a start, not a range
    assert Scheduler((1e-3, 1e-1), 2, annealing_exp).step() == pytest.approx(1e-2)
    assert Stepper is Scheduler                                                  # the name up to fastai 1.0.47


# ---------------------------------------------------------------- GeneralScheduler / TrainingPhase
def test_training_phase_is_a_dataclass_of_chained_schedules():
    p = TrainingPhase(5).schedule_hp('lr', (1e-3, 1e-2), anneal=annealing_cos).schedule_hp('mom', 0.9)
    assert repr(p) == 'TrainingPhase(length=5)' and p == TrainingPhase(5)
    assert list(p.scheds) == ['lr', 'mom'] and p.scheds['lr'].func is annealing_cos
    assert p.scheds['mom'].step() == 0.9
    with pytest.raises(ValueError, match=r'TrainingPhase: length must be an int >= 0 \(a number of batches\), got 2.5'):
        TrainingPhase(2.5)


def test_general_scheduler_runs_phases_in_turn_and_restarts_them_for_each_fit():
    learn = small()
    phases = [TrainingPhase(2).schedule_hp('lr', (1e-3, 3e-3)), TrainingPhase(3).schedule_hp('lr', 5e-3)]
    sched = GeneralScheduler(learn, phases)
    for _ in range(2):                                 # the same instance twice: every phase starts over
        learn.fit(3, callbacks=[sched])
        assert learn.recorder.lrs == pytest.approx([1e-3, 2e-3, 3e-3, 5e-3, 5e-3, 5e-3])
        assert learn.recorder.nb_batches == [3, 3]      # stopped at the first batch after the last phase


def test_general_scheduler_wants_training_phases_with_schedules():
    with pytest.raises(ValueError, match=r'GeneralScheduler: phases must be TrainingPhases with at least one '
                                         r'schedule_hp each, got TrainingPhase\(length=3\)'):
        GeneralScheduler(small(), [TrainingPhase(3)])


# ---------------------------------------------------------------- FlatCosAnnealScheduler
@pytest.mark.parametrize('curve, last', [('cosine', 0.25 * 4e-3), ('linear', 4e-3 / 3), ('exponential', 0.)])
def test_flat_cos_anneal_curves(curve, last):
    learn = small()
    learn.fit(2, callbacks=[FlatCosAnnealScheduler(learn, tot_epochs=2, start_pct=0.5, curve=curve)])
    lrs, moms = learn.recorder.lrs, learn.recorder.moms
    assert lrs[:4] == pytest.approx([4e-3] * 4) and lrs[5] == pytest.approx(last, abs=1e-12)
    assert moms[:3] == [0.95] * 3 and moms[4:] == [0.999] * 2


def test_flat_cos_anneal_names_the_curves_it_knows():
    with pytest.raises(ValueError, match="FlatCosAnnealScheduler: curve must be 'cosine', 'linear' or 'exponential', "
                                         "got 'cos'"):
        FlatCosAnnealScheduler(small(), curve='cos')
    assert annealing_linear(1., 3., 0.5) == 2.
