"Gradient clipping, added through callback_fns as fastai 1 did with `learn.clip_grad`."
from functools import partial
from fastai.basic_train import *
from fastai.callback import *


class GradientClipper(LearnerCallback):
    "Clip the gradient norm of the model's parameters to `clip` before each step."
    def __init__(self, learn:Learner, clip:float=0.):
        super().__init__(learn)
        self.clip = clip

    def on_backward_end(self, **kwargs):
        if self.clip: nn.utils.clip_grad_norm_(self.learn.model.parameters(), self.clip)


def clipped_learner(data, model, clip=0.5):
    "A learner whose gradients are clipped to `clip` at every step."
    return Learner(data, model, loss_func=nn.MSELoss(), callback_fns=[partial(GradientClipper, clip=clip)])


def fit_clipped(learn, epochs=3, lr=1e-2, clip=0.5):
    "Fit `learn` with gradient clipping passed for this fit only."
    learn.fit(epochs, lr, callbacks=[GradientClipper(learn, clip=clip)])
