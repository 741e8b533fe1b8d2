"""The Debye field of an objective whose pupil phase is not radially symmetric: the 2-D pupil integral.

The radial Debye integral (``optics.debye``, PHYSICS.md section 2) takes only m = 0 Zernike terms.
With any pupil phase W(rho, phi) the scalar field at object-space offset r = (x, y) from the source is
the angular-spectrum form of the same integral (J0(k r sin t) = (1/2 pi) int e^{-i k r sin t cos(phi - phi_r)} dphi):

    U(x, y) = (1 / 2 pi) int int_{|s| <= sin a} P(t) e^{i k z cos t} e^{2 pi i W(rho, phi)}
              e^{-i k (x s_x + y s_y)} ds_x ds_y / cos t,

with s = (s_x, s_y) = sin t (cos phi, sin phi) the direction sines, rho = |s| / sin a and P the
apodization.  Without W it equals the radial integral (the test suite compares them); the sign
e^{-i k s.r} makes a Zernike tilt 2 c rho cos(phi) move the field by +2 c lambda0 / NA in x, the
convention of the Fourier LFM's pupil field (tests/optics/test_aberrations.py).

On a Cartesian grid of s the integrand factorises per sample, so the field on a grid (x_i) x (y_j)
is two matrix products, U = E_y W E_xᵀ with E_x[i, p] = e^{-i k x_i s_p}.  The grid step keeps
the aliased copies of the field (period 2 pi / (k ds)) beyond twice the evaluated extent and
samples the defocus and aberration phases at least 4 times per cycle; the disc's edge is the hard
edge band-limited to the grid (``optics.lenslets.edge_amplitude``).

Vectorial (Richards & Wolf 1959, ``simulation.vectorial``): each focal-field component is the same
integral with P = sqrt(cos t) times a polarisation factor: for light polarised along x in the pupil,
twice the components of Richards and Wolf's polarisation vector,

    f_x = (1 + c) - (s_x^2 - s_y^2) / (1 + c),   f_y = -2 s_x s_y / (1 + c),   f_z = -2 s_x

(c = cos t; (c - 1) cos 2 phi = -(s_x^2 - s_y^2) / (1 + c) with no 0/0 on the axis), and for y the
same with x and y exchanged.  Integrated over phi these are I0 + I2 cos 2phi, I2 sin 2phi and
2i I1 cos phi of ``optics.debye.vectorial_integrals``, so without W the components equal the radial
table's (``optics.lfpsf._RadialTable.components``, same order and weights; the test suite checks it).
An aberration multiplies every component's pupil by the same e^{2 pi i W}.
"""

from __future__ import annotations

import math

import numpy as np

from .debye import _apodization
from .lenslets import edge_amplitude

__all__ = ["PupilTable", "pupil_grid_step"]

#: Samples per cycle of the pupil phase (defocus and aberration).
_PHASE_SAMPLES = 4
#: The aliased copies of the field lie beyond this factor times the evaluated radius.  The
#: band-limited edge (needed: a point-sampled disc edge aliases) softens the pupil's edge on the
#: scale of the grid step, which dims the far rings at radii of order margin x r_max / pi: against
#: the radial integral (Noll 11), LFM kernels were 0.18% / 0.11% / 0.06% (L2) off at margins 1.1 /
#: 2 / 4, a wide-field PSF window (whose far rings are its tail) 1.0% / 0.7% / 0.4%.
_ALIAS_MARGIN = 2.0


def pupil_grid_step(k: float, alpha: float, z_um: float, r_max_um: float, aberration_slope: float,
                    margin: float = _ALIAS_MARGIN) -> float:
    """Step of the direction-sine grid for a field out to ``r_max_um`` at depth ``z_um``:
    min(2 pi / (2 margin k r_max), one quarter cycle of the defocus k z cos t (slope k |z| tan a)
    and of the aberration (slope 2 pi ``aberration_slope`` per unit s))."""
    steps = [2 * math.pi / (2 * margin * k * max(r_max_um, 1e-6))]
    defocus = k * abs(z_um) * math.tan(alpha)
    for slope in (defocus, 2 * math.pi * aberration_slope):
        if slope > 0:
            steps.append(2 * math.pi / (_PHASE_SAMPLES * slope))
    return min(steps)


def _phase_slope(m, z_um: float) -> float:
    """Largest |grad W| (waves per unit rho) of ``m``'s pupil phase at depth ``z_um``, on a 129 x 129 grid."""
    from .lfpsf import pupil_phase_waves

    u = np.linspace(-1, 1, 129)
    yy, xx = np.meshgrid(u, u, indexing="ij")
    rho = np.hypot(yy, xx)
    w = pupil_phase_waves(m, np.minimum(rho, 1.0), np.arctan2(yy, xx), z_um)
    gy, gx = np.gradient(w, u, u)
    g = np.hypot(gy, gx)[rho <= 1]
    return float(g.max(initial=0.0))


