"Fixtures of the stock-callback tests."
from pathlib import Path

import pytest

from trainlib import ProgressCallback, noop
from trainlib.testing import synth_learner


@pytest.fixture
def quiet_learner():
    "A factory of ``synth_learner``s that print nothing of their own (no progress bars, no table)."
    def make(**kwargs):
        learn = synth_learner(**kwargs)
        learn.remove_cb(ProgressCallback)
        learn.logger = noop
        return learn
    return make


@pytest.fixture(scope='session')
def fa2():
    "What fastai 2.8.12 printed and reported for each case of tests/oracle_scripts/fa2_stock_callbacks.py."
    sections, name = {}, None
    for line in (Path(__file__).parents[1] / 'golden' / 'fa2_stock_callbacks.txt').read_text().splitlines():
        if line.startswith('#'): continue
        if line.startswith('=== '): name = line[4:]; sections[name] = []
        else: sections[name].append(line)
    return sections
