"""optics.memory: the estimates of what each command allocates, and the check against the machine.

The estimates are compared with the numpy allocations ``tracemalloc`` sees (numpy reports its
array buffers to it) on small configs: each must be an upper bound, and not a wild one.
"""

import tracemalloc

import numpy as np
import pytest

from optics import memory, presets
from optics.config import ConfigError

#: An estimate may exceed the measured peak by at most this factor.
SANE = 4.0


def _peak(fn):
    """Result and peak traced bytes of ``fn()``, with the Bessel-matrix and field-table caches emptied
    first so that the run allocates its radial tables as a fresh command would."""
    from optics import debye, lfpsf

    debye.bessel_matrices.cache_clear()
    lfpsf._TABLES.clear()  # sensor_pattern's tables of earlier calls
    tracemalloc.start()
    try:
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


@pytest.fixture(scope="module")
def warm(m):
    """Run each path once untraced: the first call imports modules whose objects tracemalloc counts."""
    pytest.importorskip("optics.lfpsf")
    from optics.__main__ import axial_psf_stack, point_pattern

    axial_psf_stack(m)
    point_pattern(m, (1.3, -2.1, 5.0))


def _widefield():
    return presets.get("widefield-20x-0.5w", camera={"shape": [48, 48]},
                       volume={"z_min_um": -2, "z_max_um": 2, "z_step_um": 1})


def test_stack_term_is_the_stack(m, warm, small_flfm):
    from optics.__main__ import axial_psf_stack

    for mic in (m, _widefield(), small_flfm.replace(camera={"shape": [161, 161]})):
        stack = axial_psf_stack(mic)
        assert memory.psf_stack_bytes(mic) == stack.nbytes
        assert stack.dtype == np.float32 and stack.shape[0] == len(mic.z_um)


@pytest.mark.parametrize("which", ["lfm", "lfm-vectorial", "widefield", "flfm"])
def test_psf_estimate_bounds_the_allocations(which, m, warm, small_flfm):
    from optics.__main__ import axial_psf_stack, point_pattern

    mic = {"lfm": m, "widefield": _widefield(), "flfm": small_flfm.replace(camera={"shape": [161, 161]}),
           "lfm-vectorial": presets.get("lfm-60x-1.2w", camera={"shape": [45, 45]},
                                        volume={"z_min_um": -2, "z_max_um": 2, "z_step_um": 2,
                                                "voxels_per_lenslet": 3})}[which]
    stack, peak = _peak(lambda: axial_psf_stack(mic))
    est = memory.estimate_psf_bytes(mic)
    assert peak >= stack.nbytes
    assert peak <= est <= SANE * peak, (est, peak)
    point = (1.3, -2.1, 2.0)
    _, peak = _peak(lambda: point_pattern(mic, point)[None].astype(np.float32))
    est = memory.estimate_point_bytes(mic, point)
    assert peak <= est <= SANE * peak, (est, peak)


def test_simulate_and_operator_estimates_bound_the_allocations(m, warm):
    from optics import phantoms
    from optics.lfpsf import compute_psf
    from optics.simulation import check_volume, simulate

    psf, peak = _peak(lambda: compute_psf(m, cache=False, progress=False))
    est = memory.operator_bytes(m, build=True)
    assert m.estimate_operator_bytes() >= psf.nbytes
    assert peak <= est <= SANE * peak, (est, peak)

    def job(k):
        fine = phantoms.fine_microscope(m, k)
        vol, _ = phantoms.random_beads(m, 10, seed=0, upsample=k)
        check_volume(fine, vol)
        return simulate(fine, vol, photons_per_voxel=1000.0, seed=1, progress=False)

    for k in (1, 3):
        est = memory.estimate_simulate_bytes(m, k)  # before: the estimate asks whether it is cached
        frame, peak = _peak(lambda k=k: job(k))
        assert frame.shape == m.image_shape
        assert peak <= est <= SANE * peak, (k, est, peak)


def test_estimates_grow_with_the_sensor():
    small = presets.get("lfm-20x-0.5w", camera={"shape": [150, 150]})
    big = presets.get("lfm-20x-0.5w", camera={"shape": [1500, 1500]})
    # the float64 sensor image of each plane dominates a large sensor's psf command
    assert memory.estimate_psf_bytes(big) - memory.estimate_psf_bytes(small) >= 8 * (1500**2 - 150**2)
    # simulate: at least the float32 phantom and the float64 photon image grow with it
    grow = 4 * (np.prod(big.volume_shape) - np.prod(small.volume_shape)) + 8 * (1500**2 - 150**2)
    assert memory.estimate_simulate_bytes(big, 1) - memory.estimate_simulate_bytes(small, 1) >= grow


def test_available_bytes_env_override(monkeypatch):
    monkeypatch.setenv(memory.ENV_MAX_MEMORY, "0.5")
    assert memory.available_bytes() == (memory.GIB // 2, memory.ENV_MAX_MEMORY)
    for bad in ("lots", "-1", "0", "nan"):
        monkeypatch.setenv(memory.ENV_MAX_MEMORY, bad)
        with pytest.raises(ConfigError, match=f"{memory.ENV_MAX_MEMORY} = '{bad}' is invalid"):
            memory.available_bytes()
    monkeypatch.delenv(memory.ENV_MAX_MEMORY)
    avail, source = memory.available_bytes()
    assert avail is None or (avail > 0 and source)


def test_check_memory_message(monkeypatch):
    monkeypatch.setenv(memory.ENV_MAX_MEMORY, "0.001")
    memory.check_memory(1000, "a small job")  # fits: nothing happens
    with pytest.raises(ConfigError) as e:
        memory.check_memory(3 * memory.GIB, "psf of 'x.toml'")
    msg = str(e.value)
    assert msg.startswith("psf of 'x.toml' needs about 3 GiB of memory, more than the 0.001 GiB available")
    assert memory.ENV_MAX_MEMORY in msg and "camera.shape" in msg and "--upsample" in msg
    with pytest.raises(ConfigError, match="reduce the fish"):
        memory.check_memory(memory.GIB, "job", "reduce the fish")


def test_check_memory_passes_when_unknown(monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda: (None, "unknown"))
    assert memory.check_memory(10**18, "a huge job") is None  # nothing to compare with: no refusal


def test_flfm_operator_estimate_bounds_the_allocations(warm, small_flfm):
    from optics.lfpsf import compute_psf

    mic = small_flfm.replace(camera={"shape": [161, 161]})
    compute_psf(mic, cache=False, progress=False)  # warm: imports and thread pools
    psf, peak = _peak(lambda: compute_psf(mic, cache=False, progress=False))
    est = memory.operator_bytes(mic, build=True)
    assert mic.estimate_operator_bytes() >= psf.nbytes
    assert peak <= est <= SANE * peak, (est, peak)