class PupilTable:
    """The scalar field of ``m``'s objective (all its aberrations) at depth ``z_um``, evaluated on grids.

    Interface of ``optics.lfpsf._RadialTable`` (``components``, ``grid_components``) for offsets
    up to ``r_max_obj`` (µm, object space).  ``conj`` must be False (an aberrated field has no
    z-conjugation symmetry).  Scalar: one component; vectorial: the five of ``_RadialTable`` (x- and
    y-polarised E_x, E_y, E_z of an unpolarised emitter, weighted 1/sqrt 2, the two equal cross
    terms merged into one of weight 1), whose |.|^2 sum to the intensity.
    """

    def __init__(self, m, z_um: float, r_max_obj: float, margin: float = _ALIAS_MARGIN):
        from .lfpsf import pupil_phase_waves

        k, alpha = m.wavenumber, m.objective.half_angle
        self.vectorial = bool(m.simulation.vectorial)
        sa = math.sin(alpha)
        ds = pupil_grid_step(k, alpha, z_um, r_max_obj, _phase_slope(m, z_um) / sa, margin)
        n = 2 * math.ceil(sa / ds) + 1
        s = (np.arange(n) - (n - 1) / 2) * (2 * sa / (n - 1)) * (1 + 1e-12)
        step = float(s[1] - s[0])
        sy, sx = np.meshgrid(s, s, indexing="ij")
        rad = np.hypot(sy, sx)
        inside = rad < sa + 8 * step
        cos_t = np.sqrt(np.clip(1 - np.minimum(rad, sa) ** 2, 0.0, None))
        amp = np.zeros_like(rad)
        apod = "sqrtcos" if self.vectorial else m.simulation.apodization  # Richards-Wolf: sqrt(cos)
        amp[inside] = (edge_amplitude(sa - rad[inside], step) * _apodization(apod, cos_t[inside])
                       / cos_t[inside]) * step**2 / (2 * math.pi)
        rho = np.minimum(rad / sa, 1.0)  # held at 1 in the band-limited rim beyond the edge
        phase = k * z_um * cos_t + 2 * math.pi * pupil_phase_waves(m, rho, np.arctan2(sy, sx), z_um)
        w = np.where(amp > 0, amp * np.exp(1j * phase), 0.0)
        self.w = [w] if not self.vectorial else [f * w for f in _polarisation_factors(sy, sx, rad, sa)]
        self.s, self.k, self.r_max = s, k, float(r_max_obj)

    def _field(self, y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
        if max(np.abs(y).max(initial=0.0), np.abs(x).max(initial=0.0)) > self.r_max * 1.0001:
            raise ValueError(f"offset beyond the table's {self.r_max:.4g} µm")
        ey = np.exp(-1j * self.k * np.outer(y, self.s))
        ex = np.exp(-1j * self.k * np.outer(x, self.s)).T
        return [(ey @ w) @ ex for w in self.w]

    def components(self, y_obj: np.ndarray, x_obj: np.ndarray, conj: bool, dtype=None) -> list[np.ndarray]:
        """The field at the grid of offsets ``y_obj`` (a column, (ny, 1)) x ``x_obj`` (a row, (1, nx)),
        complex128 (or cast to ``dtype``)."""
        if conj:
            raise ValueError("an aberrated field has no z-conjugation symmetry: conj must be False")
        y, x = np.asarray(y_obj), np.asarray(x_obj)
        if y.ndim != 2 or x.ndim != 2 or y.shape[1] != 1 or x.shape[0] != 1:
            raise ValueError("PupilTable.components takes a grid: y as a column (ny, 1) and x as a row (1, nx)")
        out = self._field(y[:, 0], x[0, :])
        return out if dtype is None else [f.astype(dtype) for f in out]

    def grid_components(self, c_obj: np.ndarray, conj: bool, dtype) -> list[np.ndarray]:
        """``components`` on the square grid ``c_obj`` x ``c_obj``, as ``dtype``."""
        c = np.asarray(c_obj, dtype=np.float64)
        return [f.astype(dtype) for f in self.components(c[:, None], c[None, :], conj)]


def _polarisation_factors(sy: np.ndarray, sx: np.ndarray, rad: np.ndarray, sa: float) -> list[np.ndarray]:
    """Richards-Wolf factors of the five vectorial components (module docstring) at direction sines
    (sy, sx); in the band-limited rim beyond the edge (|s| > sin a) the direction is held on the edge."""
    scale = np.where(rad > sa, sa / np.where(rad > 0, rad, 1.0), 1.0)
    ty, tx = sy * scale, sx * scale
    c = np.sqrt(np.clip(1.0 - ty**2 - tx**2, 0.0, None))
    g = 1 / math.sqrt(2)
    diff = (tx**2 - ty**2) / (1 + c)
    return [g * ((1 + c) - diff), -2 * tx * ty / (1 + c), g * (-2 * tx), g * ((1 + c) + diff), g * (-2 * ty)]
