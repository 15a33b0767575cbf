"Linear learning-rate warm-up and momentum decay through the v1 OptimWrapper's lr/mom properties."
from trainlib.v2 import *


class WarmupMomentumDecay(Callback):
    "Ramp the lr up over `n_iters` training batches; multiply the momentum by `decay` after every epoch."
    def __init__(self, n_iters:int=8, decay:float=0.9):
        super().__init__()
        self.n_iters,self.decay = n_iters,decay

    def before_fit(self):
        self.base_lr = self.learn.opt.get_hyper('lr')

    def before_batch(self):
        if not self.learn.training: return
        self.learn.opt.set_hyper('lr', self.base_lr * min(1., (self.learn.train_iter + 1) / self.n_iters))

    def after_epoch(self):
        self.opt.set_hyper('mom', self.opt.get_hyper('mom') * self.decay)
