"""The fastai-1-style public API: ``from trainlib.v1 import *`` stands for fastai 1's
``basic_train``, ``callback``, ``basic_data`` (and, as they arrive, ``callbacks``, ``train``,
``metrics``) star imports. Everything runs on trainlib's one loop (see :mod:`trainlib.v1.bridge`)."""
from .callback import Callback, CallbackHandler, SmoothenValue, AverageMetric, add_metrics, V1ReturnError, V1StateKeyError
from .optim import OptimWrapper, AdamW
from .basic_data import DataBunch, DeviceDataLoader, DatasetType
from .basic_train import (Learner, BasicLearner, LearnerCallback, Recorder, fit, loss_batch, validate, get_preds,
                          defaults, flatten_model, split_model, requires_grad)
from .bridge import V1Adapter
from ..metrics import accuracy, error_rate

__all__ = ['Callback', 'CallbackHandler', 'SmoothenValue', 'AverageMetric', 'add_metrics', 'V1ReturnError',
           'V1StateKeyError', 'OptimWrapper', 'AdamW', 'DataBunch', 'DeviceDataLoader', 'DatasetType', 'Learner',
           'BasicLearner', 'LearnerCallback', 'Recorder', 'fit', 'loss_batch', 'validate', 'get_preds', 'defaults',
           'flatten_model', 'split_model', 'requires_grad', 'V1Adapter', 'accuracy', 'error_rate']
