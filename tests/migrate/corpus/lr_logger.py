"Log the learning rate and the smoothed loss of every training batch (kwargs access, LearnerCallback)."
from fastai.basic_train import *
from fastai.callback import *


class LRLossLogger(LearnerCallback):
    "Keep `(iteration, lr, smooth_loss)` for every training batch in `self.history`."
    def on_train_begin(self, **kwargs):
        self.history = []

    def on_batch_end(self, train, iteration, **kwargs):
        if train:
            self.history.append((iteration, self.opt.lr, kwargs.get('smooth_loss').item()))
