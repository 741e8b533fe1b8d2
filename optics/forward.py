"""Reference light-field forward projection and its exact adjoint (slow, obviously correct).

The discrete model is the periodic shift-variant light-field PSF of Broxton et al. 2013 (Opt.
Express 21:25418) in the per-phase form of Stefanoiu et al. 2019 (Opt. Express 27:31644, oLaF
``LFM_forwardProject``), exactly as ``optics.psfdata`` defines it (PHYSICS.md section 4)::

    image = sum_z sum_(a,b) K_{z,a,b} * (P_ab x_z)

``P_ab`` scatters each voxel of phase (a, b) = (iy % s, ix % s) to the centre pixel
(ly N + N // 2, lx N + N // 2) of its lenslet (ly, lx) = (iy // s, ix // s); ``*`` is the linear
convolution with the kernel's centre (index K // 2) on that pixel, "same"-size output, so light
falling outside the image is dropped.  The adjoint is the exact transpose,
``x_z = sum_(a,b) P_ab^T (K~_{z,a,b} * y)`` with ``K~(u) = K(-u)`` (kernels are odd-sized, so the
flip is exact).

``forward_project`` is the reference that faster operators (``reconstruction``) are tested against:
one ``scipy.signal.fftconvolve`` per depth and phase, nothing clever.  ``forward_project_lenslet`` is
the fast path of the simulation (``optics.simulation``), the same sum evaluated on the lenslet grid:
writing an output pixel as (LY N + c, LX N + d), each (voxel phase, pixel phase) pair is a small
convolution of the phase's voxel plane with the kernel's samples K[j N + c, i N + d], done by FFT on
the lenslet grid (DESIGN.md, "Performance model").  Wide-field is the case N = s = 1.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy.signal import fftconvolve

from .psfdata import LightFieldPSF

__all__ = ["forward_project", "forward_project_lenslet", "adjoint_project", "scatter_phase", "gather_phase"]

log = logging.getLogger(__name__)


def _check_psf(psf) -> None:
    if not isinstance(psf, LightFieldPSF):
        raise TypeError(f"psf = {type(psf).__name__} is invalid: expected an optics.LightFieldPSF")


def _check_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype = {dt} is invalid: expected float32 or float64")
    return dt


def _check_array(name: str, arr, expected: tuple[int, ...], what: str) -> np.ndarray:
    if not isinstance(arr, np.ndarray):
        raise TypeError(f"{name} = {type(arr).__name__} is invalid: expected a numpy array of shape {expected}")
    if arr.shape != tuple(expected):
        raise ValueError(f"{name} has shape {arr.shape}; expected {tuple(expected)} ({what})")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name} has dtype {arr.dtype}; expected a real numeric array")
    return arr


def _centre_slices(psf: LightFieldPSF, a: int, b: int) -> tuple[slice, slice, slice, slice]:
    """Index slices pairing voxels of phase (a, b) with their lenslets' centre pixels.

    Returns (vy, vx, py, px): ``volume[:, vy, vx]`` are the voxels of phase (a, b), in lenslet
    order, and ``image[py, px]`` are the centre pixels of the same lenslets.
    """
    s, n = psf.voxels_per_lenslet, psf.pixels_per_lenslet
    ly, lx = psf.n_lenslets
    return (
        slice(a, ly * s, s),
        slice(b, lx * s, s),
        slice(n // 2, ly * n, n),
        slice(n // 2, lx * n, n),
    )


def scatter_phase(psf: LightFieldPSF, plane: np.ndarray, a: int, b: int) -> np.ndarray:
    """``P_ab``: put the voxels of phase (a, b) of one depth ``plane`` on their lenslets' centre pixels.

    Parameters
    ----------
    psf : LightFieldPSF
        Gives the geometry (voxels and pixels per lenslet, number of lenslets).
    plane : ndarray, (ly*s, lx*s)
        One depth of the volume.
    a, b : int
        Voxel phase (row, column) in [0, s).

    Returns
    -------
    ndarray, (ly*N, lx*N)
        Zero except at the lenslet centre pixels; same dtype as ``plane``.
    """
    vy, vx, py, px = _centre_slices(psf, a, b)
    out = np.zeros(psf.image_shape, dtype=plane.dtype)
    out[py, px] = plane[vy, vx]
    return out


def gather_phase(psf: LightFieldPSF, image: np.ndarray, a: int, b: int) -> np.ndarray:
    """``P_ab^T``: read the lenslet centre pixels of ``image`` into the voxels of phase (a, b).

    Returns an array of shape (ly, lx): the values for ``plane[a::s, b::s]``.
    """
    _, _, py, px = _centre_slices(psf, a, b)
    return image[py, px]


def forward_project(
    psf: LightFieldPSF, volume: np.ndarray, *, dtype=np.float32, progress: bool = False
) -> np.ndarray:
    """Light-field image of a volume: ``sum_z sum_ab K_{z,a,b} * (P_ab x_z)``.

    Parameters
    ----------
    psf : LightFieldPSF
        Kernels and geometry (``optics.compute_psf``).
    volume : ndarray, (nz, ly*s, lx*s)
        Source brightness per voxel, on the grid ``psf.volume_shape``.
    dtype : float32 or float64
        Precision of the computation and of the result (float64 for reference tests).
    progress : bool
        Show a progress bar over depths (only when attached to a terminal).

    Returns
    -------
    ndarray, (ly*N, lx*N)
        Sensor image (``psf.image_shape``); units of ``volume`` times the kernels' fraction of
        power per pixel.  Light falling outside the image is dropped.

    Notes
    -----
    The "same"-mode linear convolution puts kernel index (K // 2, K // 2) on the lenslet's
    centre pixel, as ``scipy.signal.fftconvolve(src, K, mode="same")`` does for odd K.  FFT
    round-off leaves values of order 1e-7 (float32) relative to the maximum where the exact
    result is zero; they may be slightly negative.
    """
    _check_psf(psf)
    dt = _check_dtype(dtype)
    _check_array("volume", volume, psf.volume_shape, "the volume grid (z, y, x) of psf.microscope")
    s = psf.voxels_per_lenslet
    vol = volume.astype(dt, copy=False)
    image = np.zeros(psf.image_shape, dtype=dt)
    for iz in _depths(psf, progress, "forward"):
        plane = vol[iz]
        if not plane.any():
            continue
        kz = psf.kernels[iz]
        for a in range(s):
            for b in range(s):
                src = scatter_phase(psf, plane, a, b)
                if src.any():
                    image += fftconvolve(src, kz[a, b].astype(dt, copy=False), mode="same")
    return image


#: Complex samples held at once by ``forward_project_lenslet`` (kernel spectra of one chunk of pixel phases).
_CHUNK_SAMPLES = 2**25


def forward_project_lenslet(
    psf: LightFieldPSF, volume: np.ndarray, *, dtype=np.float32, progress: bool = False
) -> np.ndarray:
    """``forward_project`` evaluated on the lenslet grid (same result to round-off, much faster on large frames).

    For a depth with kernels of R lenslets radius and output pixel phase (c, d):
    ``image[LY N + c, LX N + d] = sum_(a,b) sum_(ly,lx) x[ly s + a, lx s + b] K_ab[(LY - ly + R) N + c,
    (LX - lx + R) N + d]``, a linear convolution on the L_y x L_x lenslet grid, computed with real FFTs
    of size next_fast_len(L + 2R) and the "same" crop; output phases are processed in chunks of at
    most ``_CHUNK_SAMPLES`` kernel-spectrum samples.  Arguments and result as ``forward_project``.
    """
    from scipy import fft as sfft

    _check_psf(psf)
    dt = _check_dtype(dtype)
    _check_array("volume", volume, psf.volume_shape, "the volume grid (z, y, x) of psf.microscope")
    s, n = psf.voxels_per_lenslet, psf.pixels_per_lenslet
    ly, lx = psf.n_lenslets
    cdt = np.complex64 if dt == np.float32 else np.complex128
    vol = volume.astype(dt, copy=False)
    out = np.zeros((n, n, ly, lx), dtype=dt)  # (c, d, LY, LX)
    for iz in _depths(psf, progress, "forward"):
        plane = vol[iz]
        if not plane.any():
            continue
        kz = psf.kernels[iz].astype(dt, copy=False)  # (s, s, K, K), K = (2R + 1) n
        r = (kz.shape[2] // n - 1) // 2
        py, px = sfft.next_fast_len(ly + 2 * r, True), sfft.next_fast_len(lx + 2 * r, True)
        src = plane.reshape(ly, s, lx, s).transpose(1, 3, 0, 2).reshape(s * s, ly, lx)  # phase (a, b) planes
        live = np.nonzero(src.reshape(s * s, -1).any(axis=1))[0]
        src_f = sfft.rfft2(src[live], s=(py, px)).astype(cdt, copy=False)
        # kernel samples per pixel phase: kr[ab, c, d, j, i] = K_ab[j n + c, i n + d]
        kr = kz.reshape(s * s, 2 * r + 1, n, 2 * r + 1, n).transpose(0, 2, 4, 1, 3)[live]
        per_c = len(live) * n * py * (px // 2 + 1)
        step = max(1, _CHUNK_SAMPLES // max(per_c, 1))
        for c0 in range(0, n, step):
            kf = sfft.rfft2(kr[:, c0:c0 + step], s=(py, px)).astype(cdt, copy=False)  # (ab, c, d, py, pxf)
            acc = np.einsum("afg,acdfg->cdfg", src_f, kf, optimize=True)
            full = sfft.irfft2(acc, s=(py, px))
            out[c0:c0 + step] += full[..., r:r + ly, r:r + lx].astype(dt, copy=False)
    return out.transpose(2, 0, 3, 1).reshape(ly * n, lx * n)


def adjoint_project(
    psf: LightFieldPSF, image: np.ndarray, *, dtype=np.float32, progress: bool = False
) -> np.ndarray:
    """Exact transpose of ``forward_project``: ``x_z = sum_ab P_ab^T (K~_{z,a,b} * y)``.

    Parameters
    ----------
    psf : LightFieldPSF
        Kernels and geometry.
    image : ndarray, (ly*N, lx*N)
        Sensor image on ``psf.image_shape``.
    dtype : float32 or float64
        Precision of the computation and of the result.
    progress : bool
        Show a progress bar over depths (only when attached to a terminal).

    Returns
    -------
    ndarray, (nz, ly*s, lx*s)
        Volume on ``psf.volume_shape``.

    Notes
    -----
    ``(K~ * y)(c) = sum_p K(p - c + K//2) y(p)``: the correlation of the image with the kernel,
    evaluated at each lenslet centre pixel c.  Convolving with the kernel flipped on both axes is
    that correlation exactly because K is odd, so ``<H x, y> = <x, H^T y>`` to round-off.
    """
    _check_psf(psf)
    dt = _check_dtype(dtype)
    _check_array("image", image, psf.image_shape, "the light-field image (y, x) of psf.microscope")
    s = psf.voxels_per_lenslet
    img = image.astype(dt, copy=False)
    volume = np.zeros(psf.volume_shape, dtype=dt)
    if not img.any():
        return volume
    for iz in _depths(psf, progress, "adjoint"):
        kz = psf.kernels[iz]
        for a in range(s):
            for b in range(s):
                flipped = kz[a, b, ::-1, ::-1].astype(dt, copy=False)
                corr = fftconvolve(img, flipped, mode="same")
                volume[iz, a::s, b::s] = gather_phase(psf, corr, a, b)
    return volume


def progress_range(n: int, *, desc: str, enabled: bool):
    """``range(n)``, wrapped in a tqdm bar when ``enabled`` and stderr is a terminal."""
    import sys

    if not enabled or not sys.stderr.isatty():
        return range(n)
    from tqdm.auto import tqdm

    return tqdm(range(n), desc=desc, leave=False)


def _depths(psf: LightFieldPSF, progress: bool, what: str):
    nz = len(psf.z_um)
    log.debug("%s projection: %d depths x %d phases", what, nz, psf.voxels_per_lenslet**2)
    return progress_range(nz, desc=f"{what} projection", enabled=progress)
