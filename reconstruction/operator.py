"""The light-field projection operator H (forward) and its exact transpose Hᵀ (adjoint).

Model (PHYSICS.md section 4; Broxton et al. 2013, Stefanoiu et al. 2019): the image is
``y = sum_z sum_ab K_{z,a,b} * (P_ab x_z)``, where ``P_ab`` puts each voxel of sub-lenslet phase
(a, b) on its lenslet's centre pixel and ``K_{z,a,b}`` is the sensor pattern of that source
(``optics.psfdata.LightFieldPSF``).  Because the PSF is periodic with the lenslet pitch, split a
volume slice into its s x s voxel phases (each an L_y x L_x image on the lenslet grid) and the
sensor into its N x N pixel phases: with p = m N + u (lenslet m, pixel phase u),

    y_u[m] = sum_{z,ab} sum_l G_{z,ab,u}[m - l] x_{z,ab}[l],   G_{z,ab,u}[j] = K_{z,a,b}[(j + R) N + u],

a multi-channel convolution on the lenslet grid with nz s^2 inputs and N^2 outputs whose
taps span |j| <= R lenslets (DESIGN.md, "Performance model").  We evaluate it in Fourier space:
per spatial frequency f it is one complex matrix-vector product (N^2 x nz s^2), done as a batched
``matmul`` over frequencies (and over frames and tiles as extra columns).  The kernel spectra
``Ĝ[f, u, c]`` are computed once and stay resident on the device.  The adjoint uses the conjugate
transpose, so forward and adjoint are exact transposes (zero padding keeps the convolution linear,
not circular).  When the kernels are mirror-symmetric (the optics are symmetric about each
lenslet's axis) H commutes with flipping volume and image, so only the phases a, b < ceil(s/2)
need be stored, the flipped volumes riding along as extra matmul columns and FFTs (~3.5x less
memory at s = 15); on a square lenslet grid the transpose symmetry halves the memory again
(a <= b).  The copies cost FLOPs (``projection_cost``: x1.5 / x2 for mirror / d4 at s = 5,
x1.8 / x2.8 at s = 3, x1.1 / x1.3 at s = 15), so by default full spectra are stored when they fit
the memory budget and symmetric ones only when they do not.  Large lenslet grids are cut into
overlap-save tiles of T lenslets so the kernel spectra (size ~ tile^2, not field^2) fit in memory.
Wide-field (N = s = 1) is the same code: a per-depth shift-invariant 3-D-to-2-D convolution.

All arithmetic uses the array module of the operator's device (numpy or cupy) through one code
path; inputs must already live on that device (no silent host/device copies).
"""

from __future__ import annotations

import itertools
import logging
import math

import numpy as np

from . import backend
from .cost import ProjectionCost, check_frames, projection_cost, projection_seconds
from .symmetry import GROUPS, phase_plan

__all__ = ["LightFieldOperator", "ProjectionCost", "projection_cost"]

log = logging.getLogger(__name__)

_DTYPES = {np.dtype(np.float32): np.dtype(np.complex64), np.dtype(np.float64): np.dtype(np.complex128)}


# --------------------------------------------------------------------------- operator
def _wrap_blocks(r: int, p: int) -> list[tuple[slice, slice]]:
    """(destination, source) slices that put taps j = -r..r (source index j + r) at j mod p."""
    blocks = [(slice(0, r + 1), slice(r, 2 * r + 1))]
    if r:
        blocks.append((slice(p - r, p), slice(0, r)))
    return blocks


