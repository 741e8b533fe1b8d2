"""optics.theory against independently computed numbers.

References are computed here another way: Bessel functions from their integral representation
(not scipy.special), root-finding on the Airy and sinc^2 profiles, numerical quadrature of the
axial Debye integral, ray geometry, and the worked numbers of ../shared/PHYSICS.md sec. 5 (sets A
and B).  Each assertion states its tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, optimize

from optics import presets, theory

# PHYSICS.md sec. 6: set A (20x/0.5W, 150 um f/20, 10 um px) and set B (40x/0.95 air)
A = dict(lam=0.52, na=0.5, n=1.33, M=20.0, d=150.0, f=3000.0, p=10.0)
B = dict(lam=0.52, na=0.95, n=1.0, M=40.0, d=150.0, f=3000.0, p=10.0)


def j1_integral(x: float) -> float:
    """Bessel J1 from its integral representation (1/pi) int_0^pi cos(t - x sin t) dt."""
    return integrate.quad(lambda t: math.cos(t - x * math.sin(t)), 0.0, math.pi, epsabs=1e-13)[0] / math.pi


def airy_intensity(v: float) -> float:
    return 1.0 if v == 0 else (2 * j1_integral(v) / v) ** 2


def second_derivative(f, x: float, h: float = 1e-3) -> float:
    return (f(x + h) - 2 * f(x) + f(x - h)) / (h * h)


def sparrow_lambda_over_d(intensity, v_to_lambda_over_d: float, bracket) -> float:
    """Sparrow separation: f(x) = I(x - s/2) + I(x + s/2) is flat at 0 iff I''(s/2) = 0."""
    v_inflect = optimize.brentq(lambda v: second_derivative(intensity, v), *bracket, xtol=1e-10)
    return 2 * v_inflect * v_to_lambda_over_d


def test_rayleigh_is_first_airy_zero():
    j11 = optimize.brentq(j1_integral, 3.0, 4.5, xtol=1e-13)
    # object space: v = 2 pi NA r / lambda0, so the first zero sits at r = j11 / (2 pi) lambda0 / NA
    ref = j11 / (2 * math.pi) * A["lam"] / A["na"]
    assert theory.rayleigh_um(A["lam"], A["na"]) == pytest.approx(ref, rel=1e-9)
    assert theory.rayleigh_um(A["lam"], A["na"]) / (A["lam"] / A["na"]) == pytest.approx(0.6098, abs=1e-4)


def test_sparrow_constants_by_root_finding():
    # Airy: I(v) = (2 J1(v)/v)^2 with v = pi x for x in units of lambda/D  ->  x = v / pi
    airy = sparrow_lambda_over_d(airy_intensity, 1 / math.pi, (1.0, 2.5))
    assert airy == pytest.approx(0.9472, abs=2e-4)  # PHYSICS.md sec. 6 item 16
    assert theory.SPARROW_AIRY_LAMBDA_OVER_D == pytest.approx(airy, rel=2e-4)
    # sinc^2 (square pupil): I(x) = (sin(pi x)/(pi x))^2 with x in lambda/D
    sinc2 = sparrow_lambda_over_d(lambda x: (math.sin(math.pi * x) / (math.pi * x)) ** 2, 1.0, (0.2, 0.7))
    assert sinc2 == pytest.approx(0.8296, abs=2e-4)
    assert theory.SPARROW_SINC2_LAMBDA_OVER_D == pytest.approx(sinc2, rel=2e-4)
    # object space: lambda/D -> lambda0 / (2 NA)
    assert theory.sparrow_um(A["lam"], A["na"]) == pytest.approx(airy / 2 * A["lam"] / A["na"], rel=2e-4)
    assert theory.sparrow_um(1.0, 1.0) == pytest.approx(0.4736, abs=1e-4)


def test_sparrow_sum_of_two_airy_spots_is_flat():
    """Two Airy spots at the Sparrow distance: the midpoint curvature changes sign across it."""
    lam, na = A["lam"], A["na"]
    s = theory.sparrow_um(lam, na)

    def pair(x, sep):
        v = lambda r: 2 * math.pi * na * abs(r) / lam
        return airy_intensity(v(x - sep / 2)) + airy_intensity(v(x + sep / 2))

    assert second_derivative(lambda x: pair(x, 1.01 * s), 0.0, 1e-3) > 0  # dip: resolved
    assert second_derivative(lambda x: pair(x, 0.99 * s), 0.0, 1e-3) < 0  # peak: not resolved


def test_abbe_is_incoherent_otf_cutoff():
    """The incoherent OTF (pupil autocorrelation) of a disk of radius NA/lambda0 ends at 2 NA/lambda0."""
    lam, na = 0.5, 0.8
    nfreq, df = 1024, 0.01  # cycles/µm per sample; support 2 NA/lambda0 = 3.2 fits without wrap
    f = (np.arange(nfreq) - nfreq // 2) * df
    fy, fx = np.meshgrid(f, f, indexing="ij")
    pupil = (np.hypot(fx, fy) <= na / lam).astype(float)
    otf = np.fft.fftshift(np.abs(np.fft.ifft2(np.abs(np.fft.fft2(pupil)) ** 2)))
    row = otf[nfreq // 2, nfreq // 2:]
    cutoff = np.max(np.nonzero(row > 1e-6 * row[0])[0]) * df
    assert 1 / cutoff == pytest.approx(theory.abbe_um(lam, na), rel=0.01)  # one frequency sample


def _axial_intensity_exact(z, lam, na, n):
    alpha = math.asin(na / n)
    k = 2 * math.pi * n / lam
    re = integrate.quad(lambda t: math.cos(k * z * math.cos(t)) * math.sin(t), 0, alpha, epsabs=1e-14)[0]
    im = integrate.quad(lambda t: math.sin(k * z * math.cos(t)) * math.sin(t), 0, alpha, epsabs=1e-14)[0]
    return re * re + im * im


def _axial_intensity_paraxial(z, lam, na, n):
    u = 2 * math.pi / lam * na * na * z / n
    re = integrate.quad(lambda r: math.cos(u * r * r / 2) * r, 0, 1, epsabs=1e-14)[0]
    im = integrate.quad(lambda r: math.sin(u * r * r / 2) * r, 0, 1, epsabs=1e-14)[0]
    return re * re + im * im


@pytest.mark.parametrize("sys", [A, B], ids=["setA", "setB"])
def test_axial_first_zero_by_quadrature(sys):
    lam, na, n = sys["lam"], sys["na"], sys["n"]
    guess = theory.axial_first_zero_um(lam, na, n)
    res = optimize.minimize_scalar(_axial_intensity_exact, bounds=(0.7 * guess, 1.3 * guess),
                                   args=(lam, na, n), method="bounded", options={"xatol": 1e-9})
    assert _axial_intensity_exact(res.x, lam, na, n) < 1e-12 * _axial_intensity_exact(0, lam, na, n)
    assert guess == pytest.approx(res.x, rel=1e-5)
    g2 = theory.axial_first_zero_paraxial_um(lam, na, n)
    res2 = optimize.minimize_scalar(_axial_intensity_paraxial, bounds=(0.7 * g2, 1.3 * g2),
                                    args=(lam, na, n), method="bounded", options={"xatol": 1e-9})
    assert g2 == pytest.approx(res2.x, rel=1e-5)


def test_axial_exact_tends_to_paraxial_at_low_na():
    lam, n = 0.52, 1.0
    for na, tol in ((0.05, 1e-3), (0.1, 3e-3)):
        assert theory.axial_first_zero_um(lam, na, n) == pytest.approx(
            theory.axial_first_zero_paraxial_um(lam, na, n), rel=tol)
    # at NA 0.95 the paraxial form overestimates the distance by more than 30 %
    assert theory.axial_first_zero_paraxial_um(0.52, 0.95, 1.0) > 1.3 * theory.axial_first_zero_um(0.52, 0.95, 1.0)


def test_depth_of_field_inoue_terms():
    lam, na, n, e, mag = A["lam"], A["na"], A["n"], 6.5, A["M"]
    # wave term: half the paraxial axial zero-to-focus distance found by quadrature
    g = theory.axial_first_zero_paraxial_um(lam, na, n)
    z0 = optimize.minimize_scalar(_axial_intensity_paraxial, bounds=(0.7 * g, 1.3 * g), args=(lam, na, n),
                                  method="bounded", options={"xatol": 1e-9}).x
    # geometric term: depth over which the blur circle (paraxial marginal ray slope NA/n) stays within e/M
    zg = optimize.brentq(lambda z: 2 * z * na / n - e / mag, 0, 100)
    assert theory.depth_of_field_um(lam, na, n, e, mag) == pytest.approx(z0 / 2 + 2 * zg, rel=1e-6)
    assert theory.depth_of_field_um(lam, na, n) == pytest.approx(z0 / 2, rel=1e-6)


def test_spots_per_lenslet_and_4d_budget():
    """PHYSICS.md sec. 5: set A, 2048 x 6.5 µm sensor: 88.7 lenslets x 15.3 spots = 1362 ~ 1351 wide-field spots."""
    sensor = 2048 * 6.5
    nu = theory.spots_per_lenslet(A["lam"], A["na"], A["d"], A["M"])
    assert nu == pytest.approx(15.34, abs=0.01)
    lf = theory.lfm_samples_per_axis(sensor, A["d"], A["lam"], A["na"], A["M"])
    wf = theory.widefield_spots_per_axis(sensor / A["M"], A["lam"], A["na"])
    assert lf == pytest.approx(1362, abs=1)
    assert wf == pytest.approx(1351, abs=1)
    assert lf == pytest.approx(wf, rel=0.01)  # the budget is conserved to the 0.47 vs 0.4736 rounding


def test_perspective_dof_is_inoue_with_lenslet_as_pixel():
    """L06's D1 = (2 + N_u) lambda n / (2 NA^2) reproduces the Inoue form with e = d (to 0.94 vs 1)."""
    lam, na, n, d, mag = A["lam"], A["na"], A["n"], A["d"], A["M"]
    d1 = theory.perspective_dof_um(lam, na, n, d, mag)
    inoue = theory.depth_of_field_um(lam, na, n, d, mag)
    assert d1 == pytest.approx(inoue, rel=0.06)


