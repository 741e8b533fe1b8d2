"""Fourier light-field microscope (FLFM, XLFM): the sensor image of a point source and its kernels.

Optical train (../shared/PHYSICS.md sections 1 and 4, FAMILIES.md section 1; telecentric 4f relays):
objective (f_obj = f1 / M) -> tube lens f1 -> native image plane -> Fourier lens f2 -> lenslet array
at f2's back focal plane, conjugate to the objective's pupil -> sensor b behind it (b = f_ml).  The
field of a point source at (x, y, z) at the array is the Debye pupil field, analytic:

    E(u) = circ(|u| <= NA F) P(theta) / cos(theta) exp(i k0 u.x / F) exp(i k z cos theta) exp(2 pi i W),

F = f_obj f2 / f1, n sin(theta) = |u| / F, P the apodization of ``optics.debye`` (sqrt(cos) by
default, so |E|^2 ~ 1/cos: equal power per solid angle).  It is the Fourier transform, through the
Fourier lens, of ``optics.debye``'s field at the native image plane: a plane-wave component
k sin(theta) of the object side arrives at u = n sin(theta) F (the sine condition), and the Jacobian
of u -> theta turns P into P / cos.  The z phase is the Debye one (z > 0 away from the objective);
W is the pupil phase of ``[aberrations]`` (``optics.pupil``: Zernike terms at rho = |u| / (NA F) and
the Gibson-Lanni term of the source's depth).

Lateral axes are image-oriented as in every lfmsim kind: they are the sensor's axes, in which each
elemental image moves by +M_T (dx, dy) with the source (the relay inverts the native image once
more, so these are the object's own axes).  The sign of exp(i k0 u.x / F) states that.

Then the array (``optics.lenslets``), the propagation b to the sensor and the pixel integration are
``optics.lfpsf``'s (band-limited angular spectrum, exact Gauss-Legendre pixel integration).  Values
are fractions of the power the objective collects, 2 pi (n F)^2 int P^2 tan(theta) dtheta at the
array (Parseval; the same integral as ``optics.lfpsf.nip_power`` in other units).

The system is shift-invariant per depth (apart from the array's finite extent, which only blocks):
one kernel per depth, the on-axis source's whole set of elemental images, and the operator is the
2-D convolution per depth shared with wide-field (N = s = 1, ``optics.psfdata``).  An optional field
stop at the native image plane (``mla.field_stop_um``, ``apply_field_stop``) clips each source's
image there exactly in ``sensor_pattern`` (so simulated sources near the field's edge are vignetted);
the kernels are the on-axis source's, and the reconstruction keeps the volume inside the field.
"""

from __future__ import annotations

import functools
import math
import sys

import numpy as np

from . import debye
from .config import Microscope
from .lenslets import circumradius, edge_amplitude, lenslet_centres, lenslet_focals
from .support import CROP_TOLERANCE, FLFM_GUARD_PITCHES, crop_side_pixels, flfm_reach_um
from .support import flfm_window_pixels as window_pixels
from .threads import cpu_threads

__all__ = ["pupil_power", "pupil_field", "apply_field_stop", "window_pixels", "sensor_window", "pupil_edge_slope",
           "field_stop_radius_object_um"]

def pupil_power(m: Microscope) -> float:
    """Power of ``pupil_field`` at the array: 2 pi (n F)^2 int_0^alpha P^2 tan(theta) dtheta (µm^2)."""
    k = m.wavenumber
    scale = (k * m.objective.immersion_index * m.fourier_focal_um) ** 2
    return debye.total_power(m.objective.half_angle, k, m.simulation.apodization, False) * scale


def _apodized(m: Microscope, sin_t: np.ndarray) -> np.ndarray:
    cos_t = np.sqrt(1.0 - sin_t * sin_t)
    return debye._apodization(m.simulation.apodization, cos_t) / cos_t, cos_t


