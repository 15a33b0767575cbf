"Stop once a training batch's loss is below a target: the epoch ends now, the fit after validation."
from trainlib.v2 import *


class StopOnLoss(Callback):
    "End the training phase at the first batch whose loss is below `target`, then stop the fit."
    order = Recorder.order + 1  # after the Recorder, as in fastai 1 (where it ran at _order -10)

    def __init__(self, target:float):
        self.target = target

    def after_batch(self):
        if self.learn.training and self.learn.loss < self.target:
            self._stop_training = True
            raise CancelTrainException() if self.learn.training else CancelValidException()

    def before_fit(self):
        self._stop_training = False

    def after_epoch(self):
        if self._stop_training: raise CancelFitException()
