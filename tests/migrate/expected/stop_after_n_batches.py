"Stop the whole fit after a few batches, e.g. to smoke-test a training script."
from trainlib.v2 import *


class StopAfter(Callback):
    "Stop training after `n_batches` training batches, without validating."
    order = Recorder.order + 1  # after the Recorder, as in fastai 1 (where it ran at _order -10)

    def __init__(self, n_batches:int=2):
        self.n_batches = n_batches

    def after_batch(self):
        iteration = self.learn.train_iter - 1 if self.learn.training else self.learn.train_iter
        if iteration >= self.n_batches - 1:
            self._stop_training = True
            self._skip_validate = True
            raise CancelTrainException() if self.learn.training else CancelValidException()

    def before_fit(self):
        self._skip_validate = self._stop_training = False

    def before_validate(self):
        if self._skip_validate: raise CancelValidException()

    def after_epoch(self):
        if self._stop_training: raise CancelFitException()
