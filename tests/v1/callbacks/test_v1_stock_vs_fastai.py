"""The stock v1 callbacks against fastai 1.0.61 (tests/golden/fa1_stock_callbacks*.txt, recorded by
tests/oracle_scripts/record_fa1_stock_callbacks.py from the same scenario file, fa1_stock_scenarios.py).

Per-batch lrs, momentums and smoothed losses, per-epoch validation losses and metrics, printed lines,
warnings, files and the final weights are fastai's (numbers to 1e-5, printed ones to their last digit).
fastai was recorded on each kind of CPU the suite has run on (an Intel Xeon, an AMD EPYC): torch's kernels
round differently on each, and training carries that into the 5th-6th digit, so a scenario matches the
recording of one of them. Where trainlib is better on purpose (MIGRATION.md), the test says what fastai did
and what trainlib does instead."""
import json
import math
import os
import re
from decimal import Decimal
from pathlib import Path

import pytest

import fa1_stock_scenarios as sc

GOLDEN = Path(__file__).resolve().parents[2] / 'golden'
RECORDINGS = [GOLDEN / 'fa1_stock_callbacks.txt', GOLDEN / 'fa1_stock_callbacks.amd_epyc.txt']
DEVIATIONS = {'flat_cos_default_lr', 'early_stopping_no_time', 'reduce_lr_groups', 'accumulate_exact'}


def read_recording(path: Path) -> dict:
    lines = [l for l in path.read_text().splitlines() if not l.startswith('#')]
    return {k: json.loads(v) for k, v in (l.split('\t', 1) for l in lines)}


@pytest.fixture(scope='module')
def recordings():
    "fastai's runs, one per kind of CPU: the first is the one the deviation tests quote."
    return [read_recording(p) for p in RECORDINGS]


@pytest.fixture(scope='module')
def fa1(recordings): return recordings[0]


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


_NUMBER = re.compile(r'-?\d+\.\d+(?:e[-+]?\d+)?')


def _close(got: float, exp: float, last_digit: float = 0.) -> bool:
    "Equal to 1e-5 relative (a printed number: or to one unit of its last digit)."
    return abs(got - exp) <= max(1e-5 * max(1., abs(exp)), 1.01 * last_digit)


def _text_matches(got: str, exp: str) -> bool:
    "Printed text: the words exactly, the numbers printed in it as numbers (:func:`_close`)."
    got, exp = _times(got), _times(exp)
    if _NUMBER.sub('#', got) != _NUMBER.sub('#', exp): return False
    return all(_close(float(g), float(e), 10. ** Decimal(e).as_tuple().exponent)
               for g, e in zip(_NUMBER.findall(got), _NUMBER.findall(exp)))


def mismatch(got, exp, path='') -> str | None:
    "Where ``got`` differs from ``exp`` (numbers: :func:`_close`, NaN equal to NaN), or None."
    if isinstance(exp, dict):
        if set(got) != set(exp): return f'{path}: keys {sorted(set(got) ^ set(exp))} differ'
        return next((m for k in exp if (m := mismatch(got[k], exp[k], f'{path}.{k}'))), None)
    if isinstance(exp, list):
        if not isinstance(got, list) or len(got) != len(exp): return f'{path}: {got!r} vs {exp!r}'
        return next((m for i, (g, e) in enumerate(zip(got, exp)) if (m := mismatch(g, e, f'{path}[{i}]'))), None)
    if isinstance(exp, float) or (isinstance(exp, int) and not isinstance(exp, bool)):
        if math.isnan(exp): return None if math.isnan(got) else f'{path}: {got} vs nan'
        return None if _close(got, exp) else f'{path}: {got} vs {exp}'
    if isinstance(exp, str): return None if _text_matches(got, exp) else f'{path}: {got!r} vs {exp!r}'
    return None if got == exp else f'{path}: {got!r} vs {exp!r}'


def mismatch_all(got, recordings: list, name: str, key: str | None = None) -> str | None:
    "None when ``got`` matches scenario ``name`` (its ``key``) in one of fastai's recordings; else how it differs from each."
    exps = [r[name] if key is None else r[name][key] for r in recordings]
    found = [mismatch(got, exp) for exp in exps]
    return None if None in found else ' / '.join(f'{p.name}: {m}' for p, m in zip(RECORDINGS, found))


def test_every_scenario_was_recorded(recordings):
    for fa1 in recordings: assert list(fa1) == [f.__name__ for f in sc.SCENARIOS]


@pytest.mark.parametrize('name', [f.__name__ for f in sc.SCENARIOS if f.__name__ not in DEVIATIONS])
def test_same_numbers_prints_and_files_as_fastai(name, ours, recordings):
    got = json.loads(json.dumps(ours[name]))          # the recorded form: numpy floats -> floats
    assert mismatch_all(got, recordings, name) is None, mismatch_all(got, recordings, name)


def test_the_comparison_fails_on_a_wrong_number():
    exp = {'losses': [0.5, 1.25], 'printed': ['0         0.376584    0.441052    00:00']}
    assert mismatch({'losses': [0.5, 1.25 * (1 + 2e-5)], 'printed': exp['printed']}, exp) == \
        f'.losses[1]: {1.25 * (1 + 2e-5)} vs 1.25'
    assert mismatch({'losses': exp['losses'], 'printed': ['0         0.376583    0.441052    00:01']}, exp) is None
    assert mismatch({'losses': exp['losses'], 'printed': ['0         0.376570    0.441052    00:00']}, exp) is not None
    assert mismatch({'losses': exp['losses'], 'printed': ['1         0.376584    0.441052    00:00']}, exp) is not None


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


def test_monitoring_the_last_metric_without_a_time_column(ours, fa1, recordings):
    "fastai (add_time=False) could not see the last metric: it warned and never stopped; trainlib stops as with add_time."
    assert fa1['early_stopping_no_time']['warnings'][0].endswith(
        'conditioned on metric `accuracy` which is not available. Available metrics are: train_loss, valid_loss')
    assert len(fa1['early_stopping_no_time']['val_losses']) == 8
    got, with_time = ours['early_stopping_no_time'], fa1['early_stopping']
    assert got['warnings'] == [] and got['printed'][-1] == 'Epoch 6: early stopping'
    for k in ('lrs', 'losses', 'val_losses', 'metrics', 'checksum'):
        assert mismatch_all(got[k], recordings, 'early_stopping', k) is None, k
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
