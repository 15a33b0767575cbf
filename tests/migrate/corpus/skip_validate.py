"Validate only every `every` epochs (and always at the last one), through skip_validate."
from fastai.basic_train import *
from fastai.callback import *


class ValidateEvery(Callback):
    "Skip the validation of the epochs that are not a multiple of `every`."
    def __init__(self, every:int=2):
        self.every = every

    def on_epoch_begin(self, epoch, n_epochs, **kwargs):
        last = epoch == n_epochs - 1
        return {'skip_validate': not last and (epoch + 1) % self.every != 0}
