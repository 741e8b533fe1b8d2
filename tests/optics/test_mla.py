"""Microlens-array transmittance: closed form, periodicity, symmetry, focal length in air (k0, not n k0)."""

import math

import numpy as np
import pytest

from optics.mla import local_coordinate, transmittance
from optics.propagation import propagate

LAM, D, F = 0.52, 150.0, 3000.0


def test_closed_form_and_centre():
    # Odd grid, 45 samples per lenslet: the grid centre is a lenslet centre (optical axis).
    n, dx = 135, 150 / 45
    t = transmittance((n, n), dx, pitch_um=D, focal_um=F, wavelength_um=LAM)
    c = n // 2
    assert t[c, c] == 1
    i, j = c + 10, c - 7  # a sample of the central lenslet
    u2 = ((i - c) ** 2 + (j - c) ** 2) * dx**2
    assert t[i, j] == pytest.approx(np.exp(-1j * math.pi * u2 / (LAM * F)), abs=1e-14)
    # the neighbouring lenslet's centre is again phase 0
    assert t[c + 45, c] == pytest.approx(1.0, abs=1e-12)


def test_periodic_and_symmetric():
    n, dx = 225, 150 / 45
    t = transmittance((n, n), dx, pitch_um=D, focal_um=F, wavelength_um=LAM)
    assert np.max(np.abs(t[45:, :] - t[:-45, :])) < 1e-12
    assert np.max(np.abs(t[:, 45:] - t[:, :-45])) < 1e-12
    assert np.array_equal(t, t[::-1, :]) and np.array_equal(t, t[:, ::-1]) and np.array_equal(t, t.T)


def test_local_coordinate_range():
    u = local_coordinate(90, 150 / 45, 150.0)  # even grid: samples straddle the centre
    # samples on a lenslet boundary may be referred to either neighbour: only |u| is defined there
    assert np.all(np.abs(u) <= 75 + 1e-12)
    assert np.allclose(np.abs(u[45:]), np.abs(u[:-45]), rtol=0, atol=1e-12)
    assert np.allclose(np.abs(u), np.abs(u[::-1]), rtol=0, atol=1e-12)


def test_circle_aperture_fill_factor():
    n, dx = 45 * 5, 150 / 45
    t = transmittance((n, n), dx, pitch_um=D, focal_um=F, wavelength_um=LAM, aperture="circle")
    fill = np.mean(np.abs(t) > 0)
    assert fill == pytest.approx(math.pi / 4, abs=0.01)
    assert t[0, 0] == 0 or abs(local_coordinate(n, dx, D)[0]) < 75 / math.sqrt(2)
    assert np.all(np.isin(np.abs(t).round(12), [0.0, 1.0]))


