"""Recorded frames onto the model's grid: dark / gain / flat correction and rectification.

The lattice comes from ``reconstruction.calibration`` (a white frame).

Rectification (``rectify``): the frame is sampled at the centres of the rectified pixels,
o + (i + (b - (N - 1) / 2) / N) u + (j + (a - (N - 1) / 2) / N) v for pixel (a, b) of lenslet
(j, i), by an interpolating cubic B-spline (order 3, the default) or bilinear interpolation (order
1), and multiplied by the area of a rectified pixel in recorded pixels, |u x v| / N^2, so photon
counts are kept.  On a simulated light field of beads recorded at 15.38 px per lenslet, 0.4
degrees (tests/reconstruction/test_recorded.py) the cubic spline reproduces the directly
simulated 15 px frame to 4.6% (L2) and the bilinear kernel to 11.4%: the in-focus spots behind
each lenslet are a few pixels wide, and a convex (bilinear) kernel blurs them by ~a pixel.  The
spline's ringing is small (-6e-4 of the peak there); its negative values are kept (like the read
noise's, they are handled by ``richardson_lucy(read_noise=...)``).  The lenslet pitch in µm is
trusted and the pixel is what the calibration measures: the rectified microscope
(``optics.Microscope.rectified``) has pixels of pitch / N.

Reconstructing on the raw grid instead would need an operator for a non-periodic grid (a rotated,
non-integer lattice shifts every lenslet's kernel by a different sub-pixel amount): the periodic
operator's structure, its cost and its exact adjoint would be lost.  Rectification costs one
interpolation (which correlates neighbouring pixels' noise a little; not modelled by RL).
"""

from __future__ import annotations

import math

import numpy as np

from .calibration import Calibration, CalibrationError

__all__ = ["rectify", "correct_frame"]


def _whole_cells(cal: Calibration, margin: float = 1.0):
    """Index ranges (j0, j1, i0, i1) (inclusive) of the largest block of lenslets whose cells lie
    inside the frame with ``margin`` pixels for the interpolation."""
    h, w = cal.frame_shape
    u, v = np.array(cal.u_px), np.array(cal.v_px)
    o = np.array(cal.origin_px)
    nj = int(math.ceil(h / abs(v[0]))) + 2
    ni = int(math.ceil(w / abs(u[1]))) + 2
    jr = np.arange(-nj, nj + 1)
    ir = np.arange(-ni, ni + 1)
    jj, ii = np.meshgrid(jr, ir, indexing="ij")
    ok = np.ones(jj.shape, bool)
    for sj in (-0.5, 0.5):
        for si in (-0.5, 0.5):
            y = o[0] + (ii + si) * u[0] + (jj + sj) * v[0]
            x = o[1] + (ii + si) * u[1] + (jj + sj) * v[1]
            ok &= (y >= -0.5 + margin) & (y <= h - 0.5 - margin) & (x >= -0.5 + margin) & (x <= w - 0.5 - margin)
    best = None
    rows = np.nonzero(ok.any(axis=1))[0]
    first = np.where(ok.any(axis=1), ok.argmax(axis=1), 10**9)
    last = np.where(ok.any(axis=1), ok.shape[1] - 1 - ok[:, ::-1].argmax(axis=1), -1)
    full = np.array([bool(ok[r, first[r]: last[r] + 1].all()) if last[r] >= first[r] else False for r in range(len(jr))])
    for a in rows:
        lo, hi = first[a], last[a]
        for b in range(a, len(jr)):
            if not full[b]:
                break
            lo, hi = max(lo, first[b]), min(hi, last[b])
            if hi < lo:
                break
            area = (b - a + 1) * (hi - lo + 1)
            if best is None or area > best[0]:
                best = (area, a, b, lo, hi)
    if best is None:
        raise CalibrationError("no whole lenslet lies inside the frame")
    _, a, b, lo, hi = best
    return int(jr[a]), int(jr[b]), int(ir[lo]), int(ir[hi])


