"The shortest path through the library: a synthetic regression trains and matches fastai's first epoch."
from functools import partial

import torch
from torch.utils.data import DataLoader, TensorDataset

from trainlib import DataLoaders, Learner, MSELossFlat, SGD, noop, ProgressCallback
from trainlib.testing import RegModel


def test_fit_matches_fastai_p1_values():
    torch.manual_seed(0)
    x_tr = torch.randn(160, 1); y_tr = 2 * x_tr + 3 + 0.1 * torch.randn(160, 1)
    x_va = torch.randn(32, 1); y_va = 2 * x_va + 3 + 0.1 * torch.randn(32, 1)
    model = RegModel()
    dls = DataLoaders(DataLoader(TensorDataset(x_tr, y_tr), batch_size=16),
                      DataLoader(TensorDataset(x_va, y_va), batch_size=16), device='cpu')
    learn = Learner(dls, model, loss_func=MSELossFlat(), opt_func=partial(SGD, mom=0.9))
    learn.remove_cb(ProgressCallback); learn.logger = noop
    learn.fit(3, lr=0.1)
    # fastai 2.8.12, ../shared/oracle/fa2_numbers.txt, run P1
    expected = [[4.292255, 0.172473], [2.469840, 1.921525], [1.699336, 0.145705]]
    for row, exp in zip(learn.recorder.values, expected):
        assert all(abs(a - b) < 1e-5 for a, b in zip(row, exp))
    assert abs(model.a.item() - 1.777424) < 1e-5 and abs(model.b.item() - 2.879306) < 1e-5
