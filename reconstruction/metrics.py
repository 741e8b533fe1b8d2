"""Measurements on reconstructed volumes: widths, two-point resolution, depth range, localisation, errors.

Pure measurement, no physics constants: FWHM with sub-sample (cubic-spline) interpolation, the
Sparrow two-point test (two spots are resolved when their summed profile has a local minimum
between them, the discrete form of "second derivative at the midpoint >= 0"; Sparrow, Astrophys.
J. 44:76, 1916), the smallest resolved separation of a sweep, the usable depth range of a
resolution-vs-depth curve, bead localisation error and normalised RMS error.  Arrays are NumPy
(move GPU results to the host first); lengths are in the caller's units (µm in lfmsim).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

__all__ = [
    "fwhm",
    "fwhm_3d",
    "sparrow_resolved",
    "two_point_resolution",
    "RESOLVED_FRACTION",
    "fraction_resolved",
    "repeat_spread",
    "DepthRange",
    "usable_depth_range",
    "localization_error",
    "nrmse",
    "peak_positions",
]


def _profile(profile, name: str = "profile") -> np.ndarray:
    p = np.asarray(profile, dtype=np.float64)
    if p.ndim != 1 or p.size < 3:
        raise ValueError(f"{name} has shape {p.shape}; expected a 1-D array of at least 3 samples")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} contains non-finite values; expected finite samples")
    return p


def _spline(p: np.ndarray):
    from scipy.interpolate import CubicSpline

    return CubicSpline(np.arange(p.size, dtype=np.float64), p, bc_type="natural")


def _refine_peak(s, p: np.ndarray, i: int) -> tuple[float, float]:
    """Sub-sample maximum near sample ``i``: (position, value).

    A log-parabola (Gaussian) through the three samples around the maximum when they are positive
    and it is concave with its vertex within half a sample and its peak at most 1.25x the largest
    sample (exact for a sampled Gaussian of sigma >= 0.75 samples, which a cubic spline
    underestimates when the peak falls between two coarse samples); otherwise the spline's maximum.
    """
    from scipy.optimize import minimize_scalar

    lo, hi = max(0, i - 1), min(p.size - 1, i + 1)
    if hi - lo < 2:
        return float(i), float(p[i])
    a, b, c = p[i - 1], p[i], p[i + 1]
    if a > 0 and b > 0 and c > 0:
        la, lb, lc = math.log(a), math.log(b), math.log(c)
        curv = la - 2 * lb + lc
        if curv < 0:
            dx = 0.5 * (la - lc) / curv
            peak = math.exp(lb - 0.25 * (la - lc) * dx)
            # a Gaussian of sigma >= 0.75 samples peaks at most 1.25x above its best sample; a larger
            # value means the peak is not Gaussian-shaped (e.g. a sharp edge): use the spline
            if abs(dx) <= 0.5 and peak <= 1.25 * b:
                return float(i + dx), float(peak)
    r = minimize_scalar(lambda x: -s(x), bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    if -r.fun >= p[i]:
        return float(r.x), float(-r.fun)
    return float(i), float(p[i])


def fwhm(profile, spacing: float = 1.0, *, baseline: float = 0.0) -> float:
    """Full width at half maximum of the highest peak of a sampled 1-D profile.

    The peak value is refined between samples (a log-parabola through the three highest samples,
    else the spline's maximum) and the half-maximum crossings on each side are found by
    root-finding on a local cubic through log(p) (exact on Gaussian flanks; the natural cubic
    spline of p where samples are not positive) between the bracketing samples.

    Parameters
    ----------
    profile : array_like, (n,)
        Samples, uniformly spaced.
    spacing : float
        Sample spacing (e.g. µm); the width is returned in the same unit.
    baseline : float
        Level subtracted before taking half of the maximum (default 0).

    Returns
    -------
    float
        The FWHM, or nan when the profile does not fall below half maximum on both sides.
    """
    p = _profile(profile) - float(baseline)
    if not (isinstance(spacing, (int, float, np.floating)) and spacing > 0 and math.isfinite(spacing)):
        raise ValueError(f"spacing = {spacing!r} is invalid; expected a finite number > 0")
    i = int(np.argmax(p))
    if p[i] <= 0:
        return math.nan
    s = _spline(p)
    x0, peak = _refine_peak(s, p, i)
    half = peak / 2
    below = np.nonzero(p[:i] < half)[0]
    above = np.nonzero(p[i + 1:] < half)[0]
    if below.size == 0 or above.size == 0:
        return math.nan
    jl = int(below[-1])
    jr = i + 1 + int(above[0])
    left = _crossing(p, s, jl, half)
    right = _crossing(p, s, jr - 1, half)
    if not left <= x0 <= right:
        return math.nan
    return float((right - left) * spacing)


def _crossing(p: np.ndarray, s, j: int, level: float) -> float:
    """Position in [j, j+1] where the profile crosses ``level``.

    Cubic (Lagrange) interpolation of log(p) through the four samples around the bracket when
    they are positive (exact for Gaussian flanks, whose log is a parabola); otherwise the natural
    cubic spline ``s`` of p; linear interpolation as the last resort.
    """
    from scipy.optimize import brentq

    lo, hi = max(0, j - 1), min(p.size - 1, j + 2)
    xs = np.arange(lo, hi + 1, dtype=np.float64)
    ys = p[lo:hi + 1]
    if ys.size >= 3 and np.all(ys > 0):
        coef = np.polyfit(xs - j, np.log(ys), ys.size - 1)
        g = lambda x: float(np.polyval(coef, x - j)) - math.log(level)
    else:
        g = lambda x: float(s(x)) - level
    if g(j) * g(j + 1) <= 0:
        return float(brentq(g, j, j + 1, xtol=1e-12))
    return float(j + (level - p[j]) / (p[j + 1] - p[j]))


def fwhm_3d(volume, center=None, voxel_um=(1.0, 1.0, 1.0)) -> dict:
    """Lateral and axial FWHM of a blob in a (z, y, x) volume, from line profiles through ``center``.

    Parameters
    ----------
    volume : array_like, (nz, ny, nx)
    center : (iz, iy, ix) ints, optional
        Voxel of the blob; default the brightest voxel.
    voxel_um : (dz, dy, dx) or (dz, dxy)
        Voxel size per axis.

    Returns
    -------
    dict with ``lateral_um`` (mean of y and x; nan if either is nan), ``y_um``, ``x_um``,
    ``axial_um`` (nan when the volume has fewer than 3 planes) and ``center``.
    """
    v = np.asarray(volume, dtype=np.float64)
    if v.ndim != 3:
        raise ValueError(f"volume has shape {v.shape}; expected (z, y, x)")
    vox = tuple(float(x) for x in np.atleast_1d(voxel_um))
    if len(vox) == 2:
        vox = (vox[0], vox[1], vox[1])
    if len(vox) != 3 or min(vox) <= 0:
        raise ValueError(f"voxel_um = {voxel_um!r} is invalid; expected (dz, dy, dx) or (dz, dxy), all > 0")
    if center is None:
        center = np.unravel_index(int(np.argmax(v)), v.shape)
    c = tuple(int(i) for i in center)
    if len(c) != 3 or any(not 0 <= ci < n for ci, n in zip(c, v.shape)):
        raise ValueError(f"center = {center!r} is invalid; expected (iz, iy, ix) inside shape {v.shape}")
    iz, iy, ix = c
    wy = fwhm(v[iz, :, ix], vox[1]) if v.shape[1] >= 3 else math.nan
    wx = fwhm(v[iz, iy, :], vox[2]) if v.shape[2] >= 3 else math.nan
    wz = fwhm(v[:, iy, ix], vox[0]) if v.shape[0] >= 3 else math.nan
    lat = 0.5 * (wy + wx) if math.isfinite(wy) and math.isfinite(wx) else math.nan
    return {"lateral_um": lat, "y_um": wy, "x_um": wx, "axial_um": wz, "center": c}


def sparrow_resolved(profile, left: float | None = None, right: float | None = None, *,
                     min_dip: float = 0.0) -> bool:
    """Whether a 1-D profile through two spots shows them resolved (Sparrow criterion).

    Definition: the natural cubic spline through the samples has a local minimum in the middle
    half between the two spot positions ``left`` < ``right`` (sample coordinates, floats allowed;
    |x - midpoint| <= (right - left) / 4) whose value is below the lower of the two maxima on
    either side of it by more than ``min_dip`` times that maximum, and those maxima lie within
    max(sep/4, 1 sample) of the pair (the peaks of two unimodal spots are pulled inwards, never
    outwards).  The last two conditions keep overlapping spots with dark centres (defocused
    rings, whose interiors form a bowl between them) from counting as resolved.  With ``min_dip = 0`` this is Sparrow's limit (the summed
    profile is no longer flat or peaked at the midpoint); a small positive ``min_dip`` makes the
    test robust to noise.  The maxima are searched up to half a separation outside the pair.
    Default positions: the two highest local maxima of the profile.
    """
    from scipy.signal import argrelmax

    p = _profile(profile)
    if not 0 <= min_dip < 1:
        raise ValueError(f"min_dip = {min_dip!r} is invalid; expected 0 <= min_dip < 1")
    if left is None or right is None:
        peaks = argrelmax(p)[0]
        if peaks.size < 2:
            return False
        top = np.sort(peaks[np.argsort(p[peaks])[-2:]])
        left, right = float(top[0]), float(top[1])
    left, right = float(left), float(right)
    if not (0 <= left < right <= p.size - 1):
        raise ValueError(f"left, right = {left!r}, {right!r} are invalid; expected 0 <= left < right <= {p.size - 1}")
    s = _spline(p)
    sep = right - left
    grid = np.linspace(left, right, max(65, int(32 * sep) + 1))
    vals = s(grid)
    interior = np.nonzero((vals[1:-1] < vals[:-2]) & (vals[1:-1] <= vals[2:]))[0] + 1
    mid = 0.5 * (left + right)
    interior = interior[np.abs(grid[interior] - mid) <= sep / 4]
    tol = max(0.25 * sep, 1.0)
    for k in interior:  # each local minimum of the spline in the middle half between the spots
        x_min, v_min = grid[k], vals[k]
        lg = np.linspace(max(0.0, left - sep / 2), x_min, 129)
        rg = np.linspace(x_min, min(p.size - 1.0, right + sep / 2), 129)
        sl, sr = s(lg), s(rg)
        if lg[int(np.argmax(sl))] < left - tol or rg[int(np.argmax(sr))] > right + tol:
            continue  # the flanking maxima lie outside the pair (rings of dark-centred spots)
        peak = min(float(np.max(sl)), float(np.max(sr)))
        if peak > 0 and v_min < peak * (1 - min_dip) - 1e-12 * abs(peak):
            return True
    return False  # no interior minimum: monotone or single-peaked between the spots


def two_point_resolution(separations, resolved) -> float:
    """Smallest separation of a sweep from which on all larger separations are resolved.

    Parameters
    ----------
    separations : array_like
        Tested separations (any order).
    resolved : array_like of bool
        The outcome of the two-point test at each separation.

    Returns
    -------
    float
        min{s_i : resolved at every s_j >= s_i}; nan when the largest separation is not resolved.
        (When the smallest tested separation is resolved the true limit may be lower: an upper bound.)
    """
    s = np.asarray(separations, dtype=np.float64).reshape(-1)
    r = np.asarray(resolved, dtype=bool).reshape(-1)
    if s.size == 0 or s.shape != r.shape:
        raise ValueError(f"separations ({s.size}) and resolved ({r.size}) must be non-empty and of equal length")
    order = np.argsort(s)
    s, r = s[order], r[order]
    if not r[-1]:
        return math.nan
    k = s.size - 1
    while k > 0 and r[k - 1]:
        k -= 1
    return float(s[k])


#: A separation counts as resolved when at least this fraction of the repeats resolve it.
RESOLVED_FRACTION = 2.0 / 3.0


def fraction_resolved(resolved, fraction: float = RESOLVED_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Two-point decision over repeats: (fraction of repeats resolved, decision = fraction >= ``fraction``).

    ``resolved`` is a (repeats, separations) boolean array, one row per independent realisation.
    With monotone outcomes (each repeat resolves every separation above its own threshold) and
    three repeats, the smallest separation from which on all decisions are True
    (``two_point_resolution``) is the median of the per-repeat thresholds.
    """
    r = np.asarray(resolved, dtype=bool)
    if r.ndim != 2 or r.size == 0:
        raise ValueError(f"resolved has shape {r.shape}; expected a non-empty (repeats, separations) array")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction = {fraction!r} is invalid; expected 0 < fraction <= 1")
    frac = r.mean(axis=0)
    return frac, frac >= fraction - 1e-12


