"""Gibson-Lanni index mismatch ([aberrations] sample_index, focus_depth_um, coverslip_*; optics.pupil).

Checked against independent numbers: a matched sample is today's kernels bit for bit; the paraxial
focal shift (a source at depth t_s is in focus at the nominal depth t_s n_i / n_s); the on-axis
intensity of a brute-force midpoint quadrature over rho written here (not lfmsim's code) of GL91's
optical path, t_s sqrt(n_s^2 - NA^2 rho^2) - d sqrt(n_i^2 - NA^2 rho^2) (+ coverslip terms), with the
sqrt(cos) apodization: its peak positions (high NA), Strehl ratios and Marechal's exp(-(2 pi sigma)^2)
with the rms sigma of the residual after a weighted least-squares piston and focus, which is linear
in t_s; the sign (oil objective into water: the focus is pulled toward the objective).
"""

import functools
import math

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from optics import compute_psf
from optics.config import ConfigError, Microscope, load_config, save_config
from optics.lfpsf import _RadialTable, sensor_pattern
from optics.support import CROP_TOLERANCE

LAM = 0.52


def _widefield(na, n_i, ab=None, *, pixel=1.0, z=(0.0, 0.0, 1.0), shape=(31, 31)):
    d = {"microscope": {"kind": "widefield", "wavelength_um": LAM},
         "objective": {"magnification": 20, "na": na, "immersion_index": n_i},
         "camera": {"pixel_um": pixel, "shape": list(shape)},
         "volume": {"z_min_um": z[0], "z_max_um": z[1], "z_step_um": z[2]}}
    if ab:
        d["aberrations"] = ab
    return Microscope.from_dict(d)


def _on_axis(m, z):
    """|U(0, z)|^2 from lfmsim's Debye table (the integral the kernels use)."""
    table = _RadialTable(m, float(z), 0.1)
    return abs(table.components(np.zeros(1), np.zeros(1), False)[0][0]) ** 2


def _direct(na, n_i, opd_um, n=200_000):
    """Independent on-axis intensity |int P e^{i k0 OPD} sin(theta) dtheta|^2 / |int P sin dtheta|^2 by
    the midpoint rule in rho (sin theta = rho sin alpha: the integrand is rho / sqrt(cos theta) for
    P = sqrt(cos theta)); ``opd_um(s)`` at s = NA rho."""
    rho = (np.arange(n) + 0.5) / n
    s = na * rho
    w = rho / np.sqrt(np.sqrt(1 - (s / n_i) ** 2))
    return abs(np.sum(w * np.exp(2j * np.pi * opd_um(s) / LAM))) ** 2 / np.sum(w) ** 2


def _c(n, s):
    return np.sqrt(n * n - s * s)


def _direct_sample(na, n_i, n_s, t_s, d):
    """``_direct`` of a source at depth t_s under the stage setting d: OPD = t_s c(n_s) - d c(n_i)."""
    return _direct(na, n_i, lambda s: t_s * _c(n_s, s) - d * _c(n_i, s))


def _peak(f, lo, hi, points=41):
    """Argmax and max of f on [lo, hi]: a grid, then Brent's method in the best bracket."""
    x = np.linspace(lo, hi, points)
    v = [f(t) for t in x]
    i = int(np.clip(np.argmax(v), 1, points - 2))
    r = minimize_scalar(lambda t: -f(t), bracket=(x[i - 1], x[i], x[i + 1]), tol=1e-12)
    return float(r.x), float(-r.fun)


def _stage_scan(na, n_i, n_s, t_s):
    """Nominal depth (stage setting focus_depth_um = d) at which lfmsim's on-axis intensity of a
    source at depth t_s (z = t_s - d) peaks, and the value relative to the matched in-focus peak."""
    i0 = _on_axis(_widefield(na, n_i), 0.0)

    def f(d):
        return _on_axis(_widefield(na, n_i, {"sample_index": n_s, "focus_depth_um": d}), t_s - d) / i0

    par = t_s * n_i / n_s
    return _peak(f, 0.8 * par, 1.2 * par)


