"""reconstruction.metrics on inputs with known answers (analytic Gaussian, Airy, synthetic curves)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, special

from reconstruction import metrics

FWHM_PER_SIGMA = 2 * math.sqrt(2 * math.log(2))


def gaussian(x, x0, sigma):
    return np.exp(-((x - x0) ** 2) / (2 * sigma**2))


def airy(r, lam, na):
    v = 2 * np.pi * na * np.abs(np.asarray(r, dtype=float)) / lam
    out = np.ones_like(v)
    nz = v > 0
    out[nz] = (2 * special.j1(v[nz]) / v[nz]) ** 2
    return out


@pytest.mark.parametrize(("sigma", "x0", "spacing"), [(1.3, 20.37, 0.2), (3.0, 31.0, 1.0), (0.9, 15.5, 0.05)])
def test_fwhm_gaussian(sigma, x0, spacing):
    x = np.arange(64, dtype=float)
    got = metrics.fwhm(gaussian(x, x0, sigma), spacing)
    assert got == pytest.approx(FWHM_PER_SIGMA * sigma * spacing, rel=5e-3)  # spline on >= 0.9 sigma sampling


def test_fwhm_airy_independent_root():
    lam, na = 0.52, 0.5
    # independent reference: half maximum of (2 J1(v)/v)^2 by root-finding
    v_half = optimize.brentq(lambda v: (2 * special.j1(v) / v) ** 2 - 0.5, 0.5, 2.5, xtol=1e-14)
    ref = 2 * v_half * lam / (2 * np.pi * na)
    assert ref / (lam / (2 * na)) == pytest.approx(1.0290, abs=1e-4)
    dx = 0.05  # ~ 10 samples across the FWHM
    r = (np.arange(101) - 50.3) * dx
    assert metrics.fwhm(airy(r, lam, na), dx) == pytest.approx(ref, rel=2e-3)


def test_fwhm_baseline_and_unresolved():
    x = np.arange(40, dtype=float)
    g = gaussian(x, 20, 2.0)
    assert metrics.fwhm(g + 0.3, 1.0, baseline=0.3) == pytest.approx(FWHM_PER_SIGMA * 2.0, rel=5e-3)
    assert math.isnan(metrics.fwhm(gaussian(x, 2, 5.0), 1.0))  # never falls to half on the left
    # a sharp one-sided edge (seen in reconstructions): a positive width, not an extrapolated peak
    edge = np.array([0, 0, 0, 0.666, 0.843, 1.0, 0.002, 0.001, 0, 0])
    w = metrics.fwhm(edge, 1.0)
    assert 1.0 < w < 3.0
    with pytest.raises(ValueError, match="spacing"):
        metrics.fwhm(g, 0)
    with pytest.raises(ValueError, match="profile"):
        metrics.fwhm(np.ones((3, 3)), 1.0)


def test_fwhm_3d_anisotropic_gaussian():
    z, y, x = np.meshgrid(np.arange(21.0), np.arange(31.0), np.arange(31.0), indexing="ij")
    vol = np.exp(-((z - 10) ** 2) / (2 * 2.0**2) - ((y - 15) ** 2) / (2 * 1.5**2) - ((x - 15) ** 2) / (2 * 1.5**2))
    out = metrics.fwhm_3d(vol, voxel_um=(0.5, 0.2, 0.2))
    assert out["center"] == (10, 15, 15)
    assert out["lateral_um"] == pytest.approx(FWHM_PER_SIGMA * 1.5 * 0.2, rel=5e-3)
    assert out["axial_um"] == pytest.approx(FWHM_PER_SIGMA * 2.0 * 0.5, rel=5e-3)
    with pytest.raises(ValueError, match="center"):
        metrics.fwhm_3d(vol, center=(30, 0, 0))


def _sparrow_airy_um(lam, na):
    """Sparrow separation found independently: the inflection of the Airy intensity, doubled."""
    d2 = lambda r, h=1e-4: (airy([r + h], lam, na)[0] - 2 * airy([r], lam, na)[0] + airy([r - h], lam, na)[0]) / h**2
    return 2 * optimize.brentq(d2, 0.1 * lam / na, 0.4 * lam / na, xtol=1e-12)


@pytest.mark.parametrize("offset", [0.0, 0.31])
def test_sparrow_resolved_just_above_and_below(offset):
    lam, na = 0.52, 0.5
    s = _sparrow_airy_um(lam, na)
    assert s / (lam / na) == pytest.approx(0.4736, abs=2e-4)
    dx = s / 40
    x = (np.arange(241) - 120 + offset) * dx
    for factor, expect in ((1.03, True), (0.97, False), (1.5, True), (0.5, False)):
        sep = factor * s
        prof = airy(x - sep / 2, lam, na) + airy(x + sep / 2, lam, na)
        left = (-sep / 2) / dx + 120 - offset
        right = (sep / 2) / dx + 120 - offset
        assert metrics.sparrow_resolved(prof, left, right) is expect, factor
    # default positions (two highest local maxima) for a clearly resolved pair
    prof = airy(x - 0.75 * s, lam, na) + airy(x + 0.75 * s, lam, na)
    assert metrics.sparrow_resolved(prof) is True
    assert metrics.sparrow_resolved(gaussian(x, 0.0, s)) is False  # one spot


def test_sparrow_min_dip_rejects_noise_wiggle():
    x = np.arange(60, dtype=float)
    single = gaussian(x, 30, 6.0)
    wiggle = single.copy()
    wiggle[30] = wiggle[29] - 0.002  # a 0.2 % notch at the centre
    assert metrics.sparrow_resolved(wiggle, 27, 33) is True
    assert metrics.sparrow_resolved(wiggle, 27, 33, min_dip=0.01) is False
    pair = gaussian(x, 24, 3.0) + gaussian(x, 36, 3.0)  # deep dip
    assert metrics.sparrow_resolved(pair, 24, 36, min_dip=0.05) is True


def test_sparrow_ignores_dark_centred_spots():
    """Two overlapping rings (defocused spots with dark centres, ring radius 14 > separation 10): the
    profile between the centres is a bowl, but its flanking maxima are the far ring edges, outside
    the pair: not resolved.  Two compact spots at the same separation are."""
    x = np.arange(200, dtype=float)

    def ring(c):
        return gaussian(x, c - 14, 2.0) + gaussian(x, c + 14, 2.0)

    assert metrics.sparrow_resolved(ring(95) + ring(105), 95, 105) is False
    assert metrics.sparrow_resolved(gaussian(x, 95, 2.0) + gaussian(x, 105, 2.0), 95, 105) is True


def test_two_point_resolution_from_sweep():
    seps = [0.4, 0.5, 0.6, 0.7, 0.8]
    assert metrics.two_point_resolution(seps, [False, False, True, True, True]) == 0.6
    assert metrics.two_point_resolution(seps[::-1], [True, True, True, False, False]) == 0.6
    # a spurious "resolved" below a failure does not count
    assert metrics.two_point_resolution(seps, [True, False, True, True, True]) == 0.6
    assert math.isnan(metrics.two_point_resolution(seps, [True, True, True, True, False]))
    with pytest.raises(ValueError, match="separations"):
        metrics.two_point_resolution([1.0], [True, False])


def test_usable_depth_range_synthetic_curve():
    z = np.arange(-60.0, 61.0, 3.0)
    res = np.maximum(0.5, 0.05 * np.abs(z))  # crosses 2.0 at |z| = 40
    r = metrics.usable_depth_range(z, res, 2.0)
    assert (r.z_min_um, r.z_max_um, r.length_um) == pytest.approx((-40.0, 40.0, 80.0))
    assert not r.open_low and not r.open_high
    # asymmetric, with an unresolved depth beyond the crossing
    res2 = res.copy()
    res2[z > 30] = np.nan
    r2 = metrics.usable_depth_range(z, res2, 2.0)
    assert r2.z_min_um == pytest.approx(-40.0) and r2.z_max_um == pytest.approx(30.0)
    # reaching the sampled end is flagged
    r3 = metrics.usable_depth_range(z, res, 5.0)
    assert r3.open_low and r3.open_high and r3.length_um == pytest.approx(120.0)


def test_usable_depth_range_lfm_band():
    z = np.arange(-60.0, 61.0, 2.0)
    res = np.maximum(0.5, 0.05 * np.abs(z))
    res[np.abs(z) < 10] = 7.5  # artifact band: d / M
    assert metrics.usable_depth_range(z, res, 2.0).length_um == 0.0
    r = metrics.usable_depth_range(z, res, 2.0, exclude_band_um=10.0)
    assert (r.z_min_um, r.z_max_um) == pytest.approx((-40.0, 40.0))
    # only one side passes outside the band
    res_one = res.copy()
    res_one[z < 0] = np.nan
    r1 = metrics.usable_depth_range(z, res_one, 2.0, exclude_band_um=10.0)
    assert (r1.z_min_um, r1.z_max_um) == pytest.approx((10.0, 40.0))
    with pytest.raises(ValueError, match="threshold_um"):
        metrics.usable_depth_range(z, res, -1.0)


def test_localization_error_permuted_and_shifted():
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 100, (10, 3))
    est = truth[::-1] + np.array([0.3, -0.4, 0.0])
    out = metrics.localization_error(est, truth)
    assert out["rms"] == pytest.approx(0.5, rel=1e-12)
    np.testing.assert_allclose(out["mean_offset"], [0.3, -0.4, 0.0], atol=1e-12)
    assert out["missed"] == 0
    assert metrics.localization_error(est[:7], truth)["missed"] == 3


def test_nrmse():
    t = np.array([0.0, 1.0, 2.0, 3.0])
    assert metrics.nrmse(t + 0.3, t) == pytest.approx(0.1)
    assert metrics.nrmse(2.5 * t, t, fit_scale=True) == pytest.approx(0.0, abs=1e-12)
    assert metrics.nrmse(t + 0.3, t, normalization="mean") == pytest.approx(0.2)
    with pytest.raises(ValueError, match="normalization"):
        metrics.nrmse(t, t, normalization="max")


def test_peak_positions_subvoxel():
    z, y, x = np.meshgrid(np.arange(16.0), np.arange(32.0), np.arange(32.0), indexing="ij")
    true = np.array([[5.2, 8.3, 9.6], [10.0, 20.4, 22.8]])
    vol = sum(np.exp(-((z - a) ** 2 + (y - b) ** 2 + (x - c) ** 2) / (2 * 0.8**2)) for a, b, c in true)
    pos = metrics.peak_positions(vol, spacing=(2.0, 0.5, 0.5), num_peaks=2)
    err = metrics.localization_error(pos, true * np.array([2.0, 0.5, 0.5]))
    assert err["missed"] == 0
    assert np.all(err["errors"] < 0.3)  # 3^3 centroid on sigma = 0.8 voxel: bias < 0.3 voxel


def test_fraction_resolved_two_thirds_rule_is_the_median_of_three():
    seps = [1.0, 1.5, 2.0, 2.5, 3.0]
    rep = [[False, False, True, True, True], [False, True, True, True, True], [False, False, False, True, True]]
    frac, dec = metrics.fraction_resolved(rep)
    assert frac.tolist() == pytest.approx([0, 1 / 3, 2 / 3, 1, 1])
    assert dec.tolist() == [False, False, True, True, True]
    per = [metrics.two_point_resolution(seps, r) for r in rep]
    assert metrics.two_point_resolution(seps, dec) == metrics.repeat_spread(per)[0] == 2.0
    assert metrics.repeat_spread(per)[1:] == (1.5, 2.5)
    with pytest.raises(ValueError, match="resolved"):
        metrics.fraction_resolved([True, False])


def test_repeat_spread_unresolved_repeat():
    med, lo, hi = metrics.repeat_spread([1.0, float("nan"), 2.0])
    assert med == 2.0 and lo == 1.0 and hi == float("inf")
    assert all(np.isnan(metrics.repeat_spread([float("nan")] * 3)))


def test_depth_range_per_side():
    r = metrics.usable_depth_range([-20, -10, 0, 10, 20, 30], [5, 2, 9, 2, 2, 5], 4.0, exclude_band_um=5.0)
    below, above = r.per_side_um()
    assert below + above == pytest.approx(r.length_um)
    assert below == pytest.approx(-r.z_min_um) and above == pytest.approx(r.z_max_um)
    assert metrics.DepthRange(float("nan"), float("nan"), 0.0, False, False).per_side_um() == (0.0, 0.0)
    assert metrics.DepthRange(5.0, 15.0, 10.0, False, False).per_side_um() == (0.0, 10.0)
