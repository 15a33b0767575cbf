"Early stopping on the validation loss read from last_metrics."
from trainlib.v2 import *


class ValidLossEarlyStopping(Callback):
    "Stop training when the validation loss has not improved by `min_delta` for `patience` epochs."
    order = Recorder.order + 1  # after the Recorder, as in fastai 1 (where it ran at _order -10)

    def __init__(self, patience:int=1, min_delta:float=0.):
        self.patience,self.min_delta = patience,min_delta

    def before_fit(self):
        self.best,self.wait,self.stopped_epoch = float('inf'),0,None

    def after_epoch(self):
        valid_loss = self.learn.recorder.values[-1][1]
        if valid_loss < self.best - self.min_delta:
            self.best,self.wait = valid_loss,0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = self.learn.epoch
            raise CancelFitException()
