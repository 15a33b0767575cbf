"""The stock v1 callbacks against fastai 1.0.61 (tests/golden/fa1_stock_callbacks.txt, recorded by
tests/oracle_scripts/record_fa1_stock_callbacks.py from the same scenario file, fa1_stock_scenarios.py).

Per-batch lrs, momentums and smoothed losses, per-epoch validation losses and metrics, printed lines,
warnings, files and the final weights are fastai's (numbers to 1e-5). Where trainlib is better on
purpose (MIGRATION.md), the test says what fastai did and what trainlib does instead."""
import json
import math
import os
import re
from pathlib import Path

import pytest

import fa1_stock_scenarios as sc

GOLDEN = Path(__file__).resolve().parents[2] / 'golden' / 'fa1_stock_callbacks.txt'
DEVIATIONS = {'flat_cos_default_lr', 'early_stopping_no_time', 'reduce_lr_groups', 'accumulate_exact'}


@pytest.fixture(scope='module')
def fa1():
    lines = [l for l in GOLDEN.read_text().splitlines() if not l.startswith('#')]
    return {k: json.loads(v) for k, v in (l.split('\t', 1) for l in lines)}


@pytest.fixture(scope='module')
def ours(tmp_path_factory):
    "Every scenario run on trainlib.v1, each in a fresh directory."
    home, out = os.getcwd(), {}
    try:
        for f in sc.SCENARIOS:
            os.chdir(tmp_path_factory.mktemp(f.__name__))
            out[f.__name__] = sc.run(f)
    finally: os.chdir(home)
    return out


def _times(v):
    "Epoch times ('00:00') depend on the machine: compare them as 'mm:ss'."
    return re.sub(r'\b\d\d:\d\d\b', 'mm:ss', v)


def mismatch(got, exp, path='') -> str | None:
    "Where ``got`` differs from ``exp`` (numbers to 1e-5 relative, NaN equal to NaN), or None."
    if isinstance(exp, dict):
        if set(got) != set(exp): return f'{path}: keys {sorted(set(got) ^ set(exp))} differ'
        return next((m for k in exp if (m := mismatch(got[k], exp[k], f'{path}.{k}'))), None)
    if isinstance(exp, list):
        if not isinstance(got, list) or len(got) != len(exp): return f'{path}: {got!r} vs {exp!r}'
        return next((m for i, (g, e) in enumerate(zip(got, exp)) if (m := mismatch(g, e, f'{path}[{i}]'))), None)
    if isinstance(exp, float) or (isinstance(exp, int) and not isinstance(exp, bool)):
        if math.isnan(exp): return None if math.isnan(got) else f'{path}: {got} vs nan'
        return None if abs(got - exp) <= 1e-5 * max(1., abs(exp)) else f'{path}: {got} vs {exp}'
    if isinstance(exp, str): return None if _times(got) == _times(exp) else f'{path}: {got!r} vs {exp!r}'
    return None if got == exp else f'{path}: {got!r} vs {exp!r}'


def test_every_scenario_was_recorded(fa1):
    assert list(fa1) == [f.__name__ for f in sc.SCENARIOS]


@pytest.mark.parametrize('name', [f.__name__ for f in sc.SCENARIOS if f.__name__ not in DEVIATIONS])
def test_same_numbers_prints_and_files_as_fastai(name, ours, fa1):
    got = json.loads(json.dumps(ours[name]))          # the recorded form: numpy floats -> floats
    assert mismatch(got, fa1[name]) is None, mismatch(got, fa1[name])


def test_one_cycle_recorded_cases_are_the_interesting_ones(fa1):
    a1 = fa1['one_cycle_a1_zero']
    assert a1['lrs'][:2] == [0.01 / 25, 0.01] and a1['opt_lr'] == pytest.approx(0.0025, rel=1e-4)  # cut short
    assert fa1['one_cycle_default']['opt_lr'] == pytest.approx(1e-2 / 25 / 1e4)                 # final value left
    finder = fa1['lr_find_default']
    assert finder['lrs'][-1] < 10 and finder['opt_lr'] == 10                 # end_lr: never used, left in opt
    assert 'Loaded m_1' in fa1['save_model_every_epoch']['printed']


def test_fit_fc_with_its_default_lr(ours, fa1):
    "fastai passed the slice itself to the scheduler and failed; trainlib schedules lr_range(slice(3e-3))."
    assert fa1['flat_cos_default_lr']['raised'] == "TypeError: unsupported operand type(s) for *: 'float' and 'slice'"
    lrs = ours['flat_cos_default_lr']['lrs']
    assert lrs[:5] == pytest.approx([3e-3] * 5) and lrs[5] == pytest.approx(3e-3) and lrs[-1] < lrs[6] < 3e-3


def test_monitoring_the_last_metric_without_a_time_column(ours, fa1):
    "fastai (add_time=False) could not see the last metric: it warned and never stopped; trainlib stops as with add_time."
    assert fa1['early_stopping_no_time']['warnings'][0].endswith(
        'conditioned on metric `accuracy` which is not available. Available metrics are: train_loss, valid_loss')
    assert len(fa1['early_stopping_no_time']['val_losses']) == 8
    got, with_time = ours['early_stopping_no_time'], fa1['early_stopping']
    assert got['warnings'] == [] and got['printed'][-1] == 'Epoch 6: early stopping'
    for k in ('lrs', 'losses', 'val_losses', 'metrics', 'checksum'):
        assert mismatch(got[k], with_time[k]) is None, k
    assert [l[:44].rstrip() for l in got['printed']] == [l[:44].rstrip() for l in with_time['printed']]


def test_reduce_lr_on_plateau_keeps_discriminative_lrs(ours, fa1):
    "fastai set every layer group to the last group's lr x factor; trainlib multiplies each group's lr."
    got, exp = ours['reduce_lr_groups'], fa1['reduce_lr_groups']
    assert exp['group_lrs'][24] == [0.15, 0.15] and exp['printed'][4] == 'Epoch 2: reducing lr to 0.15'
    assert mismatch(got['group_lrs'][:24], exp['group_lrs'][:24]) is None and got['printed'][:5] == exp['printed'][:5]
    assert got['group_lrs'][24] == pytest.approx([0.0005, 0.15]) and got['group_lrs'][32] == pytest.approx([0.00025, 0.075])
    assert got['printed'][-1] == 'Epoch 4: reducing lr to 0.0375'


def test_accumulate_scheduler_when_the_last_batch_stepped(ours, fa1):
    "8 batches, n_step=2: fastai on torch 2 fails at the first epoch end (no gradients left); trainlib goes on."
    assert fa1['accumulate_exact']['raised'] == "AttributeError: 'NoneType' object has no attribute 'div_'"
    got = ours['accumulate_exact']
    assert 'raised' not in got and got['nb_batches'] == [8, 8]
    assert got['printed'][:2] == fa1['accumulate_exact']['printed']      # the epoch fastai finished is the same
