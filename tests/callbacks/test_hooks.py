"Hooks, HookCallback and ActivationStats: what they store, when they are on, that nothing is left behind."
import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from trainlib import ActivationStats, CollectDataCallback, HookCallback, Hooks, hook_output, hook_outputs


def mlp():
    return nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))


def hooked(m):
    return len(m._forward_hooks) + len(m._backward_hooks)


def test_hook_output_keeps_the_last_output_until_removed():
    model = mlp()
    x = torch.randn(4, 1)
    with hook_output(model[0]) as h:
        model(x)
        torch.testing.assert_close(h.stored, model[0](x))
        assert not h.stored.requires_grad
    model(torch.randn(4, 1))
    torch.testing.assert_close(h.stored, model[0](x))
    assert hooked(model[0]) == 0


def test_hook_outputs_of_gradients():
    model = mlp()
    with hook_outputs([model[0], model[2]], grad=True) as hs:
        model(torch.randn(4, 1, requires_grad=True)).sum().backward()
        grad_out = hs.stored
    assert len(hs) == 2 and torch.equal(grad_out[1][0], torch.ones(4, 1))
    assert grad_out[0][0].shape == (4, 3) and all(hooked(m) == 0 for m in model)


def test_hook_callback_hooks_leaf_modules_with_parameters_during_the_fit(quiet_learner):
    calls = []
    learn = quiet_learner(model=mlp(), cbs=HookCallback(hook=lambda m, i, o: calls.append(type(m).__name__)))
    learn.fit(1)
    assert calls == ['Linear', 'Linear'] * (10 + 2)          # 10 training and 2 validation batches; ReLU skipped
    assert all(hooked(m) == 0 for m in learn.model.modules())


def test_hook_callback_every_n_training_batches(quiet_learner):
    iters = []
    learn = quiet_learner(model=mlp())
    cb = HookCallback(modules=[learn.model[2]], every=3, hook=lambda m, i, o: iters.append(learn.train_iter))
    learn.fit(2, cbs=cb)
    assert iters == [0, 3, 6, 9, 12, 15, 18]
    assert hooked(learn.model[2]) == 0


def test_hook_callback_needs_a_hook():
    with pytest.raises(TypeError, match='HookCallback: pass hook=f.module, input, output., or subclass'):
        HookCallback()


def test_activation_stats_match_the_layer_outputs_and_stay_on_the_device(quiet_learner):
    learn = quiet_learner(model=mlp(), lr=0.)              # lr 0: the weights of every batch are the initial ones
    stats, data = ActivationStats(every=2), CollectDataCallback()
    learn.fit(1, cbs=[stats, data])
    assert len(stats.stats) == 5 and isinstance(stats.stats[0][0]['mean'], torch.Tensor)
    means, stds, near_zero = stats.layer_stats(0)
    train_x = [xb[0] for xb, _, _, _ in data.data[:10]]
    with torch.no_grad(): outs = [learn.model[0](x) for x in train_x[::2]]
    assert means == pytest.approx([o.mean().item() for o in outs], rel=1e-5)
    assert stds == pytest.approx([o.std().item() for o in outs], rel=1e-5)
    assert near_zero == pytest.approx([(o <= 0.05).float().mean().item() for o in outs])


def test_activation_stats_with_hist_keeps_a_histogram_per_batch_and_plots_them(quiet_learner):
    learn = quiet_learner(model=mlp(), lr=0.)
    stats, data = ActivationStats(with_hist=True), CollectDataCallback()
    learn.fit(1, cbs=[stats, data])
    hist = stats.hist(0)                                        # the first Linear: 40 bins over [0, 10] per batch
    with torch.no_grad(): outs = [learn.model[0](xb[0]) for xb, _, _, _ in data.data[:len(stats.stats)]]
    assert hist.shape == (40, len(outs))
    assert hist[0].exp().sub(1).round().tolist() == [int(((o >= 0) & (o < 0.25)).sum()) for o in outs]
    assert hist.exp().sub(1).round().sum(0).tolist() == [int(((o >= 0) & (o <= 10)).sum()) for o in outs]
    ax = stats.color_dim(0)
    assert ax.images[0].get_array().shape == (40, len(outs))
    assert [a.get_title() for a in stats.plot_layer_stats(0)] == ['mean', 'std', '% near zero']
    plt.close('all')
    with pytest.raises(ValueError, match=r'record the histograms with ActivationStats\(with_hist=True\)'):
        ActivationStats().hist(0)
