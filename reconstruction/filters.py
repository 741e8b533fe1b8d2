"""Depth-adaptive Lanczos anti-aliasing filter for light-field deconvolution (Stefanoiu et al. 2019).

Near the focal plane a light-field microscope samples the volume at lenslet resolution only, and
Richardson-Lucy fills that band with grid-shaped artefacts.  S19 low-passes every depth slice
after each update with a Lanczos-windowed sinc whose width follows the ray-traced footprint of
a point on the sensor (PHYSICS.md section 4, "Artifact-free").  For a source at depth z
(object distance z_obj = f_obj + z, z positive away from the objective):

* z1 = z_obj f_obj / (z_obj - f_obj)                       objective image distance
* z2 = f_tl (D_ot - z1) / (D_ot - z1 - f_tl)               tube-lens image distance, D_ot = f_tl + f_obj
* z3 = f_ml (a_t - z2) / (a_t - z2 - f_ml)                 where each lenslet focuses, a_t = f_tl
* lambda_z = z2 b / (a_t |a_t - z2|)                        MLA -> sensor magnification, b = f_ml
* b_z = (d / 2) |(z3 - b) / z3|                             lenslet blur radius (µm)
* w = min(d / 2, |d lambda_z - b_z|)                        filter radius at the MLA (µm)

and the filter's sinc width in voxels is W = 2 w s / d.  We use the dimensionally correct
b_z; oLaF's code (``LFM_computeDepthAdaptiveWidth``) computes (d/2)|1/z3 - 1/b|, which has
units 1/µm (a bug).  The kernel is sinc(x/W) sinc(y/W) sinc(x/(n_L W)) sinc(y/(n_L W)) on a
centred odd grid, zero beyond radius 3W and normalised to unit sum, so it never shifts the
volume (a filter built on an even grid moves it by half a voxel).
"""

from __future__ import annotations

import math

import numpy as np

from . import backend

__all__ = ["lanczos_widths", "lanczos_kernel", "LanczosFilter"]


def lanczos_widths(microscope, z_um=None) -> np.ndarray:
    """Sinc width W (voxels) of the S19 anti-aliasing filter at each depth.

    Parameters
    ----------
    microscope : optics.config.Microscope
        An "lfm" microscope (MLA at the native image plane).
    z_um : array_like, optional
        Depths (µm, positive away from the objective); default ``microscope.z_um``.

    Returns
    -------
    ndarray, (nz,)
        Widths in voxels (float).  W <= 1 means no filtering at that depth.
    """
    if microscope.mla is None:
        raise ValueError("filter = 'lanczos' needs a light-field microscope (kind 'lfm'); this one is wide-field")
    if microscope.kind != "lfm":
        raise ValueError(f"filter = 'lanczos' is derived for kind 'lfm' (Stefanoiu 2019, MLA at the native image "
                         f"plane), not for {microscope.kind!r}; reconstruct without the filter")
    z = np.atleast_1d(np.asarray(microscope.z_um if z_um is None else z_um, dtype=np.float64))
    ftl = microscope.objective.tube_lens_focal_um
    fobj = microscope.objective.focal_um
    d = microscope.mla.pitch_um
    fml = microscope.mla.focal_um
    s = microscope.voxels_per_lenslet
    d_ot, a_t, b = ftl + fobj, ftl, fml
    zobj = fobj + z
    zobj = np.where(np.abs(zobj - fobj) < 1e-9 * fobj, fobj * (1 + 1e-9), zobj)  # z = 0: image at infinity
    z1 = zobj * fobj / (zobj - fobj)
    z2 = ftl * (d_ot - z1) / (d_ot - z1 - ftl)
    with np.errstate(divide="ignore", invalid="ignore"):
        z3 = fml * (a_t - z2) / (a_t - z2 - fml)
        bz = (d / 2) * np.abs((z3 - b) / z3)
        lam = z2 * b / (a_t * np.abs(a_t - z2))
        w = np.minimum(d / 2, np.abs(d * lam - bz))
    w = np.where(np.isfinite(w), w, d / 2)
    return 2.0 * w * s / d


def lanczos_kernel(width: float, n_lobes: float = 4.0) -> np.ndarray:
    """Centred odd 2-D Lanczos-windowed sinc of width ``width`` voxels, unit sum (float64).

    ``sinc(x/W) sinc(y/W) sinc(x/(n W)) sinc(y/(n W))`` for sqrt(x^2 + y^2) <= 3 W; a 1x1
    identity when W <= 1.
    """
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width = {width!r} is invalid: expected a finite number of voxels > 0")
    if width <= 1:
        return np.ones((1, 1))
    h = int(math.ceil(3 * width))
    r = np.arange(-h, h + 1, dtype=np.float64)
    y, x = np.meshgrid(r, r, indexing="ij")
    k = np.sinc(x / width) * np.sinc(y / width) * np.sinc(x / (n_lobes * width)) * np.sinc(y / (n_lobes * width))
    k[np.hypot(x, y) > 3 * width] = 0
    return k / k.sum()


