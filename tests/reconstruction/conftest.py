"""Fixtures of the reconstruction tests: the array module ``xp`` (numpy; cupy with a GPU)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))  # recon_helpers


def _xp_params():
    return [pytest.param("cpu", id="numpy"), pytest.param("gpu", id="cupy", marks=pytest.mark.gpu)]


@pytest.fixture(params=_xp_params())
def device(request):
    """"cpu" (numpy) always; "gpu" (cupy) only where a CUDA GPU is present (``gpu`` marker)."""
    return request.param


@pytest.fixture
def xp(device):
    from reconstruction import backend

    return backend.xp_for(device)


@pytest.fixture
def to_np():
    from reconstruction import backend

    return backend.to_host


@pytest.fixture
def rng64():
    return np.random.default_rng(20261128)