@pytest.mark.parametrize(("sys", "z", "ref"), [
    (A, [10, 25, 50, 100], [0.49, 1.23, 2.45, 4.90]),
    (B, [10, 25, 50], [1.30, 3.26, 6.52]),
], ids=["setA", "setB"])
def test_lfm_band_limit_physics_numbers(sys, z, ref):
    got = theory.lfm_band_limit_um(z, sys["lam"], sys["n"], sys["d"], sys["M"])
    np.testing.assert_allclose(got, ref, rtol=6e-3)  # the references have 3 significant digits


def test_lfm_band_limit_from_lenslet_aperture_geometry():
    """Independent picture: a point at depth z focuses M^2 |z| / n from the MLA; one lenslet of width d is
    then an aperture of angular size d / (M^2 |z| / n), whose Sparrow limit (0.9472 lambda/D, found by
    root-finding above) referred to object space (/M) must match 0.94 lambda0 M |z| / (n d) within 1 %."""
    sparrow = sparrow_lambda_over_d(airy_intensity, 1 / math.pi, (1.0, 2.5))
    for sys in (A, B):
        for z in (5.0, 20.0, 80.0):
            dist = sys["M"] ** 2 * z / sys["n"]
            ref = sparrow * sys["lam"] * dist / sys["d"] / sys["M"]
            assert theory.lfm_band_limit_um(z, sys["lam"], sys["n"], sys["d"], sys["M"]) == pytest.approx(ref, rel=0.01)