def test_matched_sample_is_todays_kernels_exactly(m):
    """sample_index = the immersion index is the default: same hash, kernels bit for bit (LFM, wide-field)."""
    wf = _widefield(0.5, 1.33, pixel=4.0, z=(-4.0, 4.0, 4.0))
    for mic in (m, wf):
        same = mic.replace(aberrations={"sample_index": mic.objective.immersion_index})
        assert same.hash == mic.hash and not same.aberrations.active
        assert "aberrations" not in same.to_dict()
        a = compute_psf(mic, cache=False, progress=False)
        b = compute_psf(same, cache=False, progress=False)
        for ka, kb in zip(a.kernels, b.kernels):
            assert np.array_equal(ka, kb)


@pytest.mark.parametrize("n_i,n_s,t_s", [(1.515, 1.33, 500.0), (1.0, 1.33, 300.0)])
def test_paraxial_focal_shift_is_the_apparent_depth(n_i, n_s, t_s):
    """NA 0.1: the source at depth t_s is in focus (on-axis maximum) at the nominal depth t_s n_i / n_s
    (569.55 um for oil into water, 225.56 um for air into water), to 2e-3 relative (the terms beyond
    the paraxial one, ~ (NA / n)^2, move it by +3.3e-4 and -1.1e-3); and the direct quadrature's peak
    to 1e-6 um."""
    d, _ = _stage_scan(0.1, n_i, n_s, t_s)
    assert d == pytest.approx(t_s * n_i / n_s, rel=2e-3)
    ref, _ = _peak(functools.partial(_direct_sample, 0.1, n_i, n_s, t_s), 0.8 * t_s * n_i / n_s, 1.2 * t_s * n_i / n_s)
    assert d == pytest.approx(ref, abs=1e-6)


@pytest.mark.parametrize("na,n_i,n_s,t_s,expect", [
    (1.2, 1.515, 1.33, 10.0, 12.2822),  # oil into water: paraxially 11.391
    (1.0, 1.33, 1.45, 20.0, 17.6939),   # water dipping into dense tissue: paraxially 18.345
])
def test_high_na_focal_shift_against_direct_quadrature(na, n_i, n_s, t_s, expect):
    """High NA: the nominal depth of the on-axis maximum and its Strehl-like value against the direct
    quadrature of GL91's path (peak to 1e-5 um, value to 1e-7); the quadrature's peak is ``expect`` to
    1e-4 um (printed by it; far from the paraxial t_s n_i / n_s)."""
    d, peak = _stage_scan(na, n_i, n_s, t_s)
    ref, ref_peak = _peak(functools.partial(_direct_sample, na, n_i, n_s, t_s),
                          0.8 * t_s * n_i / n_s, 1.2 * t_s * n_i / n_s)
    assert ref == pytest.approx(expect, abs=1e-4)
    assert d == pytest.approx(ref, abs=1e-5)
    assert peak == pytest.approx(ref_peak, abs=1e-7)


