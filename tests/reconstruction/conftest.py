"""Fixtures of the reconstruction tests: the array module ``xp`` (numpy; cupy with a GPU) and a dask
LocalCluster of 2 worker processes per test module (``client``; the module skips without distributed)."""

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


@pytest.fixture
def small_op32():
    """A small float32 light-field operator on the CPU (5 px, 3 voxels per lenslet, 4 x 5 lenslets,
    3 depths) over random positive kernels: its FFTs leave round-off where the exact image is 0."""
    from recon_helpers import microscope, synthetic_psf

    from reconstruction.operator import LightFieldOperator

    rng = np.random.default_rng(7)
    psf = synthetic_psf(microscope(5, 3, (4, 5), z=[-2.0, 0.0, 2.0]), [2, 0, 1], rng, np.float32)
    return LightFieldOperator(psf, "cpu", np.float32)


@pytest.fixture
def roundoff_projection(small_op32):
    """``small_op32.forward`` of a sparse random non-negative volume (so the exact image is 0 off
    the kernels' reach), its round-off negatives kept."""
    rng = np.random.default_rng(8)
    op = small_op32
    x = np.zeros(op.volume_shape, np.float32)
    x[1] = rng.random(op.volume_shape[1:]) * (rng.random(op.volume_shape[1:]) < 0.2)  # depth of R = 0
    x[0, 2, 3] = 2.0
    y = op.forward(x)
    if not (y < 0).any():  # FFT round-off gave none this time: make some of its size
        y = y - (y.min() + np.float32(1e-7) * y.max())
    assert (y < 0).any() and float(y.min()) >= -1e-5 * float(np.abs(y).max())
    return y


@pytest.fixture(scope="module")
def client():
    """A client of a LocalCluster of 2 single-threaded worker processes, one per test module."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = Client(cluster)
    yield c
    c.close()
    cluster.close()
