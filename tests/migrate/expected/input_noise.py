"Add Gaussian noise to the inputs of the training batches (fastai >= 1.0.47 dict returns)."
import torch
from trainlib.v2 import *


class InputNoise(Callback):
    "Regularize by adding `std`-scaled Gaussian noise to each training input."
    def __init__(self, std:float=0.1):
        self.std = std

    def before_batch(self):
        if not self.learn.training: return
        noise = torch.randn_like(self.learn.x) * self.std
        self.learn.xb = (self.learn.x + noise,)