def repeat_spread(values) -> tuple[float, float, float]:
    """(median, min, max) of the finite values over repeats; nan for all three when none is finite.

    A non-finite value (a repeat that resolved no tested separation) makes the maximum inf
    (unbounded above) while the median ignores it only if most repeats are finite.
    """
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0:
        raise ValueError("values is empty; expected one value per repeat")
    fin = v[np.isfinite(v)]
    if fin.size == 0:
        return math.nan, math.nan, math.nan
    w = np.where(np.isfinite(v), v, np.inf)
    med = float(np.median(w))
    return (med if math.isfinite(med) else math.nan), float(fin.min()), float(w.max())


class DepthRange(NamedTuple):
    """Usable depth range: ends (µm), length, and whether an end is only bounded by the sampled depths."""

    z_min_um: float
    z_max_um: float
    length_um: float
    open_low: bool
    open_high: bool

    def per_side_um(self) -> tuple[float, float]:
        """Lengths of the range below (z < 0) and above (z > 0) focus; (0, 0) when empty."""
        if not (math.isfinite(self.z_min_um) and math.isfinite(self.z_max_um)):
            return 0.0, 0.0
        below = max(0.0, min(self.z_max_um, 0.0) - self.z_min_um)
        above = max(0.0, self.z_max_um - max(self.z_min_um, 0.0))
        return below, above


