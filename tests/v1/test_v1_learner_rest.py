"""The rest of the fastai-1 Learner on a plain TensorDataset: summary, predict, export/load_learner, purge,
destroy and the hooks (tests/golden/fa1_learner_rest.json records what fastai 1.0.61 does there, made by
tests/oracle_scripts/fa1_learner_rest.py: it fails on predict/export/summary, trainlib does them)."""
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import fa1_metric_cases as mc
import trainlib.v1 as v1

GOLDEN = json.loads((Path(__file__).parents[1] / 'golden' / 'fa1_learner_rest.json').read_text().split('\n', 1)[1])


class Counter(v1.LearnerCallback):
    "A LearnerCallback in learn.callbacks with a setting, a counter, and an attribute it does not export."
    def __init__(self, learn, step=1):
        super().__init__(learn)
        self.step, self.seen, self.scratch = step, 0, torch.ones(1000)
        self.exclude = self.exclude + ['scratch']
    def on_batch_end(self, train, **kwargs):
        if train: self.seen += self.step


def fitted(tmp_path, **kwargs):
    train_ds, valid_ds = mc.fit_data()
    data = v1.DataBunch.create(train_ds, valid_ds, bs=8, path=tmp_path, device='cpu')
    learn = v1.Learner(data, mc.fit_model(), loss_func=nn.CrossEntropyLoss(), metrics=[v1.accuracy, v1.FBeta()],
                       silent=True, **kwargs)
    learn.callbacks.append(Counter(learn, step=2))
    torch.manual_seed(1)
    learn.fit(1, 1e-2)
    return learn, valid_ds


def test_summary_is_fastai_1s_table(tmp_path):
    learn, _ = fitted(tmp_path)
    learn.callbacks.clear()
    assert GOLDEN['summary']['raised'].startswith('AttributeError')            # fastai 1 needs data-block data
    assert learn.summary() == GOLDEN['summary with is_empty patched']['returned']
    learn.callbacks.append(Counter(learn))
    assert learn.summary().endswith('Callbacks functions applied \n    Counter')


def test_predict_a_tensor_dataset_item(tmp_path):
    learn, valid_ds = fitted(tmp_path)
    assert GOLDEN['predict(valid_ds[0])']['raised'].startswith('AttributeError')
    y, pred, raw = learn.predict(valid_ds[0])                                   # an (x, y) item
    probs = learn.get_preds()[0]
    torch.testing.assert_close(raw, probs[0])
    assert pred == probs[0].argmax() and y is pred
    x, y2, _, raw2 = learn.predict(valid_ds[0][0], return_x=True)               # the input alone
    assert torch.equal(x, valid_ds[0][0]) and y2 == y and torch.equal(raw2, raw)
    learn.data.classes = ['neg', 'pos']
    assert learn.predict(valid_ds[0])[0] == ['neg', 'pos'][int(pred)]


def test_export_and_load_learner_round_trip(tmp_path):
    learn, valid_ds = fitted(tmp_path)
    assert GOLDEN['export()']['raised'].startswith('AttributeError')
    learn.export()
    new = v1.load_learner(tmp_path)
    assert type(new) is v1.Learner and new.path == tmp_path and new.data.train_dl is None
    assert new.predict(valid_ds[0])[2].tolist() == learn.predict(valid_ds[0])[2].tolist()
    assert [type(m).__name__ for m in new.metrics] == ['function', 'FBeta'] and new.loss_func is not learn.loss_func
    assert (new.wd, new.true_wd, new.bn_wd, new.silent, new.add_time) == (1e-2, True, True, True, True)
    assert len(new.callback_fns) == 1 and new.callback_fns[0].func is v1.Recorder        # not doubled
    cb, = new.callbacks
    assert type(cb) is Counter and cb.step == 2 and cb.seen == 6 and new.counter is cb and cb.learn is new
    saved = torch.load(tmp_path / 'export.pkl', weights_only=False)['cb_state'][Counter]
    assert saved == {'step': 2, 'seen': 6}                                      # `exclude`d attributes are not saved
    assert len(new.layer_groups) == 1 and new.layer_groups[0][0] is new.model[0]       # the same modules
    with pytest.raises(ValueError, match='the Learner has no training data'): new.fit(1)
    new.data = learn.data
    assert np.allclose([float(v) for v in new.validate()], [float(v) for v in learn.validate()])


def test_export_to_a_stream_with_a_test_set_and_destroy(tmp_path, capsys):
    learn, valid_ds = fitted(tmp_path)
    buf = io.BytesIO()
    learn.export(buf, destroy=True)
    assert capsys.readouterr().out == GOLDEN['destroy()']['stdout']
    buf.seek(0)
    new = v1.load_learner(tmp_path, buf, test=valid_ds, bs=5)
    preds, targs = new.get_preds(v1.DatasetType.Test)
    assert preds.shape == (20, 2) and torch.equal(targs, valid_ds.tensors[1])
    with pytest.raises(ValueError, match='tfm_y transforms the targets of a data-block test ItemList'):
        v1.load_learner(tmp_path, 'export.pkl', tfm_y=True)


def test_purge_frees_the_optimizer_and_the_last_batch(tmp_path):
    learn, _ = fitted(tmp_path)
    before = learn.validate()
    assert learn.purge() is learn and learn.opt is None and GOLDEN['has opt after purge'] is False
    assert learn.pred is None and all(p.grad is None for p in learn.model.parameters())
    after = learn.validate()
    assert [float(v) for v in after] == [float(v) for v in before]
    assert np.allclose([float(v) for v in after[:2]], GOLDEN['validate after purge']['returned'], atol=1e-6)
    learn.fit(1, 1e-2)                                                                     # a new optimizer
    assert learn.opt is not None
    kept = learn.opt
    learn.purge(clear_opt=False)
    assert learn.opt is kept


def test_a_destroyed_learner_says_so_on_every_use(tmp_path, capsys):
    learn, _ = fitted(tmp_path)
    learn.destroy()
    assert capsys.readouterr().out == 'this Learner object self-destroyed - it still exists, but no longer usable\n'
    with pytest.raises(RuntimeError, match=r'this Learner was destroyed \(learn.destroy\(\)\): it has no `fit`'):
        learn.fit(1)
    with pytest.raises(RuntimeError, match='it has no `model` any more'): learn.model
    assert 'self-destroyed' in repr(learn)          # fastai 1 printed a message and returned None instead


def test_hook_callbacks_and_model_sizes(tmp_path):
    train_ds, valid_ds = mc.fit_data()
    data = v1.DataBunch.create(train_ds, valid_ds, bs=8, path=tmp_path, device='cpu')
    learn = v1.Learner(data, mc.fit_model(), loss_func=nn.CrossEntropyLoss(), callback_fns=[v1.ActivationStats],
                       silent=True)
    learn.fit(2, 1e-2)
    stats = learn.activation_stats.stats
    assert stats.shape == (2, 2, 6)                      # (mean|std, the 2 Linear layers, 6 training batches)
    assert not learn.activation_stats.hooks.hooks[0].hook.id in learn.model[0]._forward_hooks     # removed
    conv = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2))
    assert v1.model_sizes(conv, size=(16, 16)) == [torch.Size([1, 4, 14, 14])] * 2 + [torch.Size([1, 6, 6, 6])]
    assert v1.num_features_model(conv) == 6 and v1.dummy_batch(conv, (8, 8)).shape == (1, 3, 8, 8)
    with v1.hook_output(learn.model[0]) as h:
        learn.model(torch.ones(2, 4))
        assert h.stored.shape == (2, 8)