def test_oil_objective_into_water_pulls_the_focus_toward_the_objective():
    """Sign: n_s < n_i (1.33 under a 1.515 oil objective, NA 0.5), stage at focus_depth_um = 50: the
    brightest source of the z-stack (compute_psf's kernels, centre pixel) lies at z < 0, toward the
    objective, at the direct quadrature's z* (-6.49; paraxially d (n_s / n_i - 1) = -6.11) to half a
    z step; n_s > n_i (1.45 under a water objective) moves it away (z* > 0).  The windows hold the
    mismatched kernels: discarded <= CROP_TOLERANCE."""
    for n_i, n_s in ((1.515, 1.33), (1.33, 1.45)):
        mic = _widefield(0.5, n_i, {"sample_index": n_s, "focus_depth_um": 50.0}, pixel=4.0,
                         z=(-12.0, 12.0, 1.0))
        psf = compute_psf(mic, cache=False, progress=False)
        centre = [float(k[0, 0][k.shape[2] // 2, k.shape[3] // 2]) for k in psf.kernels]
        z_code = float(psf.z_um[int(np.argmax(centre))])
        z_ref, _ = _peak(functools.partial(lambda z, n_i, n_s: _direct_sample(0.5, n_i, n_s, 50 + z, 50.0),
                                           n_i=n_i, n_s=n_s), -12.0, 12.0, points=97)
        assert abs(z_code - z_ref) <= 0.5 + 1e-9, (n_s, z_code, z_ref)
        assert (z_code < 0) == (n_s < n_i) and (z_ref < 0) == (n_s < n_i)
        assert z_ref == pytest.approx(50 * (n_s / n_i - 1), rel=0.1)
        assert float(psf.discarded.max()) <= CROP_TOLERANCE


def test_strehl_drop_grows_with_depth():
    """NA 0.8 water dipping into n_s = 1.40, sources at 10, 20, 40, 80 um, each at its best stage
    setting: the Strehl-like peak ratio equals the direct quadrature's (1e-9), and Marechal's
    exp(-(2 pi sigma)^2) (5e-4), sigma the weighted rms of t_s c(n_s) after a least-squares fit of
    1 and c(n_i) (the stage setting): sigma is linear in t_s, so 1 - S grows ~ t_s^2 (ratio 3.9-4.0
    per doubling)."""
    na, n_i, n_s = 0.8, 1.33, 1.40
    n = 200_000
    s = na * (np.arange(n) + 0.5) / n
    w = (s / na) / np.sqrt(np.sqrt(1 - (s / n_i) ** 2))
    w = w / w.sum()
    basis = np.stack([np.ones_like(s), _c(n_i, s)], axis=1) * np.sqrt(w)[:, None]
    strehl = []
    for t_s in (10.0, 20.0, 40.0, 80.0):
        d, peak = _stage_scan(na, n_i, n_s, t_s)
        _, ref = _peak(functools.partial(_direct_sample, na, n_i, n_s, t_s), 0.9 * d, 1.1 * d)
        assert peak == pytest.approx(ref, abs=1e-9)
        y = t_s * _c(n_s, s) * np.sqrt(w)
        res = y - basis @ np.linalg.lstsq(basis, y, rcond=None)[0]
        sigma = math.sqrt(float(res @ res)) / LAM
        assert peak == pytest.approx(math.exp(-(2 * math.pi * sigma) ** 2), abs=5e-4)
        strehl.append(peak)
    loss = 1 - np.array(strehl)
    assert np.all(np.diff(strehl) < 0)
    assert np.all((loss[1:] / loss[:-1] > 3.9) & (loss[1:] / loss[:-1] < 4.0))


def test_coverslip_thickness_error_against_direct_quadrature():
    """Dry NA 0.8 objective corrected for 170 um of n = 1.515 glass, used with 160 um: the on-axis
    maximum over z and its position against the direct quadrature of z c(1) + 160 c(1.515) - 170 c(1.515)
    (z* = 5.7452 um, paraxially 10 / 1.515 = 6.60, beyond the focus; S = 0.8864), to 1e-5 um and 1e-7."""
    mic = _widefield(0.8, 1.0, {"coverslip_index": 1.515, "coverslip_um": 160.0, "coverslip_design_um": 170.0})
    i0 = _on_axis(_widefield(0.8, 1.0), 0.0)
    z, peak = _peak(lambda z: _on_axis(mic, z) / i0, -5.0, 15.0)
    z_ref, ref = _peak(lambda z: _direct(0.8, 1.0, lambda s: z * _c(1.0, s) - 10 * _c(1.515, s)), -5.0, 15.0)
    assert z_ref == pytest.approx(5.7452, abs=1e-4) and ref == pytest.approx(0.8864, abs=1e-4)
    assert z == pytest.approx(z_ref, abs=1e-5)
    assert peak == pytest.approx(ref, abs=1e-7)


def test_lfm_kernels_with_index_mismatch_are_their_patterns(m):
    """LFM 20x/0.5W into n_s = 1.40 with the stage 20 um deep: each signed depth has its own table and the
    kernels equal ``sensor_pattern`` at the voxel centres (1e-5 of the maximum); they differ from the
    matched ones, and a source above the surface is refused."""
    ab = m.replace(aberrations={"sample_index": 1.40, "focus_depth_um": 20.0})
    psf = compute_psf(ab, cache=False, progress=False)
    n, s = ab.pixels_per_lenslet, ab.voxels_per_lenslet
    cs = (s - 1) / 2
    from optics.support import window_lenslets

    for iz, z in enumerate(psf.z_um):
        k = psf.kernels[iz]
        r = int(psf.radius_lenslets[iz])
        a, b = s - 1, 1
        img = sensor_pattern(ab, ((b - cs) * ab.voxel_um, (a - cs) * ab.voxel_um, z),
                             window_lenslets=window_lenslets(ab, z))
        cc = img.shape[0] // n // 2
        direct = img[(cc - r) * n:(cc + r + 1) * n, (cc - r) * n:(cc + r + 1) * n]
        assert np.max(np.abs(k[a, b] - direct)) < 1e-5 * direct.max(), z
    plain = compute_psf(m, cache=False, progress=False)
    for kp, ka in zip(plain.kernels, psf.kernels):
        if kp.shape == ka.shape:
            assert not np.allclose(kp, ka, atol=1e-3 * float(kp.max()))
    with pytest.raises(ValueError, match=r"above the sample surface.*focus_depth_um"):
        sensor_pattern(ab, (0.0, 0.0, -25.0))


def test_flfm_pupil_field_carries_the_gibson_lanni_phase(small_flfm):
    """Fourier LFM: the pupil field of a source at z with n_s = 1.38 and a 5 um coverslip error over the
    matched one is exp(2 pi i W), W = [t_s (c(n_s) - c(n_i)) + 165 c(1.52) - 170 c(1.515)] / lambda0 at
    s = |u| / F (n sin theta at the array), to 1e-9 rad inside the pupil."""
    from optics.flfm import pupil_field

    ab = small_flfm.replace(aberrations={"sample_index": 1.38, "focus_depth_um": 30.0, "coverslip_index": 1.52,
                                         "coverslip_um": 165.0, "coverslip_design_index": 1.515,
                                         "coverslip_design_um": 170.0})
    f = small_flfm.fourier_focal_um
    c = (np.arange(201) - 100) * (0.5 * f / 90)
    for z in (-20.0, 20.0):
        u = np.hypot(c[:, None], c[None, :])
        inside = u < 0.98 * 0.5 * f
        ratio = (pupil_field(ab, c, (0.0, 0.0, z), np.complex128)[inside]
                 / pupil_field(small_flfm, c, (0.0, 0.0, z), np.complex128)[inside])
        s = u[inside] / f
        w = ((30 + z) * (_c(1.38, s) - _c(1.33, s)) + 165 * _c(1.52, s) - 170 * _c(1.515, s)) / LAM
        np.testing.assert_allclose(np.abs(ratio), 1.0, atol=1e-12)
        err = np.angle(ratio * np.exp(-2j * np.pi * w))
        assert np.max(np.abs(err)) < 1e-9


def test_config_keys_round_trip_and_refusals(tmp_path, m):
    ab = {"sample_index": 1.40, "focus_depth_um": 15.0, "coverslip_index": 1.515, "coverslip_um": 160.0,
          "coverslip_design_um": 170.0}
    g = m.replace(aberrations=ab)
    assert g.to_dict()["aberrations"] == ab and g.hash != m.hash
    out = save_config(g, tmp_path / "g.toml")
    assert load_config(out) == g
    assert g.aberrations.coverslip == (1.515, 160.0, 1.515, 170.0)
    refusals = [
        ({"focus_depth_um": 10.0}, r"aberrations\.focus_depth_um = 10\.0.*acts only with aberrations\.sample_index"),
        ({"sample_index": 1.40}, r"volume\.z_min_um = -10.*above the surface.*focus_depth_um to at least 10"),
        ({"sample_index": 0.5}, r"aberrations\.sample_index = 0\.5.*1\.0 <= n <= 2\.0"),
        ({"sample_index": "water"}, r"aberrations\.sample_index = 'water'.*\"none\""),
        ({"focus_depth_um": -5.0}, r"aberrations\.focus_depth_um = -5\.0.*>= 0"),
        ({"coverslip_um": 170.0}, r"aberrations\.coverslip_index = 'none'.*needs the coverslip in use"),
        ({"coverslip_design_um": 170.0, "coverslip_index": 1.5},
         r"aberrations\.coverslip_um = 'none'.*needs the coverslip in use"),
        ({"coverslip_um": 170.0, "coverslip_index": 1.515}, r"aberrations\.coverslip_index.*equals its design"),
        ({"coverslip_um": -1.0}, r"aberrations\.coverslip_um = -1\.0.*>= 0"),
    ]
    for bad, msg in refusals:
        with pytest.raises(ConfigError, match=msg):
            m.replace(aberrations=bad)
    with pytest.raises(ConfigError, match=r"aberrations\.sample_index = 1\.3.*exceed objective\.na = 1\.4.*supercritical"):
        _widefield(1.4, 1.515, {"sample_index": 1.30, "focus_depth_um": 5.0})
    with pytest.raises(ConfigError, match=r"unknown key 'aberrations\.sample_indx'.*did you mean 'sample_index'"):
        Microscope.from_dict(m.to_dict() | {"aberrations": {"sample_indx": 1.4}})
