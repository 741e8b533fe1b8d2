"""Debye integrals against PHYSICS.md section 6 (checks 1, 2, 4, 6) and independent closed forms."""

import math

import numpy as np
import pytest
from scipy import integrate, optimize, special

from optics.debye import quadrature_nodes, radial_field, vectorial_integrals, widefield_intensity

LAM = 0.52


def first_zero(na, n, apod, lam=LAM):
    f = lambda r: widefield_intensity(np.array([r]), 0.0, wavelength_um=lam, na=na, n=n, apodization=apod)[0]
    r = np.linspace(0.3, 0.8, 501) * lam / na
    vals = widefield_intensity(r, 0.0, wavelength_um=lam, na=na, n=n, apodization=apod)
    i = int(np.argmin(vals))
    res = optimize.minimize_scalar(f, bracket=(r[i - 1], r[i], r[i + 1]), tol=1e-12)
    return res.x / (lam / na)  # in units of lambda/NA... converted below


@pytest.mark.parametrize(
    "apod,expected", [("uniform", 3.1690), ("sqrtcos", 3.1701), ("sqrtcos-1pluscos", 3.1711)]
)
def test_low_na_first_zero_matches_airy(apod, expected):
    # Check 1 (set C, NA 0.1 in air): first zero in µm at lambda 0.52
    r0 = first_zero(0.1, 1.0, apod) * LAM / 0.1
    assert r0 == pytest.approx(expected, abs=2e-4)
    airy = special.jn_zeros(1, 1)[0] / (2 * math.pi) * LAM / 0.1  # 3.1711
    assert r0 == pytest.approx(airy, rel=1e-3)


@pytest.mark.parametrize(
    "apod,expected", [("uniform", 0.62779), ("sqrtcos", 0.63099), ("sqrtcos-1pluscos", 0.63417)]
)
def test_set_A_first_zero(apod, expected):
    r0 = first_zero(0.5, 1.33, apod) * LAM / 0.5
    assert r0 == pytest.approx(expected, abs=1e-4)
    assert r0 == pytest.approx(0.63423, rel=0.011)


def _fwhm(x, y):
    y = y / y[0]
    i = np.argmax(y < 0.5)
    return 2 * np.interp(0.5, [y[i], y[i - 1]], [x[i], x[i - 1]])


@pytest.mark.parametrize("na,n,lat,ax", [(0.5, 1.33, 0.53329, 4.7221), (0.95, 1.0, 0.26982, 0.6832)])
def test_fwhm_sets_A_B(na, n, lat, ax):
    # Check 4: half-maximum points found by root-finding (independent of any sampling grid)
    kw = dict(wavelength_um=LAM, na=na, n=n)
    i0 = widefield_intensity(np.zeros(1), 0.0, **kw)[0]
    half_r = optimize.brentq(lambda r: widefield_intensity(np.array([r]), 0.0, **kw)[0] / i0 - 0.5, 1e-3, lat, xtol=1e-9)
    half_z = optimize.brentq(lambda z: abs(radial_field(np.zeros(1), z, **kw)[0]) ** 2 / i0 - 0.5, 1e-3, ax, xtol=1e-9)
    assert 2 * half_r == pytest.approx(lat, rel=2e-4)
    assert 2 * half_z == pytest.approx(ax, rel=2e-4)


def test_conjugate_symmetry_in_z():
    # Check 6: U(r, -z) = conj U(r, z)
    r = np.linspace(0, 5, 200)
    up = radial_field(r, 7.3, wavelength_um=LAM, na=0.5, n=1.33)
    um = radial_field(r, -7.3, wavelength_um=LAM, na=0.5, n=1.33)
    assert np.max(np.abs(um - np.conj(up))) <= 1e-14 * np.max(np.abs(up))


