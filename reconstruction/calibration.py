"""Recorded frames: the lenslet lattice from a white frame, dark and flat correction, rectification.

A recorded light field is not on the model's grid: a 100 µm array on 6.5 µm pixels is 15.38 pixels
per lenslet, the array sits at a fraction of a degree to the sensor and off its centre, the edges are
vignetted and the camera adds an offset.  This module measures the geometry from a white
(radiometry) frame; ``reconstruction.rectification`` then brings a recorded frame onto the grid the
operator models (an odd whole number N of pixels per lenslet, centred, unrotated).

Calibration (``calibrate``), in three steps:

1. *Coarse lattice from the Fourier transform.*  The white frame is periodic with the lattice, so
   the power spectrum of (white - dark) under a Hann window has its strongest non-DC peaks at the
   reciprocal lattice vectors; their log-parabolic sub-bin positions give the pitch and the angle
   to a few tenths of a per cent, the phase of the two fundamentals a lattice point (the pattern
   is symmetric about each lenslet's centre, so F(k) ~ exp(-2 pi i k.c)).  Two peaks ~90 degrees
   apart are a square grid, ~60 degrees a hexagonal one.
2. *Lenslet centres.*  Each lenslet's image (the objective pupil seen through the lenslet) is
   centred by an iterated Gaussian-weighted centroid (weight sigma = pitch / 4), after a 3 x 3
   median (hot pixels) and division by a smooth envelope (vignetting would pull the centroids).
   For a pattern symmetric about its centre the centroid with a window centred there is that
   centre, so the iteration's fixed point is unbiased; lenslets that are cut by the frame border
   or dim (< 25% of the median, dust or vignetting) are left out.
3. *Lattice fit.*  The centres are fitted by c_ij = o + i u + j v (six parameters, linear least
   squares), rejecting centres more than 4 robust sigmas (1.4826 MAD) off the fit; the residual
   of each lenslet is kept (``Calibration.residuals``: a map of dust, distortion or a tilted array).

The lattice vectors are reported as u (along the lenslet rows, the one nearest the camera's +x)
and v (to the next row, +y side; at ~90 degrees for square grids, ~60 for hexagonal ones), the
pitch in pixels, the rotation of u from +x (degrees, towards +y, i.e. clockwise on a display with
row 0 at the top) and the offset of the lattice point nearest the frame's centre from that centre.

Flat field: the light each lenslet collects from the white frame, fitted by a robust polynomial of
degree 4 in the frame coordinates, normalised to 1 at its maximum over the fitted lenslets
(``Calibration.flat``).  Only this smooth vignetting is divided out: the pattern inside each
lenslet (the pupil image) is the optics the operator models, and dividing by it would correct it
twice.

Rectification and the dark / gain / flat correction: ``reconstruction.rectification``.

References: the steps follow the published practice (Dansereau et al., CVPR 2013; Broxton et
al. 2013 and lflib; Schambach & Puente Leon, IEEE TCI 6:410, 2020, for the Fourier estimate), in
our own formulation.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "Calibration",
    "CalibrationError",
    "calibrate",
    "load_calibration",
    "synthetic_white",
    "GRIDS",
]

log = logging.getLogger(__name__)

GRIDS = ("square", "hex")
#: Pixels per lenslet a calibration accepts (at least 3, at most a quarter of the frame).
MIN_PITCH_PX = 3.0
#: Spectral peak power over the median power of its annulus below which there is "no lattice".
MIN_PEAK_CONTRAST = 200.0
#: Degree of the vignetting polynomial.
FLAT_DEGREE = 4
#: Relative pitch disagreement with the config above which ``calibrate`` warns.
PITCH_TOLERANCE = 0.01
_VERSION = 1


class CalibrationError(ValueError):
    """A white frame, dark frame or calibration that cannot be used (the message says why)."""


# ----------------------------------------------------------------------------- the result
@dataclass(frozen=True)
class Calibration:
    """Lenslet lattice of a camera frame: lenslet (j, i) is centred at origin + i u + j v (pixels,
    (y, x), pixel centres at integers).

    Attributes
    ----------
    frame_shape : (rows, cols) of the frames it applies to.
    grid : "square" or "hex".
    origin_px : (y, x) of the lattice point nearest the frame's centre.
    u_px, v_px : (y, x) lattice vectors (u along the rows, nearest +x; v to the next row).
    lenslets_fitted, outliers : centres used in the fit, and rejected by it.
    residual_rms_px, residual_max_px : of the fitted centres (pixels).
    flat : {"degree", "centre", "scale", "coefficients"} of the vignetting polynomial (``flat_field``).
    dark_level : median of the dark frame it was measured with (None without one).
    residuals : (n, 4) array of (j, i, dy, dx) per fitted lenslet (not saved with ``save``).
    """

    frame_shape: tuple[int, int]
    grid: str
    origin_px: tuple[float, float]
    u_px: tuple[float, float]
    v_px: tuple[float, float]
    lenslets_fitted: int
    outliers: int
    residual_rms_px: float
    residual_max_px: float
    flat: dict
    dark_level: float | None = None
    residuals: np.ndarray | None = field(default=None, compare=False, repr=False)

    # -------------------------------------------------------------- derived
    @property
    def pitch_px(self) -> tuple[float, float]:
        """(|v| row spacing direction, |u| along the rows): the lenslet pitch in pixels."""
        return (float(np.hypot(*self.v_px)), float(np.hypot(*self.u_px)))

    @property
    def mean_pitch_px(self) -> float:
        return float(np.mean(self.pitch_px))

    @property
    def rotation_deg(self) -> float:
        """Angle of u from the camera's +x axis towards +y (degrees)."""
        return math.degrees(math.atan2(self.u_px[0], self.u_px[1]))

    @property
    def angle_uv_deg(self) -> float:
        """Angle between u and v (90 for a square grid, 60 for a hexagonal one, up to shear)."""
        u, v = np.array(self.u_px), np.array(self.v_px)
        return math.degrees(math.acos(float(u @ v) / float(np.hypot(*u) * np.hypot(*v))))

    @property
    def offset_px(self) -> tuple[float, float]:
        """(y, x) of the origin lenslet's centre from the frame's centre ((rows - 1) / 2, (cols - 1) / 2)."""
        cy, cx = (self.frame_shape[0] - 1) / 2, (self.frame_shape[1] - 1) / 2
        return (self.origin_px[0] - cy, self.origin_px[1] - cx)

    def centre_of(self, j, i):
        """(y, x) of lenslet (j, i) (arrays broadcast)."""
        j, i = np.asarray(j, dtype=float), np.asarray(i, dtype=float)
        return (self.origin_px[0] + i * self.u_px[0] + j * self.v_px[0],
                self.origin_px[1] + i * self.u_px[1] + j * self.v_px[1])

    def flat_field(self, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The vignetting map (float32, max 1 over the fitted lenslets) on the frame's pixels."""
        shape = self.frame_shape if shape is None else tuple(shape)
        yy, xx = np.mgrid[0: shape[0], 0: shape[1]].astype(np.float64)
        return np.clip(_poly_eval(self.flat, yy, xx), 1e-3, None).astype(np.float32)

    def check_frame(self, frame, name: str = "frame") -> None:
        """Refuse a frame (or stack) of another camera shape."""
        shape = tuple(np.shape(frame)[-2:])
        if shape != tuple(self.frame_shape):
            raise CalibrationError(
                f"{name} is {shape[0]} x {shape[1]} pixels but the calibration was measured on "
                f"{self.frame_shape[0]} x {self.frame_shape[1]} frames (another camera or crop); "
                "calibrate with a white frame of this camera")

    def summary(self) -> str:
        py, px = self.pitch_px
        return (f"{self.grid} lattice: pitch {py:.4f} x {px:.4f} px (rows x along rows), rotation "
                f"{self.rotation_deg:+.4f} deg, angle u-v {self.angle_uv_deg:.3f} deg, offset "
                f"({self.offset_px[0]:+.3f}, {self.offset_px[1]:+.3f}) px from the frame centre; "
                f"{self.lenslets_fitted} lenslets fitted ({self.outliers} rejected), residual rms "
                f"{self.residual_rms_px:.4f} px, max {self.residual_max_px:.4f} px")

    # -------------------------------------------------------------- files
    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "residuals"}
        d = json.loads(json.dumps(d))  # tuples -> lists
        py, px = self.pitch_px
        d.update(version=_VERSION, kind="lfmsim light-field calibration",
                 derived={"pitch_px": [py, px], "rotation_deg": self.rotation_deg,
                          "offset_px": list(self.offset_px), "angle_uv_deg": self.angle_uv_deg})
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Calibration:
        if not isinstance(d, dict) or d.get("kind") != "lfmsim light-field calibration":
            raise CalibrationError("not an lfmsim calibration (no 'kind': 'lfmsim light-field calibration')")
        if d.get("version") != _VERSION:
            raise CalibrationError(f"calibration version {d.get('version')!r} is not supported (expected {_VERSION})")
        try:
            kw = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name != "residuals"}
        except KeyError as e:
            raise CalibrationError(f"calibration lacks the field {e}") from None
        for k in ("frame_shape", "origin_px", "u_px", "v_px"):
            kw[k] = tuple(kw[k])
        kw["frame_shape"] = tuple(int(v) for v in kw["frame_shape"])
        if kw["grid"] not in GRIDS:
            raise CalibrationError(f"grid = {kw['grid']!r} is invalid; accepted: {GRIDS}")
        return cls(**kw)

    def save(self, path, *, overwrite: bool = False) -> Path:
        """Write the calibration as JSON, atomically; an existing file is kept unless ``overwrite``."""
        from optics.io import atomic_write_bytes

        p = Path(path)
        atomic_write_bytes(p, (json.dumps(self.to_dict(), indent=1) + "\n").encode(), overwrite=overwrite)
        return p


