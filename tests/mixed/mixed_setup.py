"""Shared set-up of the mixed-generation tests: a tiny linear problem whose every number can be computed by hand,
on a v2 ``trainlib.Learner`` and on a v1 ``trainlib.v1.Learner``, with the same weights, data and plain SGD."""
from functools import partial

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainlib
import trainlib.v1 as v1

W0, LR = 0.5, 0.1
TRAIN_X, TRAIN_Y = torch.tensor([[1.], [2.], [3.], [4.]]), torch.tensor([[1.], [1.], [2.], [2.]])
VALID_X, VALID_Y = torch.tensor([[3.], [4.]]), torch.tensor([[0.], [1.]])


def model():
    "``y = w*x`` with ``w = W0``."
    m = nn.Linear(1, 1, bias=False)
    with torch.no_grad(): m.weight.fill_(W0)
    return m


def loaders(bs=2):
    "Two training batches and one validation batch, never shuffled."
    return (DataLoader(TensorDataset(TRAIN_X, TRAIN_Y), batch_size=bs),
            DataLoader(TensorDataset(VALID_X, VALID_Y), batch_size=bs))


def v2_learner(cbs=None, **kwargs):
    "A v2 Learner (its default callbacks: TrainEval, Recorder, CastToTensor, Progress), plain SGD, quiet."
    kw = dict(loss_func=nn.MSELoss(), opt_func=partial(trainlib.SGD, mom=0.), lr=LR, cbs=cbs)
    learn = trainlib.Learner(trainlib.DataLoaders(*loaders(), device='cpu'), model(), **{**kw, **kwargs})
    learn.logger = trainlib.noop                      # no table: ProgressCallback prints nothing either
    return learn


def v1_learner(callbacks=None, **kwargs):
    "A v1 Learner (v1 Recorder from callback_fns), plain torch SGD without weight decay, silent."
    data = v1.DataBunch(*loaders(), device='cpu')
    kw = dict(opt_func=torch.optim.SGD, loss_func=nn.MSELoss(), wd=0., true_wd=False, silent=True, callbacks=callbacks)
    return v1.Learner(data, model(), **{**kw, **kwargs})


def fit(learn, n_epoch=1, cbs=None):
    "Fit either Learner at LR with extra callbacks for this fit (``cbs=`` or ``callbacks=``)."
    if isinstance(learn, v1.Learner): learn.fit(n_epoch, LR, callbacks=cbs)
    else: learn.fit(n_epoch, LR, cbs=cbs)


def weight(learn):
    return learn.model.weight.detach().item()
