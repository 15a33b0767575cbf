"Linear learning-rate warm-up and momentum decay through the v1 OptimWrapper's lr/mom properties."
from fastai.basic_train import *
from fastai.callback import *


class WarmupMomentumDecay(LearnerCallback):
    "Ramp the lr up over `n_iters` training batches; multiply the momentum by `decay` after every epoch."
    def __init__(self, learn:Learner, n_iters:int=8, decay:float=0.9):
        super().__init__(learn)
        self.n_iters,self.decay = n_iters,decay

    def on_train_begin(self, **kwargs):
        self.base_lr = self.learn.opt.lr

    def on_batch_begin(self, iteration, train, **kwargs):
        if not train: return
        self.learn.opt.lr = self.base_lr * min(1., (iteration + 1) / self.n_iters)

    def on_epoch_end(self, **kwargs):
        self.opt.mom *= self.decay