def usable_depth_range(z_um, lateral_res_um, threshold_um: float, *, exclude_band_um: float = 0.0) -> DepthRange:
    """Contiguous depth range around focus where the lateral resolution stays at or below a threshold.

    Definition: start from the sampled depth closest to z = 0 and extend up and down while the
    resolution is finite and <= ``threshold_um``; each end is placed at the threshold crossing
    interpolated linearly between the last passing and the first failing depth (at the last
    passing depth when the failing one is unresolved, i.e. non-finite).  Depths with
    |z| < ``exclude_band_um`` are skipped, neither passing nor failing: pass the light-field
    artifact band there (where a standard LFM falls back to about d/M), and the range spans it.
    An end that reaches the first or last sampled depth is flagged ``open_*`` (a lower bound).
    If no depth outside the band passes, the length is 0.
    """
    z = np.asarray(z_um, dtype=np.float64).reshape(-1)
    res = np.asarray(lateral_res_um, dtype=np.float64).reshape(-1)
    if z.size == 0 or z.shape != res.shape:
        raise ValueError(f"z_um ({z.size}) and lateral_res_um ({res.size}) must be non-empty and of equal length")
    if not (math.isfinite(threshold_um) and threshold_um > 0):
        raise ValueError(f"threshold_um = {threshold_um!r} is invalid; expected a finite number > 0")
    if not (math.isfinite(exclude_band_um) and exclude_band_um >= 0):
        raise ValueError(f"exclude_band_um = {exclude_band_um!r} is invalid; expected a number >= 0")
    order = np.argsort(z)
    z, res = z[order], res[order]
    keep = np.abs(z) >= exclude_band_um
    if not keep.any():
        return DepthRange(math.nan, math.nan, 0.0, False, False)
    zk, rk = z[keep], res[keep]
    ok = np.isfinite(rk) & (rk <= threshold_um)
    if exclude_band_um > 0:
        # the passing runs that touch the band from each side
        neg, pos = np.nonzero(zk < 0)[0], np.nonzero(zk > 0)[0]
        starts = [i for i in (neg[-1:] if neg.size else []) if ok[i]] + [i for i in (pos[:1] if pos.size else []) if ok[i]]
        if not starts:
            return DepthRange(math.nan, math.nan, 0.0, False, False)
        i_lo, i_hi = min(starts), max(starts)
    else:
        i0 = int(np.argmin(np.abs(zk)))
        if not ok[i0]:
            return DepthRange(math.nan, math.nan, 0.0, False, False)
        i_lo = i_hi = i0
    while i_lo > 0 and ok[i_lo - 1]:
        i_lo -= 1
    while i_hi < zk.size - 1 and ok[i_hi + 1]:
        i_hi += 1

    def edge(i_in: int, i_out: int) -> float:
        if np.isfinite(rk[i_out]) and rk[i_out] != rk[i_in]:
            t = (threshold_um - rk[i_in]) / (rk[i_out] - rk[i_in])
            return float(zk[i_in] + min(max(t, 0.0), 1.0) * (zk[i_out] - zk[i_in]))
        return float(zk[i_in])

    open_low, open_high = i_lo == 0, i_hi == zk.size - 1
    lo = float(zk[i_lo]) if open_low else edge(i_lo, i_lo - 1)
    hi = float(zk[i_hi]) if open_high else edge(i_hi, i_hi + 1)
    return DepthRange(lo, hi, hi - lo, bool(open_low), bool(open_high))