def rectify(frame, cal: Calibration, pixels_per_lenslet: int | None = None, *, order: int = 3):
    """Resample a frame (or a (t, rows, cols) stack) onto N pixels per lenslet, centred, unrotated.

    Parameters
    ----------
    frame : array (rows, cols) or (t, rows, cols), on the calibration's camera
    cal : Calibration
    pixels_per_lenslet : odd int, optional
        N; default the odd integer nearest the measured pitch (``optics.config.rectified_pixels``).
    order : 3 or 1
        Interpolation: 3 interpolating cubic B-spline (default; sharp, rings slightly), 1
        bilinear (non-negative, blurs by ~a pixel); see the module docstring for their errors.

    Returns
    -------
    rectified : float32 array (..., Ly N, Lx N)
        Counts per rectified pixel (the interpolated value times the area of a rectified pixel in
        recorded pixels), so the total light of a region is kept.
    info : dict
        ``n_lenslets`` (Ly, Lx), ``pixels_per_lenslet`` N, ``lenslet_range`` (j0, j1, i0, i1) of the
        calibration's lattice indices used, ``scale`` (recorded pixels per rectified pixel along u, v).
    """
    from scipy import ndimage

    from optics.config import rectified_pixels

    if cal.grid != "square":
        raise CalibrationError(f"the calibration's lattice is {cal.grid!r}: the light-field operator needs a square "
                               "grid of whole pixels (hexagonal arrays are modelled for kind 'flfm')")
    arr = np.asarray(frame)
    cal.check_frame(arr)
    if arr.ndim not in (2, 3):
        raise CalibrationError(f"frame has shape {arr.shape}; expected (rows, cols) or (t, rows, cols)")
    if order not in (1, 3):
        raise CalibrationError(f"order = {order!r} is invalid; accepted: 1 (bilinear), 3 (cubic spline)")
    n = rectified_pixels(cal.mean_pitch_px) if pixels_per_lenslet is None else pixels_per_lenslet
    if isinstance(n, bool) or int(n) != n or n < 1 or n % 2 == 0:
        raise CalibrationError(f"pixels_per_lenslet = {pixels_per_lenslet!r} is invalid; expected an odd integer >= 1")
    n = int(n)
    j0, j1, i0, i1 = _whole_cells(cal)
    ly, lx = j1 - j0 + 1, i1 - i0 + 1
    t = (np.arange(n) - (n - 1) / 2) / n
    bj = (np.arange(j0, j1 + 1)[:, None] + t[None, :]).ravel()  # (Ly N,) lattice coordinate along v
    bi = (np.arange(i0, i1 + 1)[:, None] + t[None, :]).ravel()
    u, v, o = np.array(cal.u_px), np.array(cal.v_px), np.array(cal.origin_px)
    yy = o[0] + bi[None, :] * u[0] + bj[:, None] * v[0]
    xx = o[1] + bi[None, :] * u[1] + bj[:, None] * v[1]
    area = abs(u[0] * v[1] - u[1] * v[0]) / n**2
    stack = arr.reshape((-1, *arr.shape[-2:])).astype(np.float64)
    out = np.empty((stack.shape[0], ly * n, lx * n), dtype=np.float32)
    for k, img in enumerate(stack):
        out[k] = ndimage.map_coordinates(img, [yy, xx], order=order, mode="nearest", prefilter=order > 1) * area
    info = {"n_lenslets": (ly, lx), "pixels_per_lenslet": n, "lenslet_range": (j0, j1, i0, i1),
            "scale": (float(np.hypot(*v)) / n, float(np.hypot(*u)) / n)}
    return (out[0] if arr.ndim == 2 else out), info


def correct_frame(raw, cal: Calibration | None = None, dark=None, *, gain_adu_per_e: float = 1.0,
                  offset_adu: float | None = None, flat: bool = True) -> np.ndarray:
    """Photo-electrons of a recorded frame (or stack): (raw - dark) / gain, divided by the flat field.

    ``dark`` (a frame, or a stack's per-frame dark of the same shape) is subtracted when given,
    else the constant ``offset_adu`` (the camera's offset).  Negative values are kept: they carry
    the read noise (pass the camera's read noise to ``richardson_lucy``).  The dark is refused if it
    is brighter than the data (median over the frame).
    """
    arr = np.asarray(raw)
    if arr.ndim not in (2, 3):
        raise CalibrationError(f"raw frame has shape {arr.shape}; expected (rows, cols) or (t, rows, cols)")
    data = arr.astype(np.float64)
    if not np.isfinite(data).all():
        raise CalibrationError("raw frame contains NaN or infinite values")
    if cal is not None:
        cal.check_frame(arr, "raw frame")
    if dark is not None:
        d = np.asarray(dark, dtype=np.float64)
        if d.shape[-2:] != arr.shape[-2:]:
            raise CalibrationError(f"dark frame is {d.shape[-2]} x {d.shape[-1]} pixels but the raw frame is "
                                   f"{arr.shape[-2]} x {arr.shape[-1]}; both must come from the same camera and crop")
        if np.median(d) > np.median(data):
            raise CalibrationError(f"the dark frame (median {np.median(d):.4g}) is brighter than the data (median "
                                   f"{np.median(data):.4g}): swapped files, or a dark frame of another exposure")
        data = data - d
    elif offset_adu is not None:
        data = data - float(offset_adu)
    if not (isinstance(gain_adu_per_e, (int, float)) and gain_adu_per_e > 0):
        raise CalibrationError(f"gain_adu_per_e = {gain_adu_per_e!r} is invalid; expected a number > 0")
    data /= float(gain_adu_per_e)
    if flat and cal is not None:
        data /= cal.flat_field()
    return data
