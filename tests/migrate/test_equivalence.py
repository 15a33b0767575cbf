"""Each corpus callback trains the same after migration: the original runs through trainlib.v1
(fastai-1's API: DataBunch, Learner(data, model, ...), fit(n, lr, callbacks=[...])), the migrated
source runs as a pure trainlib.v2 callback; final weights, the loss of every training batch and the
validation loss of every epoch agree to 1e-6, the smoothed losses and what the callback itself
recorded to 1e-5 (relative).

Equal conditions on both sides: the same initial weights, the same batches in the same order (no
shuffle), torch's SGD with momentum 0.9 and no weight decay wrapped in trainlib's OptimWrapper with
``set_to_none=True`` (fastai 1's zero_grad on torch 2), the same lr, the RNGs seeded before each fit.
"""
import copy
import random
import sys
import types
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainlib import v2

v1 = pytest.importorskip('trainlib.v1')
_MISSING = [n for n in ('Learner', 'DataBunch', 'Callback', 'LearnerCallback') if not hasattr(v1, n)]
if _MISSING:
    pytest.skip(f'trainlib.v1 does not have {", ".join(_MISSING)} yet (the v1 shim, branch v1core)',
                allow_module_level=True)

CORPUS = Path(__file__).parent / 'corpus'
BS, N_TRAIN, N_VALID, LR = 8, 48, 16, 0.05
TOL = 1e-6          # weights and validation losses
SMOOTH_TOL = 1e-5   # smoothed losses: trainlib.v2's Recorder smooths with torch.lerp and a float32 beta (as fastai 2),
                    # whose rounding is 1e-6 relative away from fastai 1's formula


@dataclass
class Case:
    "A corpus file, how to build its callbacks (``v1``: the fastai-1 constructor, with the Learner) and what to compare."
    file: str
    make: Callable[[dict, Any], list]
    epochs: int = 3
    observe: tuple = ()
    check: Callable[[dict], None] = lambda r: None   # the run did exercise the callback (on the v1 result)


def _one(name: str, learner_cb: bool = False, **kw: Any) -> Callable:
    return lambda ns, learn: [ns[name](learn, **kw) if learn is not None and learner_cb else ns[name](**kw)]


def _stopped_early(epochs: int) -> Callable:
    def check(r: dict) -> None: assert len(r['valid']) < epochs, 'the callback never stopped the fit'
    return check


CASES = [
    Case('input_noise', _one('InputNoise', std=0.1)),
    Case('mixup_legacy', _one('MixUpRegression', True, alpha=0.4)),
    Case('output_range', _one('OutputRange', low=-6., high=6.)),
    Case('loss_penalty', _one('L1Penalty', True, alpha=1e-2)),
    Case('grad_clip', _one('GradientClipper', True, clip=0.1)),
    Case('skip_every_other_step', _one('SkipOddSteps')),
    Case('grad_accumulation', _one('GradientAccumulator', True, n_step=3)),
    Case('accumulate_legacy', _one('AccumulateGradients', n_step=2)),
    Case('early_stopping', _one('ValidLossEarlyStopping', patience=0, min_delta=0.5), epochs=6,
         observe=('best', 'wait', 'stopped_epoch'), check=_stopped_early(6)),
    Case('stop_after_n_batches', _one('StopAfter', n_batches=4), check=_stopped_early(3)),
    Case('lr_logger', _one('LRLossLogger', True), observe=('history',)),
    Case('lr_warmup', _one('WarmupMomentumDecay', True, n_iters=8, decay=0.9), observe=('base_lr',)),
    Case('data_reader', _one('TargetMeanInit', True), observe=('n_batches', 'n_valid')),
    Case('dataclass_cb', lambda ns, learn: [ns['OutputScaler'](learn, 0.8) if learn is not None else
                                            ns['OutputScaler'](0.8), ns['BatchCounter']()],
         observe=('counts',)),
    Case('skip_validate', _one('ValidateEvery', every=2), epochs=5,
         check=lambda r: (None in r['valid']) or pytest.fail('no validation was skipped')),
    Case('cleanup_on_train_end', _one('ActivationMeans', True), observe=('means', 'hook')),
    Case('legacy_all_events', _one('LegacyTweaks', max_batches=3), epochs=4, observe=('log',),
         check=_stopped_early(4)),
    Case('stop_on_loss', _one('StopOnLoss', target=1.0), epochs=6, check=_stopped_early(6)),
    Case('skip_backward', _one('SkipSpikes', max_loss=6.0), observe=('skipped',),
         check=lambda r: r['observed']['skipped'][0] or pytest.fail('no backward was skipped')),
    Case('weight_clipper', _one('WeightClipper', True, clip=0.3)),
]
UNTRANSLATED = {'metric_adder', 'epoch_reporter'}     # they carry TODOs: see test_codemod.py


def test_every_corpus_file_has_a_case():
    names = {c.file for c in CASES} | UNTRANSLATED
    assert names == {p.stem for p in CORPUS.glob('*.py')}


# ------------------------------------------------------------------------------------------ helpers
def _module(name: str, source: str, prelude: str = '') -> dict:
    "Execute ``source`` as a module (registered while it runs, for dataclasses) and return its namespace."
    mod = types.ModuleType(name)
    sys.modules[name] = mod
    try: exec(compile(prelude + source, f'<{name}>', 'exec'), mod.__dict__)
    finally: del sys.modules[name]
    return mod.__dict__


def _v1_source(source: str) -> str:
    "The corpus file with its fastai imports pointing at trainlib.v1 (fastai 1's star imports)."
    lines = [('from trainlib.v1 import *' if line.startswith('from fastai') else line) for line in source.splitlines()]
    return '\n'.join(lines) + '\n'