def test_focal_length_is_in_air():
    """A plane wave through one circular lenslet gives, at z = f_ml, the Fraunhofer pattern of the
    aperture: an Airy disk whose first zero is 1.2197 lambda0 f_ml / d (k0, the array is in air).
    With n k0 (oLaF/Prevedel) the lens focal length would be f_ml / n and the pattern at f_ml a
    defocused blur."""
    from scipy import special

    n, dx = 300, 1.0
    t = transmittance((n, n), dx, pitch_um=D, focal_um=F, wavelength_um=LAM, aperture="circle")
    x = (np.arange(n) - (n - 1) / 2) * dx
    t = t * ((x[:, None] ** 2 + x[None, :] ** 2) <= 75**2)  # the central lenslet only
    row = np.abs(propagate(t, dx, F, LAM, method="fresnel")[n // 2]) ** 2
    r = np.abs(x)
    core = r < 12.0
    v = math.pi * D * r[core] / (LAM * F)
    airy = np.where(v > 0, (2 * special.j1(v) / np.where(v > 0, v, 1)) ** 2, 1.0)
    assert np.max(np.abs(row[core] / row.max() - airy)) < 0.03
    # the same lens with n k0 (focal length F / 1.33) does not form that pattern at F
    t2 = transmittance((n, n), dx, pitch_um=D, focal_um=F / 1.33, wavelength_um=LAM, aperture="circle")
    t2 = t2 * ((x[:, None] ** 2 + x[None, :] ** 2) <= 75**2)
    row2 = np.abs(propagate(t2, dx, F, LAM, method="fresnel")[n // 2]) ** 2
    assert np.max(np.abs(row2[core] / row2.max() - airy)) > 0.2


@pytest.mark.parametrize(
    "kwargs,name",
    [({"aperture": "hex"}, "aperture"), ({"focal_um": -1.0}, "focal_um"), ({"wavelength_um": 520}, "wavelength_um")],
)
def test_bad_input(kwargs, name):
    args = {"pitch_um": D, "focal_um": F, "wavelength_um": LAM} | kwargs
    with pytest.raises(ValueError, match=name):
        transmittance((8, 8), 1.0, **args)


# --------------------------------------------------------------------- band-limited array (issue 7)
def test_square_harmonics_closed_form_against_quadrature():
    """c_k of the Fresnel-integral closed form against a direct Gauss-Legendre quadrature of
    (1/d) int exp(-i pi u^2 / (lambda f)) exp(-2 pi i k u / d) du (an independent evaluation)."""
    from optics.debye import gauss_legendre
    from optics.mla import lenslet_harmonics

    c = lenslet_harmonics(25, pitch_um=D, focal_um=F, wavelength_um=LAM)
    x, w = gauss_legendre(1200)
    u, w = D / 2 * x, D / 2 * w
    k = np.arange(-25, 26)
    direct = (np.exp(-1j * math.pi * u**2 / (LAM * F)) * np.exp(-2j * math.pi * np.outer(k, u) / D)) @ w / D
    assert np.max(np.abs(c - direct)) < 1e-13
    # Parseval: |t| = 1, so sum |c_k|^2 -> 1; the harmonics beyond the chirp's band d^2/(2 lambda f) = 7.2
    # decay like 1/k^2 (a kink at the lenslet boundary)
    assert 0.999 < np.sum(np.abs(c) ** 2) <= 1.0


def test_circle_harmonic_zero_closed_form():
    """c_00 of a disk lenslet: (1/d^2) int_disk exp(-i pi r^2/(lambda f)) dA = (lambda f / (i d^2)) (1 - exp(-i pi R^2/(lambda f)))."""
    from optics.mla import lenslet_harmonics

    c = lenslet_harmonics(3, pitch_um=D, focal_um=F, wavelength_um=LAM, aperture="circle")
    lf = LAM * F
    ref = lf / (1j * D**2) * (1 - np.exp(-1j * math.pi * (D / 2) ** 2 / lf))
    assert abs(c[3, 3] - ref) < 1e-12
    assert np.allclose(c, c.T) and np.allclose(c, c[::-1, :])


@pytest.mark.parametrize("aperture", ["square", "circle"])
def test_band_limited_transmittance_is_the_fourier_projection_of_the_array(aperture):
    """On one period sampled finely, the DFT of the point-sampled array gives its harmonics (to the
    sampling's own error); the band-limited array must hold exactly those harmonics below the grid's
    band and none above.  Also: periodic, mirror and transpose symmetric, like the array."""
    from optics.mla import band_limited_transmittance

    dx = D / 45
    n = 225
    t = band_limited_transmittance((n, n), dx, pitch_um=D, focal_um=F, wavelength_um=LAM, aperture=aperture)
    assert np.max(np.abs(t[45:] - t[:-45])) < 1e-10 and np.max(np.abs(t[:, 45:] - t[:, :-45])) < 1e-10
    assert np.max(np.abs(t - t[::-1])) < 1e-12 and np.max(np.abs(t - t.T)) < 1e-12
    # harmonics of the band-limited array: the DFT of exactly one period (45 samples, |k| <= 22)
    one = band_limited_transmittance((45, 45), dx, pitch_um=D, focal_um=F, wavelength_um=LAM, aperture=aperture)
    c_bl = np.fft.fft2(one) / 45**2
    # the point-sampled array on one period at 16x finer sampling: its DFT approximates the true
    # harmonics (up to that sampling's own aliasing, < 1e-3 for the low harmonics)
    fine = 45 * 16
    ref = transmittance((fine, fine), D / fine, pitch_um=D, focal_um=F, wavelength_um=LAM, aperture=aperture)
    c_ref = np.fft.fft2(ref) / fine**2
    kk = np.fft.fftfreq(45, 1 / 45).astype(int)
    low = kk[np.abs(kk) <= 10]
    a, b = low % 45, low % fine
    # both grids are centred on the lenslet but start at different samples: compare magnitudes
    err = np.max(np.abs(np.abs(c_bl[np.ix_(a, a)]) - np.abs(c_ref[np.ix_(b, b)])))
    assert err < (2e-3 if aperture == "circle" else 2e-4)


def test_band_limited_converges_to_the_array():
    """As the grid refines, the band-limited array approaches the array itself (L2 over a period)."""
    from optics.mla import band_limited_transmittance

    errs = []
    for per in (15, 45, 135):
        n = 3 * per
        args = dict(pitch_um=D, focal_um=F, wavelength_um=LAM)
        t = band_limited_transmittance((n, n), D / per, **args)
        t0 = transmittance((n, n), D / per, **args)
        errs.append(np.linalg.norm(t - t0) / np.linalg.norm(t0))
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.01
