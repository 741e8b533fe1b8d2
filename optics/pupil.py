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
need the 2-D pupil: the Fourier LFM's analytic pupil field, and for the other kinds the 2-D pupil
integral of ``optics.debye2d`` (whose sign makes a tilt move the image as the Fourier LFM's does).

Gibson-Lanni index mismatch (``[aberrations] sample_index``, ``focus_depth_um``, ``coverslip_*``)
-------------------------------------------------------------------------------------------------
Gibson & Lanni, JOSA A 8:1601 (1991) (GL91), in the form of MicroscPSF-Py (Li, Xue & Blu, JOSA A
34:1029, 2017, function ``OPD``): the optical path difference of the ray leaving a point source at
pupil coordinate rho, between the actual system and the design system (which is perfect), is

    OPD(rho) = t_s c(n_s) + t_g c(n_g) - t_g0 c(n_g0) + t_i c(n_i) - t_i0 c(n_i),
    c(n) = n cos(theta_n) = sqrt(n^2 - NA^2 rho^2)

(sine condition: n sin(theta_n) = NA rho in every layer), with t_s the source's depth below the sample
surface (the coverslip's top), t_g, n_g the coverslip's thickness and index, t_g0, n_g0 the design's,
and t_i, t_i0 the immersion thickness in use and in the design; the design focuses on the sample
surface (t_s = 0) of a sample of the immersion index n_i through the design coverslip.  The immersion
index is the design's (``objective.immersion_index``).

Convention of lfmsim.  The stage is set so that the design's focus would lie ``focus_depth_um`` = d
below the surface: the immersion layer is thinner by d, t_i = t_i0 - d (moving the objective toward
the sample by d moves the focus of the matched design down by d).  A source at lfmsim's z (offset
from that nominal focal plane, positive away from the objective) lies at depth t_s = d + z, which must
be >= 0 (a volume reaching above the surface is refused).  Then

    OPD = (d + z) c(n_s) - d c(n_i) + t_g c(n_g) - t_g0 c(n_g0).

lfmsim's Debye integrand (``optics.debye``) already carries the matched defocus exp(i k z cos theta) =
exp(i k0 z c(n_i)), so the pupil phase added here is what remains:

    W(rho) = [t_s (c(n_s) - c(n_i)) + t_g c(n_g) - t_g0 c(n_g0)] / lambda0   (waves),

exactly 0 for n_s = n_i and the design coverslip, and the total phase is k0 [t_s c(n_s) - d c(n_i)
+ coverslip] as GL91 has it.  Paraxially (c(n) ~ n - NA^2 rho^2 / (2 n)) the rho^2 term of the total
vanishes for t_s / n_s = d / n_i: the focus of the stage setting d lies at the depth d n_s / n_i, and a
source at depth t_s is in focus at the nominal depth (stage setting) t_s n_i / n_s; for n_s < n_i
(oil objective, watery sample) the actual focus lies shallower than the nominal one, pulled toward
the objective, and axial distances appear stretched by n_i / n_s (the focal shift of Hell et al., J.
Microsc. 169:391, 1993).  Beyond the paraxial regime each zone of the pupil focuses elsewhere (the
marginal rays at the depth d tan(theta_i) / tan(theta_s)), the on-axis intensity maximum lies in
between, and what remains at the best focus is spherical aberration, growing linearly with t_s.

Scalar, as GL91: the Fresnel transmission of the interfaces is left out.  The NA must stay below the
sample's and the coverslips' indices (``optics.config`` refuses the rest): beyond, the rays are
supercritical and their light the evanescent near field of the source (supercritical-angle
fluorescence), which this model does not carry.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["noll_to_nm", "zernike", "phase_waves", "is_radial", "gibson_lanni_opd_um", "gibson_lanni_waves",
           "equivalent_defocus_um"]


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


# ----------------------------------------------------------------------------- Gibson-Lanni
def _c(n: float, s: np.ndarray) -> np.ndarray:
    """n cos(theta_n) = sqrt(n^2 - s^2) in a layer of index n, for s = NA rho (sine condition)."""
    return np.sqrt(n * n - s * s)


def _sample_depth(m, z_um: float) -> float:
    """Depth t_s = focus_depth_um + z of a source below the sample surface (µm); refused above it."""
    t_s = m.aberrations.focus_depth_um + float(z_um)
    if t_s < -1e-9:
        raise ValueError(f"z_um = {z_um!r} is invalid: the source would lie {-t_s:.4g} µm above the sample "
                         f"surface (aberrations.focus_depth_um = {m.aberrations.focus_depth_um:g}: depth = "
                         "focus_depth_um + z must be >= 0)")
    return max(t_s, 0.0)


def _gl_terms(m, z_um: float) -> list[tuple[float, float]]:
    """(thickness, index) pairs of W's layers, the design's with negative thickness: t_s on n_s and
    -t_s on n_i (the sample), t_g on n_g and -t_g0 on n_g0 (the coverslip)."""
    ab, n_i = m.aberrations, m.objective.immersion_index
    terms = []
    if ab.sample_index != "none":
        t_s = _sample_depth(m, z_um)
        terms += [(t_s, float(ab.sample_index)), (-t_s, n_i)]
    cover = ab.coverslip
    if cover is not None:
        n_g, t_g, n_g0, t_g0 = cover
        terms += [(t_g, n_g), (-t_g0, n_g0)]
    return terms


def gibson_lanni_opd_um(m, s, z_um: float) -> np.ndarray:
    """The optical path (µm) Gibson-Lanni adds to lfmsim's Debye phase at s = NA rho for a source at
    ``z_um`` (module docstring): t_s (c(n_s) - c(n_i)) + t_g c(n_g) - t_g0 c(n_g0), c(n) = sqrt(n^2 - s^2);
    0 without a mismatch.  ``m`` is a ``Microscope``."""
    s = np.asarray(s, dtype=np.float64)
    out = np.zeros_like(s)
    for t, n in _gl_terms(m, z_um):
        out = out + t * _c(n, s)
    return out


def gibson_lanni_waves(m, rho, z_um: float) -> np.ndarray:
    """``gibson_lanni_opd_um`` in waves (lambda0) at the pupil coordinate rho = sin(theta) / sin(alpha)."""
    rho = np.asarray(rho, dtype=np.float64)
    return gibson_lanni_opd_um(m, m.objective.na * rho, z_um) / m.wavelength_um


def equivalent_defocus_um(m, z_um: float) -> tuple[float, float]:
    """(z_phase, z_ray): the |z| of a matched source whose Debye phase spans as many waves over the
    pupil, and whose rays spread as far at the focal plane, as the source at ``z_um`` with its
    Gibson-Lanni term; both |z| without one (for the quadrature nodes and the PSF windows).

    Total path P(s) = z c(n_i) + OPD(s) (s = NA rho): its variation over the pupil, against
    |z| n_i (1 - cos alpha) for a matched defocus; the ray's lateral offset at the focal plane,
    |dP/ds| (the stationary phase of a plane-wave component k0 s), against |z| tan(alpha).
    """
    z = float(z_um)
    if not m.aberrations.gibson_lanni:
        return abs(z), abs(z)
    na, n_i = m.objective.na, m.objective.immersion_index
    s = na * np.linspace(0.0, 1.0, 1025)
    terms = [(z, n_i)] + _gl_terms(m, z)
    path = sum(t * _c(n, s) for t, n in terms)
    slope = s * sum(-t / _c(n, s) for t, n in terms)
    z_phase = float(np.sum(np.abs(np.diff(path)))) / (n_i - _c(n_i, na))
    z_ray = float(np.max(np.abs(slope))) / math.tan(m.objective.half_angle)
    return z_phase, z_ray
