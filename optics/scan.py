"""The scanning LFM's acquisition: scan positions, volume shifts and realignment into phase space.

Kind "slfm" (Wu et al., Cell 184:3318, 2021; ../shared/FAMILIES.md section 3) has the optics of the
standard LFM, and a 2-D galvo before the microlens array steps the image across the lenslets in
K x K positions (``scan.steps`` = K, odd), d / K apart on the sensor side, one camera frame each.

Conventions (pinned by tests):

* Scan offsets are (row, col) integers in -(K-1)/2 .. (K-1)/2, in acquisition order
  (``scan_offsets``).  Frame i is taken with the image shifted by ``offsets[i] * d / K`` on the
  sensor side in the image-oriented axes of ``optics.config.Microscope``, i.e. the sample appears
  moved by ``offsets[i] * d / (K M)``.  A microscope is shift-invariant up to the array (the Debye
  field of a point translates with it), so frame i is the LFM frame of the sample translated by that
  much: ``H S_i x`` with S_i the volume shifted by ``offsets[i] * s / K`` voxels (``shift_volume``,
  zero-filled: what moves out of the grid is lost, nothing moves in).
* "raster" order: row by row from the top left.  "ring": the published 3 x 3 order (DAOSLIMIT
  ``main_for_static_beads.m``: columns [3,2,1,1,1,2,3,3,2], rows [1,1,1,2,3,3,3,2,2]): the outer
  ring from the top-right corner leftward, down, rightward and up, then the next ring inward, the
  centre last.  For K > 3 each ring follows the same path (our generalisation).
* Realignment (FAMILIES.md section 3.2, 0-based): the pixel (u, v) behind lenslet (a, b) in the
  frame at scan position (c, d) (offset + (K-1)/2) goes to view (u, v) at phase-space sample
  (K a + K-1-c, K b + K-1-d).  That sample sits at (index - (K-1)/2) d / K on the sensor: a
  positive image shift moves content backwards relative to the fixed lenslets.  ``realign`` and
  ``unrealign`` are pure index permutations (exact inverses).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["scan_offsets", "scan_shifts_voxels", "scan_shifts_um", "shift_volume", "realign", "unrealign",
           "frames_to_phase_image", "phase_image_to_frames", "PhaseSpacePSF", "phase_space_psf", "ORDERS"]

#: Acquisition orders of ``scan.order``.
ORDERS = ("raster", "ring")


def _ring_path(k: int) -> list[tuple[int, int]]:
    """(row, col) 0-based positions of the "ring" order on a k x k grid: rings outside in, centre last."""
    out: list[tuple[int, int]] = []
    lo, hi = 0, k - 1
    while lo < hi:
        out += [(lo, c) for c in range(hi, lo - 1, -1)]  # top row, right to left
        out += [(r, lo) for r in range(lo + 1, hi + 1)]  # left column, downward
        out += [(hi, c) for c in range(lo + 1, hi + 1)]  # bottom row, left to right
        out += [(r, hi) for r in range(hi - 1, lo, -1)]  # right column, upward
        lo, hi = lo + 1, hi - 1
    out.append((lo, lo))
    return out


def scan_offsets(steps: int, order: str = "raster") -> np.ndarray:
    """(K^2, 2) integer (row, col) offsets in -(K-1)/2 .. (K-1)/2, in acquisition order."""
    k = int(steps)
    if k < 1 or k % 2 == 0:
        raise ValueError(f"steps = {steps!r} is invalid: expected an odd integer >= 1")
    if order not in ORDERS:
        raise ValueError(f"order = {order!r} is invalid: expected one of {', '.join(map(repr, ORDERS))}")
    if order == "raster":
        pos = [(r, c) for r in range(k) for c in range(k)]
    else:
        pos = _ring_path(k)
    return np.array(pos, dtype=np.int64) - (k - 1) // 2


def _microscope_offsets(m) -> np.ndarray:
    if m.kind != "slfm":
        raise ValueError(f"microscope.kind = {m.kind!r} does not scan: expected 'slfm'")
    return scan_offsets(m.scan.steps, m.scan.order)


def scan_shifts_voxels(m) -> np.ndarray:
    """(K^2, 2) integer volume shifts (rows, cols) of the scan positions of ``m``: offsets x s / K."""
    return _microscope_offsets(m) * (m.voxels_per_lenslet // m.scan.steps)


def scan_shifts_um(m) -> np.ndarray:
    """(K^2, 2) object-space translations (y, x) of the sample at each scan position (µm): offsets d / (K M)."""
    return _microscope_offsets(m) * (m.lenslet_pitch_object_um / m.scan.steps)


def shift_volume(x, dy: int, dx: int, out=None):
    """``x`` moved by (dy, dx) samples along its last two axes, zero-filled (NumPy or CuPy arrays).

    out[..., i, j] = x[..., i - dy, j - dx] where that index exists, else 0.  The adjoint of a shift is
    the opposite shift.
    """
    if out is None:
        out = x * 0  # same array type, dtype and device, without importing the array module
    else:
        out[...] = 0
    ny, nx = x.shape[-2:]
    dy, dx = int(dy), int(dx)
    if abs(dy) >= ny or abs(dx) >= nx:
        return out
    src_y = slice(max(0, -dy), ny - max(0, dy))
    dst_y = slice(max(0, dy), ny - max(0, -dy))
    src_x = slice(max(0, -dx), nx - max(0, dx))
    dst_x = slice(max(0, dx), nx - max(0, -dx))
    out[..., dst_y, dst_x] = x[..., src_y, src_x]
    return out


def _check_frames(frames, steps: int, nnum: int, xp=np):
    f = np.asarray(frames) if xp is np else frames
    k2 = steps * steps
    if f.ndim < 3 or f.shape[-3] != k2 or f.shape[-2] % nnum or f.shape[-1] % nnum:
        raise ValueError(f"frames have shape {f.shape}; expected (..., {k2}, Y, X): {k2} scan frames of whole "
                         f"lenslets ({nnum} pixels each)")
    return f


def realign(frames, steps: int, nnum: int, order: str = "raster", xp=np):
    """Scan frames (..., K^2, L_y N, L_x N) in acquisition ``order`` -> phase space (..., N, N, K L_y, K L_x).

    View (u, v) of the result is the image seen through pixel (u, v) of every lenslet, sampled K
    times per lenslet pitch (see the module conventions).  Pure permutation: ``unrealign`` inverts it.
    ``xp``: the array module of ``frames`` (numpy, or cupy for device arrays).
    """
    f = _check_frames(frames, steps, nnum, xp)
    k = steps
    lead = f.shape[:-3]
    ly, lx = f.shape[-2] // nnum, f.shape[-1] // nnum
    pos = scan_offsets(k, order) + (k - 1) // 2  # (c, d) of each frame
    out = xp.empty(lead + (nnum, nnum, k * ly, k * lx), dtype=f.dtype)
    for i, (c, d) in enumerate(pos):
        # frame[a N + u, b N + v] -> out[u, v, K a + K-1-c, K b + K-1-d]
        g = f[..., i, :, :].reshape(lead + (ly, nnum, lx, nnum))
        g = xp.moveaxis(g, (-4, -3, -2, -1), (-2, -4, -1, -3))  # (..., u, v, a, b)
        out[..., k - 1 - c:: k, k - 1 - d:: k] = g
    return out


def unrealign(phase_space, steps: int, order: str = "raster", xp=np):
    """The inverse of ``realign``: phase space (..., N, N, K L_y, K L_x) -> frames (..., K^2, L_y N, L_x N)."""
    w = np.asarray(phase_space) if xp is np else phase_space
    k = int(steps)
    if w.ndim < 4 or w.shape[-4] != w.shape[-3] or w.shape[-2] % k or w.shape[-1] % k:
        raise ValueError(f"phase space has shape {w.shape}; expected (..., N, N, K L_y, K L_x) with K = {k}")
    nnum = w.shape[-4]
    lead = w.shape[:-4]
    ly, lx = w.shape[-2] // k, w.shape[-1] // k
    pos = scan_offsets(k, order) + (k - 1) // 2
    out = xp.empty(lead + (k * k, ly * nnum, lx * nnum), dtype=w.dtype)
    for i, (c, d) in enumerate(pos):
        g = w[..., k - 1 - c:: k, k - 1 - d:: k]  # (..., u, v, a, b)
        g = xp.moveaxis(g, (-2, -4, -1, -3), (-4, -3, -2, -1))  # (..., a, u, b, v)
        out[..., i, :, :] = g.reshape(lead + (ly * nnum, lx * nnum))
    return out


# ------------------------------------------------------------------------------ phase-space layout
def frames_to_phase_image(frames, steps: int, nnum: int, order: str = "raster", xp=np):
    """Scan frames (..., K^2, Y, X) -> the phase-space image (..., K Y, K X): virtual lenslet (A, B) of
    pitch d / K holds the N x N views at phase-space sample (A, B) (``realign``), laid out like a
    light-field frame: pixel (A N + u, B N + v) = view (u, v) at (A, B)."""
    ps = realign(frames, steps, nnum, order, xp)  # (..., u, v, A, B)
    lead, (ky, kx) = ps.shape[:-4], ps.shape[-2:]
    g = xp.moveaxis(ps, (-4, -3, -2, -1), (-3, -1, -4, -2))  # (..., A, u, B, v)
    return g.reshape(lead + (ky * nnum, kx * nnum))


def phase_image_to_frames(image, steps: int, nnum: int, order: str = "raster", xp=np):
    """The inverse of ``frames_to_phase_image``: (..., K Y, K X) -> scan frames (..., K^2, Y, X)."""
    lead, (hy, hx) = image.shape[:-2], image.shape[-2:]
    if hy % (steps * nnum) or hx % (steps * nnum):
        raise ValueError(f"phase-space image has shape {tuple(image.shape)}; expected sides that are multiples "
                         f"of K N = {steps * nnum}")
    g = image.reshape(lead + (hy // nnum, nnum, hx // nnum, nnum))
    ps = xp.moveaxis(g, (-4, -3, -2, -1), (-2, -4, -1, -3))  # (..., u, v, A, B)
    return unrealign(ps, steps, order, xp)


@dataclass(frozen=True, eq=False)
class PhaseSpacePSF:
    """The kernels of a scanning LFM in the phase-space layout: a periodic light-field system of K L
    virtual lenslets of pitch d / K, N x N pixels (views) and s / K voxel phases each.

    Moving a voxel by one scan step (s / K voxels) permutes its scan frames so that its phase-space
    image moves by one virtual lenslet: the K^2 frames of a volume are one periodic shift-variant
    operator on the virtual grid, with K^2 fewer channels than K^2 separate LFM projections (DESIGN.md
    performance model).  Duck-types ``optics.psfdata.LightFieldPSF`` for the operator.
    """

    microscope: object
    z_um: np.ndarray
    kernels: tuple  # per depth (s/K, s/K, (2R'+1) N, (2R'+1) N) float32

    @property
    def steps(self) -> int:
        return self.microscope.scan.steps

    @property
    def pixels_per_lenslet(self) -> int:
        return self.microscope.pixels_per_lenslet

    @property
    def voxels_per_lenslet(self) -> int:
        return self.microscope.voxels_per_lenslet // self.steps

    @property
    def n_lenslets(self) -> tuple[int, int]:
        ly, lx = self.microscope.n_lenslets
        return (self.steps * ly, self.steps * lx)

    @property
    def image_shape(self) -> tuple[int, int]:
        n = self.pixels_per_lenslet
        ky, kx = self.n_lenslets
        return (ky * n, kx * n)

    @property
    def volume_shape(self) -> tuple[int, int, int]:
        return self.microscope.volume_shape

    @property
    def radius_lenslets(self) -> np.ndarray:
        from .psfdata import kernel_radii

        return kernel_radii(self.kernels, self.pixels_per_lenslet)


def phase_space_psf(psf) -> PhaseSpacePSF:
    """Re-index the LFM kernels of an "slfm" microscope (``optics.compute_psf``) into its phase-space kernels.

    Virtual phase alpha (of s / K) at virtual lenslet 0 is voxel j = alpha of lenslet 0; in the frame
    at row offset o it is imaged as voxel j + o s / K, i.e. LFM kernel phase p = (j + o s/K) mod s
    centred on lenslet l = floor((j + o s/K) / s) in {-1, 0}; that frame's pixel (a, u) is phase-space
    sample A = K a + K-1-c (``realign``, c = o + (K-1)/2).  So kernel lenslet a - l + R lands at
    virtual lenslet A of the window centred on virtual lenslet 0, every K-th one: a pure re-indexing
    (no interpolation); the window is cut to the farthest virtual lenslet written (R' <= K (R + 1)).
    """
    m = psf.microscope
    if m.kind != "slfm":
        raise ValueError(f"microscope.kind = {m.kind!r} does not scan: phase-space kernels need kind 'slfm'")
    k, s, n = m.scan.steps, m.voxels_per_lenslet, m.pixels_per_lenslet
    sub = s // k
    offsets = np.arange(k) - (k - 1) // 2
    out = []
    for ker in psf.kernels:
        r = (ker.shape[2] // n - 1) // 2
        rp = k * (r + 1)
        w = 2 * rp + 1
        ps = np.zeros((sub, sub, w * n, w * n), dtype=np.float32)
        starts = []  # (kernel phase, first virtual-lenslet index) of each (alpha, scan row)
        for alpha in range(sub):
            row = []
            for c, o in enumerate(offsets):
                j = alpha + int(o) * sub
                lens = j // s
                row.append((j - lens * s, k * (lens - r) + k - 1 - c + rp))
            starts.append(row)
        span = k * 2 * r + 1
        for a in range(sub):
            for b in range(sub):
                dst = ps[a, b].reshape(w, n, w, n)
                for p, ya in starts[a]:
                    for q, xb in starts[b]:
                        dst[ya: ya + span: k, :, xb: xb + span: k, :] = ker[p, q].reshape(2 * r + 1, n, 2 * r + 1, n)
        # the virtual lenslets written: crop the window to the farthest one from the centre (exact)
        first = min(ya for row in starts for _, ya in row)
        last = max(ya for row in starts for _, ya in row) + span - 1
        keep = max(rp - first, last - rp)
        cut = (rp - keep) * n
        out.append(np.ascontiguousarray(ps[:, :, cut: ps.shape[2] - cut, cut: ps.shape[3] - cut]))
    return PhaseSpacePSF(m, np.asarray(psf.z_um), tuple(out))
