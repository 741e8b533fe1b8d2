"""Free-space propagation of sampled scalar fields by FFT transfer functions (µm, time factor exp(-i omega t)).

Three transfer functions H(fx, fy) multiply the field's discrete spectrum: the Fresnel transfer
function H = exp(i k0 z) exp(-i pi lambda0 z (fx^2 + fy^2)) (Voelz 2011, ch. 5; Broxton et al. 2013
``propTF``), the angular spectrum (Rayleigh-Sommerfeld) H = exp(i 2 pi z sqrt(lambda0^-2 - f^2)) with
evanescent components set to zero (Goodman, *Introduction to Fourier Optics*, 3rd ed., sec. 3.10;
oLaF ``prop2Sensor``), and the band-limited angular spectrum of Matsushima & Shimobaba, Opt.
Express 17:19662 (2009), which also zeroes |fx| or |fy| > u_lim = 1/(lambda0 sqrt((2 du z)^2 + 1)),
du = 1/L, the frequencies whose transfer-function phase would be undersampled on the grid.
``choose_method`` applies Voelz's criterion (*Computational Fourier Optics*, SPIE 2011, sec. 5.4):
the Fresnel transfer function is accurate when dx >= lambda0 z / L, otherwise the band-limited
ASM is used.  Grids are centred (sample i at (i - (n-1)/2) dx); the propagation is a circular
convolution over the window (see ``propagate`` for padding).  See ../shared/PHYSICS.md section 3.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import fft as sfft

from .threads import cpu_threads

__all__ = [
    "METHODS",
    "fresnel_tf",
    "angular_spectrum_tf",
    "choose_method",
    "transfer_function",
    "propagate",
]

#: Names accepted by ``transfer_function`` / ``propagate`` ("asm" is the band-limited ASM).
METHODS = ("auto", "fresnel", "asm", "asm-unlimited")


def _check_grid(shape, dx_um: float, z_um: float, wavelength_um: float) -> tuple[int, int]:
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"shape = {tuple(shape)!r} is invalid; expected two positive integers (ny, nx)")
    if not (dx_um > 0 and math.isfinite(dx_um)):
        raise ValueError(f"dx_um = {dx_um!r} is invalid; expected a finite sample spacing > 0 (µm)")
    if not math.isfinite(z_um):
        raise ValueError(f"z_um = {z_um!r} is invalid; expected a finite distance (µm)")
    if not 0.2 <= wavelength_um <= 2.0:
        raise ValueError(f"wavelength_um = {wavelength_um!r} is invalid; expected 0.2..2.0 µm")
    return int(shape[0]), int(shape[1])


def _freqs(shape, dx_um: float) -> tuple[np.ndarray, np.ndarray]:
    ny, nx = shape
    return sfft.fftfreq(ny, dx_um)[:, None], sfft.fftfreq(nx, dx_um)[None, :]


def fresnel_tf(shape, dx_um: float, z_um: float, wavelength_um: float, *, dtype=np.complex128) -> np.ndarray:
    """Fresnel transfer function in FFT order (Voelz 2011 eq. 5.3; Broxton 2013 ``propTF``).

    Parameters
    ----------
    shape : (int, int)
        Grid (ny, nx).
    dx_um : float
        Sample spacing (µm).
    z_um : float
        Propagation distance (µm); positive along the direction of travel.
    wavelength_um : float
        Wavelength in the medium of propagation (µm; vacuum wavelength for air).
    dtype : complex dtype

    Returns
    -------
    ndarray (ny, nx): H = exp(i k0 z) exp(-i pi lambda0 z (fx^2 + fy^2)); |H| = 1.
    """
    shape = _check_grid(shape, dx_um, z_um, wavelength_um)
    fy, fx = _freqs(shape, dx_um)
    phase = 2 * math.pi * z_um / wavelength_um - math.pi * wavelength_um * z_um * (fx**2 + fy**2)
    return np.exp(1j * phase).astype(dtype, copy=False)


def angular_spectrum_tf(
    shape, dx_um: float, z_um: float, wavelength_um: float, *, band_limit: bool = True, dtype=np.complex128
) -> np.ndarray:
    """Angular-spectrum transfer function in FFT order, evanescent waves zeroed.

    H = exp(i 2 pi z sqrt(1/lambda0^2 - fx^2 - fy^2)) for fx^2 + fy^2 < 1/lambda0^2, else 0.  With
    ``band_limit`` (Matsushima & Shimobaba 2009, eq. 13-21) also zero |fx| > u_lim, |fy| > v_lim with
    u_lim = 1/(lambda0 sqrt((2 du z)^2 + 1)), du = 1/(nx dx) (the frequency step of this grid).

    Parameters are those of ``fresnel_tf``.
    """
    ny, nx = _check_grid(shape, dx_um, z_um, wavelength_um)
    # H depends on |fx| and |fy| only: evaluate it on the non-negative frequencies, |k| = 0..n//2
    # (4x fewer complex exponentials), and index the FFT-ordered grid into that quadrant
    iy, ix = np.arange(ny), np.arange(nx)
    ky, kx = np.minimum(iy, ny - iy), np.minimum(ix, nx - ix)
    fy = (np.arange(ny // 2 + 1) / (ny * dx_um))[:, None]
    fx = (np.arange(nx // 2 + 1) / (nx * dx_um))[None, :]
    arg = 1.0 / wavelength_um**2 - fx**2 - fy**2
    prop = arg > 0
    h = np.where(prop, np.exp(1j * 2 * math.pi * z_um * np.sqrt(np.where(prop, arg, 0.0))), 0.0)
    if band_limit:
        du, dv = 1.0 / (nx * dx_um), 1.0 / (ny * dx_um)
        ulim = 1.0 / (wavelength_um * math.sqrt((2 * du * z_um) ** 2 + 1))
        vlim = 1.0 / (wavelength_um * math.sqrt((2 * dv * z_um) ** 2 + 1))
        h = h * ((fx <= ulim) & (fy <= vlim))
    return h.astype(dtype, copy=False)[ky[:, None], kx[None, :]]


def choose_method(dx_um: float, z_um: float, length_um: float, wavelength_um: float) -> str:
    """Voelz's rule (2011, sec. 5.4): "fresnel" if dx >= lambda0 |z| / L, else "asm" (band-limited).

    Parameters
    ----------
    dx_um : float
        Sample spacing (µm).
    z_um : float
        Propagation distance (µm).
    length_um : float
        Side of the (padded) computational window L = n dx (µm).
    wavelength_um : float
        Wavelength (µm).
    """
    if not length_um > 0:
        raise ValueError(f"length_um = {length_um!r} is invalid; expected the window side > 0 (µm)")
    return "fresnel" if dx_um >= wavelength_um * abs(z_um) / length_um else "asm"


def transfer_function(
    method: str, shape, dx_um: float, z_um: float, wavelength_um: float, *, dtype=np.complex128
) -> np.ndarray:
    """Transfer function of ``method`` ("auto", "fresnel", "asm" = band-limited, "asm-unlimited")."""
    if method not in METHODS:
        raise ValueError(f"method = {method!r} is invalid; accepted: {', '.join(repr(m) for m in METHODS)}")
    if method == "auto":
        method = choose_method(dx_um, z_um, shape[-1] * dx_um, wavelength_um)
    if method == "fresnel":
        return fresnel_tf(shape, dx_um, z_um, wavelength_um, dtype=dtype)
    return angular_spectrum_tf(
        shape, dx_um, z_um, wavelength_um, band_limit=(method == "asm"), dtype=dtype
    )


def propagate(
    u: np.ndarray,
    dx_um: float,
    z_um: float,
    wavelength_um: float,
    *,
    method: str = "auto",
    pad: bool = False,
    tf: np.ndarray | None = None,
) -> np.ndarray:
    """Propagate the field(s) ``u`` (..., ny, nx) by ``z_um`` with an FFT transfer function.

    Parameters
    ----------
    u : ndarray, complex
        Field samples on a centred grid; leading axes are a batch (one batched FFT).
        complex64 stays complex64 (fast path); anything else is computed in complex128.
    dx_um, z_um, wavelength_um : float
        Sample spacing, distance and wavelength (µm).
    method : {"auto", "fresnel", "asm", "asm-unlimited"}
        "auto" applies ``choose_method`` to the (padded) window.
    pad : bool
        Zero-pad 2x (centred) so that the circular convolution equals the linear one, then crop
        (Matsushima & Shimobaba 2009).  Without padding the window must hold a guard band.
    tf : ndarray, optional
        A precomputed transfer function for the (padded) grid, reused across calls.

    Returns
    -------
    ndarray with the shape and precision of ``u``.
    """
    u = np.asarray(u)
    if u.ndim < 2:
        raise ValueError(f"u has shape {u.shape}; expected (..., ny, nx)")
    dtype = np.complex64 if u.dtype == np.complex64 else np.complex128
    u = u.astype(dtype, copy=False)
    ny, nx = u.shape[-2:]
    if pad:
        py, px = ny // 2, nx // 2
        widths = [(0, 0)] * (u.ndim - 2) + [(py, ny - py), (px, nx - px)]
        work = np.pad(u, widths)
    else:
        work = u
    shape = work.shape[-2:]
    h = tf if tf is not None else transfer_function(method, shape, dx_um, z_um, wavelength_um, dtype=dtype)
    if h.shape != shape:
        raise ValueError(f"tf has shape {h.shape}; expected {shape}")
    spec = sfft.fft2(work, axes=(-2, -1), workers=cpu_threads())
    spec *= h
    out = sfft.ifft2(spec, axes=(-2, -1), workers=cpu_threads(), overwrite_x=True)
    if pad:
        out = out[..., py : py + ny, px : px + nx]
    return out.astype(dtype, copy=False)
