"""Write a fastai 2.8.12 checkpoint (``learn.save``) for tests/test_learner.py to load.

Run:  /tmp/trainlib-oracle/fa2/bin/python tests/oracle_scripts/fa2_checkpoint.py tests/golden/fa2_checkpoint.pth

A synth_learner (RegModel: ``y = a*x + b``) trained one epoch with fastai's SGD (mom 0.9), saved with its
optimizer state: fastai pickles the optimizer's hypers as a fastcore ``L``. Prints the saved a and b.
"""
import sys
import torch
from fastai.test_utils import synth_learner

torch.manual_seed(0)
learn = synth_learner(n_trn=2)
learn.fit(1, lr=0.01)
learn.save(sys.argv[1].removesuffix('.pth'))
print(f'a={learn.model.a.item()!r} b={learn.model.b.item()!r}')
