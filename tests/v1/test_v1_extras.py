"""fastai-1 names beyond the Learner: load_data, interpretation, RNNTrainer, OverSamplingCallback, ShowGraph."""
import io
import typing

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import TensorDataset

import fa1_metric_cases as mc
import trainlib.v1 as v1


def learner(tmp_path, model=None, loss_func=None, train_ds=None, **kwargs):
    tr, va = mc.fit_data()
    data = v1.DataBunch.create(train_ds or tr, va, bs=8, path=tmp_path, device='cpu')
    return v1.Learner(data, model or mc.fit_model(), loss_func=loss_func or nn.CrossEntropyLoss(), silent=True, **kwargs)


def test_save_and_load_data_round_trip(tmp_path):
    tr, va = mc.fit_data()
    data = v1.DataBunch.create(tr, va, test_ds=va, bs=8, path=tmp_path, device='cpu')
    data.save()
    back = v1.load_data(tmp_path, bs=4, device='cpu')
    assert len(back.train_dl) == 6 and len(back.valid_dl) == 5 and back.path == tmp_path
    assert torch.equal(back.valid_ds.tensors[0], va.tensors[0]) and back.test_ds is not None
    buf = io.BytesIO()
    data.save(buf)
    buf.seek(0)
    assert torch.equal(v1.load_data(tmp_path, buf).train_ds.tensors[1], tr.tensors[1])


def test_callback_list_is_a_collection_of_callbacks():
    assert typing.get_args(v1.CallbackList) == (v1.Callback,)


def test_classification_interpretation(tmp_path):
    learn = learner(tmp_path)
    learn.fit(1, 1e-2)
    interp = learn.interpret()
    preds, targs, losses = learn.get_preds(with_loss=True)
    assert torch.equal(interp.pred_class, preds.argmax(1)) and torch.equal(interp.y_true, targs)
    vals, idx = interp.top_losses(3)
    assert torch.equal(vals, losses.sort(descending=True).values[:3]) and torch.equal(losses[idx], vals)
    cm = interp.confusion_matrix()
    want = np.zeros((2, 2), dtype=np.int64)
    np.add.at(want, (targs.numpy(), preds.argmax(1).numpy()), 1)
    assert cm.dtype == np.int64 and (cm == want).all()
    off = [(i, j, want[i, j]) for i in range(2) for j in range(2) if i != j and want[i, j] >= 1]
    assert interp.most_confused() == sorted(off, key=lambda t: t[2], reverse=True)
    learn.data.classes = ['neg', 'pos']
    assert {a for a, _, _ in interp.most_confused()} <= {'neg', 'pos'}
    fig = interp.plot_confusion_matrix(normalize=True, return_fig=True)
    assert fig.axes[0].get_xlabel() == 'Predicted' and [t.get_text() for t in fig.axes[0].get_xticklabels()] == ['neg', 'pos']


def test_multilabel_interpretation_thresholds(tmp_path):
    learn = learner(tmp_path)
    preds = torch.tensor([[2., -2.], [0., 0.]])
    interp = v1.MultiLabelClassificationInterpretation(learn, preds, torch.ones(2, 2), torch.ones(2), thresh=0.6)
    assert interp.pred_class.tolist() == [[True, False], [False, False]]      # fastai 1.0.61: NotImplementedError


class TinyRNN(nn.Module):
    "Returns (output, raw outputs, dropped outputs) like fastai's AWD-LSTM; counts reset() calls."
    def __init__(self):
        super().__init__()
        self.lin, self.resets = nn.Linear(4, 2), 0
    def reset(self): self.resets += 1
    def forward(self, x):
        h = x[:, None, :].expand(-1, 3, -1) * torch.arange(1., 4.)[None, :, None]    # (bs, seq=3, 4)
        return self.lin(x), [h], [h * 0.5]