class LanczosFilter:
    """Per-depth centred Lanczos low-pass of volumes (z, y, x) or (t, z, y, x), via zero-padded FFTs.

    Parameters
    ----------
    widths : sequence of float
        Sinc width (voxels) per depth (``lanczos_widths``).
    volume_shape : (nz, Y, X)
    device : "cpu" or "gpu"
        Resolved device of the arrays it will filter.
    dtype : float32 or float64
    n_lobes : float
        Lanczos window parameter n_L (4 in S19's example).

    Notes
    -----
    The convolution is linear (zero boundary), centred and symmetric, so the filter is its own
    transpose.  Depths with W <= 1 are left untouched.
    """

    def __init__(self, widths, volume_shape, device: str = "cpu", dtype=np.float32, n_lobes: float = 4.0):
        self.widths = np.asarray(widths, dtype=np.float64)
        nz, ny, nx = volume_shape
        if self.widths.shape != (nz,):
            raise ValueError(f"widths has shape {self.widths.shape}; expected ({nz},), one per depth")
        self.volume_shape = tuple(volume_shape)
        self.device = device
        self.dtype = np.dtype(dtype)
        self.xp = backend.xp_for(device)
        self._fft = backend.fft_module(device)
        kernels = [lanczos_kernel(w, n_lobes) for w in self.widths]
        self.active = [k.shape[0] > 1 for k in kernels]
        h = max(k.shape[0] // 2 for k in kernels)
        self.halo = h
        self.fft_shape = (self._fft.next_fast_len(ny + 2 * h), self._fft.next_fast_len(nx + 2 * h))
        py, px = self.fft_shape
        spectra = []
        for k in kernels:
            kh = k.shape[0] // 2
            g = np.zeros((py, px))
            idx_y = np.arange(-kh, kh + 1) % py
            idx_x = np.arange(-kh, kh + 1) % px
            g[np.ix_(idx_y, idx_x)] = k  # centre tap at index 0: no shift
            spectra.append(np.fft.rfft2(g))
        cdt = np.complex64 if self.dtype == np.float32 else np.complex128
        self._spectra = backend.to_device(np.stack(spectra), device, dtype=cdt)

    def __call__(self, volume):
        """Filtered copy of ``volume`` ((nz, Y, X) or (t, nz, Y, X)), same dtype."""
        xp = self.xp
        if backend.xp_of(volume) is not xp:
            raise TypeError(f"volume lives on another device than the filter ({self.device!r})")
        if tuple(volume.shape[-3:]) != self.volume_shape:
            raise ValueError(f"volume has shape {tuple(volume.shape)}; expected (..., *{self.volume_shape})")
        if not any(self.active):
            return volume.copy()
        ny, nx = self.volume_shape[1:]
        active = [i for i, a in enumerate(self.active) if a]
        sub = volume[..., active, :, :]
        spec = self._fft.rfft2(sub, s=self.fft_shape)
        spec *= self._spectra[active]
        out = volume.copy()
        out[..., active, :, :] = self._fft.irfft2(spec, s=self.fft_shape)[..., :ny, :nx].astype(volume.dtype, copy=False)
        return out

    @classmethod
    def for_microscope(cls, microscope, device: str = "cpu", dtype=np.float32, n_lobes: float = 4.0):
        """The S19 filter of ``microscope`` on its volume grid."""
        return cls(lanczos_widths(microscope), microscope.volume_shape, device, dtype, n_lobes)


class FieldMask:
    """Keep the volume inside a microscope's field: voxels outside are set to 0 after each iterate.

    The Fourier LFM's field stop (``mla.field_stop_um``) passes no light from sources whose image
    falls outside it; its shift-invariant operator does not know that, so Richardson-Lucy would put
    there light that belongs inside.  RL is multiplicative, so zeros stay zeros and the mask only
    removes the start's mass outside.  The field is the disc of ``optics.flfm.field_stop_radius_object_um``
    about the optical axis (voxel centres of ``optics.phantoms.voxel_centres_um``).
    """

    def __init__(self, mask, device: str = "cpu", dtype=np.float32):
        self.device = device
        self.xp = backend.xp_for(device)
        self.mask = backend.to_device(np.asarray(mask, dtype=dtype), device)

    def __call__(self, volume):
        if backend.xp_of(volume) is not self.xp:
            raise TypeError(f"volume lives on another device than the mask ({self.device!r})")
        return volume * self.mask

    @classmethod
    def for_microscope(cls, microscope, device: str = "cpu", dtype=np.float32):
        """The field-stop mask of a Fourier LFM, or None when it has no stop."""
        from optics import phantoms
        from optics.flfm import field_stop_radius_object_um

        r = field_stop_radius_object_um(microscope) if microscope.kind == "flfm" else math.inf
        if not math.isfinite(r):
            return None
        x = phantoms.voxel_centres_um(microscope, "x")
        y = phantoms.voxel_centres_um(microscope, "y")
        return cls(np.hypot(y[:, None], x[None, :]) <= r, device, dtype)
