"DataLoaders over torch loaders, from_dsets, one_batch, devices, and the in-order loader get_preds uses."
from pathlib import Path

import pytest
import torch
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

from tiny import blobs
from trainlib import DataLoaders, default_device, prediction_loader, sequential_loader


def test_dataloaders_over_torch_loaders():
    train, valid = DataLoader(blobs(32), batch_size=8, shuffle=True), DataLoader(blobs(8), batch_size=8)
    dls = DataLoaders(train, valid, path='data', n_inp=1, vocab=['neg', 'pos'])
    assert dls.train is train is dls[0] and dls.valid is valid is dls[1] and len(dls) == 2
    assert dls.train_ds is train.dataset and dls.valid_ds is valid.dataset
    assert dls.path == Path('data') and dls.n_inp == 1 and dls.vocab == ['neg', 'pos']
    assert dls.device == default_device()
    assert repr(DataLoaders(train, device='cpu')) == 'DataLoaders(1 loaders, device=cpu)'


def test_a_missing_loader_is_named():
    dls = DataLoaders(DataLoader(blobs(8), batch_size=4))
    with pytest.raises(IndexError, match=r'DataLoaders has 1 loader\(s\): there is no dls\[1\] \(the validation loader\)'):
        dls.valid
    with pytest.raises(IndexError, match=r'there is no dls\[3\]$'):
        dls[3]


def test_from_dsets_shuffles_and_drops_only_the_training_loader():
    dls = DataLoaders.from_dsets(blobs(40), blobs(10), blobs(5), bs=16, device='cpu')
    train, valid, test = dls.loaders
    assert isinstance(train.sampler, RandomSampler) and train.drop_last and len(train) == 2
    assert isinstance(valid.sampler, SequentialSampler) and not valid.drop_last and len(valid) == 1
    assert len(test) == 1 and [len(b[0]) for b in train] == [16, 16]
    ordered = DataLoaders.from_dsets(blobs(40), bs=16, shuffle_train=False)
    assert isinstance(ordered.train.sampler, SequentialSampler) and not ordered.train.drop_last
    kept = DataLoaders.from_dsets(blobs(40), bs=16, drop_last_train=False, pin_memory=False)
    assert len(kept.train) == 3


def test_from_dsets_needs_a_dataset():
    with pytest.raises(ValueError, match='DataLoaders.from_dsets needs at least one dataset'):
        DataLoaders.from_dsets()


def test_one_batch_and_devices():
    dls = DataLoaders.from_dsets(blobs(40), blobs(10), bs=16, device='cpu')
    x, y = dls.one_batch()
    assert x.shape == (16, 2) and y.shape == (16,) and x.device == torch.device('cpu')
    xv, _ = dls.one_batch(1)
    assert torch.equal(xv, dls.valid_ds.tensors[0][:10])
    assert dls.to('meta') is dls and dls.device == torch.device('meta')
    assert dls.one_batch()[0].device == torch.device('meta')
    assert dls.cpu().device == torch.device('cpu')


def test_new_empty_keeps_the_settings_and_drops_the_data():
    dls = DataLoaders.from_dsets(blobs(40), bs=16, path='here', device='cpu', n_inp=1, vocab=['a', 'b'])
    empty = dls.new_empty()
    assert empty.loaders == [] and empty.path == Path('here') and empty.device == torch.device('cpu')
    assert empty.n_inp == 1 and empty.vocab == ['a', 'b']


# -------------------------------------------------------------------- sequential_loader
def test_an_in_order_loader_is_used_as_it_is():
    dl = DataLoader(blobs(10), batch_size=4)
    assert sequential_loader(dl) is dl
    batches = [(torch.zeros(2, 2), torch.zeros(2))]
    assert sequential_loader(batches) is batches
    own = DataLoader(blobs(10), batch_sampler=BatchSampler(SequentialSampler(range(10)), 4, drop_last=False))
    assert sequential_loader(own) is own


def test_a_shuffled_or_dropping_loader_is_remade_in_order_with_every_item():
    collate = torch.utils.data.default_collate
    dl = DataLoader(blobs(10), batch_size=4, shuffle=True, drop_last=True, collate_fn=collate)
    seq = sequential_loader(dl)
    assert seq is not dl and seq.batch_size == 4 and seq.collate_fn is collate and len(seq) == 3
    x = torch.cat([b[0] for b in seq])
    assert torch.equal(x, dl.dataset.tensors[0])


def test_a_custom_batch_sampler_cannot_be_put_in_order():
    dl = DataLoader(blobs(10), batch_sampler=BatchSampler(RandomSampler(range(10)), 3, drop_last=False))
    with pytest.raises(ValueError, match='sequential_loader: the DataLoader uses a custom batch_sampler, whose order '
                                         'is its own; use prediction_loader'):
        sequential_loader(dl)


def test_prediction_loader_freezes_a_custom_batch_sampler_and_gives_the_way_back():
    data = blobs(10)
    dl = DataLoader(data, batch_sampler=BatchSampler(RandomSampler(range(10)), 3, drop_last=False))
    frozen, order = prediction_loader(dl)
    first, second = torch.cat([b[0] for b in frozen]), torch.cat([b[0] for b in frozen])
    assert torch.equal(first, second) and not torch.equal(first, data.tensors[0])   # one order, drawn once
    assert torch.equal(first[order], data.tensors[0])
    assert prediction_loader(dl, reorder=False) == (dl, None)
    shuffled = DataLoader(data, batch_size=4, shuffle=True)
    seq, order = prediction_loader(shuffled)
    assert order is None and torch.equal(torch.cat([b[0] for b in seq]), data.tensors[0])
