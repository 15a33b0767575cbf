"An L1 penalty on the weights, added to the loss before backward (reads kwargs by key)."
from fastai.basic_train import *
from fastai.callback import *


class L1Penalty(LearnerCallback):
    "Add `alpha` times the L1 norm of the model's weights to the training loss."
    def __init__(self, learn:Learner, alpha:float=1e-3):
        super().__init__(learn)
        self.alpha = alpha

    def on_backward_begin(self, **kwargs):
        penalty = sum(p.abs().sum() for p in self.learn.model.parameters() if p.requires_grad)
        return {'last_loss': kwargs['last_loss'] + self.alpha * penalty}
