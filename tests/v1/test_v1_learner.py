"""The fastai-1 Learner, DataBunch, Recorder and LearnerCallback faces, running on the core loop."""
import pickle
from dataclasses import dataclass

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from trainlib import CallbackError
from trainlib.v1 import (BasicLearner, Callback, DataBunch, DatasetType, DeviceDataLoader, Learner, LearnerCallback,
                         Recorder, accuracy, fit)
from trainlib.v1.basic_train import loss_func2activ


def data(n_train=32, n_valid=16, bs=8, **kwargs):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(n_train + n_valid, 4, generator=g)
    y = (X[:, 0] > 0).long()
    return DataBunch.create(TensorDataset(X[:n_train], y[:n_train]), TensorDataset(X[n_train:], y[n_train:]), bs=bs,
                            device='cpu', **kwargs)


def model():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def learner(**kwargs):
    kw = dict(loss_func=nn.CrossEntropyLoss(), silent=True)
    kw.update(kwargs)
    return Learner(data(), model(), **kw)


# ---------------------------------------------------------------- batches of several inputs or targets
class PairItems(torch.utils.data.Dataset):
    "Items ``((a, b), y)`` (two inputs, as fastai 1's tabular data) or ``(x, (y1, y2))`` (two targets)."
    def __init__(self, n, seed, two_targets):
        g = torch.Generator().manual_seed(seed)
        self.two_targets = two_targets
        if two_targets:
            self.x = torch.randn(n, 4, generator=g)
            self.y1, self.y2 = (self.x[:, 0] > 0).long(), self.x[:, 1].clone()
        else:
            self.a, self.b = torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g)
            self.y = (self.a[:, 0] > 0).long()
    def __len__(self): return len(self.x if self.two_targets else self.a)
    def __getitem__(self, i):
        return (self.x[i], (self.y1[i], self.y2[i])) if self.two_targets else ((self.a[i], self.b[i]), self.y[i])


class TwoInputs(nn.Module):
    def __init__(self):
        super().__init__(); torch.manual_seed(0); self.l = nn.Linear(5, 2)
    def forward(self, a, b): return self.l(torch.cat([a, b], 1))


def two_target_loss(out, y1, y2): return F.cross_entropy(out[:, :2], y1) + F.mse_loss(out[:, 2], y2)
def two_target_acc(out, y1, y2): return (out[:, :2].argmax(-1) == y1).float().mean()


@pytest.mark.parametrize('two_targets', [False, True])
def test_batches_of_several_inputs_or_targets_are_passed_as_in_fastai_1(two_targets, tmp_path):
    # Figures from fastai 1.0.61 running this same case (scratch script of the 12-08 review, bug_multi_*.py).
    seen = []
    class Spy(Callback):
        def on_batch_begin(self, last_input, last_target, train, **kwargs):
            if train: seen.append((last_input, last_target))
    data = DataBunch.create(PairItems(16, 0, two_targets), PairItems(12, 1, two_targets), bs=8, device='cpu',
                            path=tmp_path)
    if two_targets:
        torch.manual_seed(0)
        learn = Learner(data, nn.Linear(4, 3), loss_func=two_target_loss, metrics=[two_target_acc], callbacks=[Spy()],
                        add_time=False, silent=True)
    else:
        learn = Learner(data, TwoInputs(), loss_func=nn.CrossEntropyLoss(), metrics=[accuracy], callbacks=[Spy()],
                        add_time=False, silent=True)
    torch.manual_seed(1)
    learn.fit(1, 1e-2)
    inputs, targets = seen[0]
    if two_targets: assert isinstance(targets, list) and len(targets) == 2 and torch.is_tensor(inputs)
    else: assert isinstance(inputs, list) and [t.shape for t in inputs] == [(8, 3), (8, 2)]
    val_loss, metric = (1.27427, 0.41667) if two_targets else (0.69466, 0.5)
    assert learn.recorder.val_losses[0] == pytest.approx(val_loss, abs=1e-5)
    assert float(learn.recorder.metrics[0][0]) == pytest.approx(metric, abs=1e-5)
    assert learn.validate()[0] == pytest.approx(val_loss, abs=1e-5)
    preds, _ = learn.get_preds()
    assert preds.shape == (12, 3 if two_targets else 2)


