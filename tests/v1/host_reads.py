"""Counting the tensor reads to the host (syncs) made by trainlib's own code, for the v1 no-sync tests."""
import sys

import torch

from trainlib.v1 import SmoothenValue

READS = ('item', 'cpu', 'tolist', '__float__', '__bool__', 'numpy')


def count_host_reads(monkeypatch) -> list:
    """From now on (until monkeypatch undoes it), each read of a tensor from a trainlib file is appended to the list
    returned. The smoothed loss is computed as on a GPU: on the CPU, SmoothenValue smooths on the host, which reads
    CPU tensors (no sync there); the tests count what would sync on a GPU."""
    monkeypatch.setattr(SmoothenValue, '_on_host', staticmethod(lambda device: False))
    calls = []
    def counting(name):
        orig = getattr(torch.Tensor, name)
        def f(self, *a, **k):
            if '/trainlib/' in sys._getframe(1).f_code.co_filename: calls.append(name)
            return orig(self, *a, **k)
        return f
    for name in READS: monkeypatch.setattr(torch.Tensor, name, counting(name))
    return calls