def _mirror_y_holds(k: np.ndarray, tol: float) -> bool:
    """K_{s-1-a, b} = K_{a, b} flipped in y, for kernels (s, s, K, K): each pair compared once."""
    s = k.shape[0]
    for a in range((s + 1) // 2):
        x, y = k[a], k[s - 1 - a, :, ::-1, :]
        if not np.array_equal(x, y) and np.abs(x - y).max(initial=0) > tol:
            return False
    return True


def _transpose_holds(k: np.ndarray, tol: float) -> bool:
    """K_{b, a} = K_{a, b} transposed, each pair compared once."""
    s = k.shape[0]
    for a in range(s):
        x, y = k[a, a:], k[a:, a].transpose(0, 2, 1)
        if not np.array_equal(x, y) and np.abs(x - y).max(initial=0) > tol:
            return False
    return True


class LightFieldOperator:
    """Forward projection H (volume -> light-field image) and its exact adjoint Hᵀ.

    Parameters
    ----------
    psf : optics.psfdata.LightFieldPSF
        Kernels ``psf.kernels[iz]`` of shape (s, s, K_z, K_z), K_z = (2 R_z + 1) N.
    device : {"auto", "cpu", "gpu"}
        Where the kernel spectra live and the arithmetic runs (``backend.get_device``).
    dtype : float32 or float64
        Real dtype of volumes and images (complex64 / complex128 spectra).
    max_chunk_bytes : int, optional
        Bound on the temporaries of one depth chunk (default 256 MiB on the CPU, 2 GiB on the GPU) (the projection is accumulated over chunks
        of depths in Fourier space, so peak memory stays bounded for any number of depths).
    max_kernel_bytes : int, optional
        Budget of the resident kernel spectra.  With ``symmetry="auto"`` it chooses the storage
        (below); when even the chosen storage needs more on one FFT over the whole lenslet grid,
        the grid is cut into overlap-save tiles (unless tiles narrower than the kernels would cost
        over 3x the work; then one tile is kept and a warning logged).  Default: 4 GiB on the
        CPU, min(40% of the free GPU memory, 12 GiB) on the GPU.
    tile_lenslets : int or (int, int), optional
        Force a tile size T (lenslets, per axis); ``None`` chooses automatically.
    symmetry : {"auto", True, False, "mirror", "d4", "none"}
        Storage of the kernel spectra.  "none" (or False): full, every phase (a, b).  "mirror"
        and "d4" use the symmetries of the kernels (checked on every depth) to store only the
        phases a, b < ceil(s/2) ("mirror") or a <= b < ceil(s/2) ("d4": mirrors and transpose,
        square lenslet grids); the G = 4 or 8 mirrored/transposed copies of the volume become
        extra matmul columns and FFTs.  Exact, but with more FLOPs (``projection_cost``: d4 ~2x
        at s = 5, ~3x at s = 3).  True: the most the kernels allow.  "auto": from the memory budget:
        full storage when it fits ``max_kernel_bytes`` (fewest FLOPs), otherwise the cheapest
        symmetric storage that fits ("mirror", then "d4"), otherwise the most reduced one, tiled.
    frames : int
        Frames the projections will mostly carry together (a batch of frames reconstructed at once,
        e.g. a benchmark's repeats); "auto" storage is chosen for the modelled time of such a batch.
        The kernel spectra are read once per projection whatever the batch, while the FLOPs grow with
        it, so a large batch favours full storage (measured on one thread, 40x/0.95 N = 15 at s = 7,
        21 frames: forward + adjoint 0.19 s full against 0.36 s mirror and 0.67 s d4).  Default 1.
    progress : bool
        Show a progress bar while computing the kernel spectra.

    Attributes
    ----------
    microscope : optics.config.Microscope
    volume_shape : (nz, L_y s, L_x s)
    image_shape : (L_y N, L_x N)
    device : "cpu" or "gpu"
    nbytes : int
        Device memory held by the kernel spectra.
    symmetry : "none", "mirror" or "d4"
        The symmetry the stored spectra use (``storage``: "full", "mirror" or "d4").
    storage_reason : str
        Why: "requested" (explicit ``symmetry``), "fits budget" (full storage fits
        ``max_kernel_bytes`` and is modelled fastest), "faster (fewer bytes)" (it fits, but a
        symmetric storage moves fewer bytes per projection and is modelled faster),
        "memory-bound" (it does not fit: a symmetric one), "kernels not
        symmetric" or "one voxel per lenslet" (full is the only storage); ", tiled" is appended
        when the budget also made the grid be cut into tiles.
    symmetry_available : "none", "mirror", "d4" or None
        The most the kernels allow (None: not checked, as ``symmetry="none"`` was asked for).

    Notes
    -----
    ``forward`` and ``adjoint`` accept a leading time axis, (t, nz, Y, X) and (t, Y', X'); frames
    become extra matmul columns, so a batch costs little more than one frame to read the
    kernel spectra.  Both require arrays already on the operator's device.
    """

    def __init__(self, psf, device: str = "auto", dtype=np.float32, *, max_chunk_bytes: int | None = None,
                 max_kernel_bytes: int | None = None, tile_lenslets=None, symmetry="auto",
                 frames: int = 1, progress: bool = False):
        dt = np.dtype(dtype)
        self.frames = check_frames(frames)
        if dt not in _DTYPES:
            raise ValueError(f"dtype = {dtype!r} is invalid: expected float32 or float64")
        if max_chunk_bytes is not None and int(max_chunk_bytes) <= 0:
            raise ValueError(f"max_chunk_bytes = {max_chunk_bytes!r} is invalid: expected a positive integer")
        self._psf = psf  # released at the end of __init__: the operator holds only the spectra
        self.microscope = psf.microscope
        self.z_um = np.asarray(psf.z_um)
        self.dtype = dt
        self.cdtype = _DTYPES[dt]
        self.device = backend.get_device(device)
        self.xp = backend.xp_for(self.device)
        self._fft = backend.fft_module(self.device)
        if max_chunk_bytes is None:
            max_chunk_bytes = (2 * 2**30) if self.device == "gpu" else 256 * 2**20
        self.max_chunk_bytes = int(max_chunk_bytes)

        m = psf.microscope
        self.n = int(psf.pixels_per_lenslet)
        self.s = int(psf.voxels_per_lenslet)
        self.lenslets = tuple(int(v) for v in psf.n_lenslets)
        self.nz = len(psf.z_um)
        self.volume_shape = tuple(int(v) for v in psf.volume_shape)
        self.image_shape = tuple(int(v) for v in psf.image_shape)
        self.voxel_um = (float(m.volume.z_step_um), float(m.voxel_um), float(m.voxel_um))
        ly, lx = self.lenslets
        self.radii = [int(r) for r in psf.radius_lenslets]
        # taps farther than L-1 lenslets never reach the image: drop them per axis
        self._ry = [min(r, ly - 1) for r in self.radii]
        self._rx = [min(r, lx - 1) for r in self.radii]
        self.outputs = self.n * self.n
        if max_kernel_bytes is None:
            max_kernel_bytes = 4 * 2**30
            if self.device == "gpu":
                free = self._gpu_free_bytes()
                max_kernel_bytes = min(int(0.4 * free), 12 * 2**30) if free else max_kernel_bytes
        self.max_kernel_bytes = int(max_kernel_bytes)
        tiles = self._forced_tiles(tile_lenslets)
        self.symmetry_available, requested = self._check_symmetry(symmetry)
        self.symmetry, reason = self._choose_storage(requested, tiles)
        self.symmetric = self.symmetry != "none"
        self.storage = "full" if self.symmetry == "none" else self.symmetry
        # group elements g = (flip y, flip x, transpose) and the stored phases they map onto all
        self.groups = GROUPS[self.symmetry]
        self.phases, masks = phase_plan(self.s, self.symmetry)
        self.nph = len(self.phases)
        self._pa = np.array([a for a, _ in self.phases])
        self._pb = np.array([b for _, b in self.phases])
        self._all_phases = self.symmetry == "none"
        self._mask_host = masks.astype(self.dtype)
        self.channels = self.nz * self.nph
        self._plan_tiles(tiles)
        self.storage_reason = reason + (", tiled" if self.ntiles > 1 and tiles is None else "")
        self._build(progress)
        del self._psf

    # ---------------------------------------------------------------- geometry / planning
    def _gpu_free_bytes(self) -> int:
        try:
            return int(self.xp.cuda.runtime.memGetInfo()[0])
        except Exception:
            return 0

    def _check_symmetry(self, symmetry) -> tuple[str | None, str]:
        """(the symmetry the kernels obey, the storage requested): validates ``symmetry``.

        The kernels' symmetry is "d4", "mirror" or "none" (checked on every depth; None when not
        checked because "none" was asked for).  Mirror: K_{s-1-a, b} = K_{a, b} flipped in y and
        K_{a, s-1-b} = K_{a, b} flipped in x (the optics are mirror-symmetric about each lenslet's
        axis; PHYSICS.md section 6, check 11).  D4 adds the transpose K_{b, a} = K_{a, b}ᵀ, usable
        on a square lenslet grid.  Then H commutes with the same flips/transposes of volume and
        image, and only the phases a, b < ceil(s/2) (mirror, ~3.5x less memory at s = 15) or
        a <= b < ceil(s/2) (d4, ~6x) need kernel spectra.  The request is "auto" (chosen by
        ``_choose_storage``) or the storage to use: "none", "mirror" or "d4".
        """
        accepted = ("auto", True, False, "none", "mirror", "d4")
        if not any(symmetry is v or (isinstance(symmetry, str) and symmetry == v) for v in accepted):
            raise ValueError(f"symmetry = {symmetry!r} is invalid: expected 'auto', True, False, 'none', 'mirror' or 'd4'")
        if self.s == 1:  # one phase: nothing to save
            return "none", ("auto" if isinstance(symmetry, str) and symmetry == "auto" else "none")
        if symmetry is False or symmetry == "none":
            return None, "none"
        mirror = transpose = True
        for k in self._psf.kernels:
            k = np.asarray(k)
            tol = 1e-6 * max(float(k.max(initial=0)), -float(k.min(initial=0)))
            if mirror and not (_mirror_y_holds(k, tol) and _mirror_y_holds(k.transpose(1, 0, 3, 2), tol)):
                mirror = False
            if transpose and not _transpose_holds(k, tol):
                transpose = False
            if not mirror:
                break
        square = self.lenslets[0] == self.lenslets[1]
        found = "d4" if (mirror and transpose and square) else "mirror" if mirror else "none"
        log.info("LightFieldOperator: kernel symmetry %s", found)
        if symmetry is True:
            if found == "none":
                raise ValueError("symmetry = True was requested but the kernels are not mirror-symmetric; use 'auto' or False")
            return found, found
        if symmetry == "mirror" and found == "none":
            raise ValueError("symmetry = 'mirror' was requested but the kernels are not mirror-symmetric")
        if symmetry == "d4" and found != "d4":
            why = "the lenslet grid is not square" if (mirror and transpose) else "the kernels are not D4-symmetric"
            raise ValueError(f"symmetry = 'd4' was requested but {why}; use 'auto' or 'mirror'")
        return found, str(symmetry)

    def _choose_storage(self, requested: str, tiles) -> tuple[str, str]:
        """(symmetry of the stored kernel spectra, why): an explicit request is kept; "auto" picks
        the candidate storage (full, and the symmetric ones the kernels allow) with the least
        modelled time per projection of ``frames`` frames (``cost.projection_seconds``: FLOPs and bytes at the device's
        rates) among those whose spectra fit ``max_kernel_bytes`` on one FFT over the grid (or the
        forced tiles).  Full storage needs the fewest FLOPs (d4 multiplies them by ~2 at s = 5: the
        G group copies of the volume ride as extra matmul columns and FFTs) but moves the most
        bytes (s^2 phases against ~s^2/4 or ~s^2/8), which bounds a projection once the spectra
        outgrow the caches (measured on 2 cores: P at s = 15 projects in 0.22 s with full storage,
        0.14-0.16 s with mirror or d4, and sets up 6.3 s against 1.0-1.4 s).  When none fits, the
        most reduced storage, tiled (``_plan_tiles``)."""
        if requested != "auto":
            return requested, "requested"
        if self.symmetry_available == "none":
            return "none", "one voxel per lenslet" if self.s == 1 else "kernels not symmetric"
        candidates = ["none", "mirror"] + (["d4"] if self.symmetry_available == "d4" else [])
        plans = self._grid_plans(tiles)
        shapes = self._fft_shapes(plans)
        tiles_yx = (plans[0][3], plans[1][3])
        best, table = None, []
        for sym in candidates:
            nph = len(phase_plan(self.s, sym)[0])
            nbytes = self._resident_bytes(shapes, nph)
            cost = projection_cost(self.nz, self.s, self.n, self.lenslets, self.radii, tiles_yx, shapes,
                                   self.dtype.itemsize, sym, frames=self.frames)
            seconds = projection_seconds(cost, self.device)
            table.append(f"{sym}: {nbytes / 2**20:.4g} MiB, {cost.fourier_flops / 1e9:.4g} GFLOP, "
                         f"{cost.fourier_bytes / 1e9:.4g} GB moved, ~{seconds:.3g} s")
            if nbytes <= self.max_kernel_bytes and (best is None or seconds < best[1]):
                best = (sym, seconds)
        log.info("LightFieldOperator: storage candidates on %s (budget %.4g MiB) %s", self.device,
                 self.max_kernel_bytes / 2**20, "; ".join(table))
        if best is None:
            return candidates[-1], "memory-bound"
        if best[0] == "none":
            return "none", "fits budget"
        fits_full = self._resident_bytes(shapes, self.s * self.s) <= self.max_kernel_bytes
        return best[0], "faster (fewer bytes)" if fits_full else "memory-bound"

    def _to_frame(self, a, g):
        """g⁻¹ a: flip the last two axes as g says, then transpose them (a view)."""
        fy, fx, tr = g
        axes = tuple(ax for ax, f in zip((-2, -1), (fy, fx)) if f)
        out = self.xp.flip(a, axis=axes) if axes else a
        return self.xp.swapaxes(out, -1, -2) if tr else out

    def _from_frame(self, a, g):
        """g a: transpose the last two axes if g says, then flip them (a view)."""
        fy, fx, tr = g
        out = self.xp.swapaxes(a, -1, -2) if tr else a
        axes = tuple(ax for ax, f in zip((-2, -1), (fy, fx)) if f)
        return self.xp.flip(out, axis=axes) if axes else out

    def _axis_plan(self, length: int, rmax: int, tile: int | None):
        """(tile T, overlap o, FFT size P, tile count) for one axis."""
        nfl = self._fft.next_fast_len
        if tile is None or tile >= length:
            return length, 0, nfl(length + rmax), 1
        t = max(1, int(tile))
        return t, rmax, nfl(t + 2 * rmax), math.ceil(length / t)

    def _spectra_bytes(self, py: int, px: int) -> int:
        """Kernel spectra of all depths on one FFT grid (P_y, P_x) (bytes)."""
        return py * (px // 2 + 1) * self.outputs * self.channels * self.cdtype.itemsize

    def _resident_bytes(self, shapes, nph: int) -> int:
        """Kernel spectra of ``nph`` stored phases per depth on the FFT grids ``shapes`` (bytes; = nbytes)."""
        return sum(self._nf(shape) for shape in shapes) * self.outputs * nph * self.cdtype.itemsize

    def _forced_tiles(self, tile_lenslets):
        """``tile_lenslets`` as (T_y, T_x), or None (choose automatically)."""
        if tile_lenslets is None:
            return None
        ty, tx = (tile_lenslets, tile_lenslets) if np.isscalar(tile_lenslets) else tile_lenslets
        if int(ty) < 1 or int(tx) < 1:
            raise ValueError(f"tile_lenslets = {tile_lenslets!r} is invalid: expected a positive integer")
        return int(ty), int(tx)

    def _grid_plans(self, tiles):
        """Axis plans (``_axis_plan``) for the forced tiles, or one FFT over the grid."""
        ly, lx = self.lenslets
        rmy, rmx = max(self._ry), max(self._rx)
        ty, tx = tiles if tiles is not None else (None, None)
        return self._axis_plan(ly, rmy, ty), self._axis_plan(lx, rmx, tx)

    def _fft_shapes(self, plans) -> list[tuple[int, int]]:
        """FFT grid per depth: one tile gives each depth the smallest grid its own kernel reach
        needs (L + R_z; depths sharing a grid share a Fourier-space accumulator); tiles share one."""
        if plans[0][3] * plans[1][3] == 1:
            nfl = self._fft.next_fast_len
            return [(nfl(self.lenslets[0] + ry), nfl(self.lenslets[1] + rx)) for ry, rx in zip(self._ry, self._rx)]
        return [(plans[0][2], plans[1][2])] * self.nz

    def _plan_tiles(self, tiles) -> None:
        """Tiles T (forced, or the least work whose kernel spectra fit ``max_kernel_bytes``) and FFT grids."""
        ly, lx = self.lenslets
        rmy, rmx = max(self._ry), max(self._rx)
        plans = self._grid_plans(tiles)
        untiled = self._resident_bytes(self._fft_shapes(plans), self.nph)
        if tiles is None and untiled > self.max_kernel_bytes:
            best = None
            for p in range(8, 4 * max(ly, lx) + 4 * max(rmy, rmx) + 8):
                ty, tx = p - 2 * rmy, p - 2 * rmx
                if ty < 1 or tx < 1:
                    continue
                py = self._axis_plan(ly, rmy, ty)
                px = self._axis_plan(lx, rmx, tx)
                nbytes = self._spectra_bytes(py[2], px[2])
                if nbytes > self.max_kernel_bytes:
                    break
                work = py[3] * px[3] * py[2] * (px[2] // 2 + 1)
                if best is None or work < best[0]:
                    best = (work, (py, px))
            single_work = plans[0][2] * (plans[1][2] // 2 + 1)
            if best is not None and best[0] > 3 * single_work:
                # tiles narrower than the kernels cost more than they save: keep one tile
                log.warning(
                    "kernel spectra need %.3g GB (> max_kernel_bytes = %.3g GB) but tiling would multiply "
                    "the work by %.0f (kernels span up to %d lenslets); using one tile",
                    untiled / 1e9, self.max_kernel_bytes / 1e9, best[0] / single_work, 2 * max(rmy, rmx) + 1,
                )
                best = (single_work, plans)
            if best is None:
                raise MemoryError(
                    f"max_kernel_bytes = {self.max_kernel_bytes} is too small for even the smallest tile "
                    f"({self._spectra_bytes(self._fft.next_fast_len(2 * rmy + 1), self._fft.next_fast_len(2 * rmx + 1))} bytes "
                    "of kernel spectra); raise it or reduce the depths / voxels per lenslet"
                )
            plans = best[1]
        (self.tile_y, self.off_y, self.fft_y, self.ntiles_y), (self.tile_x, self.off_x, self.fft_x, self.ntiles_x) = plans
        self.nfreq = self.fft_y * (self.fft_x // 2 + 1)
        self.ntiles = self.ntiles_y * self.ntiles_x
        self.fft_shapes = self._fft_shapes(plans)

    # ---------------------------------------------------------------- kernel spectra
    def _build(self, progress: bool) -> None:
        xp, n, s = self.xp, self.n, self.s
        nph = self.nph
        self._chunks = self._plan_chunks()
        self._masks = backend.to_device(self._mask_host, self.device)
        self._pa_dev, self._pb_dev = xp.asarray(self._pa), xp.asarray(self._pb)
        # one output pixel per lenslet (N = 1: views of a scanning LFM, wide-field) on one tile: the
        # per-frequency product is a dot product over channels, done without matmul or transposes
        # on spectra stored channel-major (channel, frequency); else (frequency, pixel phase, channel)
        self._single = self.outputs == 1 and self.ntiles == 1
        self._khat = [xp.empty((len(idx) * nph, self._nf(shape)) if self._single else
                               (self._nf(shape), self.outputs, len(idx) * nph), dtype=self.cdtype)
                      for idx, shape in self._chunks]
        owner = {int(iz): (j, pos) for j, (idx, _) in enumerate(self._chunks) for pos, iz in enumerate(idx)}
        iterator = range(self.nz)
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(iterator, desc="kernel spectra", unit="depth", disable=None)
        for iz in iterator:
            k = backend.to_device(self._psf.kernels[iz], self.device, dtype=self.dtype)
            r = self.radii[iz]
            ry, rx = self._ry[iz], self._rx[iz]
            side = 2 * r + 1
            # (a, b, jy, uy, jx, ux) -> (a, b, uy, ux, jy, jx), taps limited to |j| <= R_eff
            k = k.reshape(s, s, side, n, side, n)[:, :, r - ry: r + ry + 1, :, r - rx: r + rx + 1, :]
            k = k.transpose(0, 1, 3, 5, 2, 4)
            py, px = self.fft_shapes[iz]
            f = self._nf((py, px))
            j, pos = owner[iz]
            direct = self._direct_phases()
            # one depth's spectra, phase-major (contiguous per phase), copied into the resident
            # (frequency, pixel phase, channel) layout once
            buf = xp.empty((nph, py, px // 2 + 1, n, n), dtype=self.cdtype)
            for p0 in range(0, len(direct), s):  # s phases at a time bounds the setup memory
                sel = direct[p0: p0 + s]
                g = xp.zeros((len(sel), n, n, py, px), dtype=self.dtype)
                src = k[xp.asarray(self._pa[sel]), xp.asarray(self._pb[sel])]  # (phase, uy, ux, jy, jx)
                # tap j at j mod P: four blocks (P >= L + R >= 2R + 1, so they do not overlap)
                for (gy, sy), (gx, sx) in itertools.product(_wrap_blocks(ry, py), _wrap_blocks(rx, px)):
                    g[..., gy, gx] = src[..., sy, sx]
                del src
                gh = self._fft.rfft2(g)  # (phase, uy, ux, fy, fx)
                buf[xp.asarray(sel)] = gh.transpose(0, 3, 4, 1, 2)
                del g, gh
            if len(direct) < nph:
                self._fill_mirrored(buf)
            if self._single:
                self._khat[j][pos * nph: (pos + 1) * nph] = buf.reshape(nph, f)
            else:
                self._khat[j][:, :, pos * nph: (pos + 1) * nph] = buf.reshape(nph, f, self.outputs).transpose(1, 2, 0)
            del buf
        backend.synchronize(self.device)
        log.info(
            "LightFieldOperator: %d depths, s=%d, N=%d, %dx%d lenslets, FFT grids %s, %d tile(s), storage %s (%s), "
            "kernel spectra %.3g GB on %s",
            self.nz, s, n, *self.lenslets, sorted(set(self.fft_shapes)), self.ntiles, self.storage, self.storage_reason,
            self.nbytes / 1e9, self.device,
        )

    def _direct_phases(self) -> list[int]:
        """Indices of the stored phases whose spectra are computed by FFT.

        Full storage of mirror-symmetric kernels: only a <= s-1-a and b <= s-1-b; the spectra of the
        mirrored phases follow exactly from those (``_fill_mirrored``), ~4x fewer kernel FFTs.
        """
        if self.symmetry != "none" or self.symmetry_available not in ("mirror", "d4") or self.s == 1:
            return list(range(self.nph))
        s = self.s
        return [i for i, (a, b) in enumerate(self.phases) if a <= s - 1 - a and b <= s - 1 - b]

    def _fill_mirrored(self, buf) -> None:
        """Spectra of the mirrored phases from the computed ones (real kernels, odd pixels per lenslet).

        ``buf`` is (phase, fy, fx, uy, ux) with the rfft2 half spectrum along fx.  A mirror of the
        source in y flips its kernel: tap j -> -j and pixel phase u -> N-1-u, so the spectrum becomes
        G(-fy, fx) with uy reversed; a mirror in x gives G(fy, -fx) = conj G(-fy, fx) (real input)
        with ux reversed; both give conj G(fy, fx) with both reversed.
        """
        xp, s = self.xp, self.s
        rev = xp.asarray((-np.arange(buf.shape[1])) % buf.shape[1])
        index = {ph: i for i, ph in enumerate(self.phases)}
        for a, b in (self.phases[i] for i in self._direct_phases()):
            src = buf[index[(a, b)]]
            if s - 1 - a != a:
                buf[index[(s - 1 - a, b)]] = src[rev][:, :, ::-1, :]
            if s - 1 - b != b:
                buf[index[(a, s - 1 - b)]] = xp.conj(src[rev][:, :, :, ::-1])
            if s - 1 - a != a and s - 1 - b != b:
                buf[index[(s - 1 - a, s - 1 - b)]] = xp.conj(src[:, :, ::-1, ::-1])

    @property
    def nbytes(self) -> int:
        """Device memory held by the resident kernel spectra (bytes)."""
        return int(sum(k.nbytes for k in self._khat))

    def cost(self) -> ProjectionCost:
        """FLOPs and bytes of one projection (``projection_cost`` for this geometry)."""
        return projection_cost(
            self.nz, self.s, self.n, self.lenslets, self.radii, (self.ntiles_y, self.ntiles_x),
            self.fft_shapes, self.dtype.itemsize, self.symmetry,
        )

    def __repr__(self) -> str:
        return (f"LightFieldOperator(volume_shape={self.volume_shape}, image_shape={self.image_shape}, "
                f"device={self.device!r}, dtype={self.dtype.name}, tiles={self.ntiles_y}x{self.ntiles_x}, "
                f"storage={self.storage!r}, storage_reason={self.storage_reason!r}, nbytes={self.nbytes})")

    # ---------------------------------------------------------------- helpers
    def _check(self, arr, expected: tuple, name: str):
        xp = backend.xp_of(arr)
        if xp is not self.xp:
            where = "GPU (cupy)" if backend.is_gpu_array(arr) else "CPU (numpy)"
            raise TypeError(
                f"{name} is a {where} array but the operator lives on {self.device!r}; move it with "
                f"reconstruction.backend.to_device(..., {self.device!r}) (no silent copies)"
            )
        if arr.ndim == len(expected) and tuple(arr.shape) == expected:
            return arr[None], False
        if arr.ndim == len(expected) + 1 and tuple(arr.shape[1:]) == expected:
            return arr, True
        raise ValueError(
            f"{name} has shape {tuple(arr.shape)}; expected {expected} or (t, *{expected}) for a time series"
        )

    @staticmethod
    def _nf(shape) -> int:
        """Number of rfft2 frequencies of an FFT grid (P_y, P_x)."""
        return shape[0] * (shape[1] // 2 + 1)

    def _per_depth_bytes(self, shape) -> int:
        """Temporaries of one depth and one frame in a projection on FFT grid ``shape`` (bytes)."""
        s2 = len(self.groups) * self.nph
        real = self.ntiles * shape[0] * shape[1] * self.dtype.itemsize
        cplx = self._nf(shape) * self.cdtype.itemsize * self.ntiles
        return s2 * (2 * real + 3 * cplx)

    def _plan_chunks(self) -> list[tuple[np.ndarray, tuple[int, int]]]:
        """Depth chunks (indices, FFT grid): depths of one grid together, temporaries and kernel
        spectra of a chunk under ``max_chunk_bytes``."""
        chunks = []
        for shape in sorted(set(self.fft_shapes)):
            depths = [iz for iz in range(self.nz) if self.fft_shapes[iz] == shape]
            spectra = self._nf(shape) * self.outputs * self.nph * self.cdtype.itemsize
            per_depth = max(self._per_depth_bytes(shape), spectra, 1)
            c = int(max(1, min(len(depths), self.max_chunk_bytes // per_depth)))
            chunks += [(np.array(depths[i: i + c]), shape) for i in range(0, len(depths), c)]
        return chunks

    def _frame_groups(self, t: int) -> list[tuple[int, int]]:
        """Frames processed together so that one chunk's temporaries stay under ``max_chunk_bytes``."""
        worst = max(len(idx) * self._per_depth_bytes(shape) for idx, shape in self._chunks)
        g = int(max(1, min(t, self.max_chunk_bytes // max(worst, 1))))
        return [(t0, min(t, t0 + g)) for t0 in range(0, t, g)]

    def _take(self, a, idx):
        """``a[:, idx]`` as a slice when the depths are consecutive (no copy)."""
        if len(idx) and idx[-1] - idx[0] == len(idx) - 1:
            return a[:, int(idx[0]): int(idx[-1]) + 1]
        return a[:, self.xp.asarray(idx)]

    def _tiles_from_grid(self, g, shape):
        """(..., L_y, L_x) lenslet-grid images -> (..., ny, nx, P_y, P_x) tile input windows."""
        xp = self.xp
        ly, lx = self.lenslets
        lead = g.shape[:-2]
        py, px = shape
        pad = xp.zeros((*lead, (self.ntiles_y - 1) * self.tile_y + py, (self.ntiles_x - 1) * self.tile_x + px),
                       dtype=self.dtype)
        pad[..., self.off_y: self.off_y + ly, self.off_x: self.off_x + lx] = g
        if self.ntiles == 1:
            return pad[..., None, None, :, :]
        out = xp.empty((*lead, self.ntiles_y, self.ntiles_x, py, px), dtype=self.dtype)
        for ky in range(self.ntiles_y):
            for kx in range(self.ntiles_x):
                y0, x0 = ky * self.tile_y, kx * self.tile_x
                out[..., ky, kx, :, :] = pad[..., y0: y0 + py, x0: x0 + px]
        return out

    def _grid_from_tiles(self, w, shape):
        """Transpose of ``_tiles_from_grid``: overlap-add tile windows back onto the lenslet grid."""
        xp = self.xp
        ly, lx = self.lenslets
        if self.ntiles == 1:
            pad = w[..., 0, 0, :, :]
        else:
            lead = w.shape[:-4]
            py, px = shape
            pad = xp.zeros((*lead, (self.ntiles_y - 1) * self.tile_y + py, (self.ntiles_x - 1) * self.tile_x + px),
                           dtype=self.dtype)
            for ky in range(self.ntiles_y):
                for kx in range(self.ntiles_x):
                    y0, x0 = ky * self.tile_y, kx * self.tile_x
                    pad[..., y0: y0 + py, x0: x0 + px] += w[..., ky, kx, :, :]
        return pad[..., self.off_y: self.off_y + ly, self.off_x: self.off_x + lx]

    # ---------------------------------------------------------------- projections
    def forward(self, volume):
        """Project a volume onto the sensor: ``y = H x``.

        Parameters
        ----------
        volume : array, (nz, L_y s, L_x s) or (t, nz, L_y s, L_x s)
            On the operator's device; cast to the operator's dtype.

        Returns
        -------
        image : array, (L_y N, L_x N) or (t, L_y N, L_x N)
        """
        x, batched = self._check(volume, self.volume_shape, "volume")
        x = x.astype(self.dtype, copy=False)
        groups = self._frame_groups(x.shape[0])
        if len(groups) == 1:
            img = self._forward(x)
        else:
            img = self.xp.empty((x.shape[0], *self.image_shape), dtype=self.dtype)
            for t0, t1 in groups:
                img[t0:t1] = self._forward(x[t0:t1])
        return img if batched else img[0]

    def adjoint(self, image):
        """Back-project an image: ``x = Hᵀ y`` (the exact transpose of ``forward``).

        Parameters
        ----------
        image : array, (L_y N, L_x N) or (t, L_y N, L_x N)
            On the operator's device; cast to the operator's dtype.

        Returns
        -------
        volume : array, (nz, L_y s, L_x s) or (t, nz, L_y s, L_x s)
        """
        y, batched = self._check(image, self.image_shape, "image")
        y = y.astype(self.dtype, copy=False)
        out = self.xp.empty((y.shape[0], *self.volume_shape), dtype=self.dtype)
        for t0, t1 in self._frame_groups(y.shape[0]):
            self._adjoint(y[t0:t1], out[t0:t1])
        return out if batched else out[0]

    def _forward(self, x):
        xp, s, n, nph = self.xp, self.s, self.n, self.nph
        t = x.shape[0]
        ly, lx = self.lenslets
        ng = len(self.groups)
        gt = ng * t
        ny, nx = self.ntiles_y, self.ntiles_x
        b = gt * self.ntiles
        acc = {}  # Fourier-space accumulator per FFT grid
        for (idx, shape), kh in zip(self._chunks, self._khat):
            c = len(idx)
            xc = self._take(x, idx)
            # each group element g sees the volume g⁻¹x; it handles its stored phases (masked)
            xg = xp.stack([self._to_frame(xc, g) for g in self.groups])  # (G, t, c, Y, X)
            ph = xg.reshape(ng, t, c, ly, s, lx, s).transpose(0, 1, 2, 4, 6, 3, 5)  # (G, t, c, a, b, Ly, Lx)
            if self._all_phases:
                ph = ph.reshape(gt, c, nph, ly, lx)
            else:
                ph = (ph[:, :, :, self._pa_dev, self._pb_dev] * self._masks).reshape(gt, c, nph, ly, lx)
            del xg, xc
            if self.ntiles == 1:  # (G t, c, phase, 1, 1, py, pxh), the padding's zero rows skipped
                xh = self._fft.rfft2_pad(ph, shape)[:, :, :, None, None]
            else:
                xh = self._fft.rfft2(self._tiles_from_grid(ph, shape))  # (G t, c, phase, ny, nx, py, pxh)
            del ph
            if self._single:  # (G t, c phase, f) . (c phase, f) -> (G t, f)
                part = backend.channel_sum(xh.reshape(gt, c * nph, self._nf(shape)), kh)
            else:
                xh = xh.transpose(5, 6, 1, 2, 0, 3, 4).reshape(self._nf(shape), c * nph, b)
                part = backend.matmul(kh, xh)  # per frequency: (N^2 x c nph) @ (c nph x groups*frames*tiles)
            del xh
            if shape in acc:
                acc[shape] += part
            else:
                acc[shape] = part
            del part
        out = None
        for (py, px), yhat in acc.items():
            # (fy, fx, uy, ux, G t, ny, nx) -> (G t, ny, nx, uy, ux, fy, fx) -> tiles -> images
            if self._single:
                yh = yhat.reshape(gt, 1, 1, 1, 1, py, px // 2 + 1)
            else:
                yh = yhat.reshape(py, px // 2 + 1, n, n, gt, ny, nx).transpose(4, 5, 6, 2, 3, 0, 1)
            if self.ntiles == 1:  # one tile starts at 0 (no overlap): only its rows are transformed along x
                w = self._fft.irfft2_crop(yh, (py, px), (self.tile_y, self.tile_x))
            else:
                w = self._fft.irfft2(yh, s=(py, px))
                w = w[..., self.off_y: self.off_y + self.tile_y, self.off_x: self.off_x + self.tile_x]
            del yh
            # (G t, ny, nx, uy, ux, qy, qx) -> (G t, ny, qy, uy, nx, qx, ux)
            img = w.transpose(0, 1, 5, 3, 2, 6, 4).reshape(ng, t, ny * self.tile_y * n, nx * self.tile_x * n)
            img = img[:, :, : ly * n, : lx * n]
            for gi in range(ng):
                term = self._from_frame(img[gi], self.groups[gi])
                if out is None:
                    out = xp.ascontiguousarray(term, dtype=self.dtype)
                else:
                    out += term
            del w, img
        acc.clear()
        return out

    def _image_spectra(self, y, shape):
        """conj rfft2 of the mirror-flipped images on FFT grid ``shape``: (F, G t tiles, N^2)."""
        xp, n = self.xp, self.n
        t = y.shape[0]
        ly, lx = self.lenslets
        ng = len(self.groups)
        gt = ng * t
        ny, nx, ty, tx = self.ntiles_y, self.ntiles_x, self.tile_y, self.tile_x
        py, px = shape
        full = xp.zeros((ng, t, ny * ty * n, nx * tx * n), dtype=self.dtype)
        for gi, g in enumerate(self.groups):
            full[gi, :, : ly * n, : lx * n] = self._to_frame(y, g)
        # (G t, ny, qy, uy, nx, qx, ux) -> (G t, ny, nx, uy, ux, qy, qx) in zero windows
        q = full.reshape(gt, ny, ty, n, nx, tx, n).transpose(0, 1, 4, 3, 6, 2, 5)
        if self.ntiles == 1:  # one tile at offset 0: the window is q zero-padded at the end
            yh = self._fft.rfft2_pad(q, shape)
            del full, q
        else:
            w = xp.zeros((gt, ny, nx, n, n, py, px), dtype=self.dtype)
            w[..., self.off_y: self.off_y + ty, self.off_x: self.off_x + tx] = q
            del full, q
            yh = self._fft.rfft2(w)  # (G t, ny, nx, uy, ux, fy, fx)
            del w
        if self._single:  # (G t, f), not conjugated (``_adjoint`` multiplies by conj K)
            return yh.reshape(gt, self._nf(shape))
        # rows = groups x frames x tiles: conj(X)ᵀ = conj(Y)ᵀ K, so K is never transposed or copied
        yh = xp.ascontiguousarray(yh.transpose(5, 6, 0, 1, 2, 3, 4)).reshape(self._nf(shape), -1, self.outputs)
        xp.conj(yh, out=yh)
        return yh

    def _adjoint(self, y, out):
        xp, s, nph = self.xp, self.s, self.nph
        t = y.shape[0]
        ly, lx = self.lenslets
        ng = len(self.groups)
        gt = ng * t
        ny, nx = self.ntiles_y, self.ntiles_x
        spectra = {}
        for (idx, shape), kh in zip(self._chunks, self._khat):
            c = len(idx)
            py, px = shape
            if shape not in spectra:
                spectra = {shape: self._image_spectra(y, shape)}  # chunks are grouped by grid
            if self._single:  # Y conj(K): (G t, f) x (c phase, f) -> (G t, c, phase, 1, 1, fy, fx)
                xh = backend.channel_outer(spectra[shape], xp.conj(kh)).reshape(gt, c, nph, 1, 1, py, px // 2 + 1)
            else:
                xh = backend.matmul(spectra[shape], kh)  # (f, b, c nph)
                xp.conj(xh, out=xh)
                # (fy, fx, G t, ny, nx, c, phase) -> (G t, c, phase, ny, nx, fy, fx)
                xh = xh.reshape(py, px // 2 + 1, gt, ny, nx, c, nph).transpose(2, 5, 6, 3, 4, 0, 1)
            if self.ntiles == 1:  # only the lenslet grid's rows and columns are kept
                win = self._fft.irfft2_crop(xh, (py, px), (ly, lx))
            else:
                win = self._fft.irfft2(xh, s=(py, px))
            del xh
            ph = self._grid_from_tiles(win, shape).reshape(ng, t, c, nph, ly, lx)
            del win
            if self._all_phases:
                acc = ph[0].reshape(t, c, s, s, ly, lx).transpose(0, 1, 4, 2, 5, 3).reshape(t, c, ly * s, lx * s)
            else:
                allph = xp.zeros((ng, t, c, s, s, ly, lx), dtype=self.dtype)
                allph[:, :, :, self._pa_dev, self._pb_dev] = ph * self._masks
                vol = allph.transpose(0, 1, 2, 5, 3, 6, 4).reshape(ng, t, c, ly * s, lx * s)
                del allph
                acc = xp.ascontiguousarray(self._from_frame(vol[0], self.groups[0]))
                for gi in range(1, ng):
                    acc += self._from_frame(vol[gi], self.groups[gi])
                del vol
            if len(idx) and idx[-1] - idx[0] == len(idx) - 1:
                out[:, int(idx[0]): int(idx[-1]) + 1] = acc
            else:
                out[:, xp.asarray(idx)] = acc
            del ph, acc

    def ones_adjoint(self):
        """Hᵀ1, the back-projection of a uniform image (RL's normaliser), shape ``volume_shape``."""
        return self.adjoint(self.xp.ones(self.image_shape, dtype=self.dtype))
