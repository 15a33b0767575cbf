"Early stopping on the validation loss read from last_metrics."
from fastai.basic_train import *
from fastai.callback import *


class ValidLossEarlyStopping(Callback):
    "Stop training when the validation loss has not improved by `min_delta` for `patience` epochs."
    def __init__(self, patience:int=1, min_delta:float=0.):
        self.patience,self.min_delta = patience,min_delta

    def on_train_begin(self, **kwargs):
        self.best,self.wait,self.stopped_epoch = float('inf'),0,None

    def on_epoch_end(self, epoch, last_metrics, **kwargs):
        valid_loss = last_metrics[0]
        if valid_loss < self.best - self.min_delta:
            self.best,self.wait = valid_loss,0
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            return {'stop_training': True}
