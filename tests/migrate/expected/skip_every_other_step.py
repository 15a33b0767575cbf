"Skip the optimizer step on every other batch (the gradients of those batches are dropped)."
from trainlib.v2 import *


class SkipOddSteps(Callback):
    "Only step the optimizer on even batches of each epoch."
    def before_step(self):
        if self.learn.iter % 2 == 1: raise CancelStepException()
