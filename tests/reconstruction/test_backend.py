"""Array backend: device choice, array-module inference, batched matmul, BLAS thread control."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from reconstruction import backend


def test_device_choice_is_logged_and_validated(caplog):
    with caplog.at_level(logging.INFO, logger="reconstruction.backend"):
        assert backend.get_device("cpu") == "cpu"
    assert "reconstruction device: cpu" in caplog.text
    with pytest.raises(ValueError, match="device = 'cuda'"):
        backend.get_device("cuda")


def test_gpu_without_gpu_never_falls_back(monkeypatch):
    monkeypatch.setattr(backend, "gpu_available", lambda: False)
    with pytest.raises(backend.DeviceError, match="device = 'gpu'"):
        backend.get_device("gpu")


def test_xp_of_numpy():
    assert backend.xp_of(np.zeros(3), None, 1.0) is np
    assert backend.to_host(np.arange(3)).tolist() == [0, 1, 2]
    assert backend.to_device([1, 2], "cpu", dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128, np.float64])
def test_matmul_matches_numpy(dtype, rng):
    a = (rng.standard_normal((37, 9, 11)) + (1j * rng.standard_normal((37, 9, 11)) if np.iscomplexobj(dtype(0)) else 0)).astype(dtype)
    b = rng.standard_normal((37, 11, 3)).astype(dtype)
    np.testing.assert_allclose(backend.matmul(a, b), np.matmul(a, b), rtol=1e-5)
    np.testing.assert_allclose(backend.matmul(a[:1], b[:1]), np.matmul(a[:1], b[:1]), rtol=1e-5)


def test_blas_single_thread_restores():
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    assert before, "numpy's BLAS should be visible to threadpoolctl"
    with backend.blas_single_thread():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before


def test_memory_helpers():
    assert backend.peak_memory_bytes("cpu") > 1e6
    assert backend.current_rss_bytes() > 1e6
    backend.synchronize("cpu")
    assert "logical cores" in backend.device_name("cpu")


@pytest.mark.gpu
def test_gpu_helpers():
    import numpy as np

    assert backend.get_device("gpu") == "gpu"
    a = backend.to_device(np.ones((4, 2, 3), np.complex64), "gpu")
    b = backend.to_device(np.ones((4, 3, 1), np.complex64), "gpu")
    assert backend.is_gpu_array(a) and backend.xp_of(a) is backend.xp_for("gpu")
    np.testing.assert_allclose(backend.to_host(backend.matmul(a, b)), 3)
    with pytest.raises(TypeError, match="mix"):
        backend.xp_of(a, np.ones(2))
    assert backend.peak_memory_bytes("gpu") > 0
