#!/usr/bin/env python
"""Record what fastai 1.0.61's Learner does on a plain TensorDataset for the rest of its API: summary(),
predict(item), export(), purge(), destroy() (tests/v1/fa1_metric_cases.py's two-class problem, one epoch).

    /tmp/trainlib-oracle/fa1/bin/python tests/oracle_scripts/fa1_learner_rest.py > tests/golden/fa1_learner_rest.json
"""
import contextlib
import io
import json
import sys
import tempfile
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'v1'))
import fa1_metric_cases as mc  # noqa: E402

import fastai  # noqa: E402
from fastai.basic_data import DataBunch  # noqa: E402
from fastai.basic_train import Learner  # noqa: E402
from fastai.metrics import accuracy  # noqa: E402
import fastai.callbacks.hooks  # noqa: E402,F401  (Learner.summary)


def attempt(f):
    "What ``f()`` returns (described), or the error it raises."
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out): res = f()
        res = mc.describe(res)
        if not isinstance(res, (str, int, float, list, type(None))): res = f'<{type(res).__name__}>'
        return {'returned': res, 'stdout': out.getvalue()}
    except Exception as e:
        return {'raised': f'{type(e).__name__}: {e}', 'stdout': out.getvalue()}


def summary_patched(learn):
    "fastai's summary text once TensorDataset answers ``is_empty`` (what fastai 1 reads from data-block datasets)."
    torch.utils.data.TensorDataset.is_empty = False
    try: return attempt(lambda: str(learn.summary()))
    finally: del torch.utils.data.TensorDataset.is_empty


def main():
    warnings.simplefilter('ignore')
    train_ds, valid_ds = mc.fit_data()
    tmp = tempfile.mkdtemp()
    data = DataBunch.create(train_ds, valid_ds, bs=8, num_workers=0, path=tmp, device=torch.device('cpu'))
    learn = Learner(data, mc.fit_model(), loss_func=torch.nn.CrossEntropyLoss(), metrics=[accuracy], silent=True)
    torch.manual_seed(1)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()): learn.fit(1, 1e-2)
    out = {'summary': attempt(lambda: str(learn.summary())),
           'summary with is_empty patched': summary_patched(learn),
           'predict(valid_ds[0])': attempt(lambda: learn.predict(valid_ds[0])),
           'export()': attempt(lambda: learn.export()),
           'validate before purge': attempt(lambda: list(learn.validate())),
           'purge()': attempt(lambda: learn.purge()),
           'has opt after purge': hasattr(learn, 'opt'),
           'validate after purge': attempt(lambda: list(learn.validate())),
           'destroy()': attempt(lambda: learn.destroy()),
           'fit after destroy': attempt(lambda: learn.fit(1)),
           'model after destroy': attempt(lambda: learn.model)}
    print(f'# tests/oracle_scripts/fa1_learner_rest.py, fastai {fastai.__version__}, torch {torch.__version__}')
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
