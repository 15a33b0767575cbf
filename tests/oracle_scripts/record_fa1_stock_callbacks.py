#!/usr/bin/env python
"""Record what fastai 1.0.61's stock callbacks do in the scenarios of tests/v1/callbacks/fa1_stock_scenarios.py:
per-batch lrs, momentums and smoothed losses, per-epoch validation losses and metrics, printed lines,
warnings, files written and the final weights' checksum. tests/v1/callbacks replay them on trainlib.v1.

Run with the fastai 1.0.61 oracle venv (one thread, num_workers=0, seeded: byte-stable output):
    /tmp/trainlib-oracle/fa1/bin/python tests/oracle_scripts/record_fa1_stock_callbacks.py \\
        > tests/golden/fa1_stock_callbacks.txt          # or fa1_stock_callbacks.<machine>.txt

torch's CPU kernels round differently on different CPUs, and training carries the difference into the
5th-6th digit (lr_find's divergent end: the 5th); the test accepts a run that matches any recording, so a
recording per kind of machine the suite runs on (the header's third line names the CPU), each listed in
RECORDINGS of tests/v1/callbacks/test_v1_stock_vs_fastai.py.

The scenario file's import line `from trainlib.v1 import *` is swapped for fastai-1's star imports; nothing
else in it is touched. Each scenario runs in a fresh temporary directory (the Learners' path is '.').
One line per scenario: ``name<TAB>json``.
"""
import json
import os
import tempfile
import types
from pathlib import Path

import fastai
import torch

SCENARIOS = Path(__file__).resolve().parents[1] / 'v1' / 'callbacks' / 'fa1_stock_scenarios.py'
FASTAI_IMPORTS = ('from fastai.basic_data import *; from fastai.basic_train import *; from fastai.callback import *; '
                  'from fastai.callbacks import *; from fastai.callbacks.misc import StopAfterNBatches; '
                  'from fastai.metrics import accuracy; from fastai.train import *')


def load_scenarios() -> types.ModuleType:
    src = SCENARIOS.read_text()
    line = 'from trainlib.v1 import *'
    assert src.count(line) == 1
    mod = types.ModuleType('fa1_stock_scenarios')
    exec(compile(src.replace(line, FASTAI_IMPORTS), str(SCENARIOS), 'exec'), mod.__dict__)
    return mod


def cpu_model() -> str:
    "The CPU's model name, as /proc/cpuinfo gives it (or platform's guess elsewhere)."
    try:
        return next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except (OSError, StopIteration):
        import platform
        return platform.processor() or 'unknown CPU'


def main():
    sc = load_scenarios()
    print(f'# fastai {fastai.__version__}, torch {torch.__version__}: the scenarios of '
          f'tests/v1/callbacks/fa1_stock_scenarios.py')
    print('# produced by tests/oracle_scripts/record_fa1_stock_callbacks.py with /tmp/trainlib-oracle/fa1/bin/python')
    print(f'# on: {cpu_model()}, torch CPU capability {torch.backends.cpu.get_cpu_capability()}')
    home = os.getcwd()
    for f in sc.SCENARIOS:
        with tempfile.TemporaryDirectory() as d:
            os.chdir(d)
            try: print(f'{f.__name__}\t{json.dumps(sc.run(f))}')
            finally: os.chdir(home)


if __name__ == '__main__':
    main()