def test_pixel_limit_equals_band_limit_when_nnum_is_2nu():
    lam, na, n, d, mag, f = A["lam"], A["na"], A["n"], A["d"], A["M"], A["f"]
    nu = theory.spots_per_lenslet(lam, na, d, mag)
    p = d / (2 * nu)
    # with f-number matching f = d M / (2 NA) the two terms agree up to 0.94 / (2 * 0.47) = 1
    f_matched = d * mag / (2 * na)
    assert theory.lfm_pixel_limit_um(30.0, n, p, mag, f_matched) == pytest.approx(
        theory.lfm_band_limit_um(30.0, lam, n, d, mag), rel=1e-9)
    # the design model is the max of the three terms
    z = np.array([0.0, 1.0, 30.0])
    model = theory.lfm_lateral_resolution_um(z, lam, na, n, d, mag, 10.0, f)
    assert model[0] == pytest.approx(0.47 * lam / na)
    assert model[2] == pytest.approx(max(theory.lfm_band_limit_um(30.0, lam, n, d, mag),
                                         theory.lfm_pixel_limit_um(30.0, n, 10.0, mag, f)))


@pytest.mark.parametrize(("sys", "band", "useful"), [(A, 9.98, 153.0), (B, 1.97, 28.8)], ids=["setA", "setB"])
def test_artifact_band_and_useful_range(sys, band, useful):
    lam, na, n, d, mag = sys["lam"], sys["na"], sys["n"], sys["d"], sys["M"]
    assert theory.artifact_band_um(na, n, d, mag) == pytest.approx(band, abs=0.006)
    assert theory.useful_range_um(lam, n, d, mag) == pytest.approx(useful, rel=3e-3)
    # the band: geometric blur diameter at the MLA, 2 M |z| NA / n (paraxial rays), equals one lenslet
    zb = optimize.brentq(lambda z: 2 * mag * z * na / n - d, 0, 1e3)
    assert theory.artifact_band_um(na, n, d, mag) == pytest.approx(zb, rel=1e-9)
    # the useful range: band limit equals the rendering resolution d / M
    zu = optimize.brentq(lambda z: theory.lfm_band_limit_um(z, lam, n, d, mag) - d / mag, 1e-3, 1e4)
    assert theory.useful_range_um(lam, n, d, mag) == pytest.approx(zu, rel=1e-9)


