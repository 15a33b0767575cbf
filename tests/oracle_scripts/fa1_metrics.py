#!/usr/bin/env python
"""Record fastai 1.0.61's metrics (fastai.metrics, callbacks.loss_metrics) on the fixed cases of
tests/v1/fa1_metric_cases.py: every metric function, every callback metric driven over 2 epochs of 3 batches,
and Learner fits on a TensorDataset with metrics (last_metrics, Recorder, validate).

    /tmp/trainlib-oracle/fa1/bin/python tests/oracle_scripts/fa1_metrics.py > tests/golden/fa1_metrics.json
"""
import contextlib
import io
import json
import sys
import tempfile
import warnings
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / 'v1'))
import fa1_metric_cases as mc  # noqa: E402

import fastai  # noqa: E402
import fastai.metrics  # noqa: E402
from fastai.basic_data import DataBunch  # noqa: E402
from fastai.basic_train import Learner  # noqa: E402
from fastai.callback import Callback  # noqa: E402
from fastai.callbacks.loss_metrics import LossMetrics  # noqa: E402


def validate_twice(ns: dict, tmp: str) -> list:
    "learn.validate() twice, then fit: what fastai 1 gives with an FBeta() metric each time."
    train_ds, valid_ds = mc.fit_data()
    data = DataBunch.create(train_ds, valid_ds, bs=8, num_workers=0, path=tmp, device=torch.device('cpu'))
    learn = Learner(data, mc.fit_model(), loss_func=torch.nn.CrossEntropyLoss(),
                    metrics=[fastai.metrics.accuracy, fastai.metrics.FBeta()], silent=True)
    res = [mc.describe(list(learn.validate())), mc.describe(list(learn.validate()))]
    torch.manual_seed(1)
    learn.fit(1, 1e-2)
    return res + [mc.describe([list(m) for m in learn.recorder.metrics])]


def main():
    ns = dict(vars(fastai.metrics), DataBunch=DataBunch, Learner=Learner, Callback=Callback, LossMetrics=LossMetrics)
    d = mc.inputs()
    out = {'checksum': mc.checksum(d),
           'functions': {label: mc.run_function(ns, name, keys, kw, d) for label, name, keys, kw in mc.FUNCTION_CASES},
           'callbacks': {label: mc.run_callback(ns, name, kw, o, t, sizes, d)
                         for label, name, kw, o, t, sizes in mc.CALLBACK_CASES}}
    tmp = tempfile.mkdtemp()
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter('ignore')
        m = fastai.metrics
        out['fit accuracy FBeta'] = mc.run_fit(ns, [m.accuracy, m.FBeta()], tmp=tmp)
        out['fit many'] = mc.run_fit(ns, [m.error_rate, m.Precision(), m.Recall(), m.KappaScore(weights='quadratic'),
                                          m.MatthewsCorreff(), m.AUROC(), m.ConfusionMatrix(), partial(m.top_k_accuracy, k=1)],
                                     tmp=tmp)
        out['fit LossMetrics'] = mc.run_fit(ns, [m.accuracy], callback_fns=[LossMetrics], loss_func=mc.SplitLoss(),
                                            tmp=tmp)
        out['validate twice with FBeta'] = validate_twice(ns, tmp)
    print(f'# tests/oracle_scripts/fa1_metrics.py, fastai {fastai.__version__}, torch {torch.__version__}')
    print(json.dumps(out, indent=1))


if __name__ == '__main__':
    main()
