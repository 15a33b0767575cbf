"Gradient accumulation with skip_step and skip_zero (fastai >= 1.0.47)."
from trainlib.v2 import *


class GradientAccumulator(Callback):
    "Sum the gradients of `n_step` batches, average them and take one optimizer step."
    def __init__(self, n_step:int=2):
        super().__init__()
        self.n_step = n_step

    def before_epoch(self):
        self.acc_batches = 0

    def before_step(self):
        self.acc_batches += 1
        if self.acc_batches % self.n_step != 0:
            raise CancelBatchException()
        for p in self.learn.model.parameters():
            if p.grad is not None: p.grad.div_(self.n_step)