def test_field_of_view():
    assert theory.field_of_view_um(2048 * 6.5, 20) == pytest.approx(665.6)  # sensor-limited
    assert theory.field_of_view_um(2048 * 16.0, 10) == pytest.approx(2200.0)  # 22 mm field number
    np.testing.assert_allclose(theory.field_of_view_um((1000.0, 30000.0), 10, field_number_um=25000),
                               [100.0, 2500.0])


def test_resolvable_voxels():
    # constant resolution: A L / (dx^2 dz)
    z = np.linspace(-50, 50, 11)
    assert theory.resolvable_voxels((100.0, 200.0), z, 2.0, 4.0) == pytest.approx(100 * 200 * 100 / (4 * 4), rel=1e-12)
    # dx = c z on [1, 2], dz = 1: integral A / (c^2 z^2) dz = A / (2 c^2)
    z = np.linspace(1, 2, 4001)
    got = theory.resolvable_voxels((10.0, 10.0), z, 0.5 * z, 1.0)
    assert got == pytest.approx(100 / (2 * 0.25), rel=1e-6)
    # one plane: resolvable spots; unresolved depths count zero
    assert theory.resolvable_voxels((10.0, 10.0), [0.0], 0.5, 1.0) == pytest.approx(400.0)
    assert theory.resolvable_voxels((10.0, 10.0), [0.0, 1.0], [np.nan, np.nan], 1.0) == 0.0


def test_widefield_defocus_two_disks():
    """Two uniform blur disks (diameter 2 z tan alpha, traced here with the marginal ray) on a fine grid:
    the line profile through them has a zero at the midpoint only beyond one diameter."""
    lam, na, n, z = 0.52, 0.5, 1.33, 3.0
    alpha = math.asin(na / n)
    diam = 2 * z * math.tan(alpha)
    assert theory.widefield_defocus_resolution_um(z, lam, na, n) == pytest.approx(diam, rel=1e-12)
    x = np.linspace(-3 * diam, 3 * diam, 6001)
    for factor, dip in ((1.02, True), (0.98, False)):
        sep = factor * diam
        prof = (np.abs(x - sep / 2) <= diam / 2).astype(float) + (np.abs(x + sep / 2) <= diam / 2)
        assert bool(prof[np.argmin(np.abs(x))] < prof.max()) is dip
    assert theory.widefield_defocus_resolution_um(0.0, lam, na, n) == pytest.approx(theory.sparrow_um(lam, na))


def test_lateral_resolution_from_microscope():
    wf = presets.get("widefield-20x-0.5w")
    assert theory.lateral_resolution_m(wf, 0.0) == pytest.approx(0.4736 * 0.52 / 0.5, rel=1e-4)
    m = presets.get("lfm-20x-0.5w")
    res = theory.lateral_resolution_m(m, np.array([0.0, 5.0, 50.0]))
    assert res[0] == pytest.approx(150 / 20) and res[1] == pytest.approx(150 / 20)  # artifact band -> d/M
    assert res[2] == pytest.approx(max(2.45, 2 * 50 * 20 * 10 / (1.33 * 3000)), rel=3e-3)
    summ = theory.theory_summary(m)
    assert summ["artifact_band_um"] == pytest.approx(9.975)


