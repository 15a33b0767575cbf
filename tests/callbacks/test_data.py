"CollectDataCallback: every batch of the fit, detached, where the model ran."
import torch

from trainlib import CollectDataCallback


def test_collect_data_keeps_every_batch_detached(quiet_learner):
    learn = quiet_learner(n_trn=3, n_val=2, cbs=CollectDataCallback())
    learn.fit(2)
    data = learn.collect_data.data
    assert len(data) == 2 * (3 + 2)
    xb, yb, pred, loss = data[0]
    assert xb[0].shape == yb[0].shape == pred.shape == (16, 1) and loss.shape == ()
    assert not pred.requires_grad and pred.grad_fn is None
    torch.testing.assert_close(loss, ((pred - yb[0]) ** 2).mean())


def test_collect_data_starts_again_at_each_fit(quiet_learner):
    learn = quiet_learner(n_trn=3, n_val=2, cbs=CollectDataCallback(cpu=True))
    learn.fit(1); learn.fit(1)
    assert len(learn.collect_data.data) == 5
