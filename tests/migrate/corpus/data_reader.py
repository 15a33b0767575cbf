"Initialise the output bias from the training targets, reading the DataBunch through the learner."
from fastai.basic_train import *
from fastai.callback import *


class TargetMeanInit(LearnerCallback):
    "Set the bias of the last linear layer to the mean training target before the first epoch."
    def __init__(self, learn:Learner, layer:int=-1):
        super().__init__(learn)
        self.layer = layer

    def on_train_begin(self, **kwargs):
        targets = self.learn.data.train_ds.tensors[1]
        self.n_batches = len(self.data.train_dl)
        self.n_valid = len(self.data.valid_dl.dataset)
        with torch.no_grad(): self.learn.model[self.layer].bias.fill_(targets.mean().item())
