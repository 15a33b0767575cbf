"Gradient accumulation with skip_step and skip_zero (fastai >= 1.0.47)."
from fastai.basic_train import *
from fastai.callback import *


class GradientAccumulator(LearnerCallback):
    "Sum the gradients of `n_step` batches, average them and take one optimizer step."
    def __init__(self, learn:Learner, n_step:int=2):
        super().__init__(learn)
        self.n_step = n_step

    def on_epoch_begin(self, **kwargs):
        self.acc_batches = 0

    def on_backward_end(self, **kwargs):
        self.acc_batches += 1
        if self.acc_batches % self.n_step != 0:
            return {'skip_step': True, 'skip_zero': True}
        for p in self.learn.model.parameters():
            if p.grad is not None: p.grad.div_(self.n_step)
