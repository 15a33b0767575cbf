"Old-style dataclass callbacks (fastai 1.0.4x): a LearnerCallback with a `learn` field, legacy return."
from dataclasses import dataclass
from fastai.basic_train import *
from fastai.callback import *


@dataclass
class OutputScaler(LearnerCallback):
    "Multiply the model's output by `scale` (fastai <= 1.0.46: the output is returned as is)."
    learn:Learner
    scale:float=1.0

    def on_loss_begin(self, last_output, **kwargs):
        return last_output * self.scale


@dataclass
class BatchCounter(Callback):
    "Count the training batches seen, per epoch."
    counts:list=None

    def on_train_begin(self, **kwargs): self.counts = []
    def on_epoch_begin(self, **kwargs): self.counts.append(0)
    def on_batch_end(self, train, **kwargs):
        if train: self.counts[-1] += 1