def localization_error(estimated, truth) -> dict:
    """Match estimated to true positions one-to-one (Hungarian, least total distance) and measure errors.

    Parameters
    ----------
    estimated, truth : array_like, (n, ndim)
        Positions in the same unit.

    Returns
    -------
    dict with ``rms`` (root-mean-square matched distance), ``errors`` ((m,) distances),
    ``pairs`` ((m, 2) indices into estimated and truth), ``missed`` (truths without a match) and
    ``mean_offset`` (the mean estimated - truth vector: a systematic shift).
    """
    from scipy.optimize import linear_sum_assignment

    e = np.atleast_2d(np.asarray(estimated, dtype=np.float64))
    t = np.atleast_2d(np.asarray(truth, dtype=np.float64))
    if t.size == 0:
        raise ValueError("truth is empty; expected at least one position")
    if e.size == 0:
        return {"rms": math.nan, "errors": np.zeros(0), "pairs": np.zeros((0, 2), int),
                "missed": int(t.shape[0]), "mean_offset": np.full(t.shape[1], math.nan)}
    if e.shape[1] != t.shape[1]:
        raise ValueError(f"estimated has {e.shape[1]} coordinates per point but truth has {t.shape[1]}")
    cost = np.linalg.norm(e[:, None, :] - t[None, :, :], axis=-1)
    ri, ci = linear_sum_assignment(cost)
    d = cost[ri, ci]
    return {"rms": float(np.sqrt(np.mean(d**2))), "errors": d, "pairs": np.stack([ri, ci], axis=1),
            "missed": int(t.shape[0] - ri.size), "mean_offset": np.mean(e[ri] - t[ci], axis=0)}


