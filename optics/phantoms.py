"""Test volumes (phantoms) on a microscope's voxel grid: beads, neuron-like cells, resolution targets.

Every phantom is a float32 volume (z, y, x) on ``m.volume_shape`` or, with ``upsample=k``, on the
k-times finer lateral grid of ``fine_microscope(m, k)`` (simulate on the fine grid and reconstruct
on the coarse one to avoid the "inverse crime", Kaipio & Somersalo, J. Comput. Appl. Math. 198:493,
2007).  Randomness comes from an explicit seed or ``numpy.random.Generator``.

Coordinates (µm, object space) are image-oriented with the optical axis at the centre of the
middle lenslet (``optics.psfdata``): along an axis with L lenslets and s voxels per lenslet, voxel
index i has its centre at ``((i // s - L // 2) + ((i % s) - (s - 1) / 2) / s) * d / M``.
Positions are given as (x, y, z); z is a depth of the grid ``m.z_um`` (positive away from the
objective).

Photometric convention: a voxel's value is the *amount* of fluorophore in it (its emission rate),
not a density, so binning a fine volume (``bin_volume``) gives the coarse one and a bead of
``brightness`` b sums to b on any grid.  Extended objects (cells, bars) are normalised so that a
coarse voxel completely filled at unit density holds 1; a filled fine voxel holds 1 / k^2.
"""

from __future__ import annotations

import math

import numpy as np

from .config import Microscope

__all__ = [
    "beads",
    "random_beads",
    "neurons",
    "resolution_target",
    "voxel_centres_um",
    "fine_microscope",
    "bin_volume",
    "grid_shape",
]

_AXES = {"z": 0, "y": 1, "x": 2}


# ---------------------------------------------------------------------------------------- grid
def _check_microscope(m) -> Microscope:
    if not isinstance(m, Microscope):
        raise TypeError(f"m = {type(m).__name__} is invalid: expected an optics.Microscope")
    return m


def _check_upsample(upsample) -> int:
    if isinstance(upsample, bool) or not isinstance(upsample, (int, np.integer)) or upsample < 1:
        raise ValueError(f"upsample = {upsample!r} is invalid: expected an integer >= 1")
    return int(upsample)


def _rng(seed) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed = {seed!r} is invalid: expected an int or a numpy.random.Generator")
    return np.random.default_rng(int(seed))


def grid_shape(m: Microscope, upsample: int = 1) -> tuple[int, int, int]:
    """Shape (z, y, x) of the phantom grid: ``m.volume_shape`` with x and y multiplied by ``upsample``."""
    k = _check_upsample(upsample)
    nz, ny, nx = _check_microscope(m).volume_shape
    return (nz, ny * k, nx * k)


