"Log the learning rate and the smoothed loss of every training batch (kwargs access, LearnerCallback)."
from trainlib.v2 import *


class LRLossLogger(Callback):
    "Keep `(iteration, lr, smooth_loss)` for every training batch in `self.history`."
    order = Recorder.order + 1  # after the Recorder, as in fastai 1 (where it ran at _order -10)

    def before_fit(self):
        self.history = []

    def after_batch(self):
        iteration = self.learn.train_iter - 1 if self.learn.training else self.learn.train_iter
        if self.learn.training:
            self.history.append((iteration, self.opt.get_hyper('lr'), self.learn.smooth_loss.item()))