def nrmse(estimate, truth, *, normalization: str = "range", fit_scale: bool = False) -> float:
    """Normalised root-mean-square error ||estimate - truth||_rms / norm(truth).

    ``normalization``: "range" (max - min of truth), "mean" (mean of truth) or "l2" (rms of truth).
    ``fit_scale=True`` first scales the estimate by the least-squares factor <e, t>/<e, e>
    (deconvolution results carry an arbitrary photometric scale).
    """
    e = np.asarray(estimate, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if e.shape != t.shape:
        raise ValueError(f"estimate has shape {e.shape} but truth has {t.shape}; expected equal shapes")
    if fit_scale:
        ee = float(np.vdot(e, e))
        e = e * (float(np.vdot(e, t)) / ee if ee > 0 else 0.0)
    norms = {"range": lambda: float(t.max() - t.min()), "mean": lambda: float(t.mean()),
             "l2": lambda: float(np.sqrt(np.mean(t**2)))}
    if normalization not in norms:
        raise ValueError(f"normalization = {normalization!r} is invalid; expected one of {', '.join(map(repr, norms))}")
    den = norms[normalization]()
    if den == 0:
        raise ValueError(f"truth has zero {normalization}; cannot normalise")
    return float(np.sqrt(np.mean((e - t) ** 2)) / den)


def peak_positions(volume, spacing=1.0, *, min_distance: int = 2, threshold_rel: float = 0.2,
                   num_peaks: int | None = None, origin=None) -> np.ndarray:
    """Local maxima of an n-D array with centroid refinement, in physical units.

    Peaks are found with ``skimage.feature.peak_local_max`` (at least ``min_distance`` samples
    apart, above ``threshold_rel`` times the maximum), then each is refined by the intensity
    centroid of its 3^ndim neighbourhood (background: the neighbourhood's minimum).  Returns an
    (n, ndim) array of positions ``origin + index * spacing``, brightest first.
    """
    from skimage.feature import peak_local_max

    v = np.asarray(volume, dtype=np.float64)
    if v.ndim < 1 or v.size == 0:
        raise ValueError(f"volume has shape {v.shape}; expected a non-empty array")
    sp = np.broadcast_to(np.asarray(spacing, dtype=np.float64), (v.ndim,))
    org = np.zeros(v.ndim) if origin is None else np.broadcast_to(np.asarray(origin, dtype=np.float64), (v.ndim,))
    idx = peak_local_max(v, min_distance=int(min_distance), threshold_rel=float(threshold_rel),
                         num_peaks=np.inf if num_peaks is None else int(num_peaks), exclude_border=False)
    out = []
    for p in idx:
        sl = tuple(slice(max(0, c - 1), min(n, c + 2)) for c, n in zip(p, v.shape))
        w = v[sl] - v[sl].min()
        if w.sum() <= 0:
            out.append(p.astype(np.float64))
            continue
        grids = np.meshgrid(*[np.arange(s.start, s.stop) for s in sl], indexing="ij")
        out.append(np.array([(g * w).sum() / w.sum() for g in grids]))
    pos = np.array(out, dtype=np.float64).reshape(-1, v.ndim)
    return org + pos * sp
