"""Shared fixtures: array-module parametrisation (numpy always, cupy when a GPU is present)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


from reconstruction.backend import gpu_available

GPU = gpu_available()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a CUDA GPU with cupy")
    for item in items:
        if "gpu" in item.keywords and not GPU:
            item.add_marker(skip)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _cache_dir(tmp_path_factory, monkeypatch):
    """Keep each test session's operator cache out of the user's folders."""
    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lfmsim-cache"))
