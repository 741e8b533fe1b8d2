"""Wide-field PSF (issue 7, item 1): the window holds the power (encircled-energy rule, one home in
optics.support), and the written PSF matches an independent Debye integral.

References here are computed without the code under test: Rayleigh's closed form of the encircled
energy, and a direct Gauss-Legendre quadrature of the Debye integral on a fine radial grid,
integrated over pixels by a fine midpoint rule on a window twice as large.
"""

import math

import numpy as np
import pytest
from scipy import special

from optics import presets
from optics.__main__ import axial_psf_stack
from optics.config import kernel_side_pixels
from optics.debye import encircled_energy, tail_radius, widefield_intensity
from optics.lfpsf import compute_psf
from optics.support import CROP_TOLERANCE, widefield_window_pixels


def test_encircled_energy_rayleigh_closed_form():
    # uniform pupil in focus at low NA: EE(v) = 1 - J0(v)^2 - J1(v)^2, v = 2 pi NA r / lambda0 (n = 1)
    lam, na = 0.52, 0.02
    r = np.linspace(0.5, 200.0, 60)
    ee = encircled_energy(r, 0.0, wavelength_um=lam, na=na, n=1.0, apodization="uniform")
    v = 2 * math.pi * na * r / lam
    assert np.max(np.abs(ee - (1 - special.j0(v) ** 2 - special.j1(v) ** 2))) < 2e-4


@pytest.mark.parametrize("z", [0.0, 5.0, 30.0])
def test_tail_radius_is_the_smallest_radius_holding_the_power(z):
    kw = dict(wavelength_um=0.52, na=0.5, n=1.33)
    r = tail_radius(z, 2.5e-3, **kw)
    ee = encircled_energy(np.array([r - 0.2, r]), z, **kw)
    assert 1 - ee[1] <= 2.5e-3 < 1 - ee[0]
    assert r > abs(z) * math.tan(math.asin(0.5 / 1.33))  # beyond the geometric blur


def _wf(shape=255, z=(0.0, 3.0)):
    return presets.get("widefield-20x-0.5w", camera={"shape": [shape, shape]},
                       volume={"z_min_um": z[0], "z_max_um": z[1], "z_step_um": 1.0})


def test_widefield_kernels_hold_the_power_and_fit_the_estimate():
    m = _wf()
    psf = compute_psf(m, cache=False, progress=False)
    for iz, z in enumerate(m.z_um):
        k = psf.kernels[iz][0, 0].astype(np.float64)
        # the power is known (Parseval), so what a kernel misses is measured: <= CROP_TOLERANCE
        assert psf.discarded[iz, 0, 0] == pytest.approx(1 - k.sum(), abs=1e-6)
        assert psf.discarded[iz, 0, 0] <= CROP_TOLERANCE + 1e-7
        # the memory estimate's side and the computation's window are one rule
        assert k.shape[0] <= kernel_side_pixels(m, float(z)) == widefield_window_pixels(m, float(z))
    assert m.estimate_operator_bytes() >= psf.nbytes


def _reference_plane(m, z, side):
    """Pixel-integrated Debye intensity on a side x side window, unit sum, from a direct quadrature."""
    p = m.pixel_object_um
    r_max = (side / 2 + 1) * p * math.sqrt(2)
    radii = np.arange(0.0, r_max, 0.004)
    inten = widefield_intensity(radii, z, wavelength_um=m.wavelength_um, na=m.objective.na,
                                n=m.objective.immersion_index, nodes=1024)
    sub = 8  # midpoint rule, 8 x 8 points per pixel
    c = ((np.arange(side) - side // 2)[:, None] * p + ((np.arange(sub) + 0.5) / sub - 0.5)[None, :] * p).ravel()
    img = np.interp(np.hypot(c[:, None], c[None, :]), radii, inten)
    plane = img.reshape(side, sub, side, sub).sum(axis=(1, 3))
    return plane / plane.sum()


def test_psf_stack_matches_an_independent_debye_integral():
    """``python -m optics psf`` (axial_psf_stack) against the Debye integral: < 1% L2 per plane
    (the earlier 4-Airy-radius window gave 5-10%)."""
    m = _wf()
    stack = axial_psf_stack(m).astype(np.float64)
    big = 2 * stack.shape[-1] + 1
    for iz, z in enumerate(m.z_um):
        ref = _reference_plane(m, float(z), big)
        ours = np.zeros((big, big))
        o = (big - stack.shape[-1]) // 2
        ours[o:o + stack.shape[-1], o:o + stack.shape[-1]] = stack[iz]
        ours /= ours.sum()
        assert np.linalg.norm(ours - ref) / np.linalg.norm(ref) < 0.01, z
