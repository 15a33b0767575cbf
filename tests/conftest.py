"Test set-up: import trainlib from this checkout, headless matplotlib, seeded RNGs, no stray files."
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
os.environ.setdefault('MPLBACKEND', 'Agg')

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seeded_and_isolated(tmp_path, monkeypatch):
    "Every test starts from seed 0 and runs in its own temporary directory."
    torch.manual_seed(0); random.seed(0); np.random.seed(0)
    monkeypatch.chdir(tmp_path)
    yield