@pytest.mark.parametrize('loss_func, activ', [
    (nn.CrossEntropyLoss(), lambda o: o.softmax(-1)), (F.cross_entropy, lambda o: o.softmax(-1)),
    (nn.NLLLoss(), torch.exp), (F.nll_loss, torch.exp), (nn.PoissonNLLLoss(), torch.exp), (F.poisson_nll_loss, torch.exp),
    (nn.KLDivLoss(), torch.exp), (F.kl_div, torch.exp),
    (nn.BCEWithLogitsLoss(), torch.sigmoid), (F.binary_cross_entropy_with_logits, torch.sigmoid),
    (nn.MSELoss(), lambda o: o)])
def test_predictions_get_the_activation_fastai_1_gives_the_loss(loss_func, activ):
    out = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(loss_func2activ(loss_func)(out), activ(out))


# ---------------------------------------------------------------- DataBunch
def test_databunch_create_shuffles_and_drops_last_for_training_only():
    d = data(n_train=30, n_valid=10, bs=8)
    assert len(d.train_dl) == 3 and len(d.valid_dl) == 2 and len(d.fix_dl) == 4
    assert d.train_dl.dl.drop_last and isinstance(d.train_dl.dl.sampler, torch.utils.data.RandomSampler)
    assert not d.valid_dl.dl.drop_last and len(d.train_ds) == 30 and len(d.valid_ds) == 10
    assert d.loss_func is F.nll_loss and not d.empty_val and str(d.device) == 'cpu'
    x, y = d.one_batch(DatasetType.Valid)
    assert x.shape == (8, 4) and y.shape == (8,)
    with pytest.raises(AttributeError): d.c          # a TensorDataset has no number of classes


def test_databunch_from_loaders_and_empty_validation():
    X, y = torch.randn(16, 4), torch.zeros(16).long()
    d = DataBunch(DataLoader(TensorDataset(X, y), batch_size=4), DataLoader(TensorDataset(X[:0], y[:0]), batch_size=4),
                  device='cpu')
    assert len(d.train_dl) == 4 and d.empty_val
    learn = Learner(d, model(), loss_func=nn.CrossEntropyLoss(), silent=True)
    learn.fit(1)
    assert learn.recorder.val_losses == [None] and learn.model.training      # validation skipped


def _described(dl):
    return len(dl), dl.batch_size, type(dl.sampler).__name__, dl.drop_last, dl.num_workers, str(dl.device)


def _with_test_set(**kwargs):
    return data(n_train=24, n_valid=20, bs=8, test_ds=TensorDataset(torch.randn(7, 4), torch.zeros(7).long()), **kwargs)


