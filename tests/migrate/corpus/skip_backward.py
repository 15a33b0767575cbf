"Skip the backward pass of the batches whose loss spikes (skip_bwd, fastai >= 1.0.5x)."
from fastai.basic_train import *
from fastai.callback import *


class SkipSpikes(Callback):
    "Do not back-propagate a loss larger than `max_loss`; count how often that happened."
    def __init__(self, max_loss:float):
        self.max_loss = max_loss
        self.skipped = 0

    def on_backward_begin(self, last_loss, **kwargs):
        if last_loss > self.max_loss:
            self.skipped += 1
            return {'skip_bwd': True}
