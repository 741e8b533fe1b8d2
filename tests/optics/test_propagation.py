"""Propagation: Parseval (PHYSICS.md check 7), Gaussian-beam closed form, ASM vs Fresnel, band limit, choice rule."""

import math

import numpy as np
import pytest
from scipy import fft as sfft

from optics.propagation import (
    angular_spectrum_tf,
    choose_method,
    fresnel_tf,
    propagate,
    transfer_function,
)

LAM = 0.52


def _power(u):
    return float(np.sum(np.abs(u) ** 2))


def test_parseval_fresnel(rng):
    # Check 7: |H| = 1 everywhere, so the discrete power is conserved (unitary FFT pair).
    u = rng.standard_normal((64, 80)) + 1j * rng.standard_normal((64, 80))
    out = propagate(u, 1.0, 3000.0, LAM, method="fresnel")
    assert _power(out) == pytest.approx(_power(u), rel=1e-12)


def test_parseval_asm_without_evanescent(rng):
    # Check 7: remove the evanescent part of the input first (dx = 0.2 µm < lambda/2 has some).
    n, dx = 96, 0.2
    u = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
    f = sfft.fftfreq(n, dx)
    prop = (f[:, None] ** 2 + f[None, :] ** 2) < 1 / LAM**2
    assert not prop.all()  # the test means something: evanescent frequencies exist
    u = sfft.ifft2(sfft.fft2(u) * prop)
    out = propagate(u, dx, 25.0, LAM, method="asm-unlimited")
    assert _power(out) == pytest.approx(_power(u), rel=1e-12)


def test_fresnel_gaussian_beam_closed_form():
    # exp(-r^2/w0^2) -> e^{ik0z} exp(-r^2 / (w0^2 q)) / q with q = 1 + i z / zR, zR = pi w0^2 / lambda
    # (Fourier transform of a Gaussian times the Fresnel TF, done by hand).
    n, dx, w0, z = 256, 1.0, 12.0, 1500.0
    x = (np.arange(n) - (n - 1) / 2) * dx
    r2 = x[:, None] ** 2 + x[None, :] ** 2
    out = propagate(np.exp(-r2 / w0**2).astype(complex), dx, z, LAM, method="fresnel")
    q = 1 + 1j * z / (math.pi * w0**2 / LAM)
    ref = np.exp(1j * 2 * math.pi / LAM * z) * np.exp(-r2 / (w0**2 * q)) / q
    assert np.max(np.abs(out - ref)) < 1e-10


def test_asm_close_to_fresnel_for_paraxial_beam():
    # Non-paraxial phase error of the Fresnel TF ~ 2 pi z lambda^3 f^4 / 8: small for a 12 µm waist.
    n, dx, w0, z = 256, 1.0, 12.0, 1500.0
    x = (np.arange(n) - (n - 1) / 2) * dx
    u = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / w0**2).astype(complex)
    a = propagate(u, dx, z, LAM, method="asm-unlimited")
    b = propagate(u, dx, z, LAM, method="fresnel")
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 1e-2


def test_band_limit_matches_matsushima():
    n, dx, z = 64, 2.0, 3000.0
    h = angular_spectrum_tf((n, n), dx, z, LAM, band_limit=True)
    f = sfft.fftfreq(n, dx)
    du = 1 / (n * dx)
    ulim = 1 / (LAM * math.sqrt((2 * du * z) ** 2 + 1))  # MS09 eq. 21
    keep = (np.abs(f)[:, None] <= ulim) & (np.abs(f)[None, :] <= ulim)
    assert np.all(h[~keep] == 0)
    assert np.allclose(np.abs(h[keep]), 1.0)
    assert 0 < keep.sum() < keep.size


def test_voelz_choice_rule():
    # Set A: 13 lenslets (L = 1950 µm) give a critical dx = lambda z / L = 0.80 µm (PHYSICS.md sec. 3)
    assert LAM * 3000 / 1950 == pytest.approx(0.80, abs=0.005)
    assert choose_method(10 / 3, 3000.0, 1950.0, LAM) == "fresnel"
    assert choose_method(0.5, 3000.0, 1950.0, LAM) == "asm"
    assert choose_method(10 / 3, 3000.0, 3 * 150.0, LAM) == "asm"  # lambda z / L = 3.47 > 3.33
    h = transfer_function("auto", (8, 8), 0.5, 3000.0, LAM)
    assert np.array_equal(h, angular_spectrum_tf((8, 8), 0.5, 3000.0, LAM, band_limit=True))


def test_padding_equals_linear_convolution_for_compact_field(rng):
    # With 2x padding nothing wraps; a compact field in a wide window gives the same result unpadded.
    n, dx, z = 64, 2.0, 400.0
    u = np.zeros((n, n), complex)
    u[28:36, 28:36] = rng.standard_normal((8, 8))
    big = np.zeros((2 * n, 2 * n), complex)
    big[n // 2 : n // 2 + n, n // 2 : n // 2 + n] = u
    ref = propagate(big, dx, z, LAM, method="fresnel")[n // 2 : n // 2 + n, n // 2 : n // 2 + n]
    out = propagate(u, dx, z, LAM, method="fresnel", pad=True)
    assert np.max(np.abs(out - ref)) < 1e-12 * np.max(np.abs(ref))


def test_single_precision_batch(rng):
    u = (rng.standard_normal((3, 32, 32)) + 1j * rng.standard_normal((3, 32, 32))).astype(np.complex64)
    out = propagate(u, 1.0, 100.0, LAM, method="fresnel")
    assert out.dtype == np.complex64 and out.shape == u.shape
    ref = np.stack([propagate(x.astype(np.complex128), 1.0, 100.0, LAM, method="fresnel") for x in u])
    assert np.max(np.abs(out - ref)) < 1e-5 * np.max(np.abs(ref))


def test_fresnel_tf_phase_sign():
    # time factor exp(-i omega t): a forward-travelling wave gains exp(+i k0 z); higher spatial
    # frequencies lag by pi lambda z f^2.
    h = fresnel_tf((4, 4), 1.0, 10.0, LAM)
    assert np.angle(h[0, 0]) == pytest.approx(np.angle(np.exp(1j * 2 * math.pi * 10 / LAM)))
    f = 0.25
    assert h[0, 1] / h[0, 0] == pytest.approx(np.exp(-1j * math.pi * LAM * 10 * f**2))


@pytest.mark.parametrize(
    "kwargs,name",
    [({"dx_um": 0.0}, "dx_um"), ({"wavelength_um": 520.0}, "wavelength_um"), ({"z_um": float("nan")}, "z_um")],
)
def test_bad_input_names_parameter(kwargs, name):
    args = {"shape": (8, 8), "dx_um": 1.0, "z_um": 10.0, "wavelength_um": LAM} | kwargs
    with pytest.raises(ValueError, match=name):
        fresnel_tf(**args)
    with pytest.raises(ValueError, match="method"):
        transfer_function("bogus", (8, 8), 1.0, 10.0, LAM)
