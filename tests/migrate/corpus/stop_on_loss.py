"Stop once a training batch's loss is below a target: the epoch ends now, the fit after validation."
from fastai.basic_train import *
from fastai.callback import *


class StopOnLoss(Callback):
    "End the training phase at the first batch whose loss is below `target`, then stop the fit."
    def __init__(self, target:float):
        self.target = target

    def on_batch_end(self, last_loss, train, **kwargs):
        if train and last_loss < self.target:
            return {'stop_epoch': True, 'stop_training': True}
