#!/usr/bin/env python
"""Run tests/v1/corpus/fa1_style_callbacks.py in a real fastai 1.0.61 fit: proof that the corpus is valid
fastai-1 code, and a golden record of what its callbacks see (for the v1 Learner tests once it exists).

Run with the fastai 1.0.61 oracle venv:
    /tmp/trainlib-oracle/fa1/bin/python tests/oracle_scripts/record_fa1_corpus.py > tests/golden/fa1_corpus_run.txt

The corpus's import line `from trainlib.v1.imports import *` is swapped back to the fastai-1 line
`from fastai.torch_core import *`; nothing else in the file is touched.
"""
import contextlib
import io
import json
import tempfile
import types
import warnings
from pathlib import Path

import torch
from torch.utils.data import TensorDataset

import fastai
from fastai.basic_data import DataBunch
from fastai.basic_train import Learner

CORPUS = Path(__file__).resolve().parents[1] / 'v1' / 'corpus' / 'fa1_style_callbacks.py'


def load_corpus() -> types.ModuleType:
    src = CORPUS.read_text()
    assert src.count('from trainlib.v1.imports import *') == 1
    mod = types.ModuleType('fa1_style_callbacks')
    exec(compile(src.replace('from trainlib.v1.imports import *', 'from fastai.torch_core import *'), str(CORPUS), 'exec'),
         mod.__dict__)
    return mod


def make_data(n_train: int = 12, n_valid: int = 6, bs: int = 4) -> DataBunch:
    "y = x·w + noise; 3 shuffled train batches (drop_last) and 2 valid batches per epoch."
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n_train + n_valid, 2, generator=g)
    y = x @ torch.tensor([[2.], [-1.]]) + 0.1 * torch.randn(n_train + n_valid, 1, generator=g)
    tr, va = TensorDataset(x[:n_train], y[:n_train]), TensorDataset(x[n_train:], y[n_train:])
    return DataBunch.create(tr, va, bs=bs, num_workers=0, path=tempfile.mkdtemp())


def main():
    warnings.simplefilter('ignore')
    c = load_corpus()
    torch.manual_seed(0)
    model = c.TinyNet(2)
    learn = Learner(make_data(), model, loss_func=c.flat_mse, opt_func=torch.optim.SGD, add_time=False, silent=True)
    hist, gn, warm = c.history_cb(), c.GradNormTracker(model, max_norm=1.), c.LossWarmup(n_iter=4, start=0.5)
    torch.manual_seed(1)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # progress bars
        learn.fit(2, 0.05, callbacks=[hist, gn, warm])
    r6 = lambda xs: [round(x, 6) for x in xs]
    out = {
        'fit': 'Learner(TinyNet(2), loss_func=flat_mse, opt_func=SGD).fit(2, 0.05, callbacks=[history_cb(), '
               'GradNormTracker(model, max_norm=1.), LossWarmup(n_iter=4, start=0.5)]); 3 train + 2 valid batches/epoch',
        'history.losses': r6(hist.losses), 'history.smooth': r6(hist.smooth), 'history.val_losses': hist.val_losses,
        'grad_norms': r6(gn.norms), 'recorder.losses': r6([float(l) for l in learn.recorder.losses]),
        'lr_groups(slice(1e-4, 1e-2), 3)': r6(c.lr_groups(slice(1e-4, 1e-2), 3).tolist()),
        'lr_groups(slice(None, 1e-2), 3)': r6(c.lr_groups(slice(None, 1e-2), 3).tolist()),
        'lr_groups(1e-3, 2)': r6(c.lr_groups(1e-3, 2).tolist()),
        'freeze_first(TinyNet(2), 1)': [type(l).__name__ for l in c.freeze_first(c.TinyNet(2), 1)],
    }
    print(f'# fastai {fastai.__version__}: tests/v1/corpus/fa1_style_callbacks.py run in a real fastai-1 fit')
    print('# produced by tests/oracle_scripts/record_fa1_corpus.py with /tmp/trainlib-oracle/fa1/bin/python')
    for k, v in out.items(): print(f'{k}\t{json.dumps(v)}')


if __name__ == '__main__':
    main()
