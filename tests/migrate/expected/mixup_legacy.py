"Mixup for regression, written for fastai <= 1.0.46 (positional returns, LearnerCallback)."
import numpy as np
import torch
from torch import nn
from trainlib.v2 import *


class MixUpLoss(nn.Module):
    "MSE against the two targets `MixUpRegression` stacks, weighted by their mixing coefficient."
    def __init__(self, crit):
        super().__init__()
        self.crit = crit

    def forward(self, output, target):
        if target.size(1) != 3: return self.crit(output, target)
        y1, y2, lambd = target[:, 0:1], target[:, 1:2], target[:, 2:3]
        return (lambd * (output - y1).pow(2) + (1 - lambd) * (output - y2).pow(2)).mean()


class MixUpRegression(Callback):
    "Mix every training batch with a shuffled copy of itself."
    def __init__(self, alpha:float=0.4):
        super().__init__()
        self.alpha = alpha

    def before_fit(self):
        self.old_loss_func = self.learn.loss_func
        self.learn.loss_func = MixUpLoss(self.old_loss_func)

    def before_batch(self):
        if not self.learn.training: return
        lambd = np.random.beta(self.alpha, self.alpha, self.learn.y.size(0))
        lambd = np.concatenate([lambd[:, None], 1 - lambd[:, None]], 1).max(1)
        lambd = self.learn.x.new(lambd)
        shuffle = torch.randperm(self.learn.y.size(0)).to(self.learn.x.device)
        x1, y1 = self.learn.x[shuffle], self.learn.y[shuffle]
        new_input = self.learn.x * lambd.view(-1, 1) + x1 * (1 - lambd).view(-1, 1)
        new_target = torch.cat([self.learn.y, y1, lambd[:, None]], 1)
        self.learn.xb, self.learn.yb = (new_input,), (new_target,)

    def after_fit(self):
        self.learn.loss_func = self.old_loss_func