def test_rnn_trainer_adds_ar_and_tar_to_the_training_loss(tmp_path):
    seen = []

    class Spy(v1.Callback):
        _order = 10
        def on_backward_begin(self, last_loss, last_input, last_target, **kwargs):
            out, raw, dropped = model(last_input)
            h = raw[-1]
            want = nn.functional.cross_entropy(out, last_target) + 2. * dropped[-1].pow(2).mean() \
                + 1. * (h[:, 1:] - h[:, :-1]).pow(2).mean()
            seen.append((last_loss.item(), want.item(), model.resets))

    model = TinyRNN()
    learn = learner(tmp_path, model=model, callback_fns=[v1.partial(v1.RNNTrainer, alpha=2., beta=1.)])
    learn.fit(2, 1e-3, callbacks=[Spy()])
    r = seen[0][2]
    assert [s[2] for s in seen] == [r] * 3 + [r + 1] * 3                          # one reset per epoch
    assert all(abs(got - want) < 1e-5 for got, want, _ in seen)                   # task loss + AR + TAR


def test_over_sampling_draws_each_class_equally_often(tmp_path):
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(0))
    y = torch.tensor([0] * 32 + [1] * 8)                                            # 4:1 imbalance
    counts = []

    class Count(v1.Callback):
        def on_batch_begin(self, last_target, train, **kwargs):
            if train: counts.append(last_target.bincount(minlength=2))

    learn = learner(tmp_path, train_ds=TensorDataset(x, y), callback_fns=[v1.OverSamplingCallback])
    old = learn.data.train_dl
    torch.manual_seed(0)
    learn.fit(1, 1e-3, callbacks=[Count()])
    total = torch.stack(counts).sum(0)
    assert learn.over_sampling_callback.total_len_oversample == 64 and len(counts) == 8
    assert abs(total[0].item() - total[1].item()) < 20 and learn.data.train_dl is old           # restored
    with pytest.raises(TypeError, match='can only oversample integer labels'):
        learner(tmp_path, train_ds=TensorDataset(x, y.float()), callback_fns=[v1.OverSamplingCallback]).fit(1)


def test_show_graph_feeds_a_bar_with_a_graph(tmp_path):
    calls = []

    class GraphBar:
        def update_graph(self, graphs, x_bounds, y_bounds): calls.append((graphs, x_bounds, y_bounds))

    class SetBar(v1.Callback):
        _order = -5                                     # after the Recorder's on_train_begin, before ShowGraph
        def on_train_begin(self, **kwargs): learn.recorder.pbar = GraphBar()

    learn = learner(tmp_path, callback_fns=[v1.ShowGraph])
    learn.fit(2, 1e-2)                                  # the console bar has no graph: nothing happens
    assert calls == []
    learn.fit(2, 1e-2, callbacks=[SetBar()])
    (g1, xb1, yb1), (g2, xb2, _) = calls
    assert xb1 == (0, 6) and xb2 == (0, 6) and len(g2[0][1]) == 6 and list(g2[1][0]) == [3, 6]
    assert yb1[1] == max(max(g1[0][1]), max(g1[1][1]))


def test_device_data_loader_yields_batches_on_its_device_and_applies_its_tfms():
    from trainlib.v1 import DeviceDataLoader
    x, y = torch.arange(4.).reshape(2, 2), torch.tensor([0, 1])
    on_cpu = [(x, y), [x, y]]
    dl = DeviceDataLoader(on_cpu, 'cpu', tfms=[lambda b: (b[0] * 2, b[1])])
    got = list(dl)
    assert len(got) == 2 and all(torch.equal(b[0], x * 2) and b[1] is y for b in got)
    dl = DeviceDataLoader([(x.double(), {'w': y})], 'cpu')          # not a sequence of plain tensors: to_device as ever
    (xb, extra), = list(dl)
    assert xb.dtype == torch.float64 and extra['w'] is y
    (xm, ym), = list(DeviceDataLoader([(x, y)], 'meta'))             # on another device: moved
    assert xm.device.type == ym.device.type == 'meta'
