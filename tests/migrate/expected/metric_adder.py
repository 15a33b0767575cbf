"A metric that adds a column to last_metrics (the fastai-1 way; no faithful v2 translation)."
import torch
# TODO(trainlib.migrate): add_metrics came from fastai's star import: trainlib.v2 does not provide it
from trainlib.v2 import *


class MaxAbsError(Callback):
    "The largest absolute error over the validation set, as an extra column."
    order = -20

    def before_fit(self):
        # TODO(trainlib.migrate): adds a column to the v1 Recorder: in trainlib.v2 compute it in a Metric (or a ValueMetric) passed in Learner(metrics=...)
        self.learn.recorder.add_metric_names(['max_abs_err'])

    def before_epoch(self):
        self.max_err = torch.tensor(0.)

    def after_batch(self):
        if not self.learn.training:
            self.max_err = torch.max(self.max_err, (self.learn.pred - self.learn.y).abs().max())

    def after_epoch(self):
        # TODO(trainlib.migrate): adds a column to last_metrics: in trainlib.v2 compute it in a Metric (or a ValueMetric reading this callback) passed in Learner(metrics=...)
        return add_metrics(last_metrics, self.max_err)
