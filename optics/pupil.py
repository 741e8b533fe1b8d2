"""The objective's pupil: Zernike aberrations as a phase on the Debye pupil of every kind.

Zernike polynomials in Noll's numbering and normalisation (Noll, JOSA 66:207, 1976): for j -> (n, m),
Z_j = sqrt(n + 1) R_n^0(rho) if m = 0, else sqrt(2 (n + 1)) R_n^|m|(rho) cos(m phi) (j even) or
sin(|m| phi) (j odd), each of unit rms over the unit disc.  ``[aberrations] zernike_waves = {j = c}``
gives the coefficients c_j in waves rms, and the pupil phase is 2 pi sum_j c_j Z_j(rho, phi).

The pupil coordinate is rho = sin(theta) / sin(alpha): by the sine condition the height in the
pupil is proportional to n sin(theta), so rho is the normalised pupil radius for the Debye integral
of ``optics.debye`` and, for the Fourier LFM, |u| / (NA F) at the lenslet array.  phi is measured
from the +x axis toward +y of the image-oriented axes (``optics.config.Microscope``); for the Fourier
LFM, in the array plane's axes.  A radially symmetric aberration (m = 0: Noll 1, 4, 11, 22, 37, ...)
enters the radial Debye integral as a phase on its integrand, so every kind takes it; the others
need the 2-D pupil, which only the Fourier LFM's analytic pupil field has here.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["noll_to_nm", "zernike", "phase_waves", "is_radial"]


def noll_to_nm(j: int) -> tuple[int, int]:
    """(n, m) of Noll index j >= 1, m signed: m > 0 for the cosine terms (even j), m < 0 for sine."""
    j = int(j)
    if j < 1:
        raise ValueError(f"Noll index j = {j} is invalid: expected an integer >= 1")
    n = int(math.floor((math.sqrt(8 * j - 7) - 1) / 2))
    first = n * (n + 1) // 2 + 1  # Noll index of the first term of order n
    k = j - first  # 0 .. n
    # the |m| of order n in Noll's order: n % 2, then pairs of increasing |m|
    ms = [n % 2] if n % 2 == 0 else []
    start = 2 if n % 2 == 0 else 1
    for mm in range(start, n + 1, 2):
        ms += [mm, mm]
    m = ms[k]
    if m == 0:
        return n, 0
    return n, m if j % 2 == 0 else -m


def _radial(n: int, m: int, rho: np.ndarray) -> np.ndarray:
    out = np.zeros_like(rho, dtype=np.float64)
    for k in range((n - m) // 2 + 1):
        c = (-1) ** k * math.factorial(n - k) / (
            math.factorial(k) * math.factorial((n + m) // 2 - k) * math.factorial((n - m) // 2 - k))
        out += c * rho ** (n - 2 * k)
    return out


def zernike(j: int, rho, phi=0.0) -> np.ndarray:
    """Z_j(rho, phi) with Noll's unit-rms normalisation (0 outside the unit disc is the caller's)."""
    n, m = noll_to_nm(j)
    rho = np.asarray(rho, dtype=np.float64)
    r = _radial(n, abs(m), rho)
    if m == 0:
        return math.sqrt(n + 1) * r
    phi = np.asarray(phi, dtype=np.float64)
    ang = np.cos(m * phi) if m > 0 else np.sin(-m * phi)
    return math.sqrt(2 * (n + 1)) * r * ang


def is_radial(j: int) -> bool:
    """Whether Z_j is radially symmetric (m = 0)."""
    return noll_to_nm(j)[1] == 0


def phase_waves(coefficients: dict, rho, phi=0.0) -> np.ndarray:
    """sum_j c_j Z_j(rho, phi): the pupil's phase in waves, for ``{j: c_j}`` in waves rms."""
    rho = np.asarray(rho, dtype=np.float64)
    out = np.zeros(np.broadcast_shapes(rho.shape, np.shape(phi)))
    for j, c in coefficients.items():
        if c:
            out = out + float(c) * zernike(int(j), rho, phi)
    return out
