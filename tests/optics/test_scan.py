"""The scanning LFM (kind "slfm"): configuration, scan order, realignment and the scanned frames.

Independent numbers: the published 3 x 3 ring order and realignment index formula (DAOSLIMIT,
Wu et al., Cell 2021; ../shared/FAMILIES.md section 3), the exact sensor pattern of a translated
source (``optics.lfpsf.sensor_pattern``, a different computation from the kernel path), and the
unscanned LFM.
"""

import numpy as np
import pytest

from optics import compute_psf, presets
from optics.config import ConfigError, Microscope
from optics.lfpsf import sensor_pattern, sensor_patterns
from optics.scan import (
    realign,
    scan_offsets,
    scan_shifts_um,
    scan_shifts_voxels,
    shift_volume,
    unrealign,
)
from optics.simulation import photon_image, point_photon_image


def small(kind="slfm", **scan):
    """20x/0.5W, N = 15, 5 x 5 lenslets, 3 depths, 3 voxels per lenslet."""
    extra = {"scan": scan} if kind == "slfm" else {}
    return presets.get("lfm-20x-0.5w", kind=kind, camera={"shape": [75, 75]},
                       volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3}, **extra)


# ------------------------------------------------------------------------------ configuration
def test_slfm_defaults_and_describe():
    m = presets.get("lfm-20x-0.5w", kind="slfm", volume={"voxels_per_lenslet": None})
    assert (m.scan.steps, m.scan.order, m.scan_steps) == (3, "raster", 3)
    assert m.voxels_per_lenslet == 15  # the odd multiple of K = 3 nearest N = 15 from above
    assert "scan: 3 x 3 positions" in m.describe()
    m13 = Microscope.from_dict({**m.to_dict(), "camera": {"pixel_um": 150 / 13, "shape": [130, 130]},
                                "volume": {"z_step_um": 10}})
    assert m13.voxels_per_lenslet == 15  # N = 13: 15 > 13 voxels per lenslet (the published 13 px, 3 x 3)
    assert presets.get("lfm-20x-0.5w").scan_steps == 1


@pytest.mark.parametrize("change, needle", [
    ({"scan": {"steps": 4}}, "scan.steps = 4 is invalid: expected an odd integer"),
    ({"scan": {"steps": 17}}, "scan.steps = 17 is invalid"),
    ({"scan": {"order": "spiral"}}, "scan.order = 'spiral' is invalid"),
    ({"volume": {"voxels_per_lenslet": 5}}, "volume.voxels_per_lenslet = 5 is invalid: kind 'slfm' steps"),
    ({"volume": {"voxels_per_lenslet": 6}}, "odd multiple of scan.steps = 3"),
    ({"volume": {"voxels_per_lenslet": 51}}, "up to 45"),
])
def test_slfm_bad_values_are_named(change, needle):
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(".", r"\.")):
        presets.get("lfm-20x-0.5w", kind="slfm", **change)


def test_scan_keys_are_refused_for_other_kinds_and_kept_out_of_their_hash():
    with pytest.raises(ConfigError, match="scan.steps = 5 does nothing for microscope.kind = 'lfm'"):
        presets.get("lfm-20x-0.5w", scan={"steps": 5})
    m = presets.get("lfm-20x-0.5w")
    assert "scan" not in m.to_dict()  # configs written before the scanning LFM keep their hash
    assert presets.get("lfm-20x-0.5w", kind="slfm").to_dict()["scan"] == {"steps": 3, "order": "raster"}


def test_steps_beyond_the_pixels_per_lenslet_are_refused():
    with pytest.raises(ConfigError, match="scan.steps = 5 is invalid: expected an odd integer 1..3"):
        Microscope.from_dict({"microscope": {"kind": "slfm"}, "mla": {"pitch_um": 30, "focal_um": 600},
                              "camera": {"pixel_um": 10, "shape": [30, 30]}, "scan": {"steps": 5},
                              "volume": {"voxels_per_lenslet": 5}})


# ------------------------------------------------------------------------------ scan order
def test_ring_order_is_the_published_3x3_order():
    """DAOSLIMIT main_for_static_beads.m: frame i at (row index2(i), col index1(i)), 1-based."""
    index1 = [3, 2, 1, 1, 1, 2, 3, 3, 2]
    index2 = [1, 1, 1, 2, 3, 3, 3, 2, 2]
    want = np.array([(r - 2, c - 2) for r, c in zip(index2, index1)])
    np.testing.assert_array_equal(scan_offsets(3, "ring"), want)


