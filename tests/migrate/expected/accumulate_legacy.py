"Gradient accumulation written for fastai <= 1.0.46: truthy returns skip the step and the zero_grad."
from trainlib.v2 import *


class AccumulateGradients(Callback):
    "Step once every `n_step` batches, with the gradients of all of them."
    order = -5

    def __init__(self, n_step=2):
        self.n_step = n_step

    def before_step(self):
        if (self.learn.iter + 1) % self.n_step != 0: raise CancelStepException()

    def after_step(self):
        if (self.learn.iter + 1) % self.n_step != 0: raise CancelBatchException()
