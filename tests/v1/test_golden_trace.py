"""trainlib.v1 against the recorded fastai 1.0.61 trace (tests/golden/fa1_trace.txt, sections A-F).

Every event, the state each callback sees at it (counters, flags, tensors by shape and sum, losses to six
decimals), every state update a callback makes, each optimizer step/zero_grad, each backward that reaches
the model and every printed line must be the ones fastai 1.0.61 produced."""
from pathlib import Path

import pytest

import fa1_scenarios as sc

GOLDEN = Path(__file__).resolve().parents[1] / 'golden' / 'fa1_trace.txt'


@pytest.fixture(scope='module')
def traces(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    try: yield sc.run_all(mp, tmp_path_factory.mktemp('fa1'))
    finally: mp.undo()


@pytest.fixture(scope='module')
def golden():
    return sc.golden_sections(GOLDEN.read_text())


@pytest.mark.parametrize('section', list('ABCDEF'))
def test_trace_matches_fastai_1_0_61(section, traces, golden):
    got = [sc.normalize(l) for l in traces[section]]
    exp = golden[section]
    assert len(exp) > 15 and exp[-1].startswith('-- ')
    for i, (g, e) in enumerate(zip(got, exp)):
        assert g == e, f'section {section}, line {i}:\n got: {g}\n exp: {e}\ncontext:\n' + '\n'.join(got[max(0, i - 5):i])
    assert len(got) == len(exp), f'section {section}: {len(got)} lines, expected {len(exp)}; extra:\n' + \
        '\n'.join((got if len(got) > len(exp) else exp)[min(len(got), len(exp)):][:10])
