"""Training tests: one torch thread (tiny models; a second spinning OpenMP thread on a shared
2-core machine makes each op 10-100x slower), restored afterwards."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