def test_device_data_loader_new_create_and_the_attributes_of_what_it_wraps():
    # Figures from fastai 1.0.61 running this same case (scratch script of the 12-08 review, bug_missing_api.py)
    d = _with_test_set()
    d.add_tfm(lambda b: (b[0] * 0 + 1, b[1]))
    assert _described(d.train_dl.new()) == (3, 8, 'RandomSampler', True, 0, 'cpu')
    assert _described(d.train_dl.new(shuffle=False, batch_size=5)) == (4, 5, 'SequentialSampler', True, 0, 'cpu')
    assert _described(d.valid_dl.new(batch_size=3)) == (7, 3, 'SequentialSampler', False, 0, 'cpu')
    new = d.valid_dl.new()
    assert new.tfms == d.valid_dl.tfms and new.tfms is not d.valid_dl.tfms and new.dataset is d.valid_ds
    assert float(next(iter(new))[0].sum()) == 8 * 4                               # through the same tfms
    assert d.train_dl.timeout == 0 and d.train_dl.collate_fn is d.train_dl.dl.collate_fn
    assert len(d.train_dl.tensors) == 2                                           # then the dataset's, as fastai 1
    with pytest.raises(AttributeError, match=r"^'DeviceDataLoader' object has no attribute 'foo' \(nor has the "
                                             r"DataLoader it wraps, or that loader's dataset\)$"):
        d.train_dl.foo
    ds = d.test_ds
    assert _described(DeviceDataLoader.create(ds, bs=3, shuffle=True, device='cpu')) == (3, 3, 'RandomSampler', False, 0, 'cpu')
    assert _described(DeviceDataLoader.create(ds, bs=3, device='cpu', drop_last=True)) == \
        (2, 3, 'SequentialSampler', True, 0, 'cpu')
    assert _described(DeviceDataLoader.create(ds, device='cpu')) == (1, 64, 'SequentialSampler', False, 0, 'cpu')
    collated = []
    def collate(items):
        collated.append(len(items))
        return torch.utils.data.default_collate(items)
    ones = DeviceDataLoader.create(ds, bs=7, device='cpu', tfms=[lambda b: (b[0] * 0 + 1, b[1])], collate_fn=collate)
    assert float(next(iter(ones))[0].sum()) == 28.0 and ones.collate_fn is collate and collated == [7]
    with pytest.raises(TypeError, match='the wrapped loader is a list, not a torch DataLoader'):
        DeviceDataLoader([(torch.zeros(1), torch.zeros(1))], 'cpu').new(batch_size=2)


def test_databunch_fix_and_single_datasets_and_the_batch_size_setter():
    # Figures from fastai 1.0.61 running this same case (scratch script of the 12-08 review, bug_batch_size_setter.py)
    d = _with_test_set()
    assert d.fix_ds is d.train_ds and len(d.fix_ds) == 24 and d.single_ds is d.valid_ds and len(d.single_ds) == 20
    d.batch_size = 5
    assert d.batch_size == 5
    assert [_described(dl) for dl in (d.train_dl, d.valid_dl, d.fix_dl, d.test_dl, d.single_dl)] == [
        (4, 5, 'RandomSampler', True, 0, 'cpu'), (4, 5, 'SequentialSampler', False, 0, 'cpu'),
        (3, 8, 'SequentialSampler', False, 0, 'cpu'), (2, 5, 'SequentialSampler', False, 0, 'cpu'),
        (20, 1, 'SequentialSampler', False, 0, 'cpu')]
    learn = Learner(d, model(), loss_func=nn.CrossEntropyLoss(), silent=True)
    learn.fit(1)
    assert learn.recorder.nb_batches == [4]


def test_the_batch_size_setter_and_new_keep_each_loaders_own_settings():
    # fastai 1.0.61 on the same loaders (scratch scripts of the 12-08 review, bs_setter*.py): only the batch size changes
    X = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    y = (X[:, 0] > 0).long()
    train, valid = TensorDataset(X[:30], y[:30]), TensorDataset(X[30:], y[30:])
    d = DataBunch(DataLoader(train, batch_size=8), DataLoader(valid, batch_size=8), device='cpu')
    d.batch_size = 4
    assert (type(d.train_dl.dl.sampler).__name__, d.train_dl.dl.batch_size, d.train_dl.dl.drop_last, len(d.train_dl)) \
        == ('SequentialSampler', 4, False, 8)
    weighted = torch.utils.data.WeightedRandomSampler(torch.ones(30), 30)
    d = DataBunch(DataLoader(train, batch_size=8, sampler=weighted), DataLoader(valid, batch_size=8), device='cpu')
    d.batch_size = 4
    assert d.train_dl.dl.sampler is weighted and len(d.train_dl) == 8
    g = torch.Generator().manual_seed(1)
    d = DataBunch(DataLoader(train, batch_size=8, shuffle=True, timeout=5, generator=g), DataLoader(valid), device='cpu')
    new = d.train_dl.new(batch_size=4)
    assert new.dl.generator is g and new.dl.timeout == 5 and type(new.dl.sampler).__name__ == 'RandomSampler'


