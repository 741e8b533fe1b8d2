"""Light-field PSF: the sensor image of a point source, and the operator kernels per depth and voxel phase.

Wave-optics model of LFM 1.0 (Broxton et al., Opt. Express 21:25418, 2013; Stefanoiu et al., Opt.
Express 27:31644, 2019; ../shared/PHYSICS.md sections 2-4): the Debye field of a point source at the
native image plane (``optics.debye``, object-space radius = image radius / M, image-oriented) is
multiplied by the microlens transmittance (``optics.mla``, k0 because the array is in air),
propagated f_ml to the sensor (``optics.propagation``: Fresnel transfer function or band-limited
angular spectrum, Voelz's rule), squared and integrated over camera pixels (``oversampling`` field
samples per pixel, block sums; Broxton's ``lflib``).  Values are fractions of the power reaching the
native image plane, computed in closed form by Parseval's theorem for the Hankel transform.
``compute_psf`` builds the periodic shift-variant kernels of ``optics.psfdata`` for every depth and
sub-lenslet phase, computing each distinct kernel once (8-fold mirror/transpose symmetry of the square
grid, z-conjugation U(r, -z) = conj U(r, z) of the Debye tables) and caches them by config hash.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy import fft as sfft
from scipy.interpolate import CubicSpline
from threadpoolctl import threadpool_limits

from . import debye
from .config import ConfigError, Microscope
from .lenslets import array_transmittance
from .mla import microscope_transmittance
from .propagation import transfer_function
from .psfdata import LightFieldPSF, cache_path, load_psf, model_version
from .support import (
    CROP_TOLERANCE,
    GUARD_LENSLETS,
    crop_side_pixels,
    widefield_window_pixels,
    window_lenslets,
)
from .threads import cpu_threads

__all__ = [
    "CROP_TOLERANCE",
    "GUARD_LENSLETS",
    "nip_power",
    "field_oversampling",
    "pixel_nodes",
    "window_lenslets",
    "sensor_pattern",
    "sensor_patterns",
    "compute_psf",
    "build_report",
]

logger = logging.getLogger(__name__)

#: Radial table step for the Debye field, in units of lambda0 / NA (object space).  A cubic spline
#: at this step has relative error ~ (5/384) (2 pi 0.02)^4 = 3e-6 on a field band-limited to NA/lambda0.
_TABLE_STEP = 0.02
#: Field samples (complex) processed in one batched FFT.
_BATCH_SAMPLES = 6_000_000


# ----------------------------------------------------------------------------- Debye field tables
def nip_power(m: Microscope) -> float:
    """Power of the Debye field of a point source, in object space and in the units of ``optics.debye``.

    With U(r) = int_0^alpha g(rho) J_m(k r rho) rho drho (rho = sin theta), Parseval's theorem for the
    Hankel transform gives 2 pi int |U|^2 r dr = (2 pi / k^2) int |g|^2 rho drho, independent of z.
    Scalar, P(theta) = sqrt(cos): (2 pi / k^2)(1 - cos alpha).  Vectorial (Richards & Wolf 1959,
    unpolarised, (|I0|^2 + 2|I1|^2 + |I2|^2)-type intensity): (2 pi / k^2) 4 (1 - cos alpha).
    The same field sampled on the image plane at spacing dx carries M^2 times this power.
    """
    return debye.total_power(m.objective.half_angle, m.wavenumber, m.simulation.apodization,
                             m.simulation.vectorial)


def _aberration_at(m: Microscope, theta: np.ndarray, z_um: float) -> np.ndarray | None:
    """The radially symmetric pupil phase (waves) of ``m.aberrations`` at Debye nodes theta
    (rho = sin(theta) / sin(alpha), ``optics.pupil``) for a source at ``z_um``: the Zernike terms
    plus the Gibson-Lanni term (which depends on the source's depth), or None without aberrations."""
    ab = m.aberrations
    if not ab.active:
        return None
    from .pupil import gibson_lanni_waves, phase_waves

    rho = np.sin(theta) / math.sin(m.objective.half_angle)
    out = phase_waves(ab.coefficients, rho) if ab.coefficients else None
    if ab.gibson_lanni:
        gl = gibson_lanni_waves(m, rho, z_um)
        out = gl if out is None else out + gl
    return out


def pupil_phase_waves(m: Microscope, rho, phi, z_um: float) -> np.ndarray:
    """The whole pupil phase (waves) of ``m.aberrations`` at (rho, phi) for a source at ``z_um``: every
    Zernike term and the Gibson-Lanni term (``optics.debye2d``; the radial path is ``_aberration_at``)."""
    from .pupil import gibson_lanni_waves, phase_waves

    ab = m.aberrations
    rho = np.asarray(rho, dtype=np.float64)
    out = phase_waves(ab.coefficients, rho, phi) if ab.coefficients else np.zeros(np.broadcast_shapes(rho.shape, np.shape(phi)))
    if ab.gibson_lanni:
        out = out + gibson_lanni_waves(m, rho, z_um)
    return out


def _non_radial(m: Microscope) -> bool:
    """Whether ``m``'s pupil phase has terms that are not radially symmetric (the 2-D pupil integral)."""
    from .pupil import is_radial

    return any(not is_radial(j) for j in m.aberrations.coefficients)


def _table(m: Microscope, z_um: float, r_max_obj: float, count: int | None = None):
    """The field table of a source at ``z_um``: radial (``_RadialTable``, at ``table_depth``) or, with a
    non-radial pupil phase, the 2-D pupil integral (``optics.debye2d.PupilTable``); and ``conj``."""
    zt, conj = table_depth(m, z_um)
    if _non_radial(m):
        from .debye2d import PupilTable

        return PupilTable(m, float(z_um), r_max_obj), False
    return _RadialTable(m, zt, r_max_obj, count), conj


def table_depth(m: Microscope, z_um: float) -> tuple[float, bool]:
    """(depth of the radial table, conjugate it?) for a source at ``z_um``.  Without aberrations
    U(r, -z) = conj U(r, z), so one table of |z| serves both signs; a pupil phase breaks that."""
    if m.aberrations.active:
        return float(z_um), False
    return abs(float(z_um)), float(z_um) < 0


class _UniformSpline:
    """A cubic spline on the uniform radii 0, h, 2h, ... evaluated without a search for the interval:
    the same piecewise polynomials as ``CubicSpline.__call__`` (to round-off), 2.2x faster on a
    window's 6e5 radii (the evaluation was 13% of a 40x/0.95 design's benchmark time).  As complex64
    (the single-precision fields) the coefficients are single too and Horner's rule runs in place:
    another 2.6x on 6.6e5 radii, within 8e-8 of the peak of the double evaluation."""

    def __init__(self, spline: CubicSpline, h: float):
        self.x = np.asarray(spline.x, dtype=np.float64)
        self.inv = 1.0 / float(h)
        self.c = [np.ascontiguousarray(c) for c in spline.c]  # highest power first
        self.c64 = [c.astype(np.complex64) for c in self.c]

    def __call__(self, r: np.ndarray, dtype=np.complex128) -> np.ndarray:
        i = (r * self.inv).astype(np.intp)
        np.clip(i, 0, self.x.size - 2, out=i)
        d = r - self.x[i]
        if np.dtype(dtype) != np.complex64:
            c3, c2, c1, c0 = self.c
            return ((c3[i] * d + c2[i]) * d + c1[i]) * d + c0[i]
        d = d.astype(np.float32)
        c3, c2, c1, c0 = self.c64
        out = c3.take(i)
        for c in (c2, c1, c0):
            out *= d
            out += c.take(i)
        return out


class _RadialTable:
    """Cubic-spline tables of the Debye field (scalar U, or Richards-Wolf I0, I1, I2) at one |z|.

    The integrals are those of ``optics.debye.radial_field`` and ``vectorial_integrals`` (the test
    suite checks equality), with Gauss-Legendre nodes and Bessel matrices reused across depths:
    the node count of ``debye.quadrature_nodes`` is rounded up to a multiple of 128.
    """

    def __init__(self, m: Microscope, z_abs: float, r_max_obj: float, count: int | None = None):
        # z_abs: the table's depth, |z| or, with aberrations, the signed z (``table_depth``)
        h, r_max, need = self.grid(m, z_abs, r_max_obj)
        # more nodes than needed change nothing (8 per phase cycle is converged to round-off), so
        # depths that pass the largest count and radius share one set of Bessel matrices
        count = 128 * math.ceil(max(need, count or 0) / 128)
        self.vectorial = m.simulation.vectorial
        k = m.wavenumber
        r, theta, w, mats = debye.bessel_matrices(r_max, h, k, m.objective.half_angle, count, self.vectorial)
        wts = debye.integrand_weights(theta, w, k, z_abs, m.simulation.apodization, self.vectorial,
                                      _aberration_at(m, theta, z_abs))
        # real matrix times complex weights as one real product (no complex copy of the matrix)
        cols = [mat @ np.stack([wt.real, wt.imag], axis=1) for mat, wt in zip(mats, wts)]
        self.splines = [_UniformSpline(CubicSpline(r, col[:, 0] + 1j * col[:, 1]), h) for col in cols]
        self.r_max = float(r[-1])

    @staticmethod
    def grid(m: Microscope, z_abs: float, r_max_obj: float) -> tuple[float, float, int]:
        """(radius step h, table radius, Gauss-Legendre nodes the depth needs) of a table out to
        ``r_max_obj``: the radius is rounded up to 64 steps (few distinct grids -> cache hits).  A
        Gibson-Lanni term counts as the defocus of as many phase cycles (``pupil.equivalent_defocus_um``)."""
        from .pupil import equivalent_defocus_um

        lam, na, n = m.wavelength_um, m.objective.na, m.objective.immersion_index
        h = _TABLE_STEP * lam / na
        r_max = math.ceil(r_max_obj / (64 * h)) * 64 * h
        return h, r_max, debye.quadrature_nodes(equivalent_defocus_um(m, z_abs)[0], r_max + 4 * h, lam, na, n)

    @classmethod
    def plan(cls, m: Microscope, z_values, r_max_obj: float) -> int:
        """Node count that serves every depth of ``z_values`` out to ``r_max_obj`` (pass it as ``count``)."""
        return max(cls.grid(m, z, r_max_obj)[2] for z in z_values)

    def components(self, y_obj: np.ndarray, x_obj: np.ndarray, conj: bool, dtype=None) -> list[np.ndarray]:
        """Field components at object-space offsets (y, x) from the source; sum |c|^2 = intensity;
        complex128, or complex64 evaluated in single precision when ``dtype`` is complex64.

        ``conj`` gives the field at -z (U(r, -z) = conj U(r, z), PHYSICS.md section 2).  Vectorial:
        x-polarised (Ex, Ey, Ez) = (I0 + I2 cos 2phi, I2 sin 2phi, 2i I1 cos phi), y-polarised
        (I2 sin 2phi, I0 - I2 cos 2phi, 2i I1 sin phi), averaged (unpolarised emitter); the two equal
        cross components are merged into one of weight 2.
        """
        y_obj, x_obj = np.broadcast_arrays(y_obj, x_obj)
        r = np.hypot(y_obj, x_obj)
        if r.max(initial=0.0) > self.r_max:
            raise ValueError(f"radius {r.max():.4g} µm is beyond the table ({self.r_max:.4g} µm)")
        single = dtype is not None and np.dtype(dtype) == np.complex64
        vals = [s(r, np.complex64 if single else np.complex128) for s in self.splines]
        if conj:
            vals = [np.conj(v, out=v) for v in vals]
        if not self.vectorial:
            return vals
        i0, i1, i2 = vals
        with np.errstate(invalid="ignore", divide="ignore"):
            inv = np.where(r > 0, 1.0 / np.where(r > 0, r, 1.0), 0.0)
        cphi, sphi = x_obj * inv, y_obj * inv
        if single:
            cphi, sphi = cphi.astype(np.float32), sphi.astype(np.float32)
        c2, s2 = cphi**2 - sphi**2, 2 * sphi * cphi
        g = 1 / math.sqrt(2)
        return [g * (i0 + i2 * c2), i2 * s2, g * 2j * i1 * cphi, g * (i0 - i2 * c2), g * 2j * i1 * sphi]

    #: Parity (in y, in x) of each component of ``components`` under a mirror of y or x.
    _PARITY = {False: [(0, 0)], True: [(0, 0), (1, 1), (0, 1), (0, 0), (1, 0)]}

    def grid_components(self, c_obj: np.ndarray, conj: bool, dtype) -> list[np.ndarray]:
        """``components`` on the square grid ``c_obj`` x ``c_obj`` (a coordinate vector symmetric
        about 0, c[i] = -c[N-1-i]), as ``dtype``: evaluated on one quadrant and mirrored with each
        component's parity (4x fewer spline evaluations; values identical)."""
        nn = len(c_obj)
        if not np.allclose(c_obj, -c_obj[::-1], rtol=0, atol=1e-12 * max(1.0, float(np.abs(c_obj).max()))):
            raise ValueError("grid_components needs a coordinate vector symmetric about 0")
        half = np.abs(c_obj[nn // 2:])  # |c| at the quadrant's rows/columns
        kmap = np.abs(2 * np.arange(nn) - (nn - 1)) // 2  # position -> quadrant index of |c|
        sign = np.where(c_obj < 0, -1.0, 1.0).astype(np.float32)
        quad = self.components(half[:, None], half[None, :], conj, dtype)
        out = []
        for q, (py, px) in zip(quad, self._PARITY[self.vectorial]):
            full = q.astype(dtype, copy=False)[kmap[:, None], kmap[None, :]]
            if py:
                full *= sign[:, None]
            if px:
                full *= sign[None, :]
            out.append(full)
        return out


# ----------------------------------------------------------------------------- sampling, windows
def field_oversampling(m: Microscope) -> int:
    """Field samples per camera pixel: ``simulation.oversampling`` raised until the field is sampled.

    Light field: dx = p / q <= lambda0 / (2 (NA/M + d / (2 f_ml))) (PHYSICS.md section 3: the highest
    local frequency at the MLA is the objective's image-side cone plus the lenslet chirp's edge slope).
    Wide-field: the intensity's band limit 2 NA / lambda0 needs p / (M q) <= lambda0 / (4 NA).
    """
    q = m.simulation.oversampling
    lam, na, mag = m.wavelength_um, m.objective.na, m.objective.magnification
    if m.kind == "flfm":
        from .flfm import oversampling_need
        from .pupil import equivalent_defocus_um

        z_far = max(equivalent_defocus_um(m, z)[1] for z in m.z_um)  # |z| without Gibson-Lanni
        dx_max = oversampling_need(m, z_far)
        p = m.camera.pixel_um
    elif m.mla is None:
        dx_max = lam / (4 * na)
        p = m.pixel_object_um
    else:
        dx_max = lam / (2 * (na / mag + m.mla.pitch_um / (2 * m.mla.focal_um)))
        p = m.camera.pixel_um
    need = max(q, math.ceil(p / dx_max - 1e-12))
    if need != q:
        logger.info("oversampling raised from %d to %d samples per pixel (dx <= %.4g µm)", q, need, dx_max)
    return need


_default_window = window_lenslets  # reachable where a parameter shadows the name


def pixel_nodes(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes t and weights w on [-1, 1] for the integral over one camera pixel.

    g = q + 1 nodes per axis for q field samples per pixel.  The intensity's band is twice the
    field's, up to q cycles across a pixel, but nearly all of its power lies below ~2 cycles
    (twice the objective's plus the lenslet's cone, PHYSICS.md section 3); at the default q = 4,
    g = 5 (exact for polynomials of degree 9) keeps the light-field kernels within 0.3% (L2) of a
    q = 9 computation (measured on the 20x/0.5W preset at z = -40..40 um; the test suite checks it).
    One home for the pixel rule of the light-field and the wide-field PSFs.
    """
    g = int(q) + 1
    x, w = debye.gauss_legendre(g)
    return x, w


def fast_pixels(m_pixels: int, q: int) -> int:
    """Smallest m' >= m with m' - m even whose FFT grid q m' has no prime factor above 13.

    The window of W lenslets is zero-padded symmetrically by (m' - m) / 2 pixels before the
    propagation: W = 43 at 60 samples per lenslet gives n = 2580 = 2^2 3 5 43, whose 2-D FFT took
    2.6x as long as that of the padded n' = 2592 = 2^5 3^4 on 2 cores (0.21 s against 0.08 s;
    factors 11 and 13 cost ~10-15%, 29 and 31 ~30%).  Most windows are already smooth and are not
    padded; the padding only lets the light that leaves the window fall into empty samples instead
    of wrapping round onto the window's far edge.
    """
    def smooth(v: int) -> bool:
        for p in (2, 3, 5, 7, 11, 13):
            while v % p == 0:
                v //= p
        return v == 1

    mp = int(m_pixels)
    while not smooth(q * mp):
        mp += 2
    return mp


def worker_threads() -> int:
    """Threads that build PSF patterns side by side: ``optics.threads.cpu_threads()``, at most 4."""
    return max(1, min(4, cpu_threads()))


class _Propagator:
    """MLA transmittance and transfer function per window size, and the batched pipeline.

    Pixel integration is exact for the band-limited field the grid holds: the sensor field
    s(x) = (1/n) sum_j S_j exp(2 pi i j (x - x_0) / L) (spectrum S on the grid's n frequencies
    j / L) is evaluated at the Gauss-Legendre nodes of every pixel (``pixel_nodes``) and |s|^2
    summed with their weights.  The values at one node offset delta in every pixel are a small
    inverse FFT: with pixel centres x_0 + k p + delta and p = L / m, exp(2 pi i j k / m) depends on
    j mod m only, so the spectrum times exp(2 pi i j delta / L) is folded onto m frequencies first
    (per axis; separable).  With the spectrum in signed order (j = j0 + r m + kappa, done by a phase
    ramp folded into the transmittance and a rolled transfer function) the fold weight factors into
    exp(2 pi i r m delta / L) (a (g x q) matrix product) times exp(2 pi i (j0 + kappa) delta / L).
    This replaces block sums of |s|^2 at the q x q samples of each pixel, whose aliased intensity
    (band 1/dx, sampled at 1/dx) left errors of ~1% at q = 3.

    Both folds are one matrix product, with the Kronecker product of the (g x q) fold matrices, on
    the q^2 aliases of each frequency, and the g^2 node offsets are small 2-D inverse FFTs.  (Folding
    and transforming y and x in turn needs 2.2x fewer multiply-adds but was 1.2-1.3x slower here:
    the product with K = q^2 = 16 runs near the BLAS peak, the strided 1-D FFTs do not.)  The
    window's n = m q samples are zero-padded to n' = m' q (``fast_pixels``).
    """

    def __init__(self, m: Microscope, q: int, dtype, pad: bool = True):
        self.m, self.q, self.dtype, self.pad = m, q, dtype, pad
        self.dx = m.camera.pixel_um / q
        self._t: dict[int, np.ndarray] = {}
        self._h: dict[int, np.ndarray] = {}
        self._fold: dict[int, tuple] = {}
        self._open: dict[int, np.ndarray] = {}
        self._pad: dict[int, tuple[int, int]] = {}
        self._ha: dict[int, np.ndarray] = {}
        mag = m.objective.magnification
        if m.kind == "flfm":  # the field arrives at the array in pupil units (optics.flfm)
            from .flfm import pupil_power

            self.norm = self.dx**2 / pupil_power(m)
        else:
            self.norm = self.dx**2 / (mag**2 * nip_power(m))
        # where the array blocks light: non-square apertures, and the finite Fourier-LFM array
        self.blocks = m.kind == "flfm" or m.mla.aperture != "square"
        self.nodes = pixel_nodes(q)

    def method(self, n: int) -> str:
        """"auto" is the band-limited angular spectrum (Rayleigh-Sommerfeld, Matsushima & Shimobaba 2009).

        The Fresnel transfer function is sampled well by Voelz's rule on these grids, but it is
        paraxial: the light the lenslet edges diffract to the grid's band (up to ~0.1 rad) carries a
        phase error k0 f theta^4 / 8 of ~0.5 rad there, and the kernels differ from the angular
        spectrum's by ~0.3% (L2; PHYSICS.md's 0.39% at f/20), more than the sampling error.
        ``simulation.propagation = "fresnel"`` still selects it.
        """
        method = self.m.simulation.propagation
        return "asm" if method == "auto" else method

    def padded(self, n: int) -> tuple[int, int]:
        """(n', pad) for a window of n samples: the FFT grid and the samples of zeros on each side."""
        if n not in self._pad:
            mm = n // self.q
            mp = fast_pixels(mm, self.q) if self.pad else mm
            self._pad[n] = (mp * self.q, (mp - mm) // 2 * self.q)
        return self._pad[n]

    def prepare(self, n: int) -> None:
        """Build the transmittance, transfer function and folds of a window of n samples."""
        self._tf(n)

    def _tf(self, n: int) -> np.ndarray:
        if n not in self._h:
            npad, k = self.padded(n)
            j0 = -(npad // 2)
            # spectrum index i <-> j = j0 + i: a ramp over the padded grid, of which the window
            # holds samples k .. k + n - 1
            a = self.m.mla_offset_um
            # the MLA's transmittance on the window (the NIP field is zero outside it) or, when the
            # field first travels a to the MLA and spreads, on the whole padded grid
            nt, kt = (n, k) if a == 0 else (npad, 0)
            ramp = np.exp(-2j * math.pi * j0 * np.arange(kt, kt + nt) / npad).astype(self.dtype)
            if self.m.kind == "flfm":  # the finite array at the pupil (optics.lenslets)
                t, self._open[n] = array_transmittance(self.m, nt, self.dx, dtype=self.dtype)
            else:
                t = microscope_transmittance(self.m, nt, self.dx, dtype=self.dtype)
            if self.blocks and n not in self._open:  # where the lenslets let light through (MLA plane)
                raw = microscope_transmittance(self.m, nt, self.dx, band_limited=False)
                self._open[n] = (np.abs(raw) ** 2).astype(np.float32)
            t *= ramp[:, None]
            t *= ramp[None, :]
            self._t[n] = t
            if a != 0:  # NIP -> MLA (FFT order), band-limited angular spectrum in air
                self._ha[n] = transfer_function("asm", (npad, npad), self.dx, a, self.m.wavelength_um,
                                                dtype=self.dtype)
            h = transfer_function(self.method(npad), (npad, npad), self.dx, self.m.mla_to_sensor_um,
                                  self.m.wavelength_um, dtype=self.dtype)
            h = np.roll(h, (-j0, -j0), axis=(0, 1))
            if npad % 2 == 0:
                # the Nyquist frequency -n/2 has no +n/2 partner: drop it so the band-limited field
                # keeps the mirror symmetry of the optics (it carries ~no power)
                h[0, :] = 0
                h[:, 0] = 0
            self._h[n] = h
            q, p = self.q, self.m.camera.pixel_um
            mm, length = npad // q, npad * self.dx
            t_nodes, w_nodes = self.nodes
            delta = (q - 1) * self.dx / 2 + p * t_nodes / 2  # node offsets from sample 0
            r = np.arange(q)
            fold = np.exp(2j * math.pi * np.outer(delta, r * mm) / length)  # (g, q)
            diag = np.exp(2j * math.pi * np.outer(delta, j0 + np.arange(mm)) / length)  # (g, m)
            g = len(delta)
            # both folds as one matrix (g^2, q^2): kron(fold, fold)[(a, c), (r, s)] = fold[a, r] fold[c, s]
            kron = np.kron(fold, fold).astype(self.dtype)
            d2 = (diag[:, None, :, None] * diag[None, :, None, :]).reshape(g * g, 1, mm, mm).astype(self.dtype)
            wts = (w_nodes[:, None] * w_nodes[None, :]).reshape(-1).astype(np.float32)
            self._fold[n] = (kron, d2, wts)
        return self._h[n]

    def intensity(self, fields: np.ndarray, workers: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixel intensities (B, n/q, n/q) of NIP fields (B, n, n), overwritten; the NIP power (B,) inside
        the window; and the part of it the lenslets' apertures pass (all of it for square lenslets),
        all as fractions of the power reaching the native image plane.  ``workers``: FFT threads
        (default ``optics.threads.cpu_threads()``)."""
        workers = cpu_threads() if workers is None else workers
        b, n, _ = fields.shape
        h = self._tf(n)
        npad, k = self.padded(n)
        flat = fields.view(np.float32 if fields.dtype == np.complex64 else np.float64).reshape(b, -1)
        nip = np.einsum("ij,ij->i", flat, flat).astype(np.float64) * self.norm

        def through(u):  # the part of the power at the MLA plane that its apertures pass
            if not self.blocks:
                return nip
            return np.einsum("bij,ij->b", u.real**2 + u.imag**2, self._open[n]).astype(np.float64) * self.norm

        if n in self._ha:  # defocused LFM: the NIP field travels a to the MLA first
            grid = np.zeros((b, npad, npad), dtype=fields.dtype)
            grid[:, k:k + n, k:k + n] = fields
            grid = sfft.fft2(grid, axes=(-2, -1), workers=workers, overwrite_x=True)
            grid *= self._ha[n]
            grid = sfft.ifft2(grid, axes=(-2, -1), workers=workers, overwrite_x=True)
            passed = through(grid)
            grid *= self._t[n]
        else:
            passed = through(fields)
            if k:
                grid = np.zeros((b, npad, npad), dtype=fields.dtype)
                np.multiply(fields, self._t[n], out=grid[:, k:k + n, k:k + n])
            else:
                grid = fields
                grid *= self._t[n]
        del fields
        spec = sfft.fft2(grid, axes=(-2, -1), workers=workers, overwrite_x=True)
        del grid
        q = self.q
        mm = npad // q
        xf = self._fold_spectra(spec, h, n, b, mm)
        del spec
        pix = self._node_intensity(xf, n, b, mm, workers)
        kp = k // q
        if kp:
            pix = pix[:, kp:kp + n // q, kp:kp + n // q]
        p = self.m.camera.pixel_um
        scale = (p / 2) ** 2 * (mm / npad) ** 4 / self.dx**2  # node weights -> pixel area; ifft -> s
        return pix * (scale * self.norm), nip, passed

    def _fold_spectra(self, spec, h, n, b, mm):
        """Folded spectra (g^2, b, m, m) of the propagated spectra ``spec`` x ``h``, one per node pair."""
        q = self.q
        kron, d2, _ = self._fold[n]
        gg = kron.shape[0]
        # (b, r, kappa, s, lambda) -> (r, s, b, kappa, lambda): rows are the q^2 aliases of a frequency;
        # the transfer function is applied in the same pass
        xs = np.empty((q, q, b, mm, mm), dtype=spec.dtype)
        np.multiply(spec.reshape(b, q, mm, q, mm).transpose(1, 3, 0, 2, 4),
                    h.reshape(1, q, mm, q, mm).transpose(1, 3, 0, 2, 4), out=xs)
        xf = (kron @ xs.reshape(q * q, b * mm * mm)).reshape(gg, b, mm, mm)  # folded spectra per node pair (a, c)
        del xs
        xf *= d2
        return xf

    def _node_intensity(self, xf, n, b, mm, workers):
        wts = self._fold[n][2]
        gg = xf.shape[0]
        s = sfft.ifft2(xf, axes=(-2, -1), workers=workers, overwrite_x=True)  # field at the nodes
        del xf
        sq = s.view(np.float32 if s.dtype == np.complex64 else np.float64).reshape(gg, -1)
        sq *= sq  # re^2 and im^2, interleaved
        return (wts.astype(sq.dtype) @ sq).reshape(b, mm, mm, 2).sum(axis=-1, dtype=np.float64)


def _grid(n: int, dx: float) -> np.ndarray:
    return (np.arange(n) - (n - 1) / 2.0) * dx


def _lfm_patterns(
    m: Microscope, prop: _Propagator, table: _RadialTable, conj: bool, w: int, offsets_um: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Window patterns (P, W N, W N) of sources at image offsets (P, 2) (y, x) from the window centre,
    the fraction (P,) of the NIP power inside the window and the part of it the apertures pass.

    The window is centred on a lenslet.  When every offset is a whole number of field samples the
    field is evaluated once on an enlarged grid and each source's field is a slice of it (one
    quadrant, mirrored: ``grid_components``).  When the offsets differ from one another by whole
    samples only (the positions of a scan, d / K apart, of one off-grid bead), the field is likewise
    evaluated once, on an enlarged grid about their common lattice, where that takes fewer samples
    than one window per source.
    """
    q, dx, mag = prop.q, prop.dx, m.objective.magnification
    n = w * m.pixels_per_lenslet * q
    npos = len(offsets_um)
    ncomp = 5 if m.simulation.vectorial else 1
    side = n // q
    out = np.empty((npos, side, side), dtype=np.float64)
    nip_in = np.empty(npos)
    passed = np.empty(npos)
    qs = offsets_um / dx
    shared = bool(np.all(np.abs(qs - np.round(qs)) < 1e-9))  # whole samples: one field for all
    if shared:
        qi = np.round(qs).astype(int)
        omax = int(np.abs(qi).max(initial=0))
        c = _grid(n + 2 * omax, dx) / mag
        base = table.grid_components(c, conj, prop.dtype)
    else:
        # a common lattice: offsets ref + whole samples, ref (per axis) nearest the middle of their range
        ref = qs[0] + np.round(0.5 * (qs.min(axis=0) + qs.max(axis=0)) - qs[0])
        qi = np.round(qs - ref).astype(int)
        omax = int(np.abs(qi).max(initial=0))
        shared = (bool(np.all(np.abs(qs - ref - qi) < 1e-9)) and npos > 1
                  and (n + 2 * omax) ** 2 < npos * n * n)
        c = _grid(n + 2 * omax, dx) if shared else _grid(n, dx)
        if shared:
            base = [v.astype(prop.dtype, copy=False) for v in table.components(
                ((c - ref[0] * dx) / mag)[:, None], ((c - ref[1] * dx) / mag)[None, :], conj, prop.dtype)]
    threads = min(worker_threads(), npos)
    # at most _BATCH_SAMPLES field samples in flight over all threads (one source each at least)
    # and the sources split evenly over the threads
    chunk = min(max(1, _BATCH_SAMPLES // (threads * ncomp * n * n)), -(-npos // threads))

    def job(start: int) -> None:
        stop = min(npos, start + chunk)
        fields = np.empty((stop - start, ncomp, n, n), dtype=prop.dtype)
        for j, i in enumerate(range(start, stop)):
            if shared:
                sy, sx = omax - qi[i, 0], omax - qi[i, 1]
                for k in range(ncomp):
                    fields[j, k] = base[k][sy : sy + n, sx : sx + n]
            else:
                oy, ox = offsets_um[i]
                comps = table.components(((c - oy) / mag)[:, None], ((c - ox) / mag)[None, :], conj, prop.dtype)
                for k in range(ncomp):
                    fields[j, k] = comps[k]
        pix, nip, through = prop.intensity(fields.reshape(-1, n, n), workers=1 if threads > 1 else cpu_threads())
        out[start:stop] = pix.reshape(stop - start, ncomp, side, side).sum(axis=1)
        nip_in[start:stop] = nip.reshape(stop - start, ncomp).sum(axis=1)
        passed[start:stop] = through.reshape(stop - start, ncomp).sum(axis=1)

    starts = range(0, npos, chunk)
    if threads == 1:
        for start in starts:
            job(start)
    else:
        # sources side by side, one single-threaded pipeline each: numpy's element-wise passes
        # (half of the pipeline) run on one core, the FFTs and products scale no better than this
        prop.prepare(n)  # build the window's tables once, outside the threads
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
            list(pool.map(job, starts))
    return out, nip_in, passed


def _table_radius(m: Microscope, w: int, extra_um: float) -> float:
    """Object-space radius a table must cover: the window's half-diagonal plus the source offset."""
    half = w * m.mla.pitch_um / 2 * math.sqrt(2) + extra_um + m.mla.pitch_um
    return half / m.objective.magnification


def pattern_table_reach_um(m: Microscope) -> float:
    """Source offset (image space) the table of a ``sensor_pattern`` window is built for: the farthest
    any source in the centre lenslet can be (d / 2 per axis), so all sources of a depth share a table."""
    return 0.5 * m.mla.pitch_um * math.sqrt(2)


#: Field tables kept for the next ``sensor_pattern`` calls (most recent last): the sources of a
#: two-point test or a scan share one depth, and building a table (Bessel matrices and the
#: quadrature) is ~40% of one pattern's time.
_TABLES: dict[tuple, tuple] = {}
_TABLES_KEPT = 8


def _table_for(m: Microscope, z_um: float, w: int, extra_um: float) -> tuple[_RadialTable, bool]:
    """Radial table covering the window's half-diagonal plus the source offset (object space), and
    whether to conjugate it (``table_depth``); reused while it is among the last ``_TABLES_KEPT``.

    A radial table's radius is rounded up to its grid (``_RadialTable.grid``), so every request that
    rounds to the same grid gets the table it would have built (bit-identical values); a 2-D pupil
    table (non-radial aberrations) is reused only for the same radius.
    """
    r_obj = _table_radius(m, w, extra_um)
    zt, _ = table_depth(m, z_um)
    r_key = r_obj if _non_radial(m) else _RadialTable.grid(m, zt, r_obj)[1]
    key = (m.hash, float(z_um), round(float(r_key), 9))
    hit = _TABLES.pop(key, None)
    if hit is None:
        hit = _table(m, z_um, r_obj)
    _TABLES[key] = hit
    while len(_TABLES) > _TABLES_KEPT:
        _TABLES.pop(next(iter(_TABLES)))
    return hit


# ----------------------------------------------------------------------------- public: one source
def _check_point(point_um) -> tuple[float, float, float]:
    try:
        x, y, z = (float(v) for v in point_um)
    except (TypeError, ValueError):
        raise ValueError(f"point_um = {point_um!r} is invalid; expected three numbers (x, y, z) in µm") from None
    if not all(math.isfinite(v) for v in (x, y, z)):
        raise ValueError(f"point_um = {point_um!r} is invalid; expected finite numbers (x, y, z) in µm")
    return x, y, z


def _check_window(window_lenslets) -> None:
    if window_lenslets is not None and (
        isinstance(window_lenslets, bool) or int(window_lenslets) != window_lenslets
        or window_lenslets < 1 or window_lenslets % 2 == 0
    ):
        raise ValueError(f"window_lenslets = {window_lenslets!r} is invalid; expected an odd integer >= 1")


def _dtypes(precision: str):
    if precision == "single":
        return np.complex64
    if precision == "double":
        return np.complex128
    raise ValueError(f"precision = {precision!r} is invalid; accepted: 'single', 'double'")


def _paste(image: np.ndarray, patch: np.ndarray, cy: int, cx: int) -> None:
    """Add ``patch`` (odd sides) to ``image`` with its centre at pixel (cy, cx), clipped to the image."""
    hy, hx = patch.shape[0] // 2, patch.shape[1] // 2
    y0, x0 = cy - hy, cx - hx
    ys, xs = max(0, y0), max(0, x0)
    ye, xe = min(image.shape[0], y0 + patch.shape[0]), min(image.shape[1], x0 + patch.shape[1])
    if ye > ys and xe > xs:
        image[ys:ye, xs:xe] += patch[ys - y0 : ye - y0, xs - x0 : xe - x0]


def sensor_pattern(
    m: Microscope,
    point_um=(0.0, 0.0, 0.0),
    *,
    window_lenslets: int | None = None,
    precision: str = "single",
) -> np.ndarray:
    """Sensor intensity of one point source, as fractions of the power reaching the native image plane.

    Parameters
    ----------
    m : Microscope
        "lfm", "lfm-defocused" or "widefield".
    point_um : (x, y, z)
        Source position (µm, object space).  Lateral coordinates are image-oriented: a source at
        (y, x) images in focus at (M y, M x) from the optical axis, which passes through the centre of
        the lenslet (pixel, for wide-field) of index ``n_lenslets // 2``.  z is the offset from the
        focal plane, positive away from the objective.
    window_lenslets : int, optional
        Odd number of lenslets per side of the computation window, centred on the lenslet that holds
        the source's image; default ``window_lenslets(m, z)``, the window of ``compute_psf``, so
        that a source on a voxel centre reproduces its kernel.  Light outside it is lost.
        Ignored for wide-field (the window is ``optics.support.widefield_window_pixels``).
    precision : {"single", "double"}
        complex64 (fast) or complex128 (reference, tests) fields.

    Returns
    -------
    ndarray (float64) of shape ``m.image_shape``.

    Examples
    --------
    >>> from optics import presets
    >>> m = presets.get("lfm-20x-0.5w", camera={"shape": [135, 135]})
    >>> img = sensor_pattern(m, (0.0, 0.0, 10.0))
    """
    x, y, z = _check_point(point_um)
    dtype = _dtypes(precision)
    _check_window(window_lenslets)
    image = np.zeros(m.image_shape, dtype=np.float64)
    ly, lx = m.n_lenslets
    if m.mla is None:
        # only the pixels of the window that land on the image are evaluated
        patch, (r0, c0) = _widefield_patch(m, x, y, z, image_shape=m.image_shape, centre=(ly // 2, lx // 2))
        image[r0: r0 + patch.shape[0], c0: c0 + patch.shape[1]] += patch
        return image
    if m.kind == "flfm":  # one window on the axis holds every elemental image
        from .flfm import flfm_patterns, sensor_window

        side = sensor_window(m, z, m.lateral_magnification * max(abs(x), abs(y)))
        prop = _cached_propagator(m, field_oversampling(m), dtype)
        patch = flfm_patterns(m, prop, [(x, y, z)], side)[0][0]
        _paste(image, patch, ly // 2, lx // 2)
        return image
    return _lenslet_patterns(m, [(x, y)], z, window_lenslets, dtype)[0]


def _lenslet_patterns(m: Microscope, xy, z: float, window_lenslets, dtype) -> np.ndarray:
    """``sensor_pattern`` (P, Y, X) of sources at (x, y) pairs, all at depth z, of a lenslet microscope:
    one window per source, centred on the lenslet of its image, all computed in one batch (and from
    one field evaluation where their offsets within their lenslets differ by whole field samples)."""
    mag = m.objective.magnification
    ly, lx = m.n_lenslets
    npx = m.pixels_per_lenslet
    d = m.mla.pitch_um
    cells = [(round(mag * y / d), round(mag * x / d)) for x, y in xy]
    off = np.array([[mag * y - iy * d, mag * x - ix * d] for (x, y), (iy, ix) in zip(xy, cells)])
    w = int(window_lenslets) if window_lenslets is not None else _default_window(m, z)
    q = field_oversampling(m)
    prop = _cached_propagator(m, q, dtype)
    table, conj = _table_for(m, z, w, pattern_table_reach_um(m))  # shared by the depth's sources
    patches = _lfm_patterns(m, prop, table, conj, w, off)[0]
    images = np.zeros((len(xy), *m.image_shape), dtype=np.float64)
    for image, patch, (iy, ix) in zip(images, patches, cells):
        _paste(image, patch, (ly // 2 + iy) * npx + npx // 2, (lx // 2 + ix) * npx + npx // 2)
    return images


def sensor_patterns(m: Microscope, points_um, *, window_lenslets: int | None = None,
                    precision: str = "single") -> np.ndarray:
    """``sensor_pattern`` of each point, (P, Y, X): the same values, computed together.

    The points of one depth are computed in one batch; where their offsets within their lenslets
    differ by whole field samples (a scanning LFM's positions of one bead: d / K apart, a whole number
    of samples when K divides N q) the Debye field is evaluated once for all of them.  Parameters as
    ``sensor_pattern``; ``points_um`` is a sequence of (x, y, z).
    """
    pts = [_check_point(p) for p in points_um]
    if not pts:
        raise ValueError("points_um is empty; expected at least one (x, y, z) position in µm")
    if m.mla is None or m.kind == "flfm":
        return np.stack([sensor_pattern(m, p, window_lenslets=window_lenslets, precision=precision) for p in pts])
    _check_window(window_lenslets)
    dtype = _dtypes(precision)
    out = np.empty((len(pts), *m.image_shape), dtype=np.float64)
    for z in dict.fromkeys(p[2] for p in pts):
        idx = [i for i, p in enumerate(pts) if p[2] == z]
        out[idx] = _lenslet_patterns(m, [pts[i][:2] for i in idx], z, window_lenslets, dtype)
    return out


_PROPAGATORS: dict[tuple, _Propagator] = {}


def _cached_propagator(m: Microscope, q: int, dtype) -> _Propagator:
    """The propagator of ``m`` (its transmittance, transfer function and folds per window), kept
    for the next ``sensor_pattern`` call of the same microscope: building them is most of the time
    of one pattern (~0.9 s of 1.6 s for the 40x/0.95 preset 24 um deep).  The last two are kept."""
    key = (m.hash, int(q), np.dtype(dtype).str)
    prop = _PROPAGATORS.pop(key, None) or _Propagator(m, q, dtype)
    _PROPAGATORS[key] = prop  # most recent last
    while len(_PROPAGATORS) > 2:
        _PROPAGATORS.pop(next(iter(_PROPAGATORS)))
    return prop


def _widefield_patch(m: Microscope, x: float, y: float, z: float, *, image_shape=None, centre=(0, 0)):
    """Pixel-integrated wide-field intensity around the pixel nearest the source's image.

    No propagation is involved, so the field is evaluated at the Gauss-Legendre nodes of every pixel
    (``pixel_nodes``) directly.  The window (``optics.support.widefield_window_pixels``) holds all but
    CROP_TOLERANCE / 2 of the power.  Returns (patch, (row, col)): the patch and where it starts in
    pixels from the axis pixel, ``centre`` (the whole window, centred on the source's pixel, starts
    at (iy - K//2, ix - K//2)).  With ``image_shape`` only the part of the window inside the image
    (axis pixel at ``centre``) is evaluated.
    """
    p = m.pixel_object_um
    iy, ix = round(y / p), round(x / p)
    k = widefield_window_pixels(m, z)
    h = k // 2
    g, wts = pixel_nodes(field_oversampling(m))
    q = len(g)
    oy, ox = y - iy * p, x - ix * p
    # window pixels (relative to the source's pixel) kept: all, or those on the image
    if image_shape is None:
        (a0, a1), (b0, b1) = (-h, h + 1), (-h, h + 1)
    else:
        cy, cx = centre[0] + iy, centre[1] + ix  # the source's pixel in the image
        a0, a1 = max(-h, -cy), min(h + 1, image_shape[0] - cy)
        b0, b1 = max(-h, -cx), min(h + 1, image_shape[1] - cx)
        if a1 <= a0 or b1 <= b0:
            return np.zeros((0, 0)), (0, 0)
    reach = max(abs(a0), abs(a1 - 1), abs(b0), abs(b1 - 1))
    r_max = (reach * p + p) * math.sqrt(2) + math.hypot(oy, ox)
    w2 = (0.5 * p) ** 2 * (wts[:, None] * wts[None, :])
    if _non_radial(m):  # the 2-D pupil integral at every pixel node (optics.debye2d)
        from .debye2d import PupilTable

        cy_ = ((np.arange(a0, a1) * p)[:, None] + 0.5 * p * g[None, :]).reshape(-1) - oy
        cx_ = ((np.arange(b0, b1) * p)[:, None] + 0.5 * p * g[None, :]).reshape(-1) - ox
        # margin 4: a wide-field window is small, and its far rings are what the edge would dim
        fields = PupilTable(m, float(z), r_max, margin=4.0).components(cy_[:, None], cx_[None, :], False)
        inten = sum(f.real**2 + f.imag**2 for f in fields).reshape(a1 - a0, q, b1 - b0, q)
        pix = (inten * w2.reshape(1, q, 1, q)).sum(axis=(1, 3), dtype=np.float64) / nip_power(m)
        return pix, (centre[0] + iy + a0, centre[1] + ix + b0)
    table = _RadialTable(m, table_depth(m, z)[0], r_max)  # |U|^2: the conjugate's is the same
    # the (unpolarised) intensity is radially symmetric: tabulate it finely on one radius and
    # interpolate linearly (step 0.002 lambda0/NA: relative error ~ (2 pi 0.004)^2 / 8 = 8e-5)
    rr = np.arange(0.0, r_max + 1e-3, 0.002 * m.wavelength_um / m.objective.na)
    prof = sum(np.abs(v) ** 2 for v in table.components(rr, np.zeros_like(rr), False))
    whole = (a0, a1, b0, b1) == (-h, h + 1, -h, h + 1)
    if oy == 0 and ox == 0 and whole:
        # a source on a pixel centre: the pixel values have the 8-fold symmetry of the intensity
        # (the nodes are symmetric about each pixel's centre), so integrate one octant u >= v >= 0
        uu, vv = np.tril_indices(h + 1)
        ya = (uu[:, None] + 0.5 * g[None, :]) * p
        xa = (vv[:, None] + 0.5 * g[None, :]) * p
        inten = np.interp(np.hypot(ya[:, :, None], xa[:, None, :]), rr, prof)
        octant = np.einsum("iab,ab->i", inten, w2)
        pix = np.empty((k, k))
        for a, b in ((uu, vv), (vv, uu)):
            for sy in (1, -1):
                for sx in (1, -1):
                    pix[h + sy * a, h + sx * b] = octant
    else:
        cy_ = ((np.arange(a0, a1) * p)[:, None] + 0.5 * p * g[None, :]).reshape(-1)
        cx_ = ((np.arange(b0, b1) * p)[:, None] + 0.5 * p * g[None, :]).reshape(-1)
        radius = np.hypot((cy_ - oy)[:, None], (cx_ - ox)[None, :])
        inten = np.interp(radius, rr, prof)
        del radius
        pix = (inten.reshape(a1 - a0, q, b1 - b0, q) * w2.reshape(1, q, 1, q)).sum(axis=(1, 3), dtype=np.float64)
    pix /= nip_power(m)
    return pix, (centre[0] + iy + a0, centre[1] + ix + b0)


# ----------------------------------------------------------------------------- public: kernels
def _fundamental_phases(s: int) -> list[tuple[int, int]]:
    """Phases (u, v), u <= v <= (s-1)/2: one per orbit of the mirror/transpose group (8-fold)."""
    half = (s + 1) // 2
    return [(u, v) for u in range(half) for v in range(u, half)]


def _orbit_map(s: int) -> dict[tuple[int, int], tuple[tuple[int, int], bool, bool, bool]]:
    """For each phase (a, b): the fundamental phase and (transpose, flip_y, flip_x) to apply in order."""
    out = {}
    for a in range(s):
        for b in range(s):
            a1, b1 = min(a, s - 1 - a), min(b, s - 1 - b)
            out[(a, b)] = ((min(a1, b1), max(a1, b1)), a1 > b1, a1 != a, b1 != b)
    return out


def _apply_symmetry(k: np.ndarray, transpose: bool, flip_y: bool, flip_x: bool) -> np.ndarray:
    """K_{a,b} from K_{u,v}: a source mirrored or transposed about its lenslet's centre mirrors
    or transposes its pattern about the centre pixel (odd kernel sides keep that pixel fixed)."""
    if transpose:
        k = k.T
    if flip_y:
        k = k[::-1, :]
    if flip_x:
        k = k[:, ::-1]
    return k


def _lfm_kernels(m: Microscope, progress: bool) -> tuple[list[np.ndarray], np.ndarray, dict]:
    s, npx, mag = m.voxels_per_lenslet, m.pixels_per_lenslet, m.objective.magnification
    q = field_oversampling(m)
    prop = _Propagator(m, q, np.complex64)
    if _non_radial(m):  # no mirror/transpose symmetry: every phase is computed
        fund = [(a, b) for a in range(s) for b in range(s)]
        orbit = {ph: (ph, False, False, False) for ph in fund}
    else:
        fund = _fundamental_phases(s)
        orbit = _orbit_map(s)
    cs = (s - 1) / 2
    step = m.voxel_um * mag  # image-space offset between phases
    offsets = np.array([[(u - cs) * step, (v - cs) * step] for u, v in fund])
    z_all = m.z_um
    kernels: list[np.ndarray] = []
    discarded = np.zeros((len(z_all), s, s))
    tables: dict = {}
    methods = []
    # one radius grid and node count for all depths: every table shares one set of Bessel matrices
    extra = float(np.abs(offsets).max(initial=0.0)) * math.sqrt(2)
    r_table = max(_table_radius(m, window_lenslets(m, z), extra) for z in z_all)
    count = _RadialTable.plan(m, z_all, r_table)
    from tqdm.auto import tqdm

    bar = tqdm(z_all, desc="light-field PSF", unit="depth", disable=not progress or not sys.stderr.isatty())
    for iz, z in enumerate(bar):
        w = window_lenslets(m, z)  # offset d/2: the same window as sensor_pattern's default bound
        key, conj = table_depth(m, z)
        if key not in tables:  # z-conjugation: the table of |z| serves +z and -z (no aberrations)
            tables[key] = _table(m, float(z), r_table, count)[0]
        pats, nip_in, passed = _lfm_patterns(m, prop, tables[key], conj, w, offsets)
        methods.append(prop.method(w * npx * q))
        r_w = (w - 1) // 2
        r = (crop_side_pixels(pats, CROP_TOLERANCE, npx) // npx - 1) // 2
        lo, hi = (r_w - r) * npx, (r_w + r + 1) * npx
        crop = pats[:, lo:hi, lo:hi]
        # lost: the Debye tail outside the window, the light the band-limited array sends beyond the
        # grid's band (~1e-3) and what the crop removes; light the apertures block is not "lost" (it
        # never reaches the sensor in the real microscope either), so square lenslets: 1 - sum
        lost = np.clip(1.0 - nip_in, 0.0, None) + passed - crop.sum(axis=(1, 2))
        side = hi - lo
        kz = np.empty((s, s, side, side), dtype=np.float32)
        index = {ph: i for i, ph in enumerate(fund)}
        for (a, b), (ph, tr, fy, fx) in orbit.items():
            kz[a, b] = _apply_symmetry(crop[index[ph]], tr, fy, fx)
            discarded[iz, a, b] = lost[index[ph]]
        kernels.append(kz)
        # the table of |z| is needed again only for the mirrored depth
        if m.aberrations.active or (-z) not in z_all[iz + 1 :]:
            tables.pop(key, None)
    meta = {"oversampling": q, "crop_tolerance": CROP_TOLERANCE, "guard_lenslets": GUARD_LENSLETS,
            "pixel_nodes": len(prop.nodes[0]),
            "propagation": methods, "distinct_phases_per_depth": len(fund)}
    return kernels, discarded, meta


def _widefield_kernels(m: Microscope, progress: bool) -> tuple[list[np.ndarray], np.ndarray, dict]:
    from tqdm.auto import tqdm

    z_all = m.z_um
    kernels: list[np.ndarray] = []
    discarded = np.zeros((len(z_all), 1, 1))
    done: dict[float, np.ndarray] = {}
    bar = tqdm(z_all, desc="wide-field PSF", unit="depth", disable=not progress or not sys.stderr.isatty())
    for iz, z in enumerate(bar):
        key = table_depth(m, z)[0]
        if key not in done:  # |U(r, -z)|^2 = |U(r, z)|^2 without aberrations
            patch = _widefield_patch(m, 0.0, 0.0, key)[0]
            # the window already misses 1 - sum (<= CROP_TOLERANCE / 2); the crop may take the rest
            budget = max(0.0, CROP_TOLERANCE - max(0.0, 1.0 - float(patch.sum())))
            side = crop_side_pixels(patch, budget)
            lo = (patch.shape[0] - side) // 2
            done[key] = patch[lo: lo + side, lo: lo + side].astype(np.float32)
        k = done[key]
        kernels.append(k[None, None])
        discarded[iz, 0, 0] = max(0.0, 1.0 - float(k.sum(dtype=np.float64)))
    return kernels, discarded, {"oversampling": field_oversampling(m), "crop_tolerance": CROP_TOLERANCE,
                                "pixel_nodes": len(pixel_nodes(field_oversampling(m))[0])}


def _try_load(path: Path, m: Microscope) -> LightFieldPSF | None:
    try:
        psf = load_psf(path)
        if psf.microscope.kernel_hash != m.kernel_hash:
            raise ValueError(f"its kernel hash {psf.microscope.kernel_hash} is not {m.kernel_hash}")
        if psf.meta.get("model_version") != model_version():
            raise ValueError(f"it was computed by model {psf.meta.get('model_version')}, not the current "
                             f"{model_version()} (the PSF code changed)")
        if psf.microscope.hash != m.hash:  # another camera shape: the same kernels, this microscope
            psf = LightFieldPSF(m, psf.z_um, psf.kernels, psf.discarded, psf.meta)
        return psf
    except Exception as e:  # a corrupt or stale cache entry is recomputed, never fatal
        logger.warning("cached PSF %s is unusable (%s); recomputing", path, e)
        return None


def compute_psf(
    m: Microscope, *, cache: bool = True, overwrite_cache: bool = False, progress: bool = True
) -> LightFieldPSF:
    """Light-field (or wide-field) PSF kernels of ``m`` for every depth and voxel phase.

    Parameters
    ----------
    m : Microscope
    cache : bool
        Load from / save to ``optics.psfdata.cache_path(m)`` (keyed by ``m.kernel_hash``, the
        config without the camera's shape, and the model version, which is also stored in the file
        and checked).  A corrupt or stale cache file is
        logged and recomputed.
    overwrite_cache : bool
        Recompute and replace the cache entry even if it exists.
    progress : bool
        Show a tqdm bar (only when stderr is a terminal).

    Returns
    -------
    LightFieldPSF
        ``kernels[iz]`` of shape (s, s, K_z, K_z), float32, fractions of the native-image-plane power
        (the contract of ``optics.psfdata``).  Each depth's window is W = ``window_lenslets`` lenslets;
        its kernels are cropped to the smallest odd number of lenslets that loses at most
        ``CROP_TOLERANCE`` of the power.  ``discarded`` records the power a kernel misses: the
        Debye field's far tail outside the window (its intensity falls as r^-3, so ~1% stays outside
        a 3-lenslet window in focus) plus the crop.  Distinct kernels are
        computed once: the phases with u <= v <= (s-1)/2, the others by mirror/transpose.

    Raises
    ------
    ConfigError
        If the operator would exceed the memory allowed (``Microscope.check_operator_fits``),
        before any heavy work.
    """
    if not isinstance(m, Microscope):
        raise TypeError(f"m = {type(m).__name__} is invalid; expected an optics.Microscope")
    if m.kind not in ("lfm", "lfm-defocused", "widefield", "flfm", "slfm"):
        raise ConfigError(f"microscope.kind = {m.kind!r} is not supported by compute_psf; accepted: 'lfm', "
                          "'lfm-defocused', 'flfm', 'slfm', 'widefield'")
    m.check_operator_fits()
    path = cache_path(m)
    if cache and not overwrite_cache and path.is_file():
        psf = _try_load(path, m)
        if psf is not None:
            logger.info("loaded PSF from cache %s", path)
            return psf
    t0 = time.perf_counter()
    if m.kind == "widefield":
        kernels, discarded, meta = _widefield_kernels(m, progress)
    elif m.kind == "flfm":
        from .flfm import flfm_kernels

        kernels, discarded, meta = flfm_kernels(m, progress)
    else:
        kernels, discarded, meta = _lfm_kernels(m, progress)
    meta["seconds"] = time.perf_counter() - t0
    meta["model"] = ("debye pupil field at the array x lenslets -> b (BL-ASM), Gauss-Legendre pixel integration"
                     if m.kind == "flfm" else
                     "debye-nip x band-limited mla -> f_ml (BL-ASM), Gauss-Legendre pixel integration")
    meta["model_version"] = model_version()
    psf = LightFieldPSF(m, m.z_um, kernels, discarded, meta)
    logger.info("computed PSF of %s in %.1f s (%d depths, %.1f MB)", m.name or m.hash,
                meta["seconds"], len(kernels), psf.nbytes / 1e6)
    if cache:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            psf.save(path, overwrite=True)
        except OSError as e:
            logger.warning("could not write the PSF cache %s: %s", path, e)
    return psf


def _peak_rss_mb() -> float:
    try:
        import resource  # Unix only
    except ImportError:
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def build_report(m: Microscope) -> dict:
    """Build the operator of ``m`` without the cache and measure it (for ``benchmarks perf``).

    Returns
    -------
    dict
        seconds (wall time of ``compute_psf``), peak_rss_mb (process peak resident memory, MB),
        nbytes (kernels in memory), disk_bytes (size of the saved .npz), depths, distinct kernels.
    """
    t0 = time.perf_counter()
    psf = compute_psf(m, cache=False, progress=False)
    seconds = time.perf_counter() - t0
    peak = _peak_rss_mb()
    with tempfile.TemporaryDirectory() as tmp:
        out = psf.save(Path(tmp) / "operator.npz")
        disk = os.path.getsize(out)
    return {
        "seconds": seconds,
        "peak_rss_mb": peak,
        "nbytes": psf.nbytes,
        "disk_bytes": int(disk),
        "depths": len(psf.z_um),
        "kernel_sides": [int(k.shape[-1]) for k in psf.kernels],
        "distinct_kernels_per_depth": psf.meta.get("distinct_phases_per_depth", 1),
    }