def load_calibration(path) -> Calibration:
    """Read a calibration written by ``Calibration.save``."""
    p = Path(path)
    try:
        d = json.loads(p.read_text())
    except OSError as e:
        raise CalibrationError(f"calibration {str(p)!r} cannot be read: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise CalibrationError(f"calibration {str(p)!r} is not JSON: {e}") from None
    try:
        return Calibration.from_dict(d)
    except CalibrationError as e:
        raise CalibrationError(f"{p.name}: {e}") from None


# ----------------------------------------------------------------------------- input checks
def _as_frame(a, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise CalibrationError(f"{name} has shape {arr.shape}; expected one 2-D frame (rows, cols)")
    if arr.dtype.kind not in "uif":
        raise CalibrationError(f"{name} has dtype {arr.dtype}; expected a numeric image")
    arr = arr.astype(np.float64)
    if not np.isfinite(arr).all():
        raise CalibrationError(f"{name} contains NaN or infinite values")
    return arr


def _dark_subtracted(white, dark) -> tuple[np.ndarray, float | None]:
    w = _as_frame(white, "white frame")
    if min(w.shape) < 4 * MIN_PITCH_PX:
        raise CalibrationError(f"white frame is {w.shape[0]} x {w.shape[1]} pixels: too small to hold a lenslet lattice")
    if dark is None:
        return w - np.median(w[w <= np.percentile(w, 1)]), None
    d = _as_frame(dark, "dark frame")
    if d.shape != w.shape:
        raise CalibrationError(f"dark frame is {d.shape[0]} x {d.shape[1]} pixels but the white frame is "
                               f"{w.shape[0]} x {w.shape[1]}; both must come from the same camera and crop")
    level = float(np.median(d))
    if np.median(w) <= level:
        raise CalibrationError(f"the dark frame (median {level:.4g}) is not darker than the white frame "
                               f"(median {np.median(w):.4g}): swapped files, or no light in the white frame")
    return w - d, level


# ----------------------------------------------------------------------------- step 1: Fourier
def _log_parabola(p_m, p_0, p_p) -> float:
    a, b, c = (math.log(max(v, 1e-300)) for v in (p_m, p_0, p_p))
    den = a - 2 * b + c
    return 0.0 if den >= 0 else float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def _coarse_lattice(img: np.ndarray):
    """(u, v, origin, grid, contrast): lattice from the spectrum's fundamental peaks (see module doc)."""
    from scipy import ndimage

    h, w = img.shape
    win = np.hanning(h)[:, None] * np.hanning(w)[None, :]
    x = (img - img.mean()) * win
    spec = np.fft.fft2(x)
    power = np.abs(spec) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    kr = np.hypot(fy, fx)
    kmax = 1.0 / MIN_PITCH_PX
    kmin = 4.0 / min(h, w)  # at least four lenslets across
    band = (kr >= kmin) & (kr <= kmax) & ((fx > 0) | ((fx == 0) & (fy > 0)))
    peaks = (power == ndimage.maximum_filter(power, size=3, mode="wrap")) & band
    iy, ix = np.nonzero(peaks)
    if len(iy) < 2:
        raise CalibrationError("no lenslet lattice found in the white frame (no spectral peaks)")
    order = np.argsort(power[iy, ix])[::-1][:40]
    iy, ix = iy[order], ix[order]

    def refine(jy, jx):
        dy = _log_parabola(power[(jy - 1) % h, jx], power[jy, jx], power[(jy + 1) % h, jx])
        dx = _log_parabola(power[jy, (jx - 1) % w], power[jy, jx], power[jy, (jx + 1) % w])
        return np.array([fy[(jy) % h, 0] + dy / h, fx[0, jx % w] + dx / w])

    ks = [refine(a, b) for a, b in zip(iy, ix)]
    pw = power[iy, ix]
    # contrast of the strongest peak against the median power of its annulus
    k1 = ks[0]
    ring = band & (np.abs(kr - np.hypot(*k1)) < 0.1 * np.hypot(*k1))
    contrast = float(pw[0] / max(np.median(power[ring]), 1e-300))
    if contrast < MIN_PEAK_CONTRAST:
        raise CalibrationError(
            f"no lenslet lattice found in the white frame: its strongest spectral peak is only {contrast:.3g} x "
            f"the background (a lattice gives > {MIN_PEAK_CONTRAST:g}); is this a white (radiometry) frame "
            "recorded through the microlens array?")
    n1 = np.hypot(*k1)
    k2 = None
    for k, p in zip(ks, pw):
        ang = math.degrees(math.acos(np.clip(abs(float(k @ k1)) / (np.hypot(*k) * n1), 0, 1)))
        if ang > 40 and 0.7 < np.hypot(*k) / n1 < 1.4 and p > 0.05 * pw[0]:
            k2 = k
            break
    if k2 is None:
        raise CalibrationError("no lenslet lattice found in the white frame: one periodicity only (stripes?)")
    # a harmonic lattice (e.g. the sqrt(3) peaks of a hexagonal pattern, or a square one's
    # diagonals) can outshine the fundamentals: look for peaks at fractions of the basis
    floor = float(np.median(power[band]))

    def significant(k):
        jy, jx = int(round(k[0] * h)), int(round(k[1] * w))
        if np.hypot(*k) < kmin:
            return False
        loc = power[np.ix_([(jy + d) % h for d in (-1, 0, 1)], [(jx + d) % w for d in (-1, 0, 1)])]
        return float(loc.max()) > MIN_PEAK_CONTRAST * floor and float(loc.max()) > 1e-3 * pw[0]

    for _ in range(4):
        finer = None
        for d in (2, 3):
            for a in range(d):
                for b in range(d):
                    if (a, b) == (0, 0):
                        continue
                    k = (a * k1 + b * k2) / d
                    if significant(k):
                        finer = k
                        break
                if finer is not None:
                    break
            if finer is not None:
                break
        if finer is None:
            break
        # the lattice generated by k1, k2 and the finer vector: its two shortest independent vectors
        cands = [finer, k1, k2, finer - k1, finer - k2, finer + k1, finer + k2, k1 - k2, k1 + k2]
        cands = [c for c in cands if np.hypot(*c) >= kmin * 0.5]
        cands.sort(key=lambda c: np.hypot(*c))
        k1 = cands[0]
        k2 = next(c for c in cands[1:] if abs(k1[0] * c[1] - k1[1] * c[0]) > 0.3 * np.hypot(*k1) * np.hypot(*c))
    n1 = np.hypot(*k1)
    ang = math.degrees(math.acos(np.clip(abs(float(k1 @ k2)) / (n1 * np.hypot(*k2)), 0, 1)))
    grid = "square" if ang > 75 else "hex"  # a hexagonal lattice's fundamentals are 60 degrees apart
    kmat = np.array([k1, k2])  # rows: reciprocal vectors (y, x) in cycles / pixel
    amat = np.linalg.inv(kmat)  # columns: direct vectors a1, a2 with k_i . a_j = delta_ij
    a1, a2 = amat[:, 0], amat[:, 1]
    # a lattice point from the phases of the two fundamentals (coordinates from the frame centre)
    cy, cx = (h - 1) / 2, (w - 1) / 2
    yy = np.arange(h) - cy
    xx = np.arange(w) - cx
    phases = []
    for k in (k1, k2):
        f = np.exp(-2j * np.pi * k[0] * yy)[:, None] * np.exp(-2j * np.pi * k[1] * xx)[None, :]
        phases.append(np.angle(np.sum(x * f)))
    frac = -np.array(phases) / (2 * np.pi)  # k_i . c = frac_i (mod 1)
    c = amat @ frac + np.array([cy, cx])
    return a1, a2, c, grid, contrast


def _reduce_basis(a1, a2, grid):
    """Shortest basis oriented as the module doc says: u nearest +x, v to the next row (+y side)."""
    a1, a2 = np.array(a1, float), np.array(a2, float)
    for _ in range(20):  # Lagrange-Gauss reduction
        if a1 @ a1 > a2 @ a2:
            a1, a2 = a2, a1
        mu = round(float(a1 @ a2) / float(a1 @ a1))
        if mu == 0:
            break
        a2 = a2 - mu * a1
    cands = [s * a for a in (a1, a2, a1 + a2, a1 - a2) for s in (1, -1)]
    shortest = min(np.hypot(*a) for a in cands)
    short = [a for a in cands if np.hypot(*a) < 1.2 * shortest]
    u = max(short, key=lambda a: a[1] / np.hypot(*a))  # the most +x
    want = 90.0 if grid == "square" else 60.0
    best = None
    for a in cands:
        cross = u[1] * a[0] - u[0] * a[1]  # x_u y_a - y_u x_a > 0: a on the +y side of u
        if cross <= 0 or np.hypot(*a) > 1.3 * shortest:
            continue
        ang = math.degrees(math.acos(np.clip(float(u @ a) / (np.hypot(*u) * np.hypot(*a)), -1, 1)))
        if best is None or abs(ang - want) < best[0]:
            best = (abs(ang - want), a)
    if best is None:
        raise CalibrationError("no lenslet lattice found in the white frame: its two periodicities do not form a lattice")
    return u, best[1]


# ----------------------------------------------------------------------------- step 2: centres
def _lattice_indices(shape, c0, u, v, margin):
    """Integer (j, i) of the lattice points whose centre lies ``margin`` pixels inside the frame."""
    h, w = shape
    corners = np.array([[0, 0], [0, w - 1], [h - 1, 0], [h - 1, w - 1]], float) - c0
    amat = np.column_stack([u, v])
    lat = np.linalg.solve(amat, corners.T)  # (i, j) of the corners
    i = np.arange(math.floor(lat[0].min()) - 1, math.ceil(lat[0].max()) + 2)
    j = np.arange(math.floor(lat[1].min()) - 1, math.ceil(lat[1].max()) + 2)
    jj, ii = np.meshgrid(j, i, indexing="ij")
    jj, ii = jj.ravel(), ii.ravel()
    y = c0[0] + ii * u[0] + jj * v[0]
    x = c0[1] + ii * u[1] + jj * v[1]
    keep = (y >= margin) & (y <= h - 1 - margin) & (x >= margin) & (x <= w - 1 - margin)
    return jj[keep], ii[keep], y[keep], x[keep]


def _centroids(img, y, x, pitch, iterations=30):
    """Iterated Gaussian-weighted centroids (sigma pitch / 4) from (y, x), all lenslets at once;
    and the light of each lenslet (the weighted sum)."""
    sigma = pitch / 4
    r = int(math.ceil(0.75 * pitch)) + 1
    off = np.arange(-r, r + 1)
    h, w = img.shape
    pad = np.pad(img, r + 2, mode="constant")
    y, x = y.astype(float).copy(), x.astype(float).copy()

    def weighted(y, x):
        ry = np.clip(np.round(y).astype(int), 0, h - 1)
        rx = np.clip(np.round(x).astype(int), 0, w - 1)
        py = ry[:, None] + off[None, :]  # (n, 2r+1)
        px = rx[:, None] + off[None, :]
        patch = pad[(py + r + 2)[:, :, None], (px + r + 2)[:, None, :]]
        wy = np.exp(-0.5 * ((py - y[:, None]) / sigma) ** 2)
        wx = np.exp(-0.5 * ((px - x[:, None]) / sigma) ** 2)
        wt = patch * wy[:, :, None] * wx[:, None, :]
        return wt, py, px, wt.sum(axis=(1, 2))

    wt, py, px, light = weighted(y, x)
    for _ in range(iterations):
        ok = light > 0
        ny = np.where(ok, (wt * py[:, :, None]).sum(axis=(1, 2)) / np.where(ok, light, 1), y)
        nx = np.where(ok, (wt * px[:, None, :]).sum(axis=(1, 2)) / np.where(ok, light, 1), x)
        step = np.hypot(ny - y, nx - x)
        y, x = ny, nx
        wt, py, px, light = weighted(y, x)
        if step.max(initial=0) < 1e-4:
            break
    # a centroid that ran off the frame is not a lenslet
    inside = (y >= 0) & (y <= h - 1) & (x >= 0) & (x <= w - 1)
    return y, x, light, inside


# ----------------------------------------------------------------------------- step 3: fit
def _fit_lattice(jj, ii, y, x):
    """Robust least squares c = o + i u + j v; returns (o, u, v, inlier mask, residual (n, 2))."""
    a = np.column_stack([np.ones_like(ii, dtype=float), ii, jj])
    keep = np.ones(len(ii), bool)
    for _ in range(6):
        coef, *_ = np.linalg.lstsq(a[keep], np.column_stack([y[keep], x[keep]]), rcond=None)
        res = np.column_stack([y, x]) - a @ coef
        r = np.hypot(res[:, 0], res[:, 1])
        mad = 1.4826 * np.median(np.abs(r[keep] - np.median(r[keep])))
        thresh = max(np.median(r[keep]) + 4 * mad, 1e-3)
        new = r <= thresh
        if new.sum() < max(6, len(ii) // 2):
            new = r <= np.quantile(r, 0.5)
        if np.array_equal(new, keep):
            break
        keep = new
    coef, *_ = np.linalg.lstsq(a[keep], np.column_stack([y[keep], x[keep]]), rcond=None)
    res = np.column_stack([y, x]) - a @ coef
    return coef[0], coef[1], coef[2], keep, res


# ----------------------------------------------------------------------------- flat field
def _poly_terms(flat, yy, xx):
    cy, cx = flat["centre"]
    s = flat["scale"]
    ty, tx = (yy - cy) / s, (xx - cx) / s
    deg = flat["degree"]
    return [ty**p * tx**q for p in range(deg + 1) for q in range(deg + 1 - p)]


def _poly_eval(flat, yy, xx):
    return sum(c * t for c, t in zip(flat["coefficients"], _poly_terms(flat, yy, xx)))


def _fit_flat(shape, y, x, light, degree=FLAT_DEGREE):
    """Robust polynomial fit of each lenslet's light (dust and dead lenslets rejected)."""
    flat = {"degree": degree, "centre": [(shape[0] - 1) / 2, (shape[1] - 1) / 2], "scale": max(shape) / 2,
            "coefficients": []}
    a = np.column_stack(_poly_terms(flat, y, x))
    keep = np.ones(len(y), bool)
    for _ in range(6):
        coef, *_ = np.linalg.lstsq(a[keep], light[keep], rcond=None)
        rel = light / np.maximum(a @ coef, 1e-12 * light.max()) - 1
        mad = 1.4826 * np.median(np.abs(rel[keep]))
        new = np.abs(rel) <= max(4 * mad, 1e-3)
        if np.array_equal(new, keep) or new.sum() < a.shape[1] * 2:
            break
        keep = new
    top = float((a @ coef)[keep].max())
    flat["coefficients"] = [float(c / top) for c in coef]
    return flat


# ----------------------------------------------------------------------------- public
def calibrate(white, dark=None, *, expected_pitch_px: float | None = None, grid: str = "auto",
              tolerance: float = PITCH_TOLERANCE) -> Calibration:
    """Measure the lenslet lattice of a white (radiometry) frame.

    Parameters
    ----------
    white : 2-D array
        A frame of a uniformly fluorescent (or uniformly lit) sample through the microlens array.
    dark : 2-D array, optional
        A frame with no light, same camera and crop; subtracted first.  Without it the 1st
        percentile of the white frame is taken as its dark level.
    expected_pitch_px : float, optional
        The config's pitch / pixel: a warning is issued when the measured pitch differs by more
        than ``tolerance`` (frame metadata are often wrong; the measurement is what is used).
    grid : "auto", "square" or "hex"
        The lattice to expect; "auto" decides from the angle between the spectral peaks.

    Returns
    -------
    Calibration

    Raises
    ------
    CalibrationError
        No lattice in the frame (uniform or random images), a dark frame of another size or not
        darker than the white frame, too few lenslets to fit.
    """
    if grid not in ("auto", *GRIDS):
        raise CalibrationError(f"grid = {grid!r} is invalid; accepted: 'auto', 'square', 'hex'")
    from scipy import ndimage

    img, dark_level = _dark_subtracted(white, dark)
    img = np.clip(img, 0, None)
    a1, a2, c0, found, contrast = _coarse_lattice(img)
    if grid != "auto" and grid != found:
        raise CalibrationError(f"grid = {grid!r} was asked for but the white frame's lattice is {found!r} "
                               f"(its spectral fundamentals are {'~90' if found == 'square' else '~60'} degrees apart)")
    u, v = _reduce_basis(a1, a2, found)
    pitch = float(np.hypot(*u) + np.hypot(*v)) / 2
    if pitch > min(img.shape) / 4:
        raise CalibrationError(f"the white frame's period is {pitch:.3g} px: fewer than four lenslets across")
    # hot pixels; then the lattice point might be a gap between lenslets if the pattern's contrast
    # is inverted: lenslet centres are the bright points
    # hot (and dead) pixels: replaced by their 3 x 3 median where they stand out; a median filter
    # of the whole frame would move the discs' edges by up to ~0.1 px with the sub-pixel phase
    med3 = ndimage.median_filter(img, size=3, mode="nearest")
    dev = img - med3
    spread = 1.4826 * np.median(np.abs(dev)) + 1e-12 * img.max()
    med = np.where(np.abs(dev) > 8 * spread + 0.2 * med3, med3, img)
    jj, ii, y, x = _lattice_indices(img.shape, c0, u, v, margin=math.ceil(0.75 * pitch) + 1)
    if len(jj) < 9:
        raise CalibrationError(f"only {len(jj)} whole lenslets in the white frame; at least 9 are needed")
    _, _, l0, _ = _centroids(med, y, x, pitch, iterations=0)
    gap = (u + v) / (2 if found == "square" else 3)  # the point between lenslets
    _, _, lh, _ = _centroids(med, y + gap[0], x + gap[1], pitch, iterations=0)
    if np.median(lh) > 1.05 * np.median(l0):
        c0 = c0 + gap
        jj, ii, y, x = _lattice_indices(img.shape, c0, u, v, margin=math.ceil(0.75 * pitch) + 1)
    # first centres, each lenslet's light and the smooth vignetting through it; then the centres
    # again with the vignetting divided out (its gradient pulls a centroid by ~ sigma^2 grad V / V)
    cy, cx, _, inside = _centroids(med, y, x, pitch)
    _, _, light, _ = _centroids(med, cy, cx, pitch, iterations=0)
    good = inside & (light > 0.25 * np.median(light)) & (np.hypot(cy - y, cx - x) < 0.3 * pitch)
    if good.sum() < 9:
        raise CalibrationError(f"only {int(good.sum())} lenslets could be centred in the white frame; at least 9 are needed")
    flat = _fit_flat(img.shape, cy[good], cx[good], light[good])
    yy, xx = np.mgrid[0: img.shape[0], 0: img.shape[1]].astype(np.float64)
    envelope = np.clip(_poly_eval(flat, yy, xx), 1e-3, None)
    cy, cx, _, inside = _centroids(med / envelope, y, x, pitch)
    _, _, light, _ = _centroids(med, cy, cx, pitch, iterations=0)
    good = inside & (light > 0.25 * np.median(light)) & (np.hypot(cy - y, cx - x) < 0.3 * pitch)
    if good.sum() < 9:
        raise CalibrationError(f"only {int(good.sum())} lenslets could be centred in the white frame; at least 9 are needed")
    o, fu, fv, keep, res = _fit_lattice(jj[good], ii[good], cy[good], cx[good])
    # the origin: the lattice point nearest the frame centre
    centre = np.array([(img.shape[0] - 1) / 2, (img.shape[1] - 1) / 2])
    lat = np.linalg.solve(np.column_stack([fu, fv]), centre - o)
    o = o + np.round(lat[0]) * fu + np.round(lat[1]) * fv
    r = np.hypot(res[keep, 0], res[keep, 1])
    flat = _fit_flat(img.shape, cy[good], cx[good], light[good])  # the lights at the final centres
    resid = np.column_stack([jj[good] - np.round(lat[1]), ii[good] - np.round(lat[0]), res]).astype(np.float64)
    cal = Calibration(
        frame_shape=tuple(int(v) for v in img.shape), grid=found, origin_px=(float(o[0]), float(o[1])),
        u_px=(float(fu[0]), float(fu[1])), v_px=(float(fv[0]), float(fv[1])),
        lenslets_fitted=int(keep.sum()), outliers=int((~keep).sum()),
        residual_rms_px=float(np.sqrt(np.mean(r**2))), residual_max_px=float(r.max()),
        flat=flat, dark_level=dark_level, residuals=resid)
    if cal.residual_rms_px > 0.1 * pitch:
        raise CalibrationError(f"the lenslet centres do not lie on a lattice (residual rms {cal.residual_rms_px:.3g} px "
                               f"for a {pitch:.3g} px pitch); is this a white frame through the microlens array?")
    log.info("calibration: %s (spectral contrast %.3g)", cal.summary(), contrast)
    if expected_pitch_px is not None:
        rel = cal.mean_pitch_px / float(expected_pitch_px) - 1
        if abs(rel) > tolerance:
            warnings.warn(
                f"the white frame's lenslet pitch is {cal.mean_pitch_px:.4f} px, {100 * rel:+.2f}% from the config's "
                f"pitch / pixel = {float(expected_pitch_px):.4f}; the measured pitch is used (check the relay "
                "magnification or the pixel size in the metadata)", stacklevel=2)
    return cal


def synthetic_white(shape, pitch_px, *, rotation_deg: float = 0.0, offset_px=(0.0, 0.0), grid: str = "square",
                    fill: float = 0.95, vignetting: float = 0.3, photons: float | None = None,
                    seed: int = 0, supersample: int = 4) -> np.ndarray:
    """A white frame of known geometry, for tests and demonstrations (not a physical model).

    Each lenslet images a uniformly lit disc of diameter ``fill`` x pitch centred on it (pixels
    integrated by ``supersample``^2 sub-samples); the lattice has vectors of length ``pitch_px``
    (square, or hexagonal at 60 degrees) with u rotated by ``rotation_deg`` from +x towards +y and a
    lenslet centred at the frame centre + ``offset_px`` (y, x); a radial vignetting of relative
    depth ``vignetting`` at the corners; Poisson noise at ``photons`` per pixel at the peak.
    """
    h, w = shape
    th = math.radians(rotation_deg)
    u = pitch_px * np.array([math.sin(th), math.cos(th)])
    ang = th + (math.pi / 2 if grid == "square" else math.pi / 3)
    v = pitch_px * np.array([math.sin(ang), math.cos(ang)])
    o = np.array([(h - 1) / 2 + offset_px[0], (w - 1) / 2 + offset_px[1]])
    amat_inv = np.linalg.inv(np.column_stack([u, v]))
    s = supersample
    sub = (np.arange(s) + 0.5) / s - 0.5
    img = np.zeros(shape)
    yy0, xx0 = np.mgrid[0:h, 0:w].astype(float)
    rad = fill * pitch_px / 2
    for dy in sub:
        for dx in sub:
            p = np.stack([yy0 + dy - o[0], xx0 + dx - o[1]])
            lat = np.tensordot(amat_inv, p, axes=1)
            best = np.full(shape, np.inf)
            for fi in (np.floor, np.ceil):
                for fj in (np.floor, np.ceil):
                    ci, cj = fi(lat[0]), fj(lat[1])
                    ey = p[0] - (ci * u[0] + cj * v[0])
                    ex = p[1] - (ci * u[1] + cj * v[1])
                    best = np.minimum(best, np.hypot(ey, ex))
            img += np.clip(rad + 0.5 - best, 0, 1)  # a disc with a one-pixel soft edge
    img /= s * s
    r2 = ((yy0 - (h - 1) / 2) ** 2 + (xx0 - (w - 1) / 2) ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)
    img *= 1 - vignetting * r2
    if photons is not None:
        img = np.random.default_rng(seed).poisson(img * photons).astype(np.float64)
    return img
