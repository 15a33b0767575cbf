"""The fastai-1-style public API: ``from trainlib.v1 import *`` stands for fastai 1's star imports
(``basic_train``, ``callback``, ``basic_data``, ``metrics``, ``callbacks``, ``train``):
the generic names of :mod:`trainlib.v1.imports` plus the v1 classes and functions below. Everything
trains on trainlib's one loop (see :mod:`trainlib.v1.bridge`)."""
from .imports import *
from .imports import __all__ as _generic
from .callback import (Callback, CallbackList, CallbackHandler, SmoothenValue, AverageMetric, V1ReturnError,
                       V1StateKeyError, Scheduler, Stepper, annealing_no, annealing_linear, annealing_exp, annealing_cos,
                       annealing_poly)
from ..optim import OptimWrapper
from .basic_data import DataBunch, DeviceDataLoader, DatasetType, load_data
from .basic_train import (Learner, BasicLearner, LearnerCallback, Recorder, RecordOnCPU, fit, train_epoch, loss_batch,
                          validate, get_preds, load_learner)
from .bridge import V1Adapter
from .callbacks import *
from .callbacks import __all__ as _stock_callbacks
from .train import *
from .train import __all__ as _train
from .metrics import *
from .metrics import __all__ as _metrics
from .hooks import *
from .hooks import __all__ as _hooks
from .interpret import Interpretation, ClassificationInterpretation, MultiLabelClassificationInterpretation
from .oversampling import OverSamplingCallback
from .rnn import RNNTrainer
from .show_graph import ShowGraph

__all__ = list(_generic) + ['Callback', 'CallbackList', 'CallbackHandler', 'SmoothenValue', 'AverageMetric',
                            'V1ReturnError', 'V1StateKeyError', 'OptimWrapper', 'DataBunch', 'DeviceDataLoader', 'DatasetType',
                            'Learner', 'BasicLearner', 'LearnerCallback', 'Recorder', 'fit', 'loss_batch', 'validate',
                            'get_preds', 'V1Adapter', 'Scheduler', 'annealing_no',
                            'annealing_linear', 'annealing_exp', 'annealing_cos', 'annealing_poly', 'RecordOnCPU',
                            'train_epoch', 'Stepper', 'load_learner', 'load_data', 'Interpretation',
                            'ClassificationInterpretation', 'MultiLabelClassificationInterpretation',
                            'OverSamplingCallback', 'RNNTrainer', 'ShowGraph'] + list(_stock_callbacks) + list(_train) \
                            + list(_metrics) + list(_hooks)
