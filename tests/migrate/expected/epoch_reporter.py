"Constructs with no trainlib.v2 counterpart: the progress bar, resuming hooks, forwarding **kwargs."
from trainlib.v2 import *


class EpochReporter(Callback):
    "Write a line per epoch under the progress bar and keep the whole state of the last batch."
    def __init__(self):
        super().__init__()
        # TODO(trainlib.migrate): uses the Learner in __init__: a trainlib.v2 callback gets `self.learn` when it is added to the Learner; move this to before_fit
        self.n_params = sum(p.numel() for p in learn.model.parameters())

    # TODO(trainlib.migrate): fastai 1 calls jump_to_epoch when a fit resumes; trainlib.v2 resumes with fit(start_epoch=...): read self.learn.epoch in before_epoch instead
    def jump_to_epoch(self, epoch):
        self.start_epoch = epoch

    def after_batch(self):
        # TODO(trainlib.migrate): uses **kwargs other than kwargs['key'] / kwargs.get('key'): trainlib.v2 events take no arguments; read the state from self.learn
        self.last_state = dict(kwargs)

    def after_epoch(self):
        # TODO(trainlib.migrate): fastai 1's master progress bar: trainlib.v2's is `self.learn.progress.mbar`, which is None when bars are off
        pbar.write(f'epoch {self.learn.epoch}: train loss {self.learn.smooth_loss:.4f}')
        # TODO(trainlib.migrate): the v1 Recorder's val_losses: trainlib.v2 keeps `[row[1] for row in self.learn.recorder.values]`
        self.val_history = self.learn.recorder.val_losses
