"""Test helpers: synthetic light-field PSFs and a direct-summation reference of the forward model."""

from __future__ import annotations

import warnings

import numpy as np

from optics.config import MLA, Camera, Microscope, Objective, VolumeGrid
from optics.psfdata import LightFieldPSF


def microscope(n=5, s=3, lenslets=(4, 5), z=(-2.0, 0.0, 2.0), kind="lfm") -> Microscope:
    """A small microscope with ``n`` px per lenslet, ``s`` voxels per lenslet on a (Ly, Lx) lenslet grid."""
    z = list(z)
    step = z[1] - z[0] if len(z) > 1 else 1.0
    vol = VolumeGrid(z_min_um=z[0], z_max_um=z[-1], z_step_um=step, voxels_per_lenslet=s)
    cam = Camera(pixel_um=10.0, shape=(lenslets[0] * n, lenslets[1] * n))
    obj = Objective(magnification=20, na=0.5, immersion_index=1.33)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "widefield":
            return Microscope(kind="widefield", objective=obj, mla=None, camera=cam, volume=vol)
        return Microscope(kind="lfm", objective=obj, mla=MLA(pitch_um=10.0 * n, focal_um=200.0 * n),
                          camera=cam, volume=vol)


def synthetic_psf(m: Microscope, radii, rng, dtype=np.float32) -> LightFieldPSF:
    """Random positive kernels of the contract's shapes, R_z = ``radii[iz]``."""
    n, s = m.pixels_per_lenslet, m.voxels_per_lenslet
    kernels = []
    for r in radii:
        side = (2 * r + 1) * n
        kernels.append(rng.random((s, s, side, side)).astype(dtype))
    return LightFieldPSF(m, m.z_um, kernels, np.zeros((len(radii), s, s)))


def direct_forward(psf: LightFieldPSF, volume: np.ndarray) -> np.ndarray:
    """Reference forward model by stamping each voxel's kernel on its lenslet's centre pixel (float64)."""
    n, s = psf.pixels_per_lenslet, psf.voxels_per_lenslet
    ny, nx = psf.image_shape
    rmax = int(max(psf.radius_lenslets))
    pad = (rmax + 1) * n
    canvas = np.zeros((ny + 2 * pad, nx + 2 * pad))
    for iz, k in enumerate(psf.kernels):
        side = k.shape[2]
        half = side // 2
        for iy, ix in zip(*np.nonzero(volume[iz])):
            ly, a = divmod(iy, s)
            lx, b = divmod(ix, s)
            cy, cx = ly * n + n // 2 + pad, lx * n + n // 2 + pad
            canvas[cy - half: cy - half + side, cx - half: cx - half + side] += volume[iz, iy, ix] * k[a, b]
    return canvas[pad: pad + ny, pad: pad + nx]


def symmetric_psf(m: Microscope, radii, rng, dtype=np.float32, transpose: bool = False) -> LightFieldPSF:
    """Random kernels with the mirror symmetries of a square lenslet grid:
    K_{s-1-a,b} = K_{a,b} flipped in y and K_{a,s-1-b} = K_{a,b} flipped in x
    (and K_{b,a} = K_{a,b} transposed if ``transpose``)."""
    psf = synthetic_psf(m, radii, rng, np.float64)
    kernels = []
    for k in psf.kernels:
        k = k + k[::-1, :, ::-1, :]
        k = k + k[:, ::-1, :, ::-1]
        if transpose:
            k = k + k.transpose(1, 0, 3, 2)
        kernels.append(k.astype(dtype))
    return LightFieldPSF(m, m.z_um, kernels, psf.discarded)
