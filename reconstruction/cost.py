"""FLOP and byte counts of one light-field projection by the direct, Fourier and naive routes.

Used by ``LightFieldOperator.cost`` and ``python -m benchmarks perf`` to say what bounds a
projection (DESIGN.md, "Performance model": count FLOPs and bytes before optimising).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .symmetry import GROUPS, phase_plan

__all__ = ["ProjectionCost", "projection_cost", "DEVICE_RATES", "projection_seconds", "check_frames"]

#: Sustained (FLOP/s, bytes/s) of the Fourier route on each device, for choosing the kernel
#: storage (``LightFieldOperator``): t = fourier_flops / F + fourier_bytes / B.  CPU: fitted to the
#: forward projections of P at s = 5 and 15 (full against mirror storage) on the 2-core development
#: machine (2026-12-01, under load): F = 7 GFLOP/s, B = 13 GB/s; it then ranks full < mirror < d4 at
#: s = 5 (measured 0.036 < 0.048 < 0.074 s; unloaded 0.022 < 0.026 < 0.044 s) and mirror ~ d4 < full
#: at s = 15 (0.156, 0.140 < 0.217 s; unloaded 0.097, 0.112 < 0.134 s).  For W (40x/0.95, 30 x 45
#: lenslets) it prefers mirror; measured, the two were within 20% either way with the load, and
#: mirror sets up 4x faster in 3.5x less memory.  GPU: an H100-class estimate (FFT- and bandwidth-bound,
#: ~30% of the 67 TFLOP/s FP32 peak and ~75% of 3.35 TB/s), not yet measured here.
DEVICE_RATES = {"cpu": (7e9, 13e9), "gpu": (2e13, 2.5e12)}

@dataclass(frozen=True)
class ProjectionCost:
    """FLOPs and bytes of one projection (forward or adjoint, of ``frames`` frames) by two routes.

    ``direct_*``: the multi-channel convolution evaluated tap by tap on the lenslet grid
    (2 FLOPs per multiply-add; bytes = kernels + volume + image read/written once).
    ``fourier_*``: the route used here (kernel-spectrum matmul, 8 real FLOPs per complex
    multiply-add, plus the real FFTs at 2.5 n log2 n each; bytes = the resident kernel spectra,
    read once per projection, plus the volume/image spectra).
    ``naive_flops``: one full-size FFT convolution per depth and phase (pyolaf / oLaF route).
    """

    direct_flops: float
    direct_bytes: float
    fourier_flops: float
    fourier_matmul_flops: float
    fourier_bytes: float
    kernel_spectra_bytes: float
    naive_flops: float

    def as_dict(self) -> dict:
        return {k: float(v) for k, v in self.__dict__.items()}


def projection_seconds(cost: ProjectionCost, device: str) -> float:
    """Modelled seconds of one Fourier-route projection on ``device`` ("cpu" or "gpu"; ``DEVICE_RATES``)."""
    flops, rate = DEVICE_RATES[device]
    return cost.fourier_flops / flops + cost.fourier_bytes / rate


def check_frames(frames) -> int:
    """``frames`` (frames projected together) as an int; a ValueError naming it unless an integer >= 1."""
    if isinstance(frames, bool) or not isinstance(frames, (int, np.integer)) or frames < 1:
        raise ValueError(f"frames = {frames!r} is invalid: expected an integer >= 1")
    return int(frames)


def _fft_flops(n: int) -> float:
    return 2.5 * n * math.log2(max(n, 2))


def projection_cost(
    nz: int, s: int, n: int, lenslets: tuple[int, int], radii, tiles: tuple[int, int] = (1, 1),
    fft_shape: tuple[int, int] | None = None, itemsize: int = 4, symmetry: str = "none", frames: int = 1,
) -> ProjectionCost:
    """Cost of one projection for nz depths, s voxels and n pixels per lenslet (see ``ProjectionCost``).

    Parameters
    ----------
    nz, s, n : int
        Depths, voxels per lenslet, pixels per lenslet.
    lenslets : (int, int)
        Lenslet grid (L_y, L_x).
    radii : sequence of int
        Kernel radius R_z (lenslets) of each depth.
    tiles : (int, int)
        Overlap-save tiles per axis of the Fourier route.
    fft_shape : (int, int) or list of (int, int), optional
        FFT size (P_y, P_x) per tile, one for all depths or one per depth; default next 5-smooth
        size of L + max R.
    itemsize : int
        Bytes per real number (4 for float32).
    symmetry : {"none", "mirror", "d4"}
        Kernel spectra stored for phases a, b < ceil(s/2) under 4 mirror images ("mirror") or
        a <= b < ceil(s/2) under the 8 elements of D4 ("d4"); see ``LightFieldOperator``.
    frames : int
        Frames projected together (a batch: extra matmul columns).  FLOPs and the bytes of the
        volume and image spectra grow with it; the kernel spectra are read once per projection.
    """
    frames = check_frames(frames)
    ly, lx = lenslets
    radii = [int(r) for r in radii]
    rmax = max(radii)
    if fft_shape is None:
        import scipy.fft as sfft

        fft_shape = (sfft.next_fast_len(ly + rmax, True), sfft.next_fast_len(lx + rmax, True))
    shapes = [tuple(fft_shape)] * nz if np.ndim(fft_shape) == 1 else [tuple(v) for v in fft_shape]
    ntile = tiles[0] * tiles[1]
    c = nz * s * s
    u = n * n
    groups = len(GROUPS[symmetry])
    stored = len(phase_plan(s, symmetry)[0])
    taps = sum((2 * min(r, ly - 1) + 1) * (2 * min(r, lx - 1) + 1) for r in radii)
    direct_flops = 2.0 * s * s * u * ly * lx * taps * frames
    kernel_bytes = itemsize * s * s * sum(((2 * r + 1) * n) ** 2 for r in radii)
    vol_img = itemsize * (c * ly * lx + u * ly * lx) * frames
    fz = [py * (px // 2 + 1) for py, px in shapes]  # frequencies of each depth's FFT grid
    hh = stored
    cols = groups * ntile * frames  # matmul columns: group copies x tiles x frames
    matmul = sum(8.0 * f * u * hh * cols for f in fz)
    ffts = sum(hh * cols * _fft_flops(py * px) for py, px in shapes)
    ffts += sum(u * cols * _fft_flops(py * px) for py, px in set(shapes))  # one per distinct size
    spectra = sum(2 * itemsize * f * u * hh for f in fz)
    fourier_bytes = spectra + sum(2 * itemsize * f * hh * cols * 2 for f in fz)
    fourier_bytes += sum(2 * itemsize * py * (px // 2 + 1) * u * cols * 2 for py, px in set(shapes))
    big = (ly + 2 * rmax) * n
    naive = c * 3 * _fft_flops(big * big) * frames
    return ProjectionCost(direct_flops, kernel_bytes + vol_img, matmul + ffts, matmul, fourier_bytes, spectra, naive)
