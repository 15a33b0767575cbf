"The package metadata, the README's two commands (CI runs the test one) and the demo they run."
import re
from pathlib import Path

import pytest
import torch

from trainlib import demo

ROOT = Path(__file__).resolve().parents[1]


def test_pyproject_declares_the_package_python_and_dependencies():
    tomllib = pytest.importorskip('tomllib')                 # (Python 3.11+)
    project = tomllib.loads((ROOT / 'pyproject.toml').read_text())['project']
    assert project['name'] == 'trainlib' and project['requires-python'] == '>=3.10'
    names = {re.split(r'[<>=!~\[ ]', d)[0] for d in project['dependencies']}
    assert names == {'torch', 'numpy', 'fastprogress', 'matplotlib', 'dataclasses-json'}
    assert 'pytest' in project['optional-dependencies']['test']


def test_the_readme_commands_exist_and_ci_runs_the_test_one():
    readme = (ROOT / 'README.md').read_text()
    assert 'bash scripts/demo.sh' in readme and 'bash scripts/test.sh' in readme
    assert 'demo_output/loss.png' in readme and 'demo_output/schedule.png' in readme
    assert re.search(r'^bash scripts/test\.sh$', (ROOT / '.ci/run').read_text(), re.M)
    setup = (ROOT / 'scripts/setup.sh').read_text()
    assert setup.index('-m venv .venv') < setup.index('"$TORCH_SPEC"') < setup.index('install -q -e')   # torch first
    for script in ('demo', 'test'): assert 'bash scripts/setup.sh' in (ROOT / f'scripts/{script}.sh').read_text()


def test_the_demo_trains_prints_the_table_and_writes_the_plots(capsys):
    learn = demo.main(['--epochs', '1', '--out', 'plots'])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == '290 training and 72 validation images (3s vs 7s, 8x8)'
    assert out[1] == 'epoch     train_loss  valid_loss  accuracy  time    '
    assert out[2].split()[0] == '0' and len(out[2].split()) == 5
    assert re.fullmatch(r'first validation image: predicted [37] \(p=0\.\d{3}\), actually 3', out[3])
    assert out[4] == 'plots written to plots/loss.png and plots/schedule.png'
    assert learn.dls.vocab == ['3', '7'] and isinstance(learn.model[0], torch.nn.Conv2d)
    for name in ('loss.png', 'schedule.png'):
        assert (Path('plots') / name).read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
