"""Richardson-Lucy of a large field in independent tiles with halos, sized from the memory at hand.

The operator already cuts its FFT grid into exact overlap-save tiles when the kernel spectra
exceed their budget (``LightFieldOperator(max_kernel_bytes=...)``), but RL still holds the whole
image and several whole volumes.  ``tiled_richardson_lucy`` bounds that too: the field is cut into
tiles of whole lenslets (so every tile is periodic like the whole), each grown by a halo of H
lenslets on every side (clipped at the frame's edges), deconvolved on its own, and only its core
is kept.  The halo is at least the largest kernel reach R (``LightFieldPSF.radius_lenslets``): a
core voxel's light lands within R lenslets, so every pixel that sees it is in its tile.  RL is
still not local (each iteration couples voxels one kernel reach further), so the tiled result
differs from the untiled one near the cores' edges; the test suite measures that seam error
against the untiled reconstruction (``tests/reconstruction/test_tiling.py``).

The tile core is chosen from the memory available: host memory (``MemAvailable`` or
``LFMSIM_MAX_MEMORY_GB``) or the GPU's free memory, with RL's working set (the volume, its
update and H^T 1: ~4 volumes; the image, H x and the ratio: ~3 images; the kernel spectra of the
tile's operator).  An out-of-memory error of a tile (NumPy's MemoryError or CuPy's
OutOfMemoryError) halves the core and tries again, down to one lenslet, instead of failing.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from . import backend

__all__ = ["tiled_richardson_lucy", "plan_tile", "tile_slices"]

log = logging.getLogger(__name__)

#: Volumes and images RL holds per tile, besides the kernel spectra.
_VOLUMES, _IMAGES = 4, 3


def _tile_bytes(psf, core: int, halo: int) -> int:
    m = psf.microscope
    side = core + 2 * halo
    n, s, nz = m.pixels_per_lenslet, m.voxels_per_lenslet, len(m.z_um)
    vol = nz * (side * s) ** 2 * 4
    img = (side * n) ** 2 * 4
    # kernel spectra: ~ nz s^2 N^2 complex64 per frequency of a grid of (side + 2R) lenslets
    r = int(max(psf.radius_lenslets))
    spectra = nz * s * s * n * n * 8 * (side + 2 * r) * (side + 2 * r) // 2
    return _VOLUMES * vol + _IMAGES * img + spectra


def available_bytes(device: str) -> int:
    """Memory a tile may use: the GPU's free memory, or the host's (``optics.memory``)."""
    if device == "gpu":
        cp = backend._cupy()
        free, _ = cp.cuda.runtime.memGetInfo()
        return int(0.8 * free)
    from optics.memory import available_bytes as host

    nbytes, _ = host()
    return int(0.8 * (nbytes if nbytes is not None else 4 * 2**30))


def _halo(psf, halo: int | None) -> int:
    """The halo in lenslets: ``halo``, or the largest kernel reach R (and never less than R)."""
    r = int(max(psf.radius_lenslets))
    halo = r if halo is None else int(halo)
    if halo < r:
        raise ValueError(f"halo_lenslets = {halo} is invalid: it must be at least the largest kernel reach, {r} lenslets")
    return halo


def plan_tile(psf, memory_bytes: int, halo: int | None = None) -> tuple[int, int]:
    """(core, halo) in lenslets: the largest core whose tile fits ``memory_bytes``."""
    m = psf.microscope
    halo = _halo(psf, halo)
    full = max(m.n_lenslets)
    core = full
    while core > 1 and _tile_bytes(psf, core, halo) > memory_bytes:
        core = max(1, core * 3 // 4)
    if _tile_bytes(psf, core, halo) > memory_bytes:
        raise MemoryError(f"even a one-lenslet tile with a {halo}-lenslet halo needs "
                          f"{_tile_bytes(psf, 1, halo) / 2**30:.3g} GiB; {memory_bytes / 2**30:.3g} GiB are available")
    return core, halo


def tile_slices(n_lenslets: int, core: int, halo: int) -> list[tuple[int, int, int, int]]:
    """Per axis: (tile start, tile stop, core start, core stop) in lenslets; cores tile [0, n)."""
    out = []
    for c0 in range(0, n_lenslets, core):
        c1 = min(n_lenslets, c0 + core)
        out.append((max(0, c0 - halo), min(n_lenslets, c1 + halo), c0, c1))
    return out


def _is_oom(exc: BaseException) -> bool:
    if isinstance(exc, MemoryError):
        return True
    return type(exc).__name__ == "OutOfMemoryError"  # cupy.cuda.memory.OutOfMemoryError


def tiled_richardson_lucy(psf, image, iterations: int, *, tile_lenslets: int | None = None,
                          halo_lenslets: int | None = None, memory_bytes: int | None = None,
                          device: str = "auto", progress: bool = False, **rl_kwargs) -> tuple[np.ndarray, dict]:
    """RL of ``image`` (``psf.microscope.image_shape``) in tiles of ``tile_lenslets`` core lenslets
    (default from ``memory_bytes``, default the memory available) with halos of ``halo_lenslets``
    (default the largest kernel reach).  ``rl_kwargs`` go to ``richardson_lucy`` (e.g.
    ``read_noise``; a per-pixel ``background`` is cropped with the tiles).  Returns (volume, info)."""
    from .deconvolution import richardson_lucy
    from .scanned import make_operator

    m = psf.microscope
    if m.shift_invariant or m.kind == "slfm":
        raise ValueError(f"tiled_richardson_lucy is for the periodic light-field kinds, not {m.kind!r}")
    y = np.asarray(image, dtype=np.float32)
    if y.shape != m.image_shape:
        raise ValueError(f"image has shape {y.shape}; expected {m.image_shape}")
    dev = backend.get_device(device)
    if tile_lenslets is None:
        core, halo = plan_tile(psf, available_bytes(dev) if memory_bytes is None else int(memory_bytes), halo_lenslets)
    else:
        core, halo = int(tile_lenslets), _halo(psf, halo_lenslets)
    n, s = m.pixels_per_lenslet, m.voxels_per_lenslet
    ly, lx = m.n_lenslets
    bg = rl_kwargs.pop("background", None)
    out = np.zeros(m.volume_shape, dtype=np.float32)
    ops: dict = {}
    retries = 0
    while True:
        try:
            tiles = [(a, b) for a in tile_slices(ly, core, halo) for b in tile_slices(lx, core, halo)]
            for (y0, y1, cy0, cy1), (x0, x1, cx0, cx1) in tiles:
                shape = (y1 - y0, x1 - x0)
                if shape not in ops:
                    mt = m.replace(camera={"shape": [shape[0] * n, shape[1] * n]})
                    ops.clear()  # one tile shape's operator at a time (interior tiles share one)
                    ops[shape] = make_operator(dataclasses.replace(psf, microscope=mt), dev, np.float32, progress=False)
                op = ops[shape]
                yt = y[y0 * n: y1 * n, x0 * n: x1 * n]
                b = bg
                if bg is not None and np.ndim(bg) == 2:
                    b = np.asarray(bg)[y0 * n: y1 * n, x0 * n: x1 * n]
                vol = richardson_lucy(yt, op, iterations, progress=False, background=b, **rl_kwargs)
                vol = backend.to_host(vol)
                out[:, cy0 * s: cy1 * s, cx0 * s: cx1 * s] = vol[:, (cy0 - y0) * s: (cy1 - y0) * s,
                                                               (cx0 - x0) * s: (cx1 - x0) * s]
            break
        except Exception as exc:
            if not _is_oom(exc) or core == 1:
                raise
            ops.clear()
            retries += 1
            new = max(1, core // 2)
            log.warning("tiled_richardson_lucy: out of memory with %d-lenslet tiles (%s); retrying with %d",
                        core, type(exc).__name__, new)
            core = new
    info = {"core_lenslets": core, "halo_lenslets": halo, "tiles": len(tiles), "oom_retries": retries,
            "tile_bytes_estimate": _tile_bytes(psf, core, halo)}
    return out, info
