"""S19 depth-adaptive Lanczos filter: widths (dimensionally correct), centred unit-sum kernel."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from optics.config import MLA, Camera, Microscope, Objective, VolumeGrid
from reconstruction.filters import LanczosFilter, lanczos_kernel, lanczos_widths


def _lfm(scale=1.0, s=15):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Microscope(
            kind="lfm",
            objective=Objective(magnification=20, na=0.5, immersion_index=1.33, tube_lens_focal_um=200000 * scale),
            mla=MLA(pitch_um=150 * scale, focal_um=3000 * scale),
            camera=Camera(pixel_um=10 * scale, shape=(150, 150)),
            volume=VolumeGrid(z_min_um=-50 * scale, z_max_um=50 * scale, z_step_um=10 * scale, voxels_per_lenslet=s),
        )


def test_widths_are_invariant_to_the_length_unit():
    """Scaling every length by 3 must not change widths in voxels (oLaF's 1/z3 - 1/b version fails this)."""
    np.testing.assert_allclose(lanczos_widths(_lfm(3.0)), lanczos_widths(_lfm(1.0)), rtol=1e-9)


def test_widths_at_focus_and_away():
    m = _lfm()
    w = lanczos_widths(m)
    z = m.z_um
    assert w[z == 0][0] == pytest.approx(15.0)  # capped at d/2 -> one lenslet = s voxels
    neg, pos = w[z < 0], w[z > 0]
    assert np.all(np.diff(neg) > 0) and np.all(np.diff(pos) < 0)  # narrower away from focus
    assert np.all(w > 0) and np.all(w <= 15.0)


def test_width_closed_form_one_depth():
    """Thin-lens chain written out by hand for z = +20 µm (object farther from the objective)."""
    m = _lfm()
    ftl, fobj, d, fml, s = 200000.0, 10000.0, 150.0, 3000.0, 15
    zobj = fobj + 20.0
    z1 = 1 / (1 / fobj - 1 / zobj)
    z2 = 1 / (1 / ftl - 1 / (ftl + fobj - z1))
    z3 = 1 / (1 / fml - 1 / (ftl - z2))
    bz = d / 2 * abs(z3 - fml) / abs(z3)
    lam = z2 * fml / (ftl * abs(ftl - z2))
    expect = 2 * min(d / 2, abs(d * lam - bz)) * s / d
    assert lanczos_widths(m, [20.0])[0] == pytest.approx(expect, rel=1e-9)


@pytest.mark.parametrize("width", [1.0, 1.7, 3.0, 6.2])
def test_kernel_centred_odd_unit_sum(width):
    k = lanczos_kernel(width)
    assert k.shape[0] % 2 == 1 and k.shape[0] == k.shape[1]
    assert k.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(k, k[::-1, ::-1], atol=1e-15)
    np.testing.assert_allclose(k, k.T, atol=1e-15)


def test_filter_keeps_centroid_of_centred_delta():
    widths = np.array([0.5, 2.5, 4.0])
    f = LanczosFilter(widths, (3, 31, 33), "cpu", np.float64)
    v = np.zeros((3, 31, 33))
    v[:, 15, 16] = 1.0
    out = f(v)
    np.testing.assert_array_equal(out[0], v[0])  # W <= 1: untouched
    yy, xx = np.mgrid[:31, :33]
    for iz in (1, 2):
        assert out[iz].sum() == pytest.approx(1.0, abs=1e-12)
        assert (out[iz] * yy).sum() == pytest.approx(15.0, abs=1e-12)
        assert (out[iz] * xx).sum() == pytest.approx(16.0, abs=1e-12)
        assert out[iz, 15, 16] == out[iz].max()


def test_filter_is_self_adjoint_and_batched(rng):
    f = LanczosFilter([2.0, 3.0], (2, 20, 24), "cpu", np.float64)
    a, b = rng.random((2, 20, 24)), rng.random((2, 20, 24))
    assert np.vdot(f(a), b) == pytest.approx(np.vdot(a, f(b)), rel=1e-12)
    both = f(np.stack([a, b]))
    np.testing.assert_allclose(both[1], f(b), atol=1e-14)


def test_widefield_has_no_lanczos_filter():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = Microscope(kind="widefield", mla=None, camera=Camera(pixel_um=6.5, shape=(16, 16)),
                       volume=VolumeGrid(-2, 2, 1, 1))
    with pytest.raises(ValueError, match="lanczos"):
        lanczos_widths(m)
