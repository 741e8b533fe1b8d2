"""Independent-tile Richardson-Lucy with halos (reconstruction.tiling; issue 12).

Beads at continuous positions on a 24 x 24-lenslet field (20x/0.5W, z = -20..20 um, kernels
reaching R = 3 lenslets), Poisson noise: the tiled RL against the untiled one (the seam error).
Measured: halo R, L2 0.05-0.11%, max 0.11-0.24% of the peak; halo R + 2, L2 0.01-0.02%.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import optics
from reconstruction import richardson_lucy
from reconstruction.scanned import make_operator
from reconstruction.tiling import plan_tile, tile_slices, tiled_richardson_lucy


@pytest.fixture(scope="module")
def field():
    from optics.simulation import point_photon_image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = optics.presets.get("lfm-20x-0.5w", camera={"shape": [360, 360]},
                               volume={"z_min_um": -20, "z_max_um": 20, "z_step_um": 10, "voxels_per_lenslet": 3})
    psf = optics.compute_psf(m, progress=False)
    rng = np.random.default_rng(0)
    half = m.fov_um[0] / 2 * 0.9
    pts = [(rng.uniform(-half, half), rng.uniform(-half, half), rng.uniform(-18, 18)) for _ in range(30)]
    y = rng.poisson(point_photon_image(m, pts, photons_per_point=1e4)).astype(np.float32)
    ref = richardson_lucy(y, make_operator(psf, "cpu", np.float32, progress=False), 10, progress=False)
    return psf, y, ref


def test_tiles_cover_the_field_once():
    cores = [c for _, _, *c in tile_slices(23, 6, 3)]
    assert cores == [[0, 6], [6, 12], [12, 18], [18, 23]]
    assert tile_slices(23, 6, 3)[1][:2] == (3, 15)  # halos clipped at the edges, grown inside
    assert tile_slices(23, 6, 3)[0][:2] == (0, 9)


@pytest.mark.parametrize("core", [6, 12])
def test_seam_error_against_the_untiled_reconstruction(field, core):
    psf, y, ref = field
    r = int(max(psf.radius_lenslets))
    vol, info = tiled_richardson_lucy(psf, y, 10, tile_lenslets=core, device="cpu")
    assert info["halo_lenslets"] == r and info["tiles"] == (-(-24 // core)) ** 2
    err = np.linalg.norm(vol - ref) / np.linalg.norm(ref)
    assert err < 5e-3 and np.abs(vol - ref).max() < 1e-2 * ref.max(), err
    wide, _ = tiled_richardson_lucy(psf, y, 10, tile_lenslets=core, halo_lenslets=r + 2, device="cpu")
    assert np.linalg.norm(wide - ref) / np.linalg.norm(ref) < 1e-3


def test_halo_below_the_kernel_reach_is_refused(field):
    psf, y, _ = field
    with pytest.raises(ValueError, match="halo_lenslets = 1 is invalid"):
        tiled_richardson_lucy(psf, y, 1, tile_lenslets=6, halo_lenslets=1, device="cpu")


def test_tile_size_follows_the_memory(field):
    psf, _, _ = field
    from reconstruction.tiling import _tile_bytes

    big = plan_tile(psf, 2**40)[0]
    small = plan_tile(psf, _tile_bytes(psf, 24, 3) // 2)[0]
    assert big == 24 and 1 <= small < 24
    assert _tile_bytes(psf, small, 3) <= _tile_bytes(psf, 24, 3) // 2
    with pytest.raises(MemoryError, match="one-lenslet tile"):
        plan_tile(psf, 1000)


def test_out_of_memory_retries_with_smaller_tiles(field, monkeypatch):
    """An out-of-memory error in a tile halves the tiles instead of failing (CuPy's
    OutOfMemoryError is recognised by name, NumPy's MemoryError by type)."""
    import reconstruction.scanned as scanned

    psf, y, ref = field
    real = scanned.make_operator

    class OutOfMemoryError(Exception):
        pass

    def picky(p, *a, **k):
        if max(p.microscope.n_lenslets) > 14:  # tiles of more than 14 lenslets "do not fit"
            raise OutOfMemoryError("simulated: out of memory allocating 1.2 GB")
        return real(p, *a, **k)

    monkeypatch.setattr(scanned, "make_operator", picky)
    vol, info = tiled_richardson_lucy(psf, y, 10, tile_lenslets=16, device="cpu")
    assert info["oom_retries"] == 1 and info["core_lenslets"] == 8
    assert np.linalg.norm(vol - ref) / np.linalg.norm(ref) < 5e-3


def test_reconstruct_with_tiles(field):
    """reconstruct(..., tiles=N) is the tiled RL of every frame (same numbers as calling it)."""
    from reconstruction import reconstruct

    psf, y, ref = field
    vol = reconstruct(psf.microscope, y, psf=psf, iterations=10, tiles=12, progress=False, device="cpu", raw=False)
    direct, _ = tiled_richardson_lucy(psf, y, 10, tile_lenslets=12, device="cpu")
    np.testing.assert_array_equal(vol, direct)
    with pytest.raises(ValueError, match="tiles = 0 is invalid"):
        reconstruct(psf.microscope, y, psf=psf, iterations=1, tiles=0, progress=False, raw=False)
