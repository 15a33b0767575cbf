"Gradient clipping, added through callback_fns as fastai 1 did with `learn.clip_grad`."
from functools import partial
from torch import nn
from trainlib.v2 import *


class GradientClipper(Callback):
    "Clip the gradient norm of the model's parameters to `clip` before each step."
    def __init__(self, clip:float=0.):
        super().__init__()
        self.clip = clip

    def before_step(self):
        if self.clip: nn.utils.clip_grad_norm_(self.learn.model.parameters(), self.clip)


def clipped_learner(data, model, clip=0.5):
    "A learner whose gradients are clipped to `clip` at every step."
    return Learner(data, model, loss_func=nn.MSELoss(), cbs=[GradientClipper(clip=clip)])


def fit_clipped(learn, epochs=3, lr=1e-2, clip=0.5):
    "Fit `learn` with gradient clipping passed for this fit only."
    learn.fit(epochs, lr, cbs=[GradientClipper(clip=clip)])