# ---------------------------------------------------------------- Learner: defaults, optimizer, layer groups
def test_learner_defaults_and_lazy_optimizer():
    learn = learner()
    assert learn.opt is None and learn.wd == 1e-2 and learn.true_wd and learn.bn_wd and learn.train_bn
    assert len(learn.layer_groups) == 1 and learn.callback_fns[0].func is Recorder
    learn.fit(1, 1e-3)
    opt = learn.opt
    assert type(opt.opt) is torch.optim.Adam and opt.opt.defaults['betas'] == (0.9, 0.99)
    assert len(opt.opt.param_groups) == 2 and opt.lr == 1e-3 and opt.wd == 1e-2 and opt.mom == 0.9 and opt.beta == 0.99
    no_wd = {id(p) for p in opt.opt.param_groups[1]['params']}
    assert no_wd == {id(learn.model[0].bias), id(learn.model[1].weight), id(learn.model[1].bias), id(learn.model[3].bias)}
    state = dict(opt.opt.state)
    learn.fit(1, 2e-3)
    assert learn.opt is opt and opt.lr == 2e-3 and len(opt.opt.state) == len(state)    # reused, Adam state kept


def test_lr_range_split_and_freeze():
    learn = learner().split(lambda m: [m[1], m[3]])
    assert [len(g) for g in learn.layer_groups] == [1, 2, 1]
    np.testing.assert_allclose(learn.lr_range(slice(3e-3)), [3e-4, 3e-4, 3e-3])
    np.testing.assert_allclose(learn.lr_range(slice(1e-4, 1e-2)), [1e-4, 1e-3, 1e-2])
    assert learn.lr_range(0.1) == 0.1
    learn.freeze()
    assert not learn.model[0].weight.requires_grad and learn.model[1].weight.requires_grad   # BN stays (train_bn)
    assert learn.model[3].weight.requires_grad and len(learn.opt.opt.param_groups) == 6
    learn.fit(1, slice(1e-3))
    assert learn.opt.opt.param_groups[0]['lr'] == pytest.approx(1e-4) and learn.opt.lr == pytest.approx(1e-3)
    learn.unfreeze()
    assert all(p.requires_grad for p in learn.model.parameters())


def test_true_wd_decays_every_parameter_before_the_step():
    learn = learner()
    learn.create_opt(0.1, wd=0.5)
    w0 = learn.model[0].weight.detach().clone()
    learn.opt.step()                                   # no gradients at all: Adam does nothing, the decay does
    torch.testing.assert_close(learn.model[0].weight.detach(), w0 * (1 - 0.5 * 0.1))


def test_save_and_load_round_trip(tmp_path):
    learn = learner(path=tmp_path)
    learn.fit(1)
    target = learn.save('stage1', return_path=True)
    assert target == tmp_path / 'models' / 'stage1.pth' and target.exists()
    w = learn.model[0].weight.detach().clone()
    learn.fit(1)
    assert not torch.equal(learn.model[0].weight, w)
    assert learn.load('stage1') is learn and torch.equal(learn.model[0].weight, w)