def pupil_field(m: Microscope, coord_um: np.ndarray, point_um, dtype=np.complex64) -> np.ndarray:
    """``E(u)`` on the square grid ``coord_um`` x ``coord_um`` (rows y, columns x; µm, MLA plane,
    from the axis) of a source at ``point_um`` = (x, y, z).  The pupil's edge is anti-aliased like the
    lenslet apertures (``optics.lenslets.edge_amplitude``).  An on-axis source on a grid symmetric
    about 0 is evaluated on one quadrant and mirrored (the field is radially symmetric)."""
    x, y, z = (float(v) for v in point_um)
    c = np.asarray(coord_um, dtype=np.float64)
    nn = len(c)
    dx = float(c[1] - c[0]) if nn > 1 else 1.0
    from .pupil import is_radial

    radial = all(is_radial(j) for j in m.aberrations.coefficients)
    if (radial and x == 0 and y == 0 and nn > 1
            and np.allclose(c, -c[::-1], rtol=0, atol=1e-9 * float(np.abs(c).max()))):
        half = np.abs(c[nn // 2:])
        quad = _radial_part(m, half[:, None], half[None, :], z, dx, dtype)
        kmap = np.abs(2 * np.arange(nn) - (nn - 1)) // 2  # position -> quadrant index of |c|
        return quad[kmap[:, None], kmap[None, :]]
    f = m.fourier_focal_um
    k0 = 2 * math.pi / m.wavelength_um
    out = np.empty((nn, nn), dtype=dtype)
    rows = max(1, 4_000_000 // max(1, nn))
    tilt_x = np.exp(1j * k0 * x / f * c).astype(dtype)  # exp(i k0 u_x x / F), separable
    for i0 in range(0, nn, rows):
        cy = c[i0:i0 + rows, None]
        out[i0:i0 + rows] = _radial_part(m, cy, c[None, :], z, dx, dtype)
        out[i0:i0 + rows] *= np.exp(1j * k0 * y / f * cy).astype(dtype)
        out[i0:i0 + rows] *= tilt_x[None, :]
    return out


def _radial_part(m: Microscope, uy: np.ndarray, ux: np.ndarray, z: float, dx: float, dtype) -> np.ndarray:
    """circ P / cos exp(i k z cos theta) at MLA-plane positions (uy, ux) (broadcast) of a grid of
    spacing ``dx`` (the pupil edge's band limit), as ``dtype``."""
    f, n, na = m.fourier_focal_um, m.objective.immersion_index, m.objective.na
    rho = np.hypot(uy, ux)
    amp = edge_amplitude(na * f - rho, dx)
    sin_t = np.minimum(rho / (n * f), na / n)
    a, cos_t = _apodized(m, sin_t)
    phase = (m.wavenumber * z) * cos_t
    coeffs = m.aberrations.coefficients
    if coeffs:  # the objective's aberrations: 2 pi sum c_j Z_j(|u| / (NA F), phi), optics.pupil
        from .pupil import phase_waves

        phase = phase + 2 * math.pi * phase_waves(coeffs, np.minimum(rho / (na * f), 1.0), np.arctan2(uy, ux))
    if m.aberrations.gibson_lanni:  # index mismatch at the source's depth, optics.pupil
        from .pupil import gibson_lanni_waves

        phase = phase + 2 * math.pi * gibson_lanni_waves(m, np.minimum(rho / (na * f), 1.0), z)
    return ((amp * a) * np.exp(1j * phase)).astype(dtype)


def apply_field_stop(m: Microscope, field: np.ndarray, dx_um: float, workers: int | None = None) -> np.ndarray:
    """The array-plane field(s) (..., n, n) after a circular field stop ``mla.field_stop_um`` at the
    native image plane, in place when possible.

    The Fourier lens makes the array plane the Fourier transform of the native image plane: the
    grid's frequency nu is the image-plane position x' = lambda0 f2 nu.  So the stop is a mask on the
    field's spectrum, circ(lambda0 f2 |nu| <= D / 2), band-limited like the apertures
    (``optics.lenslets.edge_amplitude``, in frequency samples).  Exact for every source, defocused or
    not: it clips each source's image-plane field where the real stop does.  A stop larger than the
    grid's image-plane extent lambda0 f2 / (2 dx) clips nothing and is skipped.
    """
    stop = m.mla.field_stop_um
    if stop <= 0:
        return field
    from scipy import fft as sfft

    workers = cpu_threads() if workers is None else workers
    mask = _stop_mask(stop, m.wavelength_um * m.mla.fourier_lens_focal_um, field.shape[-1], float(dx_um))
    if mask is None:
        return field
    spec = sfft.fft2(field, axes=(-2, -1), workers=workers, overwrite_x=True)
    spec *= mask
    return sfft.ifft2(spec, axes=(-2, -1), workers=workers, overwrite_x=True)


@functools.lru_cache(maxsize=2)
def _stop_mask(stop: float, scale: float, n: int, dx_um: float) -> np.ndarray | None:
    """The stop's band-limited mask on the FFT frequencies of n samples of ``dx_um`` (image-plane
    position x' = ``scale`` nu), kept for the next depth; None when the stop is beyond the grid."""
    from scipy import fft as sfft

    step = scale / (n * dx_um)  # image-plane distance between frequency samples
    if stop / 2 >= scale / (2 * dx_um) - step:
        return None
    nu = sfft.fftfreq(n, d=dx_um) * scale
    return edge_amplitude(stop / 2 - np.hypot(nu[:, None], nu[None, :]), step).astype(np.float32)


def field_stop_radius_object_um(m: Microscope) -> float:
    """Radius of the field the stop passes, in the sample: D / (2 M) (inf without a stop)."""
    stop = m.mla.field_stop_um if m.kind == "flfm" else 0.0
    return stop / (2 * m.objective.magnification) if stop > 0 else math.inf


def pupil_edge_slope(m: Microscope, z_um: float) -> float:
    """Highest local spatial frequency (cycles/µm) of the pupil field's phase at the array:
    |d(k z cos theta)/du| / 2 pi = |z| tan(alpha) / (lambda0 F) at the pupil's edge."""
    return abs(z_um) * math.tan(m.objective.half_angle) / (m.wavelength_um * m.fourier_focal_um)


def sensor_window(m: Microscope, z_um: float, shift_um: float = 0.0) -> int:
    """Odd side (pixels) of the window, centred on the axis pixel, that holds the image of a source
    at depth ``z_um`` whose elemental images are shifted by up to ``shift_um`` (sensor side, M_T
    max(|x|, |y|)): the kernel window grown by the shift (the lenslets stay where they are)."""
    return 2 * math.ceil((flfm_reach_um(m, z_um) + abs(shift_um)) / m.camera.pixel_um) + 1


def oversampling_need(m: Microscope, z_max_um: float) -> float:
    """Largest field sample spacing (µm) the array plane needs: lambda0 / (2 nu_max), with nu_max the
    lenslet chirp's slope at the aperture's rim (r / (lambda0 f)) plus the pupil field's own
    (``pupil_edge_slope``): the field after the array is then sampled at its highest local frequency."""
    r = circumradius(m)
    f_min = float(np.min(lenslet_focals(m)))
    nu = r / (m.wavelength_um * f_min) + pupil_edge_slope(m, z_max_um)
    return 1.0 / (2 * nu)


def flfm_patterns(m: Microscope, prop, points_um, side: int, workers: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sensor patterns (P, side, side) of sources ``points_um`` (P, 3) on a window of ``side`` pixels
    centred on the axis pixel, the power (P,) of the pupil field on the window's grid and the part
    the lenslets pass, all as fractions of ``pupil_power``."""
    q, dx = prop.q, prop.dx
    n = side * q
    coord = (np.arange(n) - (n - 1) / 2.0) * dx
    pts = np.asarray(points_um, dtype=np.float64).reshape(-1, 3)
    out = np.empty((len(pts), side, side))
    inside = np.empty(len(pts))
    passed = np.empty(len(pts))
    for i, pt in enumerate(pts):
        field = apply_field_stop(m, pupil_field(m, coord, pt, prop.dtype), dx, workers)[None]
        pix, inside[i:i + 1], passed[i:i + 1] = prop.intensity(field, workers=workers)
        out[i] = pix[0]
    return out, inside, passed


def kernel_threads(m: Microscope) -> int:
    """Depths computed side by side: the worker threads, at most 2 (~1.5 GB of work arrays each for a
    2048-pixel window at 2 samples per pixel)."""
    from .lfpsf import worker_threads

    return min(worker_threads(), len(m.z_um), 2)


def flfm_kernels(m: Microscope, progress: bool):
    """Kernels (one per depth, shape (1, 1, K, K)), discarded fractions and provenance of ``m``.

    Every depth is computed on the largest depth's window, so the array's transmittance, the transfer
    function and the pixel folds are built once; depths run side by side in threads (single-threaded
    FFTs each, ``optics.lfpsf.worker_threads``), each kernel then cropped to its energy."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits
    from tqdm.auto import tqdm

    from .lfpsf import _Propagator, field_oversampling

    q = field_oversampling(m)
    prop = _Propagator(m, q, np.complex64)
    z_all = [float(z) for z in m.z_um]
    side = max(window_pixels(m, z) for z in z_all)
    kernels: list = [None] * len(z_all)
    discarded = np.zeros((len(z_all), 1, 1))
    bar = tqdm(total=len(z_all), desc="Fourier LF PSF", unit="depth",
               disable=not progress or not sys.stderr.isatty())
    threads = kernel_threads(m)

    def job(iz: int) -> None:
        pats, _, passed = flfm_patterns(m, prop, [(0.0, 0.0, z_all[iz])], side,
                                        workers=1 if threads > 1 else cpu_threads())
        pat = pats[0]
        # light the apertures block never reaches the sensor (as in the microscope): not "lost"
        crop = crop_side_pixels(pat, max(0.0, CROP_TOLERANCE - max(0.0, float(passed[0] - pat.sum()))))
        lo = (side - crop) // 2
        k = pat[lo:lo + crop, lo:lo + crop].astype(np.float32)
        kernels[iz] = k[None, None]
        discarded[iz, 0, 0] = max(0.0, float(passed[0]) - float(k.sum(dtype=np.float64)))
        bar.update()

    if threads == 1:
        for iz in range(len(z_all)):
            job(iz)
    else:
        prop.prepare(side * q)  # the window's tables once, outside the threads
        with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
            list(pool.map(job, range(len(z_all))))
    bar.close()
    meta = {"oversampling": q, "crop_tolerance": CROP_TOLERANCE, "guard_pitches": FLFM_GUARD_PITCHES,
            "pixel_nodes": len(prop.nodes[0]), "propagation": prop.method(0), "window_pixels": side,
            "lenslets": int(len(lenslet_centres(m)))}
    return kernels, discarded, meta
