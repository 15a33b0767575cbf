"Stop the whole fit after a few batches, e.g. to smoke-test a training script."
from fastai.basic_train import *
from fastai.callback import *


class StopAfter(Callback):
    "Stop training after `n_batches` training batches, without validating."
    def __init__(self, n_batches:int=2):
        self.n_batches = n_batches

    def on_batch_end(self, iteration, **kwargs):
        if iteration >= self.n_batches - 1:
            return {'stop_epoch': True, 'stop_training': True, 'skip_validate': True}