def test_against_adaptive_quadrature():
    # independent integration method (scipy.integrate.quad) at an off-axis, defocused point
    na, n, z, r = 0.8, 1.33, 12.0, 1.7
    k = 2 * math.pi * n / LAM
    a = math.asin(na / n)
    f = lambda t, part: (np.sqrt(np.cos(t)) * special.j0(k * r * np.sin(t)) * np.sin(t) * np.exp(1j * k * z * np.cos(t))).__getattribute__(part)
    ref = integrate.quad(f, 0, a, args=("real",), limit=500, epsabs=1e-13)[0] + 1j * integrate.quad(
        f, 0, a, args=("imag",), limit=500, epsabs=1e-13
    )[0]
    got = radial_field(np.array([r]), z, wavelength_um=LAM, na=na, n=n)[0]
    assert abs(got - ref) <= 1e-10 * abs(ref) + 1e-12


def test_paraxial_axial_intensity_closed_form():
    # uniform pupil on axis: |U|^2 ∝ sinc^2(k z (1 - cos a) / 2), exact for P = 1 in the cos-theta form
    na, n = 0.3, 1.0
    k, a = 2 * math.pi * n / LAM, math.asin(na / n)
    z = np.linspace(0.1, 20, 50)
    got = np.array([abs(radial_field(np.zeros(1), zz, wavelength_um=LAM, na=na, n=n, apodization="uniform")[0]) ** 2 for zz in z])
    u0 = abs(radial_field(np.zeros(1), 0.0, wavelength_um=LAM, na=na, n=n, apodization="uniform")[0]) ** 2
    ref = np.sinc(k * z * (1 - math.cos(a)) / 2 / math.pi) ** 2
    np.testing.assert_allclose(got / u0, ref, atol=1e-10)
    # first axial zero lambda0 / (n (1 - cos a)) (PHYSICS.md section 5)
    z0 = LAM / (n * (1 - math.cos(a)))
    assert abs(radial_field(np.zeros(1), z0, wavelength_um=LAM, na=na, n=n, apodization="uniform")[0]) ** 2 < 1e-20 * u0


def test_vectorial_to_scalar_fwhm_ratio():
    # PHYSICS.md section 2: vectorial/scalar FWHM 1.014 (0.5 water), 1.156 (0.95 air)
    for na, n, ratio in [(0.5, 1.33, 1.014), (0.95, 1.0, 1.156)]:
        r = np.linspace(0, 0.6, 6001)
        s = _fwhm(r, widefield_intensity(r, 0.0, wavelength_um=LAM, na=na, n=n))
        v = _fwhm(r, widefield_intensity(r, 0.0, wavelength_um=LAM, na=na, n=n, vectorial=True))
        assert v / s == pytest.approx(ratio, abs=2e-3)


def test_vectorial_on_axis_limits():
    i0, i1, i2 = vectorial_integrals(np.zeros(1), 0.0, wavelength_um=LAM, na=0.5, n=1.33)
    assert abs(i1[0]) < 1e-15 and abs(i2[0]) < 1e-15 and abs(i0[0]) > 0


def test_quadrature_node_rule_grows_with_defocus():
    assert quadrature_nodes(0, 0, LAM, 0.5, 1.33) == 128
    assert quadrature_nodes(50, 0, LAM, 0.95, 1.0) >= 200  # set B at z = 50 needs >= 200 (PHYSICS.md)
    r = np.linspace(0, 30, 300)
    ref = radial_field(r, 50.0, wavelength_um=LAM, na=0.95, n=1.0, nodes=2000)
    got = radial_field(r, 50.0, wavelength_um=LAM, na=0.95, n=1.0)
    assert np.max(np.abs(got - ref)) < 1e-9 * np.max(np.abs(ref))


def test_bad_input():
    with pytest.raises(ValueError, match="apodization"):
        radial_field(np.zeros(1), 0, wavelength_um=LAM, na=0.5, n=1.33, apodization="gauss")
    with pytest.raises(ValueError, match="na"):
        radial_field(np.zeros(1), 0, wavelength_um=LAM, na=1.5, n=1.33)
