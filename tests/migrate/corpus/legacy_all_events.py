"Every fastai-1 event with the positional returns of fastai <= 1.0.46."
from fastai.basic_train import *
from fastai.callback import *


class LegacyTweaks(Callback):
    "Halve the inputs, scale the output and the loss, stop epochs early and the fit after two epochs."
    def __init__(self, max_batches:int=3):
        self.max_batches = max_batches
        self.log = []

    def on_train_begin(self, n_epochs, **kwargs):
        self.log.append(('train_begin', n_epochs))
        return 'ignored'

    def on_epoch_begin(self, epoch, **kwargs):
        self.log.append(('epoch_begin', epoch))

    def on_batch_begin(self, last_input, last_target, **kwargs):
        return last_input * 0.5, last_target

    def on_loss_begin(self, last_output, **kwargs):
        return last_output * 1.5

    def on_backward_begin(self, last_loss, **kwargs):
        return last_loss * 2

    def on_backward_end(self, **kwargs):
        return False

    def on_step_end(self, **kwargs):
        return None

    def on_batch_end(self, train, num_batch, **kwargs):
        return train and num_batch == self.max_batches - 1

    def on_epoch_end(self, epoch, **kwargs):
        self.log.append(('epoch_end', epoch))
        return epoch >= 1

    def on_train_end(self, **kwargs):
        self.log.append(('train_end',))