def test_init_initialises_the_trainable_layers_but_batchnorm_and_zeroes_their_biases():
    # fastai 1.0.61 on this model (scratch script of the 12-08 review): Linear weights all ones, biases 0, the
    # BatchNorm and the frozen Linear untouched; init returns None
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2), nn.Linear(2, 2))
    with torch.no_grad(): m[1].weight.mul_(3)
    m[4].requires_grad_(False)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    learn = Learner(data(), m, loss_func=nn.CrossEntropyLoss(), silent=True)
    assert learn.init(nn.init.ones_) is None
    after = {n: p.detach() for n, p in m.named_parameters()}
    assert float(after['0.weight'].sum()) == 32 and float(after['3.weight'].sum()) == 16
    assert float(after['0.bias'].abs().sum()) == 0 and float(after['3.bias'].abs().sum()) == 0
    for n in ('1.weight', '1.bias', '4.weight', '4.bias'): assert torch.equal(after[n], before[n]), n


# ---------------------------------------------------------------- evaluation
def test_validate_get_preds_and_pred_batch():
    events = []
    class Spy(Callback):
        def on_train_begin(self, **kwargs): events.append('train_begin')
        def on_batch_begin(self, train, **kwargs): events.append(('batch_begin', train))
        def on_loss_begin(self, **kwargs): events.append('loss_begin')
        def on_train_end(self, **kwargs): events.append('train_end')
    learn = learner(metrics=[accuracy], callbacks=[Spy()])
    learn.fit(1)
    losses = list(learn.recorder.losses)
    events.clear()
    val_loss, acc = learn.validate()
    assert isinstance(val_loss, np.float32) and 0 <= float(acc) <= 1
    assert 'train_end' not in events and learn.recorder.losses == losses        # validate leaves the Recorder alone
    events.clear()
    preds, targs, losses = learn.get_preds(with_loss=True)
    assert preds.shape == (16, 2) and torch.allclose(preds.sum(1), torch.ones(16))    # softmax for cross-entropy
    logits = learn.model.eval()(learn.data.valid_ds.tensors[0])
    torch.testing.assert_close(losses, F.cross_entropy(logits, targs, reduction='none'))
    assert not hasattr(learn.recorder, 'losses') and 'train_begin' not in events       # a fresh Recorder, batch events only
    assert len(learn.get_preds(DatasetType.Fix, n_batch=2)[0]) == 16
    events.clear()
    p = learn.pred_batch()
    assert p.shape == (8, 2) and events == [('batch_begin', False), 'loss_begin']


def test_predicting_on_a_dataset_type_without_a_loader_names_it():
    learn = learner()
    assert learn.data.test_dl is None
    # fastai 1.0.61 fails with "AttributeError: 'NoneType' object has no attribute 'dataset'"; trainlib used to
    # predict on the validation set instead
    for call, who in [(lambda: learn.get_preds(DatasetType.Test), 'get_preds'),
                      (lambda: learn.get_preds(DatasetType.Test, with_loss=True), 'get_preds'),
                      (lambda: learn.pred_batch(DatasetType.Test), 'pred_batch'),
                      (lambda: learn.interpret(DatasetType.Test), 'get_preds'),
                      (lambda: learn.data.one_batch(DatasetType.Test), 'one_batch')]:
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == (f'{who}(DatasetType.Test): the DataBunch has no test set (data.test_dl is None): '
                                   f'give DataBunch.create a test_ds')
    empty = Learner(DataBunch(None, None, device='cpu'), model(), loss_func=nn.CrossEntropyLoss(), silent=True)
    with pytest.raises(ValueError, match=r'^get_preds\(DatasetType.Valid\): the DataBunch has no validation set '
                                         r'\(data.valid_dl is None\)$'):
        empty.get_preds()
    g = torch.Generator().manual_seed(1)
    test_x = torch.randn(5, 4, generator=g)
    with_test = data(test_ds=TensorDataset(test_x, torch.zeros(5).long()))
    learn = Learner(with_test, model(), loss_func=nn.CrossEntropyLoss(), silent=True)
    preds, _ = learn.get_preds(DatasetType.Test)
    torch.testing.assert_close(preds, F.softmax(learn.model.eval()(test_x), -1))
    assert learn.pred_batch(DatasetType.Test).shape == (5, 2)


