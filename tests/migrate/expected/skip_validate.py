"Validate only every `every` epochs (and always at the last one), through skip_validate."
from trainlib.v2 import *


class ValidateEvery(Callback):
    "Skip the validation of the epochs that are not a multiple of `every`."
    def __init__(self, every:int=2):
        self.every = every

    def before_epoch(self):
        last = self.learn.epoch == self.learn.n_epoch - 1
        self._skip_validate = not last and (self.learn.epoch + 1) % self.every != 0

    def before_fit(self):
        self._skip_validate = False

    def before_validate(self):
        if self._skip_validate: raise CancelValidException()
