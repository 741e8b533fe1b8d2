"""Microlens-array transmittance on a sampled grid (thin lenses in air, square grid).

T(x) = sum_l A(x - c_l) exp(-i k0 |x - c_l|^2 / (2 f_ml)), with k0 = 2 pi / lambda0 because the
array sits in air (Broxton et al. 2013 ``ulens_array``; Stefanoiu et al. 2019
``LFM_ulensTransmittance`` use k = 2 pi n / lambda0, which shortens the focal length to f_ml / n:
../shared/PHYSICS.md section 3).  A is a square of side d (100% fill, "square") or a disk of diameter
d ("circle").  The lenslet centres c_l lie on the square lattice d Z^2 that contains the grid centre,
so the optical axis of a centred window passes through the centre of a lenslet, and T is exactly
periodic with the pitch (every sample is referred to its own lenslet's centre).  Sign convention:
time factor exp(-i omega t), so exp(-i k0 r^2 / 2f) is a converging lens.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["APERTURES", "local_coordinate", "transmittance", "microscope_transmittance"]

APERTURES = ("square", "circle")


def local_coordinate(n: int, dx_um: float, pitch_um: float) -> np.ndarray:
    """Signed distance (µm) of each sample of a centred 1-D grid from its lenslet's centre.

    Sample i sits at x_i = (i - (n - 1)/2) dx; lenslet centres at integer multiples of the pitch.
    The result is in [-d/2, d/2] and periodic with the pitch; points on a boundary are at +-d/2,
    where every quantity used below (|u|, u^2) is the same for either neighbour.
    """
    t = (np.arange(n) - (n - 1) / 2.0) * (dx_um / pitch_um)
    return (t - np.round(t)) * pitch_um


def transmittance(
    shape,
    dx_um: float,
    *,
    pitch_um: float,
    focal_um: float,
    wavelength_um: float,
    aperture: str = "square",
    dtype=np.complex128,
) -> np.ndarray:
    """Complex transmittance of a square-grid microlens array sampled on a centred grid.

    Parameters
    ----------
    shape : (int, int)
        Grid (ny, nx); sample (i, j) at ((i - (ny-1)/2) dx, (j - (nx-1)/2) dx).
    dx_um : float
        Sample spacing (µm).  Lenslet chirp sampling needs dx <= lambda0 f / d (PHYSICS.md sec. 3).
    pitch_um, focal_um : float
        Lenslet pitch d and focal length f_ml (µm).
    wavelength_um : float
        Vacuum wavelength lambda0 (µm); the array is in air.
    aperture : {"square", "circle"}
        Square lenslets with 100% fill, or disks of diameter d (opaque between them).
    dtype : complex dtype

    Returns
    -------
    ndarray (ny, nx)
    """
    if aperture not in APERTURES:
        raise ValueError(f"aperture = {aperture!r} is invalid; accepted: {', '.join(repr(a) for a in APERTURES)}")
    for name, val in (("dx_um", dx_um), ("pitch_um", pitch_um), ("focal_um", focal_um)):
        if not (val > 0 and math.isfinite(val)):
            raise ValueError(f"{name} = {val!r} is invalid; expected a finite length > 0 (µm)")
    if not 0.2 <= wavelength_um <= 2.0:
        raise ValueError(f"wavelength_um = {wavelength_um!r} is invalid; expected 0.2..2.0 µm")
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape = {tuple(shape)!r} is invalid; expected two positive integers (ny, nx)")
    k0 = 2 * math.pi / wavelength_um
    uy = local_coordinate(int(shape[0]), dx_um, pitch_um)[:, None]
    ux = local_coordinate(int(shape[1]), dx_um, pitch_um)[None, :]
    # one exponential of the (commutative) sum keeps T exactly symmetric under x <-> y
    t = np.exp((-1j * k0 / (2 * focal_um)) * (uy**2 + ux**2))
    if aperture == "circle":
        t = t * ((uy**2 + ux**2) <= (pitch_um / 2) ** 2)
    return t.astype(dtype, copy=False)


def microscope_transmittance(m, n_samples: int, dx_um: float, *, dtype=np.complex128) -> np.ndarray:
    """``transmittance`` of the array of microscope ``m`` on a centred square grid of ``n_samples``."""
    if m.mla is None:
        raise ValueError(f"microscope.kind = {m.kind!r} has no microlens array")
    return transmittance(
        (n_samples, n_samples),
        dx_um,
        pitch_um=m.mla.pitch_um,
        focal_um=m.mla.focal_um,
        wavelength_um=m.wavelength_um,
        aperture=m.mla.aperture,
        dtype=dtype,
    )