def voxel_centres_um(m: Microscope, axis: str, upsample: int = 1) -> np.ndarray:
    """Voxel centre coordinates (µm) along ``axis`` ("x", "y" or "z") of the (upsampled) grid.

    Lateral: ``((i // s' - L // 2) + ((i % s') - (s' - 1) / 2) / s') * d / M`` with s' = s * upsample;
    axial: ``m.z_um``.
    """
    _check_microscope(m)
    k = _check_upsample(upsample)
    if axis not in _AXES:
        raise ValueError(f"axis = {axis!r} is invalid: expected 'x', 'y' or 'z'")
    if axis == "z":
        return m.z_um.copy()
    n_len = m.n_lenslets[_AXES[axis] - 1]
    s = m.voxels_per_lenslet * k
    i = np.arange(n_len * s)
    return ((i // s - n_len // 2) + ((i % s) - (s - 1) / 2) / s) * m.lenslet_pitch_object_um


def _fractional_index(m: Microscope, axis: str, coord_um: np.ndarray, upsample: int) -> np.ndarray:
    """Inverse of ``voxel_centres_um``: continuous voxel index of a coordinate."""
    if axis == "z":
        return (coord_um - m.volume.z_min_um) / m.volume.z_step_um
    n_len = m.n_lenslets[_AXES[axis] - 1]
    s = m.voxels_per_lenslet * upsample
    return (coord_um / m.lenslet_pitch_object_um + n_len // 2 + 0.5) * s - 0.5


def _extent_um(m: Microscope, axis: str, upsample: int = 1) -> tuple[float, float]:
    """Outer edges (µm) of the grid along ``axis`` (half a voxel beyond the first and last centres)."""
    c = voxel_centres_um(m, axis, upsample)
    half = (m.volume.z_step_um if axis == "z" else m.voxel_um / upsample) / 2
    return float(c[0] - half), float(c[-1] + half)


def fine_microscope(m: Microscope, upsample: int) -> Microscope:
    """``m`` with ``upsample`` times more voxels per lenslet: the grid of ``upsample=k`` phantoms."""
    k = _check_upsample(upsample)
    s = _check_microscope(m).voxels_per_lenslet * k
    most = m.pixels_per_lenslet * m.scan_steps  # a scanning LFM samples each lenslet K times per view
    if s > most:
        raise ValueError(
            f"upsample = {k} is invalid: {m.voxels_per_lenslet} x {k} = {s} voxels per lenslet exceeds "
            f"the {most} {'pixels per lenslet' if m.scan_steps == 1 else 'pixels per lenslet x scan.steps'}; "
            f"expected upsample <= {most // m.voxels_per_lenslet}"
        )
    return m if k == 1 else m.replace(volume={"voxels_per_lenslet": s})


def bin_volume(volume: np.ndarray, upsample: int) -> np.ndarray:
    """Sum ``upsample`` x ``upsample`` lateral blocks: a fine phantom on the coarse grid (amounts add)."""
    k = _check_upsample(upsample)
    v = np.asarray(volume)
    if v.ndim != 3 or v.shape[1] % k or v.shape[2] % k:
        raise ValueError(f"volume has shape {v.shape}; expected (z, y, x) with y and x multiples of {k}")
    nz, ny, nx = v.shape
    return v.reshape(nz, ny // k, k, nx // k, k).sum(axis=(2, 4)).astype(v.dtype, copy=False)


def _deposit(shape, fidx: np.ndarray, amounts: np.ndarray, interpolation: str) -> np.ndarray:
    """Add point ``amounts`` at fractional voxel indices ``fidx`` (n, 3 as z, y, x) to a new volume.

    "nearest" puts each amount on the nearest voxel; "linear" splits it trilinearly between the 8
    neighbours (indices clipped to the grid, so points within half a voxel of an edge stay inside).
    Points outside the grid are the caller's business: here they are dropped.
    """
    out = np.zeros(int(np.prod(shape)), dtype=np.float64)
    dims = np.array(shape)
    if interpolation == "nearest":
        idx = np.rint(fidx).astype(np.int64)
        ok = np.all((idx >= 0) & (idx < dims), axis=1)
        flat = np.ravel_multi_index(tuple(idx[ok].T), shape)
        out += np.bincount(flat, weights=amounts[ok], minlength=out.size)
    elif interpolation == "linear":
        f = np.clip(fidx, 0, dims - 1)
        i0 = np.floor(f).astype(np.int64)
        w1 = f - i0
        i1 = np.minimum(i0 + 1, dims - 1)
        for corner in range(8):
            bits = [(corner >> ax) & 1 for ax in range(3)]
            idx = np.stack([i1[:, ax] if bit else i0[:, ax] for ax, bit in enumerate(bits)], axis=1)
            w = np.prod([w1[:, ax] if bit else 1 - w1[:, ax] for ax, bit in enumerate(bits)], axis=0)
            flat = np.ravel_multi_index(tuple(idx.T), shape)
            out += np.bincount(flat, weights=amounts * w, minlength=out.size)
    else:
        raise ValueError(f"interpolation = {interpolation!r} is invalid: expected 'nearest' or 'linear'")
    return out.reshape(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------- beads
def beads(
    m: Microscope,
    positions_um,
    *,
    brightness=1.0,
    upsample: int = 1,
    interpolation: str = "nearest",
) -> np.ndarray:
    """Point sources (sub-resolution beads) at given positions.

    Parameters
    ----------
    m : Microscope
        Gives the grid (``m.volume_shape``, ``m.voxel_um``, ``m.z_um``).
    positions_um : array_like, (n, 3)
        Bead positions (x, y, z) in µm, object space, image-oriented, optical axis at the centre
        of the middle lenslet.  They must lie inside the grid (within half a voxel of the outer
        voxel centres).
    brightness : float or array_like (n,)
        Amount of each bead (>= 0); the volume sums to ``sum(brightness)``.
    upsample : int
        Lateral refinement of the grid (see ``fine_microscope``).
    interpolation : {"nearest", "linear"}
        Put each bead on its nearest voxel, or split it trilinearly between its 8 neighbours.

    Returns
    -------
    ndarray of float32, ``grid_shape(m, upsample)``
    """
    _check_microscope(m)
    k = _check_upsample(upsample)
    if interpolation not in ("nearest", "linear"):
        raise ValueError(f"interpolation = {interpolation!r} is invalid: expected 'nearest' or 'linear'")
    pos = np.asarray(positions_um, dtype=np.float64)
    if pos.ndim == 1 and pos.size == 3:
        pos = pos[None]
    if pos.ndim != 2 or pos.shape[1] != 3:
        raise ValueError(f"positions_um has shape {pos.shape}; expected (n, 3) rows of (x, y, z) in µm")
    if not np.all(np.isfinite(pos)):
        raise ValueError("positions_um has non-finite values; expected finite (x, y, z) in µm")
    bright = np.broadcast_to(np.asarray(brightness, dtype=np.float64), (len(pos),)) if np.ndim(brightness) == 0 else np.asarray(brightness, dtype=np.float64)
    if bright.shape != (len(pos),):
        raise ValueError(f"brightness has shape {bright.shape}; expected a number or ({len(pos)},), one per bead")
    if not np.all(np.isfinite(bright)) or np.any(bright < 0):
        raise ValueError("brightness has negative or non-finite values; expected finite values >= 0")
    for col, axis in enumerate("xyz"):
        lo, hi = _extent_um(m, axis, k)
        bad = np.flatnonzero((pos[:, col] < lo) | (pos[:, col] > hi))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"positions_um[{i}] = {tuple(float(v) for v in pos[i])} is outside the volume: "
                f"{axis} must lie in [{lo:.4g}, {hi:.4g}] µm"
            )
    fidx = np.stack(
        [_fractional_index(m, "z", pos[:, 2], k), _fractional_index(m, "y", pos[:, 1], k),
         _fractional_index(m, "x", pos[:, 0], k)],
        axis=1,
    )
    return _deposit(grid_shape(m, k), fidx, bright, interpolation)


def random_beads(
    m: Microscope,
    n: int,
    *,
    seed,
    margin_um: float | None = None,
    brightness: float = 1.0,
    upsample: int = 1,
    interpolation: str = "nearest",
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` beads at random positions, uniform laterally and over the depths of the grid.

    Parameters
    ----------
    m : Microscope
    n : int
        Number of beads (>= 0).
    seed : int or numpy.random.Generator
        Source of randomness (reproducible).
    margin_um : float, optional
        Keep beads this far (µm) from the lateral edges of the field; default one object-space
        lenslet pitch d / M (one camera pixel for wide-field).
    brightness : float
        Amount of each bead.
    upsample : int
        Lateral refinement of the grid.
    interpolation : {"nearest", "linear"}
        With "nearest" the returned positions are snapped to the voxel centres the beads sit on.

    Returns
    -------
    volume : ndarray of float32, ``grid_shape(m, upsample)``
    positions_um : ndarray (n, 3)
        Bead centres (x, y, z) in µm; z is one of ``m.z_um``.
    """
    _check_microscope(m)
    k = _check_upsample(upsample)
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n = {n!r} is invalid: expected an integer >= 0")
    rng = _rng(seed)
    if margin_um is None:
        margin_um = m.lenslet_pitch_object_um if m.mla is not None else m.pixel_object_um
    if not np.isfinite(margin_um) or margin_um < 0:
        raise ValueError(f"margin_um = {margin_um!r} is invalid: expected a number >= 0")
    xy = []
    for axis in ("x", "y"):
        c = voxel_centres_um(m, axis, k)
        lo, hi = c[0] + margin_um, c[-1] - margin_um
        if lo > hi:
            raise ValueError(
                f"margin_um = {margin_um} is invalid: it leaves no room along {axis} "
                f"(the field spans {c[0]:.4g}..{c[-1]:.4g} µm); expected < {(c[-1] - c[0]) / 2:.4g}"
            )
        xy.append(rng.uniform(lo, hi, size=n))
    z = rng.choice(m.z_um, size=n)
    pos = np.stack([xy[0], xy[1], z], axis=1)
    if interpolation == "nearest":
        for col, axis in enumerate("xy"):
            c = voxel_centres_um(m, axis, k)
            pos[:, col] = c[np.rint(_fractional_index(m, axis, pos[:, col], k)).astype(int)]
    return beads(m, pos, brightness=brightness, upsample=k, interpolation=interpolation), pos


# ---------------------------------------------------------------------------------------- cells
def _grid_step_um(m: Microscope, k: int) -> np.ndarray:
    return np.array([m.volume.z_step_um, m.voxel_um / k, m.voxel_um / k])


def _points_to_fidx(m: Microscope, pts_xyz: np.ndarray, k: int) -> np.ndarray:
    return np.stack(
        [_fractional_index(m, "z", pts_xyz[:, 2], k), _fractional_index(m, "y", pts_xyz[:, 1], k),
         _fractional_index(m, "x", pts_xyz[:, 0], k)],
        axis=1,
    )


def neurons(
    m: Microscope,
    n_cells: int,
    *,
    seed,
    upsample: int = 1,
    soma_diameter_um: tuple[float, float] = (8.0, 12.0),
    n_processes: tuple[int, int] = (2, 5),
    process_length_um: tuple[float, float] = (15.0, 40.0),
    process_radius_um: float = 0.75,
    soma_brightness: float = 1.0,
    process_brightness: float = 0.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Neuron-like cells: spherical somata with a few thin processes (random-walk tubes).

    Each soma is a ball with a diameter drawn uniformly from ``soma_diameter_um``; it sprouts
    ``n_processes`` processes, persistent random walks (1 µm steps, direction diffusing by
    ~0.3 rad per step, axial component damped by 2 so processes stay near their soma's plane)
    of tubes of radius ``process_radius_um``.  Structures are rendered by point sampling finer
    than the grid (somata: a regular grid of sub-voxel cells of at most 0.5 µm; processes:
    Monte-Carlo points in the tube): each point carries its share of fluorophore and lands in its
    voxel, so a voxel holds (filled fraction) x (density).

    Parameters
    ----------
    m : Microscope
    n_cells : int
        Number of cells (>= 0); soma centres uniform in the volume (continuous z).
    seed : int or numpy.random.Generator
    upsample : int
        Lateral refinement of the grid.
    soma_diameter_um, n_processes, process_length_um : (low, high)
        Ranges of the uniform draws.
    process_radius_um : float
        Tube radius of the processes (µm).
    soma_brightness, process_brightness : float
        Fluorophore density of soma and processes: a coarse voxel filled at density 1 holds 1.

    Returns
    -------
    volume : ndarray of float32, ``grid_shape(m, upsample)``
    centres_um : ndarray (n_cells, 3)
        Soma centres (x, y, z), µm.
    """
    _check_microscope(m)
    k = _check_upsample(upsample)
    if isinstance(n_cells, bool) or not isinstance(n_cells, (int, np.integer)) or n_cells < 0:
        raise ValueError(f"n_cells = {n_cells!r} is invalid: expected an integer >= 0")
    for name, rng_ in (("soma_diameter_um", soma_diameter_um), ("process_length_um", process_length_um),
                       ("n_processes", n_processes)):
        if len(rng_) != 2 or not 0 <= rng_[0] <= rng_[1]:
            raise ValueError(f"{name} = {rng_!r} is invalid: expected (low, high) with 0 <= low <= high")
    for name, val in (("process_radius_um", process_radius_um), ("soma_brightness", soma_brightness),
                      ("process_brightness", process_brightness)):
        if not np.isfinite(val) or val < 0:
            raise ValueError(f"{name} = {val!r} is invalid: expected a number >= 0")
    rng = _rng(seed)
    shape = grid_shape(m, k)
    base_voxel_volume = float(np.prod(_grid_step_um(m, 1)))  # coarse voxel, µm^3
    fine = _grid_step_um(m, k)
    # sub-voxel sampling cells: at most 0.5 µm, at most 16 per voxel along an axis
    n_sub = np.minimum(16, np.maximum(1, np.ceil(fine / 0.5))).astype(int)
    cell = fine / n_sub  # (z, y, x) µm
    lo = np.array([_extent_um(m, a, k)[0] for a in "xyz"])
    hi = np.array([_extent_um(m, a, k)[1] for a in "xyz"])
    centres = rng.uniform(lo, hi, size=(n_cells, 3))
    diameters = rng.uniform(*soma_diameter_um, size=n_cells)
    h_tube = float(min(0.5, fine[1] / 2))
    pts, amts = [], []
    for c, dia in zip(centres, diameters):
        r = dia / 2
        p = _ball_points(c, r, lo, cell[::-1])
        pts.append(p)
        amts.append(np.full(len(p), soma_brightness * float(np.prod(cell)) / base_voxel_volume))
        for _ in range(int(rng.integers(n_processes[0], n_processes[1] + 1))):
            path = _random_walk(rng, c, r, rng.uniform(*process_length_um))
            p, a = _tube_points(rng, path, process_radius_um, h_tube)
            pts.append(p)
            amts.append(a * process_brightness / base_voxel_volume)
    if not pts:
        return np.zeros(shape, np.float32), centres
    p = np.concatenate(pts)
    a = np.concatenate(amts)
    fidx = _points_to_fidx(m, p, k)
    return _deposit(shape, fidx, a, "nearest"), centres


def _ball_points(centre: np.ndarray, radius: float, origin: np.ndarray, cell: np.ndarray) -> np.ndarray:
    """Centres (x, y, z) of the sampling cells (a grid of spacing ``cell`` from ``origin``) inside a ball."""
    axes = []
    for ax in range(3):
        j0 = int(np.floor((centre[ax] - radius - origin[ax]) / cell[ax]))
        j1 = int(np.ceil((centre[ax] + radius - origin[ax]) / cell[ax]))
        axes.append(origin[ax] + (np.arange(j0, j1 + 1) + 0.5) * cell[ax])
    gx, gy, gz = np.meshgrid(*axes, indexing="ij")
    inside = (gx - centre[0]) ** 2 + (gy - centre[1]) ** 2 + (gz - centre[2]) ** 2 <= radius * radius
    return np.stack([gx[inside], gy[inside], gz[inside]], axis=1)


def _random_walk(rng: np.random.Generator, centre: np.ndarray, radius: float, length: float) -> np.ndarray:
    """Persistent random walk (1 µm steps) from the soma surface outwards; (n, 3) points (x, y, z)."""
    d = rng.standard_normal(3) * np.array([1.0, 1.0, 0.5])
    d /= np.linalg.norm(d)
    p = centre + radius * d
    out = [p]
    for _ in range(max(1, int(round(length)))):
        d = d + 0.3 * rng.standard_normal(3)
        d[2] *= 0.5
        d /= np.linalg.norm(d)
        p = p + d
        out.append(p)
    return np.array(out)


def _tube_points(rng: np.random.Generator, path: np.ndarray, radius: float, h: float):
    """Monte-Carlo points filling a tube of ``radius`` around ``path``; returns (points, volumes µm^3)."""
    seg = np.diff(path, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    n_per = np.maximum(1, np.ceil(seg_len / h).astype(int))
    t = np.concatenate([(np.arange(n) + 0.5) / n for n in n_per])
    which = np.repeat(np.arange(len(seg)), n_per)
    centres = path[which] + t[:, None] * seg[which]
    ds = np.repeat(seg_len / n_per, n_per)
    per = 8  # points per cross-section
    offs = rng.standard_normal((len(centres), per, 3))
    offs *= (radius * rng.random((len(centres), per, 1)) ** (1 / 3)) / np.linalg.norm(offs, axis=2, keepdims=True)
    pts = (centres[:, None, :] + offs).reshape(-1, 3)
    vol = np.repeat(math.pi * radius**2 * ds / per, per)
    return pts, vol


# ---------------------------------------------------------------------------------------- target
def resolution_target(
    m: Microscope,
    *,
    separations_um=None,
    depths_um=None,
    kind: str = "bars",
    bar_length_um: float | None = None,
    brightness: float = 1.0,
    upsample: int = 1,
) -> tuple[np.ndarray, list[dict]]:
    """A 3-D resolution target: pairs of parallel bars (or points) at several separations and depths.

    At each depth the pairs are stacked along y, one row per separation (smallest at the top),
    each pair centred on x = 0 with its two members at x = -sep/2 and +sep/2; bars run along y.
    Members are split linearly between neighbouring columns, so separations need not be multiples
    of the voxel.

    Parameters
    ----------
    m : Microscope
    separations_um : sequence of float, optional
        Default: 5 values, geometric from max(voxel, 0.5 lambda/NA) to max(4 x that, 2 d / M).
    depths_um : sequence of float, optional
        Depths of the grid (each must be one of ``m.z_um``); default up to 5 evenly spread ones.
    kind : {"bars", "points"}
    bar_length_um : float, optional
        Default 60% of the row height.
    brightness : float
        Bars: amount per µm of length x (voxel size); points: amount of each point.
    upsample : int
        Lateral refinement of the grid.

    Returns
    -------
    volume : ndarray of float32, ``grid_shape(m, upsample)``
    features : list of dict
        One per pair: ``z_um``, ``separation_um``, ``x_um`` (the two members), ``y_um`` (centre
        row of a pair of points, or the (start, end) of bars).
    """
    _check_microscope(m)
    k = _check_upsample(upsample)
    if kind not in ("bars", "points"):
        raise ValueError(f"kind = {kind!r} is invalid: expected 'bars' or 'points'")
    if separations_um is None:
        r_min = max(m.voxel_um, 0.5 * m.wavelength_um / m.objective.na)
        separations_um = np.geomspace(r_min, max(4 * r_min, 2 * m.lenslet_pitch_object_um), 5)
    seps = np.sort(np.atleast_1d(np.asarray(separations_um, dtype=np.float64)))
    if seps.size == 0 or not np.all(np.isfinite(seps)) or seps.min() <= 0:
        raise ValueError(f"separations_um = {separations_um!r} is invalid: expected positive numbers")
    z_grid = m.z_um
    if depths_um is None:
        depths = z_grid[np.unique(np.linspace(0, len(z_grid) - 1, min(5, len(z_grid))).round().astype(int))]
    else:
        depths = np.atleast_1d(np.asarray(depths_um, dtype=np.float64))
        for d in depths:
            if not np.any(np.isclose(z_grid, d, atol=1e-9 * max(1.0, abs(d)))):
                raise ValueError(f"depths_um contains {d}; expected depths of the grid m.z_um = {list(z_grid)}")
    x_lo, x_hi = _extent_um(m, "x", k)
    y_lo, y_hi = _extent_um(m, "y", k)
    if seps.max() > 0.8 * (x_hi - x_lo):
        raise ValueError(
            f"separations_um has {seps.max():.4g} µm; expected at most 80% of the field width "
            f"({x_hi - x_lo:.4g} µm)"
        )
    row = (y_hi - y_lo) / len(seps)
    length = 0.6 * row if bar_length_um is None else float(bar_length_um)
    if not 0 < length <= row:
        raise ValueError(f"bar_length_um = {bar_length_um!r} is invalid: expected 0 < length <= {row:.4g} µm (the row height)")
    step_y = m.voxel_um / k / 4
    pts, amts, features = [], [], []
    for z in depths:
        for i, sep in enumerate(seps):
            yc = y_lo + (i + 0.5) * row
            xs = (-float(sep) / 2, float(sep) / 2)
            if kind == "points":
                ys = np.array([yc])
                amount = np.array([brightness])
                features.append({"z_um": float(z), "separation_um": float(sep), "x_um": xs, "y_um": float(yc)})
            else:
                n_y = max(1, int(math.ceil(length / step_y)))
                ys = yc - length / 2 + (np.arange(n_y) + 0.5) * length / n_y
                amount = np.full(n_y, brightness * (length / n_y) / m.voxel_um)
                features.append({"z_um": float(z), "separation_um": float(sep), "x_um": xs,
                                 "y_um": (float(yc - length / 2), float(yc + length / 2))})
            for x in xs:
                pts.append(np.stack([np.full(len(ys), x), ys, np.full(len(ys), z)], axis=1))
                amts.append(amount)
    p = np.concatenate(pts)
    a = np.concatenate(amts)
    fidx = _points_to_fidx(m, p, k)
    fidx[:, 0] = np.rint(fidx[:, 0])  # exactly on grid planes
    fidx[:, 1] = np.rint(fidx[:, 1]) if kind == "bars" else fidx[:, 1]
    return _deposit(grid_shape(m, k), fidx, a, "linear"), features
