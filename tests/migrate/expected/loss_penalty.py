"An L1 penalty on the weights, added to the loss before backward (reads kwargs by key)."
from trainlib.v2 import *


class L1Penalty(Callback):
    "Add `alpha` times the L1 norm of the model's weights to the training loss."
    def __init__(self, alpha:float=1e-3):
        super().__init__()
        self.alpha = alpha

    def before_backward(self):
        penalty = sum(p.abs().sum() for p in self.learn.model.parameters() if p.requires_grad)
        self.learn.loss_grad = self.learn.loss_grad + self.alpha * penalty
