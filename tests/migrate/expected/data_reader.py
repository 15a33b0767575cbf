"Initialise the output bias from the training targets, reading the DataBunch through the learner."
import torch
from trainlib.v2 import *


class TargetMeanInit(Callback):
    "Set the bias of the last linear layer to the mean training target before the first epoch."
    def __init__(self, layer:int=-1):
        super().__init__()
        self.layer = layer

    def before_fit(self):
        targets = self.learn.dls.train_ds.tensors[1]
        self.n_batches = len(self.learn.dls.train)
        self.n_valid = len(self.learn.dls.valid.dataset)
        with torch.no_grad(): self.learn.model[self.layer].bias.fill_(targets.mean().item())
