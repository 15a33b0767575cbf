"Every fastai-1 event with the positional returns of fastai <= 1.0.46."
from trainlib.v2 import *


class LegacyTweaks(Callback):
    "Halve the inputs, scale the output and the loss, stop epochs early and the fit after two epochs."
    order = Recorder.order + 1  # after the Recorder, as in fastai 1 (where it ran at _order -10)

    def __init__(self, max_batches:int=3):
        self.max_batches = max_batches
        self.log = []

    def before_fit(self):
        self.log.append(('train_begin', self.learn.n_epoch))

    def before_epoch(self):
        self.log.append(('epoch_begin', self.learn.epoch))

    def before_batch(self):
        self.learn.xb = (self.learn.x * 0.5,)

    def after_pred(self):
        self.learn.pred = self.learn.pred * 1.5

    def before_backward(self):
        self.learn.loss_grad = self.learn.loss_grad * 2

    def after_batch(self):
        if self.learn.training and self.learn.iter == self.max_batches - 1:
            raise CancelTrainException() if self.learn.training else CancelValidException()

    def after_epoch(self):
        self.log.append(('epoch_end', self.learn.epoch))
        if self.learn.epoch >= 1: raise CancelFitException()

    def after_fit(self):
        self.log.append(('train_end',))