@pytest.mark.parametrize('loss_func, first_rows, total', [
    # Figures from fastai 1.0.61 running this same case (scratch script of the 12-08 review, bug_with_loss_shape.py)
    (nn.BCEWithLogitsLoss(), [0.39423, 0.35121, 1.11725, 0.34147, 0.79572, 0.78666, 0.70323, 0.3686], 21.00045),
    (nn.MSELoss(), [0.52889, 0.01805, 0.51981, 0.01022, 0.03826, 0.03205, 0.0004, 0.03682], 18.69369)])
def test_get_preds_with_loss_gives_the_losses_in_the_shape_of_the_loss_function(loss_func, first_rows, total):
    g = torch.Generator().manual_seed(0)
    X = torch.randn(30, 4, generator=g)
    y = (X[:, :2] > 0).float()                     # two columns: multi-label BCE, two-output regression
    d = DataBunch.create(TensorDataset(X[:16], y[:16]), TensorDataset(X[16:], y[16:]), bs=8, device='cpu')
    torch.manual_seed(0)
    learn = Learner(d, nn.Linear(4, 2), loss_func=loss_func, silent=True)
    preds, targs, losses = learn.get_preds(with_loss=True)
    assert losses.shape == (14, 2) and loss_func.reduction == 'mean'      # not one mean per item (fastai 2)
    assert losses[:4].reshape(-1).tolist() == pytest.approx(first_rows, abs=1e-5)
    assert float(losses.sum()) == pytest.approx(total, abs=1e-4)


# ---------------------------------------------------------------- Recorder
def test_recorder_history_table_and_plots(capsys):
    learn = learner(metrics=[accuracy], silent=False, add_time=False)
    learn.fit(2, 1e-3)
    r = learn.recorder
    out = capsys.readouterr().out.splitlines()
    assert out[0] == 'epoch     train_loss  valid_loss  accuracy'
    assert out[1].split()[:3] == ['0', f'{float(r.losses[3]):.6f}', f'{float(r.val_losses[0]):.6f}']
    assert r.names == ['epoch', 'train_loss', 'valid_loss', 'accuracy'] and r.nb_batches == [4, 4]
    assert len(r.losses) == len(r.lrs) == len(r.moms) == 8 and len(r.metrics) == 2
    assert all(isinstance(x, torch.Tensor) for x in r.losses)                      # no host sync per batch
    assert len(r.plot_lr(show_moms=True, return_fig=True).axes) == 2
    assert r.plot_losses(return_fig=True).axes[0].get_legend() is not None
    assert len(r.plot_metrics(return_fig=True).axes) == 1
    fig = r.plot(skip_start=0, skip_end=0, suggestion=True, return_fig=True)
    assert fig.axes[0].get_xscale() == 'log' and 'Min numerical gradient' in capsys.readouterr().out


# ---------------------------------------------------------------- LearnerCallback, callback_fns, dataclasses
class CountBatches(LearnerCallback):
    def on_train_begin(self, **kwargs): self.n = 0
    def on_batch_end(self, train, **kwargs):
        if train: self.n += 1


def test_learner_callback_registration_and_callback_fns():
    learn = learner(callback_fns=[CountBatches])
    learn.fit(1)
    first = learn.count_batches
    assert first.n == 4 and first.learn is learn and first.model is learn.model      # attribute lookups go to learn
    learn.fit(1)
    assert learn.count_batches is not first                                           # re-created at every fit
    assert learn.recorder.learn is learn
    copy = pickle.loads(pickle.dumps(learn.count_batches))
    assert copy.n == 4 and copy.learn is None


class Tagged(LearnerCallback):
    def __init__(self, learn, tag):
        super().__init__(learn)
        self.tag, self.during = tag, []
    def on_epoch_end(self, **kwargs): self.during.append(self.learn.tagged.tag)


