"""Recorded frames end to end: calibrate, correct, rectify, reconstruct (issue 11).

``reconstruct_recorded(config, raw, white=..., dark=...)`` (and ``python -m reconstruction CONFIG
RAW.tif --white WHITE.tif --dark DARK.tif --out VOL.tif``) runs the documented steps:

1. Calibration: the lenslet lattice of (white - dark) (``reconstruction.calibration.calibrate``),
   or a saved one (``calibration=CAL.json``), checked against the raw frame's camera shape.
2. Correction: (raw - dark) / gain in photo-electrons (the camera's ``offset_adu`` without a dark
   frame), divided by the white frame's smooth vignetting (``Calibration.flat_field``).  Negative
   values are kept: they carry the read noise.
3. Rectification to an odd N pixels per lenslet, centred and unrotated (``rectify``); the
   microscope becomes ``Microscope.rectified`` (pixels of pitch / N, whole lenslets of the frame).
4. Richardson-Lucy with the Poisson-Gaussian model y ~ Poisson(H x + b) + N(0, sigma^2) by the
   shifted update (``richardson_lucy(background=b, read_noise=sigma)``): b is the residual
   background per pixel (0 after a dark frame unless given), sigma the camera's read noise
   (``camera.read_noise_e``; the interpolation of step 3 lowers it a little, which is ignored).
"""

from __future__ import annotations

import logging
import time
from typing import NamedTuple

import numpy as np

from .calibration import Calibration, CalibrationError, calibrate
from .rectification import correct_frame, rectify

__all__ = ["prepare_recorded", "reconstruct_recorded", "RecordedFrame", "RecordedResult"]

log = logging.getLogger(__name__)


class RecordedFrame(NamedTuple):
    """A recorded frame on the model's grid: ``image`` (photo-electrons, rectified; (Y, X) or
    (t, Y, X)), the rectified ``microscope``, the ``calibration`` and the rectification ``info``."""

    image: np.ndarray
    microscope: object
    calibration: Calibration
    info: dict


class RecordedResult(NamedTuple):
    """``reconstruct_recorded``: the volume, the rectified frame it came from, and timings (s)."""

    volume: np.ndarray
    frame: RecordedFrame
    seconds: dict


def _frame(a, name: str) -> np.ndarray:
    if a is None:
        return None
    arr = np.asarray(a)
    if arr.ndim != 2:
        raise CalibrationError(f"{name} has shape {arr.shape}; expected one 2-D frame (rows, cols)")
    return arr


#: A frame whose pixels fall below -OFFSET_SIGMAS sigma (more than OFFSET_FRACTION of them) after the
#: dark subtraction was recorded with another offset than the dark frame's.
OFFSET_SIGMAS = 5.0
OFFSET_FRACTION = 1e-3


def _offset_check(e: np.ndarray, sigma: float, what: str) -> tuple[np.ndarray, float]:
    """Shift a frame whose offset the dark frame does not describe.

    After (raw - dark) / gain only read noise makes pixels negative: fewer than OFFSET_FRACTION
    of them below -OFFSET_SIGMAS sigma.  More means the frame has another offset (a camera
    setting, or a background subtracted upstream): the frame is then shifted so that its
    OFFSET_FRACTION quantile sits at -3 sigma (the darkest pixels of a light field, the lenslets'
    corners, taken as receiving ~no light), with a warning giving the numbers.  Returns (frame,
    shift in e-)."""
    import warnings

    low = float(np.quantile(e, OFFSET_FRACTION))
    if low >= -OFFSET_SIGMAS * sigma:
        return e, 0.0
    shift = -3.0 * sigma - low
    frac = float(np.mean(e < -OFFSET_SIGMAS * sigma))
    warnings.warn(
        f"{100 * frac:.2g}% of the pixels lie more than {OFFSET_SIGMAS:g} sigma (sigma = {sigma:.3g} e-) below 0 after "
        f"subtracting {what} (down to {float(e.min()):.4g} e-): the frame was recorded with another offset (or had a "
        f"background removed); it is shifted by {shift:+.4g} e- so that its darkest {100 * OFFSET_FRACTION:g}% sit at "
        "-3 sigma", stacklevel=3)
    return e + shift, shift


