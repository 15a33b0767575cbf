"Skip the optimizer step on every other batch (the gradients of those batches are dropped)."
from fastai.basic_train import *
from fastai.callback import *


class SkipOddSteps(Callback):
    "Only step the optimizer on even batches of each epoch."
    def on_backward_end(self, num_batch, **kwargs):
        return {'skip_step': num_batch % 2 == 1}
