"Mixup for regression, written for fastai <= 1.0.46 (positional returns, LearnerCallback)."
from fastai.basic_train import *
from fastai.callback import *


class MixUpLoss(nn.Module):
    "MSE against the two targets `MixUpRegression` stacks, weighted by their mixing coefficient."
    def __init__(self, crit):
        super().__init__()
        self.crit = crit

    def forward(self, output, target):
        if target.size(1) != 3: return self.crit(output, target)
        y1, y2, lambd = target[:, 0:1], target[:, 1:2], target[:, 2:3]
        return (lambd * (output - y1).pow(2) + (1 - lambd) * (output - y2).pow(2)).mean()


class MixUpRegression(LearnerCallback):
    "Mix every training batch with a shuffled copy of itself."
    def __init__(self, learn:Learner, alpha:float=0.4):
        super().__init__(learn)
        self.alpha = alpha

    def on_train_begin(self, **kwargs):
        self.old_loss_func = self.learn.loss_func
        self.learn.loss_func = MixUpLoss(self.old_loss_func)

    def on_batch_begin(self, last_input, last_target, train, **kwargs):
        if not train: return
        lambd = np.random.beta(self.alpha, self.alpha, last_target.size(0))
        lambd = np.concatenate([lambd[:, None], 1 - lambd[:, None]], 1).max(1)
        lambd = last_input.new(lambd)
        shuffle = torch.randperm(last_target.size(0)).to(last_input.device)
        x1, y1 = last_input[shuffle], last_target[shuffle]
        new_input = last_input * lambd.view(-1, 1) + x1 * (1 - lambd).view(-1, 1)
        new_target = torch.cat([last_target, y1, lambd[:, None]], 1)
        return new_input, new_target

    def on_train_end(self, **kwargs):
        self.learn.loss_func = self.old_loss_func
