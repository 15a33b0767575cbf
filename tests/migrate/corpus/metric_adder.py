"A metric that adds a column to last_metrics (the fastai-1 way; no faithful v2 translation)."
from fastai.basic_train import *
from fastai.callback import *
from fastai.torch_core import *


class MaxAbsError(LearnerCallback):
    "The largest absolute error over the validation set, as an extra column."
    _order = -20

    def on_train_begin(self, **kwargs):
        self.learn.recorder.add_metric_names(['max_abs_err'])

    def on_epoch_begin(self, **kwargs):
        self.max_err = torch.tensor(0.)

    def on_batch_end(self, last_output, last_target, train, **kwargs):
        if not train:
            self.max_err = torch.max(self.max_err, (last_output - last_target).abs().max())

    def on_epoch_end(self, last_metrics, **kwargs):
        return add_metrics(last_metrics, self.max_err)
