"Gradient accumulation written for fastai <= 1.0.46: truthy returns skip the step and the zero_grad."
from fastai.basic_train import *
from fastai.callback import *


class AccumulateGradients(Callback):
    "Step once every `n_step` batches, with the gradients of all of them."
    _order = -5

    def __init__(self, n_step=2):
        self.n_step = n_step

    def on_backward_end(self, num_batch, **kwargs):
        return (num_batch + 1) % self.n_step != 0

    def on_step_end(self, num_batch, **kwargs):
        return (num_batch + 1) % self.n_step != 0