def test_learn_cb_name_is_the_last_learner_callback_built_also_after_a_fit_as_in_fastai_1():
    # fastai 1.0.61 (scratch script of the 12-08 review, bug_learner_cb_name_lost.py, with SaveModelCallback):
    # learn.<cb_name> is the last LearnerCallback built, during and after every fit
    learn = learner()
    best, every = Tagged(learn, 'best'), Tagged(learn, 'ep')
    learn.fit(1, callbacks=[best, every])
    assert learn.tagged is every and best.during == every.during == ['ep']
    learn = learner()
    a = Tagged(learn, 'a')
    learn.fit(1, callbacks=[a])
    assert learn.tagged is a
    b = Tagged(learn, 'b')
    learn.fit(1, callbacks=[b])
    learn.fit(1, callbacks=[a])                     # the first one again
    assert learn.tagged is b and a.during == ['a', 'b']
    learn.callbacks.append(a)                       # in learn.callbacks, for every fit
    learn.fit(1)
    assert learn.tagged is b and a.during == ['a', 'b', 'b']


def test_a_learner_callback_named_like_a_learner_member_runs_unregistered_with_a_warning():
    # fastai 1.0.61 runs a LearnerCallback named Loss or Unfreeze and makes it learn.loss / learn.unfreeze (scratch
    # script of the 12-08 review); trainlib's loop and methods keep these names, so the callback runs unregistered.
    class Loss(LearnerCallback):
        def on_train_begin(self, **kwargs): self.seen = []
        def on_batch_end(self, last_loss, train, **kwargs):
            if train: self.seen.append(last_loss)
    class Unfreeze(LearnerCallback):
        def on_epoch_begin(self, epoch, **kwargs):
            if epoch == 1: self.learn.unfreeze()
    learn = learner()
    with pytest.warns(UserWarning) as record:
        cbs = [Loss(learn), Unfreeze(learn)]
    assert [str(w.message) for w in record] == [
        f'`{name}(v1)` is not registered as `learn.{name.lower()}`, which is the Learner\'s own; keep a reference to '
        f'the callback, or rename its class (or set `cb_name`) to reach it from the Learner' for name in ('Loss', 'Unfreeze')]
    assert record[0].filename == __file__
    learn.fit(2, callbacks=cbs)
    assert len(cbs[0].seen) == 8 and not isinstance(learn.loss, Loss)        # learn.loss is the loop's
    assert learn.unfreeze.__func__ is Learner.unfreeze


def test_a_v1_method_without_kwargs_is_refused_when_the_callback_is_given():
    class Forgetful(Callback):
        def on_epoch_end(self, epoch): pass
    expected = ('callback `Forgetful`: event method `on_epoch_end(epoch)` cannot be called as a fastai-1 event, which '
                'passes the whole state as keyword arguments: expected `def on_epoch_end(self, epoch, **kwargs)`')
    with pytest.raises(CallbackError) as info:
        learner(callbacks=[Forgetful()])
    assert str(info.value) == expected
    class Count(Callback):
        n = 0
        def on_batch_end(self, **kwargs): self.n += 1
    counter = Count()
    learn = learner(callbacks=[counter])
    with pytest.raises(CallbackError, match='Forgetful'):
        learn.fit(1, callbacks=[Forgetful()])
    learn.callback_fns.append(lambda learn: Forgetful())
    with pytest.raises(CallbackError, match='Forgetful'):
        learn.fit(1)                                # made by callback_fns at fit: checked before the first batch
    assert counter.n == 0
    late = Count()
    late.on_epoch_end = lambda epoch: None            # its class passed; its own method is checked all the same
    with pytest.raises(CallbackError, match=r'event method `on_epoch_end\(epoch\)` cannot be called'):
        learn.fit(1, callbacks=[late])


