"Clamp the weights after every optimizer step (WGAN-style critic), with an explicit _order."
from fastai.basic_train import *
from fastai.callback import *


class WeightClipper(LearnerCallback):
    "Keep every parameter inside `[-clip, clip]`."
    _order = 10

    def __init__(self, learn:Learner, clip:float=0.5):
        super().__init__(learn)
        self.clip = clip

    def on_step_end(self, **kwargs):
        for p in self.learn.model.parameters(): p.data.clamp_(-self.clip, self.clip)
