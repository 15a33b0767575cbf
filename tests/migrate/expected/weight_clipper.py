"Clamp the weights after every optimizer step (WGAN-style critic), with an explicit _order."
from trainlib.v2 import *


class WeightClipper(Callback):
    "Keep every parameter inside `[-clip, clip]`."
    order = 10

    def __init__(self, clip:float=0.5):
        super().__init__()
        self.clip = clip

    def after_step(self):
        for p in self.learn.model.parameters(): p.data.clamp_(-self.clip, self.clip)
