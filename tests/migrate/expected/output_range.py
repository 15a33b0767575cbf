"Squash the model's predictions into the range of the targets."
import torch
from trainlib.v2 import *


class OutputRange(Callback):
    "Map the raw output through a scaled sigmoid so predictions stay inside `(low, high)`."
    def __init__(self, low:float, high:float):
        self.low,self.high = low,high

    def after_pred(self):
        "Rescale the output before the loss (and the metrics) see it."
        self.learn.pred = torch.sigmoid(self.learn.pred) * (self.high - self.low) + self.low