@pytest.mark.parametrize("k", [1, 3, 5, 7])
@pytest.mark.parametrize("order", ["raster", "ring"])
def test_every_order_visits_each_position_once(k, order):
    off = scan_offsets(k, order)
    assert off.shape == (k * k, 2)
    assert len({tuple(p) for p in off}) == k * k
    assert off.min() == -(k // 2) and off.max() == k // 2
    if order == "ring":
        np.testing.assert_array_equal(off[-1], (0, 0))  # the centre last
        steps = np.abs(np.diff(off, axis=0)).sum(axis=1)
        assert steps[: k * k - 2].max(initial=1) == 1  # a connected path until the jump into the centre


def test_raster_order_is_row_by_row():
    np.testing.assert_array_equal(scan_offsets(3)[:4], [(-1, -1), (-1, 0), (-1, 1), (0, -1)])


def test_shifts_in_voxels_and_micrometres():
    m = presets.get("lfm-20x-0.5w", kind="slfm", scan={"steps": 3}, volume={"voxels_per_lenslet": 9})
    np.testing.assert_array_equal(scan_shifts_voxels(m), scan_offsets(3) * 3)
    np.testing.assert_allclose(scan_shifts_um(m), scan_offsets(3) * 150 / 20 / 3)  # d / (K M) = 2.5 µm
    np.testing.assert_allclose(scan_shifts_um(m), scan_shifts_voxels(m) * m.voxel_um)


# ------------------------------------------------------------------------------ realignment
@pytest.mark.parametrize("order", ["raster", "ring"])
@pytest.mark.parametrize("k, nnum", [(3, 5), (5, 5), (3, 13)])
def test_realignment_is_an_exact_permutation(k, nnum, order):
    rng = np.random.default_rng(k * nnum)
    frames = rng.integers(0, 2**16, size=(2, k * k, 3 * nnum, 4 * nnum), dtype=np.uint16)
    ps = realign(frames, k, nnum, order)
    assert ps.shape == (2, nnum, nnum, 3 * k, 4 * k)
    np.testing.assert_array_equal(np.sort(ps.ravel()), np.sort(frames.ravel()))
    np.testing.assert_array_equal(unrealign(ps, k, order), frames)
    np.testing.assert_array_equal(realign(unrealign(ps, k, order), k, nnum, order), ps)


def test_realignment_follows_the_published_index_formula():
    """WDF(K a + 1 - c, K b + 1 - d, u, v) = sLF((a-1) N + u, (b-1) N + v, c, d), all 1-based
    (FAMILIES.md section 3.2), with (c, d) the frame's (row, col) scan position."""
    k, nnum = 3, 5
    order = "ring"
    pos = scan_offsets(k, order) + 2  # 1-based (c, d) of each frame
    for i, (c, d) in enumerate(pos):
        for (a, b, u, v) in [(1, 1, 1, 1), (2, 3, 4, 2), (3, 1, 5, 5)]:
            frames = np.zeros((k * k, 3 * nnum, 3 * nnum))
            frames[i, (a - 1) * nnum + u - 1, (b - 1) * nnum + v - 1] = 1
            ps = realign(frames, k, nnum, order)
            hit = np.argwhere(ps == 1)
            np.testing.assert_array_equal(hit, [[u - 1, v - 1, k * a + 1 - c - 1, k * b + 1 - d - 1]])


def test_realign_refuses_wrong_shapes():
    with pytest.raises(ValueError, match="expected \\(\\.\\.\\., 9, Y, X\\)"):
        realign(np.zeros((8, 15, 15)), 3, 5)
    with pytest.raises(ValueError, match="whole lenslets"):
        realign(np.zeros((9, 14, 15)), 3, 5)


def test_shift_volume_zero_fills_and_its_adjoint_is_the_opposite_shift():
    rng = np.random.default_rng(1)
    x, y = rng.random((2, 6, 7)), rng.random((2, 6, 7))
    s = shift_volume(x, 2, -3)
    np.testing.assert_array_equal(s[:, 2:, :4], x[:, :4, 3:])
    assert not s[:, :2].any() and not s[:, :, 4:].any()
    assert np.vdot(s, y) == pytest.approx(np.vdot(x, shift_volume(y, -2, 3)), rel=1e-14)
    assert not shift_volume(x, 6, 0).any()


# ------------------------------------------------------------------------------ scanned frames
@pytest.fixture(scope="module")
def ms():
    return small(steps=3)


@pytest.fixture(scope="module")
def psf_s(ms):
    return compute_psf(ms, cache=False, progress=False)


def test_scan_frame_is_the_lfm_frame_of_the_translated_sample(ms, psf_s):
    """Sign convention: frame i is the unscanned LFM's exact sensor pattern of the source translated
    by +offsets[i] d / (K M) (sensor_pattern, computed without the kernels), for a voxel source
    through the kernel path (photon_image: the volume shifted by whole voxels)."""
    m_lfm = small("lfm")
    vol = np.zeros(ms.volume_shape)
    iz, iy, ix = 2, 6, 8  # z = +10 µm, one voxel off the axis in y, one in x
    vol[iz, iy, ix] = 1.0
    frames = photon_image(ms, vol, photons_per_voxel=1.0, psf=psf_s, progress=False)
    c = ms.volume_shape[1] // 2
    y0, x0 = (iy - c) * ms.voxel_um, (ix - c) * ms.voxel_um
    for i, (dy, dx) in enumerate(scan_shifts_um(ms)):
        exact = sensor_pattern(m_lfm, (x0 + dx, y0 + dy, 10.0))
        err = np.linalg.norm(frames[i] - exact) / np.linalg.norm(exact)
        assert err < 5e-3, (i, err)  # the kernels' crop (<= 0.5% of the power) against the exact pattern
        if dy or dx:  # the opposite sign is another image altogether (measured: > 100% L2)
            wrong = sensor_pattern(m_lfm, (x0 - dx, y0 - dy, 10.0))
            assert np.linalg.norm(frames[i] - wrong) / np.linalg.norm(wrong) > 0.5


def test_point_images_of_the_scan_match_the_kernel_path(ms, psf_s):
    vol = np.zeros(ms.volume_shape)
    vol[1, 7, 7] = 1.0
    grid = photon_image(ms, vol, photons_per_voxel=500.0, psf=psf_s, progress=False)
    exact = point_photon_image(ms, [[0.0, 0.0, 0.0]], photons_per_point=500.0)
    assert grid.shape == exact.shape == (9, 75, 75)
    np.testing.assert_allclose(exact, grid, rtol=0, atol=2e-3 * grid.max())


def test_scan_positions_of_an_off_grid_bead_computed_together_are_the_single_patterns():
    """``sensor_patterns`` evaluates the Debye field once for the K^2 positions of a bead (their
    offsets in their lenslets differ by whole field samples) and batches other points by depth:
    each pattern equals ``sensor_pattern`` of its point alone (float32 fields: 1e-5 of the peak),
    for a bead off every grid, positions that cross into the next lenslet, and mixed depths."""
    m = small("lfm")
    x, y, z = 1.234, -0.77, 6.3
    pts = [(x + dx, y + dy, z) for dy, dx in scan_shifts_um(small(steps=3))]
    pts += [(-2.51, 3.07, -4.4), (0.3, 0.2, 6.3), (-0.9, 1.7, -4.4)]
    together = sensor_patterns(m, pts)
    assert together.shape == (len(pts), *m.image_shape)
    for p, pat in zip(pts, together):
        alone = sensor_pattern(m, p)
        np.testing.assert_allclose(pat, alone, rtol=0, atol=1e-5 * alone.max(), err_msg=str(p))
    with pytest.raises(ValueError, match="window_lenslets"):
        sensor_patterns(m, pts, window_lenslets=4)
    with pytest.raises(ValueError, match="empty"):
        sensor_patterns(m, [])


def test_one_step_scan_is_the_standard_lfm():
    m1, ml = small(steps=1), small("lfm")
    vol = np.random.default_rng(2).random(m1.volume_shape)
    f1 = photon_image(m1, vol, progress=False)
    fl = photon_image(ml, vol, progress=False)
    assert f1.shape == (1, *fl.shape)
    np.testing.assert_allclose(f1[0], fl, rtol=1e-5, atol=1e-7 * fl.max())  # float32 sums, other FFT sizes


def test_theory_of_the_scan_step():
    """Theory (an approximation, optics.theory.lateral_resolution_m): at focus the sLFM falls back to
    the scan step d / (K M) where the LFM falls back to d / M; far from focus both follow the LFM model."""
    from optics import theory

    lfm, slfm = presets.get("lfm-20x-0.5w"), presets.get("slfm-20x-0.5w")
    assert float(theory.lateral_resolution_m(lfm, 0.0)) == pytest.approx(150 / 20)
    assert float(theory.lateral_resolution_m(slfm, 0.0)) == pytest.approx(150 / 20 / 3)
    far = [20.0, 50.0]
    np.testing.assert_allclose(theory.lateral_resolution_m(slfm, far), theory.lateral_resolution_m(lfm, far))
