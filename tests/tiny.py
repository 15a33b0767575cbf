"Tiny seeded Learners and a recording callback shared by the core test modules."
import torch
from torch import nn
from torch.utils.data import TensorDataset

from trainlib import Callback, CrossEntropyLossFlat, DataLoaders, Learner, noop
from trainlib.testing import synth_learner


def quiet_learner(n_trn=1, n_val=1, **kwargs):
    "The synthetic regression Learner (``y = a*x + b``, batches of 16) with its table switched off."
    learn = synth_learner(n_trn=n_trn, n_val=n_val, **kwargs)
    learn.logger = noop
    return learn


def blobs(n, seed=0):
    "``n`` points in 2-d, labelled 1 when the first coordinate is positive."
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 2, generator=g)
    return TensorDataset(x, (x[:, 0] > 0).long())


def blobs_dls(n_train=48, n_valid=20, bs=16, **kwargs):
    "Loaders over :func:`blobs` (training shuffled), classes named ``neg``/``pos``."
    return DataLoaders.from_dsets(blobs(n_train, seed=1), blobs(n_valid, seed=2), bs=bs, device='cpu',
                                  vocab=['neg', 'pos'], **kwargs)


def blobs_learner(n_train=48, n_valid=20, bs=16, **kwargs):
    "A linear 2-class classifier on :func:`blobs` with cross-entropy (lr 0.1)."
    kwargs.setdefault('lr', 0.1)
    return Learner(blobs_dls(n_train, n_valid, bs), nn.Linear(2, 2), loss_func=CrossEntropyLossFlat(), **kwargs)


def recording(name, events, log, **attrs):
    "A Callback subclass called ``name`` whose methods for ``events`` append ``(event, name)`` to ``log``."
    def method(event):
        def f(self): log.append((event, name))
        return f
    return type(name, (Callback,), {**{e: method(e) for e in events}, **attrs})