@pytest.mark.parametrize(("call", "name"), [
    (lambda: theory.sparrow_um(520, 0.5), "wavelength_um"),
    (lambda: theory.axial_first_zero_um(0.52, 1.4, 1.33), "na"),
    (lambda: theory.rendering_resolution_um(-150, 20), "pitch_um"),
    (lambda: theory.field_of_view_um(0, 20), "sensor_um"),
    (lambda: theory.lfm_band_limit_um([np.nan], 0.52, 1.33, 150, 20), "z_um"),
])
def test_bad_input_names_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


def test_widefield_wave_defocus_model():
    lam, na, n = 0.52, 0.5, 1.33
    # at focus: the Sparrow limit
    assert theory.widefield_defocus_wave_resolution_um(0.0, lam, na, n) == pytest.approx(theory.sparrow_um(lam, na), rel=1e-9)
    # far from focus the 50%-energy radius tends to ray optics: z tan(theta50), 1 - cos(theta50) = (1 - cos a)/2
    a = math.asin(na / n)
    t50 = math.acos(1 - (1 - math.cos(a)) / 2)
    assert theory._ee50_radius_um(50.0, lam, na, n) == pytest.approx(50.0 * math.tan(t50), rel=0.01)
    # at focus the 50%-energy radius of the Airy pattern (low NA): 0.2572 lambda/NA (from 1 - J0^2 - J1^2 = 1/2)
    from scipy import optimize, special

    v50 = optimize.brentq(lambda v: 1 - special.j0(v) ** 2 - special.j1(v) ** 2 - 0.5, 0.5, 3.0)
    assert theory._ee50_radius_um(0.0, lam, 0.1, 1.0) == pytest.approx(v50 / (2 * math.pi) * lam / 0.1, rel=2e-3)
    z = np.array([0.5, 1.0, 2.0, 4.0, 8.0])
    wave = theory.widefield_defocus_wave_resolution_um(z, lam, na, n)
    assert np.all(np.diff(wave) > 0)
    # within the depth of field it stays near Sparrow, where the geometric blur disk is far larger
    assert wave[1] < 1.15 * theory.sparrow_um(lam, na) < theory.widefield_defocus_resolution_um(1.0, lam, na, n)


def test_two_point_separation_sparrow_and_rayleigh():
    """The criterion's theory side: dip 0 is Sparrow (PHYSICS.md 0.9472 lambda/D / 2); the dip two Airy
    patterns show at the Rayleigh distance, computed here on a fine grid, gives back 0.6098."""
    from scipy.special import j1

    assert theory.airy_two_point_separation(0.0) == pytest.approx(0.9472 / 2, abs=2e-4)
    s = 0.6098
    x = np.linspace(-1.5 * s, 1.5 * s, 200001)
    airy = lambda u: (2 * j1(2 * np.pi * np.abs(u) + 1e-12) / (2 * np.pi * np.abs(u) + 1e-12)) ** 2
    prof = airy(x - s / 2) + airy(x + s / 2)
    dip = 1 - prof[x.size // 2] / prof.max()
    assert dip == pytest.approx(0.265, abs=0.002)  # Born & Wolf: the midpoint is 0.735 of the maxima
    assert theory.airy_two_point_separation(dip) == pytest.approx(s, rel=1e-3)
    assert theory.criterion_factor(0.0) == 1.0
    assert theory.criterion_factor(0.1) == pytest.approx(theory.airy_two_point_separation(0.1) / 0.47358, rel=1e-4)
    with pytest.raises(ValueError, match="min_dip"):
        theory.airy_two_point_separation(-0.1)


def test_lateral_resolution_scales_with_the_criterion():
    f = theory.criterion_factor(0.1)
    w0 = theory.widefield_defocus_wave_resolution_um(0.0, 0.52, 0.5, 1.33)
    assert theory.widefield_defocus_wave_resolution_um(0.0, 0.52, 0.5, 1.33, 0.1) == pytest.approx(f * w0)
    args = (0.52, 0.5, 1.33, 150.0, 20.0, 10.0, 3000.0)
    # at focus the diffraction term holds and scales; at 50 um the (unscaled) pixel-angle term holds
    assert theory.lfm_lateral_resolution_um(0.0, *args, 0.1) == pytest.approx(f * 0.47 * 0.52 / 0.5)
    assert theory.lfm_lateral_resolution_um(50.0, *args, 0.1) == pytest.approx(theory.lfm_lateral_resolution_um(50.0, *args))