def _data() -> tuple:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_TRAIN + N_VALID, 4, generator=g)
    y = x @ torch.tensor([[1.5], [-2.], [0.5], [1.]]) + 0.3 + 0.1 * torch.randn(N_TRAIN + N_VALID, 1, generator=g)
    return TensorDataset(x[:N_TRAIN], y[:N_TRAIN]), TensorDataset(x[N_TRAIN:], y[N_TRAIN:])


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))


def _loaders() -> tuple:
    train_ds, valid_ds = _data()
    return DataLoader(train_ds, batch_size=BS), DataLoader(valid_ds, batch_size=BS)


def _seed() -> None:
    torch.manual_seed(42); np.random.seed(42); random.seed(42)


def _opt_func(params: Any, lr: Any = 1e-3, **kw: Any) -> Any:
    return v2.OptimWrapper(params, opt=torch.optim.SGD, lr=lr, momentum=0.9, set_to_none=True)


def _observed(cbs: list, names: tuple) -> dict:
    return {n: [getattr(cb, n, None) for cb in cbs] for n in names}


def _result(learn: Any, cbs: list, case: Case, valid: list, raw: list) -> dict:
    return dict(params=[p.detach().clone() for p in learn.model.parameters()], valid=valid, raw=raw,
                smooth=[float(v) for v in learn.recorder.losses], observed=_observed(cbs, case.observe))


class RawLossesV1(v1.Callback):
    "The loss of every training batch before any callback changes it (the first at on_backward_begin)."
    _order = -100

    def on_train_begin(self, **kwargs: Any) -> None: self.losses = []
    def on_backward_begin(self, last_loss: torch.Tensor, **kwargs: Any) -> None: self.losses.append(last_loss.item())


def run_v1(case: Case, source: str) -> dict:
    "The original callback through trainlib.v1, fastai 1's way."
    ns = _module(f'corpus_v1_{case.file}', _v1_source(source))
    data = v1.DataBunch(*_loaders(), device='cpu')
    learn = v1.Learner(data, _model(), opt_func=partial(torch.optim.SGD, momentum=0.9), loss_func=nn.MSELoss(),
                       wd=0., true_wd=False, silent=True)
    probe, cbs = RawLossesV1(), case.make(ns, learn)
    _seed()
    learn.fit(case.epochs, LR, callbacks=[probe] + cbs)
    valid = [None if v is None else float(v) for v in learn.recorder.val_losses]
    return _result(learn, cbs, case, valid, probe.losses)


class LossesV2(v2.Callback):
    "Each training batch's loss as computed (learn.loss), and the validation loss of each epoch (None: skipped)."
    order = v2.Recorder.order + 1

    def before_fit(self) -> None: self.raw, self.valid = [], []

    def after_loss(self) -> None:
        if self.learn.training: self.raw.append(self.learn.loss.item())

    def after_validate(self) -> None:
        rec = self.learn.recorder      # its rows drop the columns of a cancelled phase, so read the loss itself
        self.valid.append(None if rec.cancel_valid or rec.loss.value is None else float(rec.loss.value))


def run_v2(case: Case, code: str) -> dict:
    "The migrated callback as a pure trainlib.v2 callback."
    ns = _module(f'corpus_v2_{case.file}', code)
    probe = LossesV2()
    learn = v2.Learner(v2.DataLoaders(*_loaders(), device='cpu'), _model(), loss_func=nn.MSELoss(),
                       opt_func=_opt_func, lr=LR, wd=0., cbs=[probe])
    cbs = case.make(ns, None)
    _seed()
    with learn.no_logging(): learn.fit(case.epochs, LR, cbs=cbs)
    return _result(learn, cbs, case, probe.valid, probe.raw)


def _close(a: Any, b: Any, where: str, tol: float = TOL) -> None:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
        assert a.shape == b.shape and torch.allclose(a, b, atol=tol, rtol=tol), f'{where}: {a} != {b}'
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), f'{where}: {len(a)} items != {len(b)}: {a} != {b}'
        for i, (x, y) in enumerate(zip(a, b)): _close(x, y, f'{where}[{i}]', tol)
    elif isinstance(a, float) or isinstance(b, float):
        assert a is not None and b is not None and abs(a - b) <= tol * max(1., abs(a)), f'{where}: {a} != {b}'
    elif isinstance(a, dict) and isinstance(b, dict):
        assert a.keys() == b.keys(), f'{where}: keys {a.keys()} != {b.keys()}'
        for k in a: _close(a[k], b[k], f'{where}[{k!r}]', tol)
    else: assert a == b, f'{where}: {a!r} != {b!r}'


# ------------------------------------------------------------------------------------------ the test
@pytest.mark.parametrize('case', CASES, ids=[c.file for c in CASES])
def test_migrated_callback_trains_the_same(case, migrated):
    source = (CORPUS / f'{case.file}.py').read_text()
    migration = migrated(case.file)
    assert migration.todos == [], migration.todos
    r1, r2 = run_v1(case, source), run_v2(case, migration.code)
    case.check(r1)
    _close(r1['valid'], r2['valid'], 'valid losses per epoch')
    _close(r1['raw'], r2['raw'], 'training loss per batch')
    _close(r1['smooth'], r2['smooth'], 'smoothed loss per batch', SMOOTH_TOL)
    _close(r1['params'], r2['params'], 'final weights')
    _close(r1['observed'], r2['observed'], 'what the callback recorded', SMOOTH_TOL)
