"""SmoothenValue gives, bit for bit, fastai 1's float32 debiased moving average of the values added."""
import numpy as np
import pytest
import torch

from trainlib.v1 import SmoothenValue


def fastai_smooth(values, beta):
    "The smoothed values as fastai 1 computes them: ``beta * avg + (1 - beta) * val``, then ``avg / (1 - beta ** n)``."
    avg, out = 0, []
    for n, val in enumerate(values, 1):
        avg = beta * avg + (1 - beta) * val
        out.append(avg / (1 - beta ** n))
    return out


def bits(t): return t.float().numpy().view(np.int32).tolist()


def test_float32_losses_smooth_bit_for_bit_like_fastai():
    g = torch.Generator().manual_seed(0)
    for beta in (0.98, 0.9, 0.5, 0.999):
        for scale in (1e-30, 1e-3, 1., 1e30):
            values = list((torch.randn(400, generator=g) * scale).unbind())
            values += [torch.tensor(v) for v in (-0.0, 0.0, 1e-45, 3.4e38, -3.4e38)]
            sv, want = SmoothenValue(beta), fastai_smooth(values, beta)
            for v, w in zip(values, want):
                sv.add_value(v)
                assert bits(sv.smooth) == bits(w) and sv.smooth.dtype == torch.float32


def test_a_first_negative_zero_is_smoothed_to_positive_zero_as_in_fastai():
    sv = SmoothenValue(0.98)
    sv.add_value(torch.tensor(-0.0))
    assert bits(sv.smooth) == bits(torch.tensor(0.0))


def test_changed_beta_vectors_doubles_and_floats_follow_the_same_expression():
    g = torch.Generator().manual_seed(1)
    sv = SmoothenValue(0.98)
    vals = [torch.randn(3, generator=g) for _ in range(5)]
    for v, w in zip(vals, fastai_smooth(vals, 0.98)): sv.add_value(v)
    assert bits(sv.smooth) == bits(w)
    sv.beta = 0.5                      # a new beta: the new weights from now on
    avg = 0.5 * sv.mov_avg + 0.5 * vals[0]
    sv.add_value(vals[0])
    assert bits(sv.smooth) == bits(avg / (1 - 0.5 ** 6))
    doubles = [torch.tensor(x, dtype=torch.float64) for x in (0.3, 0.7, 1.1)]
    sd = SmoothenValue(0.9)
    for v in doubles: sd.add_value(v)
    assert sd.smooth.dtype == torch.float64 and sd.smooth.item() == fastai_smooth(doubles, 0.9)[-1].item()
    sf = SmoothenValue(0.9)
    for v in (0.3, 0.7, 1.1): sf.add_value(v)
    assert sf.smooth == fastai_smooth([0.3, 0.7, 1.1], 0.9)[-1]


def test_kept_values_stay_what_they_were_across_buffers():
    # the v1 Recorder keeps every `smooth`: writing the next ones (into shared buffers) must not change them
    g = torch.Generator().manual_seed(2)
    values = list(torch.randn(2 * SmoothenValue.chunk + 9, generator=g).unbind())
    sv, kept = SmoothenValue(0.98), []
    for v in values:
        sv.add_value(v)
        kept.append(sv.smooth)
    assert [bits(k) for k in kept] == [bits(w) for w in fastai_smooth(values, 0.98)]
    assert len({k.data_ptr() for k in kept}) == len(kept)


@pytest.mark.parametrize('on_host', [True, False], ids=['cpu-on-host', 'device-ops'])
def test_losses_noted_and_smoothed_in_runs_give_the_same_bits(monkeypatch, on_host):
    # float32 losses are smoothed when read or every pending_max values: on the host for CPU tensors, with tensor
    # ops elsewhere (forced here on the CPU); both must agree with fastai's one-at-a-time expression, bit for bit
    monkeypatch.setattr(SmoothenValue, '_on_host', staticmethod(lambda device: on_host))
    g = torch.Generator().manual_seed(3)
    for beta in (0.98, 0.9):
        for scale in (1e-30, 1., 1e30):
            values = list((torch.randn(300, generator=g) * scale).unbind())
            values += [torch.tensor(v) for v in (-0.0, 0.0, 1e-45, 3.4e38, 3.4e38, -3.4e38, float('nan'))]
            want = fastai_smooth(values, beta)
            sv, read = SmoothenValue(beta), {}
            for i, v in enumerate(values):
                sv.add_value(v)
                if i % 37 == 5: read[i] = bits(sv.smooth)           # a read now and then smooths what is noted
            assert {i: bits(want[i]) for i in read} == read
            assert [bits(x) for x in sv.values()] == [bits(w) for w in want]
            assert bits(sv.mov_avg) == bits(fastai_mov_avg(values, beta))
            assert sv.n == len(values) and [bits(x) for x in sv.values(len(values) - 2)] == [bits(w) for w in want[-2:]]


def fastai_mov_avg(values, beta):
    avg = 0
    for val in values: avg = beta * avg + (1 - beta) * val
    return avg


def test_a_beta_changed_with_values_noted_smooths_them_with_the_beta_they_were_added_with():
    values = list(torch.randn(10, generator=torch.Generator().manual_seed(4)).unbind())
    sv = SmoothenValue(0.98)
    for v in values[:5]: sv.add_value(v)
    sv.beta = 0.5
    assert bits(sv.smooth) == bits(fastai_smooth(values[:5], 0.98)[-1])