def prepare_recorded(config, raw, *, white=None, dark=None, calibration=None, pixels_per_lenslet: int | None = None,
                     flat: bool = True) -> RecordedFrame:
    """Steps 1-3 of the module docstring.  ``calibration``: a ``Calibration`` or a path to one
    (then ``white`` is not used); else ``white`` (and optionally ``dark``) are calibrated."""
    from .api import load_microscope
    from .calibration import load_calibration

    m = load_microscope(config)
    if m.mla is None or m.kind not in ("lfm", "lfm-defocused"):
        raise CalibrationError(f"recorded frames are calibrated for kinds 'lfm' and 'lfm-defocused', not {m.kind!r}")
    arr = np.asarray(raw)
    if arr.ndim not in (2, 3):
        raise CalibrationError(f"raw frame has shape {arr.shape}; expected (rows, cols) or (t, rows, cols)")
    if tuple(arr.shape[-2:]) != tuple(m.camera.shape):
        raise CalibrationError(f"raw frame is {arr.shape[-2]} x {arr.shape[-1]} pixels but the config's camera.shape "
                               f"is {list(m.camera.shape)}; set camera.shape to the recorded frame's size")
    dark = _frame(dark, "dark frame")
    if calibration is None:
        if white is None:
            raise CalibrationError("a recorded frame needs a calibration: pass white (and dark) frames, or calibration")
        white = _frame(white, "white frame")
        if white.shape != arr.shape[-2:]:
            raise CalibrationError(f"white frame is {white.shape[0]} x {white.shape[1]} pixels but the raw frame is "
                                   f"{arr.shape[-2]} x {arr.shape[-1]}; both must come from the same camera and crop")
        cal = calibrate(white, dark, expected_pitch_px=m.mla.pitch_um / m.camera.pixel_um)
    else:
        cal = calibration if isinstance(calibration, Calibration) else load_calibration(calibration)
    cal.check_frame(arr, "raw frame")
    electrons = correct_frame(arr, cal, dark, gain_adu_per_e=m.camera.gain_adu_per_e,
                              offset_adu=None if dark is not None else m.camera.offset_adu, flat=flat)
    sigma = float(m.camera.read_noise_e)
    if dark is not None:  # the dark frame's own spread (read noise and fixed pattern), in e-
        sigma = max(sigma, float(np.std(dark.astype(np.float64))) / m.camera.gain_adu_per_e)
    electrons, shift = _offset_check(electrons, sigma, "the dark frame" if dark is not None else "camera.offset_adu")
    rect, info = rectify(electrons, cal, pixels_per_lenslet)
    info = dict(info, offset_shift_e=shift, noise_e=sigma)
    mr = m.rectified(info["n_lenslets"], info["pixels_per_lenslet"])
    log.info("recorded frame: %s; rectified to %s px (%d x %d lenslets of %d px)", cal.summary(), rect.shape[-2:],
             *info["n_lenslets"], info["pixels_per_lenslet"])
    return RecordedFrame(rect, mr, cal, info)


def reconstruct_recorded(config, raw, *, white=None, dark=None, calibration=None, iterations: int = 15,
                         background=None, read_noise=None, device: str = "auto", progress: bool = True,
                         pixels_per_lenslet: int | None = None, flat: bool = True, psf=None) -> RecordedResult:
    """Calibrate, correct, rectify and deconvolve a recorded light field (module docstring).

    Parameters
    ----------
    config : Microscope, path or preset name
        The physical microscope (``camera.calibrated = true`` for a non-integer pitch / pixel).
    raw : array (rows, cols) or (t, rows, cols)
        Camera counts (ADU).
    white, dark : arrays, optional
        White (radiometry) and dark frames of the same camera and crop.
    calibration : Calibration or path, optional
        A saved calibration instead of the white frame.
    iterations : int
        Richardson-Lucy iterations (napari-LF's default is 15).
    background : float or array, optional
        Residual background b (photo-electrons per rectified pixel); default 0.
    read_noise : float, optional
        sigma (photo-electrons); default the larger of ``camera.read_noise_e`` and the dark
        frame's spread (read noise and fixed pattern).
    psf : LightFieldPSF, optional
        Kernels of the rectified microscope (skips the PSF computation).

    Returns
    -------
    RecordedResult(volume, frame, seconds)
    """
    from optics import compute_psf

    from . import backend
    from .deconvolution import richardson_lucy
    from .scanned import make_operator

    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"iterations = {iterations!r} is invalid: expected an integer >= 0")
    dev = backend.get_device(device)
    t0 = time.perf_counter()
    frame = prepare_recorded(config, raw, white=white, dark=dark, calibration=calibration,
                             pixels_per_lenslet=pixels_per_lenslet, flat=flat)
    t1 = time.perf_counter()
    m = frame.microscope
    if psf is None:
        psf = compute_psf(m, progress=progress)
    elif psf.microscope.hash != m.hash:
        raise ValueError(f"psf belongs to another microscope (hash {psf.microscope.hash}, the rectified one's is {m.hash})")
    t2 = time.perf_counter()
    op = make_operator(psf, dev, np.float32, progress=progress)
    del psf
    t3 = time.perf_counter()
    sigma = frame.info["noise_e"] if read_noise is None else read_noise
    vol = richardson_lucy(frame.image, op, iterations, progress=progress, background=background, read_noise=sigma)
    t4 = time.perf_counter()
    seconds = {"calibrate_correct_rectify": t1 - t0, "psf": t2 - t1, "operator": t3 - t2, "richardson_lucy": t4 - t3,
               "total": t4 - t0}
    log.info("reconstruct_recorded: %s", ", ".join(f"{k} {v:.2f} s" for k, v in seconds.items()))
    return RecordedResult(vol, frame, seconds)
