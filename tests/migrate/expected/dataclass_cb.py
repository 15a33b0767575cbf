"Old-style dataclass callbacks (fastai 1.0.4x): a LearnerCallback with a `learn` field, legacy return."
from dataclasses import dataclass
from trainlib.v2 import *


@dataclass
class OutputScaler(Callback):
    "Multiply the model's output by `scale` (fastai <= 1.0.46: the output is returned as is)."
    scale:float=1.0

    def after_pred(self):
        self.learn.pred = self.learn.pred * self.scale


@dataclass
class BatchCounter(Callback):
    "Count the training batches seen, per epoch."
    counts:list=None

    def before_fit(self): self.counts = []
    def before_epoch(self): self.counts.append(0)
    def after_batch(self):
        if self.learn.training: self.counts[-1] += 1
