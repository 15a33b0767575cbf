"""``CallbackHandler`` in a hand-written loop (the spec's pseudo-code of ``fit``), with the module
``loss_batch`` and ``validate``: it produces the events and states of golden section D by itself."""
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn as nn

import fa1_scenarios as sc
from trainlib.v1 import AdamW, CallbackHandler, OptimWrapper, accuracy, flatten_model, loss_batch, validate
from trainlib.v1.bridge import V1Bar

GOLDEN = Path(__file__).resolve().parents[1] / 'golden' / 'fa1_trace.txt'


def hand_written_fit(epochs, model, data, loss_func, opt, h):
    "fastai 1's fit, by hand."
    h.on_train_begin(epochs, pbar=V1Bar(epochs), metrics=h.metrics_arg)
    exception = False
    try:
        for _ in range(epochs):
            model.train()
            h.set_dl(data.train_dl)
            h.on_epoch_begin()
            for xb, yb in data.train_dl:
                xb, yb = h.on_batch_begin(xb, yb)
                loss = loss_batch(model, xb, yb, loss_func, opt, h)
                if h.on_batch_end(loss): break
            val_loss = None if h.skip_validate else validate(model, data.valid_dl, loss_func=loss_func, cb_handler=h)
            if h.on_epoch_end(val_loss): break
    except Exception as e:
        exception = e
        raise
    finally: h.on_train_end(exception)


def test_standalone_handler_reproduces_section_d(monkeypatch):
    sc.install(monkeypatch)
    data, model = sc.make_data(), sc.make_model()
    opt = OptimWrapper.create(AdamW, 1e-3, [nn.Sequential(*flatten_model(model))], wd=1e-2, true_wd=True)
    sc.LEARN[0] = SimpleNamespace(model=model, opt=opt)
    h = CallbackHandler([sc.StopEarly()], [accuracy])
    h.metrics_arg = [accuracy]
    torch.manual_seed(1)
    hand_written_fit(2, model, data, nn.CrossEntropyLoss(), opt, h)
    golden = sc.golden_sections(GOLDEN.read_text())['D']
    # no Recorder here: compare everything else
    expected = [l for l in golden if not l.startswith(('      Recorder.', '   [stdout]', '-- returned'))]
    got = [sc.normalize(l) for l in sc.TRACE]
    assert got == expected
    assert abs(float(h.state_dict['last_metrics'][0]) - 0.630871) < 1e-6
    assert type(h.state_dict['last_metrics'][0]) is np.float32 and model.training is False


def test_handler_counters_and_flags_have_v1_timing():
    "iteration/num_batch grow after all on_batch_end callbacks (training only), epoch after on_epoch_end."
    seen = []
    class Spy(sc.Callback):
        def on_batch_end(self, iteration, num_batch, train, **kwargs): seen.append(('be', iteration, num_batch, train))
        def on_epoch_end(self, epoch, num_batch, **kwargs): seen.append(('ee', epoch, num_batch))
        def on_train_end(self, epoch, **kwargs): seen.append(('te', epoch))
    h = CallbackHandler([Spy()])
    h.on_train_begin(1)
    h.on_epoch_begin()
    for train in (True, True, False):
        h.on_batch_begin(0, 0, train=train)
        h.on_batch_end(torch.tensor(0.))
    h.on_epoch_end(None)
    h.on_train_end(False)
    assert seen == [('be', 0, 0, True), ('be', 1, 1, True), ('be', 2, 2, False), ('ee', 0, 2), ('te', 1)]
    assert h.state_dict['last_metrics'] == [None]


def test_flags_reset_when_v1_resets_them():
    h = CallbackHandler()
    h.on_train_begin(2)
    h.state_dict['skip_validate'] = True
    h.on_epoch_begin()
    h.on_batch_begin(0, 0)
    h.state_dict.update(stop_epoch=True, skip_step=True, skip_zero=True, skip_bwd=True, stop_training=True)
    h.on_batch_begin(0, 0)
    assert not any(h.state_dict[k] for k in ('stop_epoch', 'skip_step', 'skip_zero', 'skip_bwd'))
    assert h.state_dict['stop_training']          # reset only at on_epoch_begin
    h.on_epoch_begin()
    assert not h.state_dict['stop_training'] and h.skip_validate      # skip_validate is sticky for the fit


def test_scheduler_anneals_tuples_and_keeps_other_values():
    from trainlib.v1 import Scheduler, annealing_cos
    lin = Scheduler((1., 3.), 4)
    assert [lin.step() for _ in range(4)] == [1.5, 2., 2.5, 3.] and lin.is_done
    lin.restart()
    assert lin.n == 0 and not lin.is_done
    assert Scheduler(0.1, 0).step() == 0.1                       # a scalar is a constant start; n_iter at least 1
    assert Scheduler([1, 2], 2).step() == [1, 2]                 # a list is not a (start, end) pair
    assert Scheduler((1., 0.), 2, annealing_cos).step() == 0.5
