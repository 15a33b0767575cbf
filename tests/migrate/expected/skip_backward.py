"Skip the backward pass of the batches whose loss spikes (skip_bwd, fastai >= 1.0.5x)."
from trainlib.v2 import *


class SkipSpikes(Callback):
    "Do not back-propagate a loss larger than `max_loss`; count how often that happened."
    def __init__(self, max_loss:float):
        self.max_loss = max_loss
        self.skipped = 0

    def before_backward(self):
        if self.learn.loss_grad > self.max_loss:
            self.skipped += 1
            raise CancelBackwardException()
