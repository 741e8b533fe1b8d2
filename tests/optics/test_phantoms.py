"""Phantoms (optics.phantoms): grid coordinates, bead placement, reproducibility, amounts, bad input."""

import numpy as np
import pytest

from optics import phantoms as ph
from optics import presets


def test_voxel_centres_follow_the_formula(m):
    # 5 lenslets of 7.5 µm, 3 voxels each: centres at -17.5 .. 17.5 in 2.5 µm steps, axis at the
    # centre of the middle lenslet (voxel 7)
    x = ph.voxel_centres_um(m, "x")
    np.testing.assert_allclose(x, np.arange(-7, 8) * 2.5)
    i = np.arange(15)
    s, L, d_m = 3, 5, 7.5
    np.testing.assert_allclose(x, ((i // s - L // 2) + ((i % s) - (s - 1) / 2) / s) * d_m)
    np.testing.assert_allclose(ph.voxel_centres_um(m, "z"), [-10, 0, 10])
    # even voxels per lenslet: no voxel on the axis, centres symmetric about it
    m2 = presets.get("lfm-20x-0.5w", camera={"shape": [60, 75]}, volume={"voxels_per_lenslet": 2})
    y = ph.voxel_centres_um(m2, "y")  # 4 lenslets: axis at the centre of lenslet 2
    np.testing.assert_allclose(y, (np.arange(8) // 2 - 2 + (np.arange(8) % 2 - 0.5) / 2) * 7.5)
    xf = ph.voxel_centres_um(m, "x", upsample=5)
    assert len(xf) == 75 and xf[37] == pytest.approx(0.0)
    np.testing.assert_allclose(np.diff(xf), 0.5)


def test_bead_on_axis_lands_on_the_centre_voxel(m):
    v = ph.beads(m, [(0.0, 0.0, 0.0)])
    assert v.dtype == np.float32 and v.shape == m.volume_shape
    assert np.argwhere(v).tolist() == [[1, 7, 7]]
    # x is the last axis, y the middle one
    v = ph.beads(m, [(5.0, -2.5, 10.0)], brightness=3.0)
    assert np.argwhere(v).tolist() == [[2, 6, 9]] and v.sum() == pytest.approx(3.0)


def test_nearest_and_linear_placement(m):
    v = ph.beads(m, [(1.0, 0.0, 0.0)])  # 1.0 µm: nearest is x = 0 (0.4 voxel away)
    assert np.argwhere(v).tolist() == [[1, 7, 7]]
    v = ph.beads(m, [(1.0, 0.0, 4.0)], interpolation="linear")
    assert v.sum() == pytest.approx(1.0)
    assert v[1, 7, 7] == pytest.approx(0.6 * 0.6)
    assert v[1, 7, 8] == pytest.approx(0.4 * 0.6)
    assert v[2, 7, 8] == pytest.approx(0.4 * 0.4)
    # the centroid of a linearly split bead is the bead position
    x = ph.voxel_centres_um(m, "x")
    assert (v.sum(axis=(0, 1)) * x).sum() == pytest.approx(1.0)


def test_upsampled_beads_bin_to_the_coarse_grid(m):
    pos = [(2.5, -5.0, 0.0), (-10.0, 7.5, 10.0)]
    fine = ph.beads(m, pos, upsample=5, brightness=[1.0, 2.0])
    assert fine.shape == (3, 75, 75)
    coarse = ph.beads(m, pos, brightness=[1.0, 2.0])
    np.testing.assert_allclose(ph.bin_volume(fine, 5), coarse)
    fm = ph.fine_microscope(m, 5)
    assert fm.volume_shape == fine.shape and fm.voxel_um == pytest.approx(0.5)
    with pytest.raises(ValueError, match="upsample = 6"):
        ph.fine_microscope(m, 6)


def test_random_beads_reproducible_and_inside(m):
    v1, p1 = ph.random_beads(m, 20, seed=3)
    v2, p2 = ph.random_beads(m, 20, seed=3)
    v3, p3 = ph.random_beads(m, 20, seed=4)
    np.testing.assert_array_equal(v1, v2)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)
    assert p1.shape == (20, 3) and v1.sum() == pytest.approx(20)
    assert np.all(np.abs(p1[:, :2]) <= 17.5 - 7.5 + 1e-9)  # default margin: one lenslet (7.5 µm)
    assert set(p1[:, 2]) <= {-10.0, 0.0, 10.0}
    # snapped positions are voxel centres: rendering them again gives the same volume
    np.testing.assert_array_equal(ph.beads(m, p1), v1)
    v4, _ = ph.random_beads(m, 20, seed=np.random.default_rng(3))
    np.testing.assert_array_equal(v4, v1)
    v5, p5 = ph.random_beads(m, 10, seed=1, upsample=3, interpolation="linear", margin_um=0)
    assert v5.shape == (3, 45, 45) and v5.sum() == pytest.approx(10, rel=1e-6)


def test_neurons(m):
    v, centres = ph.neurons(m, 4, seed=0)
    v2, _ = ph.neurons(m, 4, seed=0)
    np.testing.assert_array_equal(v, v2)
    assert v.dtype == np.float32 and v.shape == m.volume_shape
    assert centres.shape == (4, 3) and v.min() >= 0 and v.max() <= 1 + 1e-6
    assert v.sum() > 0


def test_neuron_soma_amount_matches_its_volume():
    # one cell without processes, away from the edges: the amounts add up to the ball's volume
    # in units of a coarse voxel, on the coarse grid and on a 3x finer grid
    m = presets.get(
        "lfm-20x-0.5w", camera={"shape": [150, 150]},
        volume={"z_min_um": -20, "z_max_um": 20, "z_step_um": 1, "voxels_per_lenslet": 5},
    )
    for k in (1, 3):
        rng = np.random.default_rng(5)
        v, c = ph.neurons(m, 1, seed=rng, n_processes=(0, 0), soma_diameter_um=(10, 10), upsample=k)
        if np.any(np.abs(c[0, :2]) > 20) or abs(c[0, 2]) > 14:
            pytest.skip("cell drawn near an edge")
        expected = 4 / 3 * np.pi * 5**3 / (1.5 * 1.5 * 1.0)
        assert v.sum() == pytest.approx(expected, rel=0.01)
        if k == 1:
            assert v.max() == pytest.approx(1.0)  # voxels fully inside the soma


def test_resolution_target(m):
    v, feats = ph.resolution_target(m, separations_um=[2.5, 5.0, 7.5], depths_um=[-10, 10])
    assert v.shape == m.volume_shape and v.dtype == np.float32
    assert len(feats) == 6
    assert {f["z_um"] for f in feats} == {-10.0, 10.0}
    assert not v[1].any()  # no target at z = 0
    # a 5 µm pair centred on x = 0 sits on voxels 7 -+ 1 (x = -2.5, +2.5)
    row = feats[1]
    assert row["separation_um"] == 5.0 and row["x_um"] == (-2.5, 2.5)
    cols = v[0].sum(axis=0)
    assert cols[6] > 0 and cols[8] > 0
    pts, f2 = ph.resolution_target(m, kind="points")
    assert pts.sum() == pytest.approx(2 * len(f2))
    assert len({f["z_um"] for f in f2}) == 3  # default depths: all 3 planes of this grid


def test_bad_input(m):
    with pytest.raises(ValueError, match=r"positions_um\[1\].*outside.*x must lie in \[-18.75, 18.75\]"):
        ph.beads(m, [(0, 0, 0), (30, 0, 0)])
    with pytest.raises(ValueError, match="z must lie"):
        ph.beads(m, [(0, 0, 20)])
    with pytest.raises(ValueError, match="positions_um has shape"):
        ph.beads(m, [(0, 0)])
    with pytest.raises(ValueError, match="brightness"):
        ph.beads(m, [(0, 0, 0)], brightness=-1)
    with pytest.raises(ValueError, match="interpolation"):
        ph.beads(m, [(0, 0, 0)], interpolation="cubic")
    with pytest.raises(ValueError, match="upsample"):
        ph.beads(m, [(0, 0, 0)], upsample=0)
    with pytest.raises(TypeError, match="seed"):
        ph.random_beads(m, 3, seed=None)
    with pytest.raises(ValueError, match="margin_um"):
        ph.random_beads(m, 3, seed=0, margin_um=30)
    with pytest.raises(ValueError, match="n = -1"):
        ph.random_beads(m, -1, seed=0)
    with pytest.raises(ValueError, match="n_cells"):
        ph.neurons(m, 1.5, seed=0)
    with pytest.raises(ValueError, match="depths_um"):
        ph.resolution_target(m, depths_um=[5])
    with pytest.raises(ValueError, match="separations_um"):
        ph.resolution_target(m, separations_um=[100])
    with pytest.raises(TypeError, match="Microscope"):
        ph.beads("lfm", [(0, 0, 0)])