def test_a_misspelt_v1_event_method_is_warned_about_once():
    class Typo(Callback):
        def on_epoch_ends(self, **kwargs): pass
    with pytest.warns(UserWarning) as record:
        learn = learner(callbacks=[Typo()])
        learn.fit(1)
    assert [str(w.message) for w in record] == [
        'callback `Typo` defines `on_epoch_ends`, which is not a fastai-1 event and will never be called; '
        'did you mean `on_epoch_end`?']
    assert record[0].filename == __file__


def test_dataclass_learner_callback_works_but_is_not_registered():
    @dataclass
    class Scale(LearnerCallback):
        learn: Learner
        factor: float = 2.
        def on_loss_begin(self, last_output, **kwargs): return {'last_output': last_output * self.factor}
    learn = learner()
    cb = Scale(learn)
    learn.fit(1, callbacks=[cb])
    assert cb.learn is learn and not hasattr(learn, 'scale')


def test_bn_layers_frozen_in_on_epoch_begin_stay_in_eval_mode():
    modes = []
    class BnFreeze(Callback):
        def on_epoch_begin(self, **kwargs): learn.model[1].eval()
        def on_batch_begin(self, train, **kwargs):
            if train: modes.append((learn.model.training, learn.model[1].training))
    learn = learner(callbacks=[BnFreeze()])
    learn.fit(2)
    assert modes == [(True, False)] * 8


def test_resuming_at_an_epoch_runs_the_rest_and_jumps_callbacks():
    seen = []
    class Resume(Callback):
        def on_train_begin(self, **kwargs): return {'epoch': 2}
        def jump_to_epoch(self, epoch): seen.append(('jump', epoch))
        def on_epoch_begin(self, epoch, **kwargs): seen.append(('epoch', epoch))
    learn = learner()
    learn.fit(3, callbacks=[Resume()])
    assert seen == [('jump', 2), ('epoch', 2)] and learn.recorder.nb_batches == [4]


def test_skip_validate_from_on_train_begin():
    class NoValid(Callback):
        def on_train_begin(self, **kwargs): return {'skip_validate': True}
    learn = learner()
    learn.fit(2, callbacks=[NoValid()])
    assert learn.recorder.val_losses == [None, None] and learn.model.training


# ---------------------------------------------------------------- module fit, BasicLearner, errors
def test_module_fit_on_a_basic_learner():
    m = model()
    bl = BasicLearner(m, nn.CrossEntropyLoss(), torch.optim.SGD(m.parameters(), lr=0.1), data())
    w = m[0].weight.detach().clone()
    seen = []
    class Spy(Callback):
        def on_epoch_end(self, last_metrics, **kwargs): seen.append(last_metrics)
    fit(2, bl, callbacks=[Spy()], metrics=[accuracy])
    assert not torch.equal(m[0].weight, w) and len(seen) == 2 and len(seen[0]) == 2


def test_module_fit_errors():
    with pytest.raises(TypeError, match='fit: learn must be a trainlib Learner'): fit(1, object())
    empty = DataBunch.create(TensorDataset(torch.randn(4, 4), torch.zeros(4).long()),
                             TensorDataset(torch.randn(4, 4), torch.zeros(4).long()), bs=8, device='cpu')
    with pytest.raises(AssertionError, match="Your training dataloader is empty, can't train a model"):
        Learner(empty, model(), loss_func=nn.CrossEntropyLoss()).fit(1)
    with pytest.raises(ValueError, match='learn.opt is None'): fit(1, learner())


def test_record_on_cpu_and_train_epoch():
    from trainlib.v1 import RecordOnCPU, train_epoch
    rec = RecordOnCPU()
    learn = learner(callbacks=[rec])
    learn.fit(1)
    assert rec.input.shape == (8, 4) and rec.input.device.type == 'cpu' and rec.target.shape == (8,)
    w = learn.model[0].weight.detach().clone()
    train_epoch(learn.model, learn.data.train_dl, torch.optim.SGD(learn.model.parameters(), lr=0.1), F.cross_entropy)
    assert not torch.equal(w, learn.model[0].weight)
