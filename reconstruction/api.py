"""One call from a microscope config and a camera frame to a deconvolved volume.

``reconstruct(config, image)`` loads the config (a file, a preset name or a ``Microscope``),
validates the image against it *before any heavy work*, computes (or loads from the cache) the
light-field PSF kernels with ``optics.compute_psf``, wraps them in a ``LightFieldOperator`` on the
chosen device and runs Richardson-Lucy (``reconstruction.deconvolution``).

Input conventions (decided here, used by ``python -m reconstruction``):

* Shape.  A frame must have ``m.image_shape`` (whole lenslets), a time series
  ``(t, *m.image_shape)``; for a scanning LFM ("slfm") a frame is the (K^2, *m.image_shape) stack
  of its scan frames in acquisition order (``optics.scan``), reconstructed jointly
  (``reconstruction.scanned``).  A full-sensor frame (``m.camera.shape``, larger than the image when the
  sensor is not a whole number of lenslets) is centre-cropped to ``m.image_shape``: the optical
  axis passes through the middle lenslet (``optics.config.Microscope``).  Anything else is an error.
* Units.  RL needs a linear, offset-free, non-negative image.  ``raw=True`` treats the input as
  camera digital numbers (ADU) and converts them to photons at the sensor,
  ``(ADU - camera.offset_adu) / (camera.gain_adu_per_e * camera.quantum_efficiency)``; the read
  noise makes dark pixels slightly negative, and ``reconstruct`` keeps them and gives RL the
  camera's read noise (``raw_read_noise``; ``read_noise=0`` clips at 0 instead, the biased old way).  ``raw=False`` takes the values as they are:
  round-off-sized negatives (>= -1e-5 of the frame's peak, e.g. of a forward projection) are
  clipped to 0, larger ones are refused (``reconstruction.checks.clip_roundoff_negatives``).
  ``raw=None`` (default) decides from the dtype: integer images are raw camera frames (what
  ``optics.simulate`` and cameras write), floating-point images are linear.  With raw frames the
  volume comes out in the units of ``optics.simulate``'s photometric convention times
  ``photons_per_voxel`` (photons sent into the objective per voxel).
* NaN or infinite values are errors in every mode.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from . import backend
from .checks import clip_roundoff_negatives
from .deconvolution import richardson_lucy
from .scanned import make_operator

__all__ = ["reconstruct", "load_microscope", "validate_image", "raw_read_noise", "DAOResult"]

log = logging.getLogger(__name__)


def load_microscope(config):
    """A ``Microscope`` from a Microscope, a config file path (.toml/.json) or a preset name."""
    from optics.config import ConfigError, Microscope, load_config

    if isinstance(config, Microscope):
        return config
    if isinstance(config, (str, os.PathLike)):
        p = Path(config)
        if p.suffix.lower() in (".toml", ".json") or p.exists():
            if not p.is_file():
                raise FileNotFoundError(f"config file {str(p)!r} does not exist")
            return load_config(p)
        from optics import presets

        return presets.get(str(config))
    raise ConfigError(f"config = {config!r} is invalid: expected a Microscope, a .toml/.json path or a preset name")


def validate_image(m, image, *, raw: bool | None = None, expect: str = "any",
                   scan_stacks: bool = True, clip: bool = True) -> tuple[np.ndarray, bool]:
    """Check and convert a frame or time series for microscope ``m`` (see the module conventions).

    Parameters
    ----------
    m : Microscope
    image : array_like, (Y, X) or (t, Y, X); (K^2, Y, X) or (t, K^2, Y, X) for "slfm"
        ``m.image_shape``, ``m.camera.shape`` (centre-cropped) or a stack of either; a scanning
        LFM's frame is its K^2 scan frames in acquisition order (``optics.scan``).
    raw : bool or None
        Camera ADU (True), linear values (False), or decide by dtype (None: integers are raw).
    expect : {"any", "frame", "stack"}
        Refuse a stack where a frame is expected, and vice versa.
    scan_stacks : bool
        "slfm": a frame is the (K^2, Y, X) scan stack (True) or one camera frame (False: a rolling
        scan's (T, Y, X) series).
    clip : bool
        True: raw frames are clipped at 0 after the offset subtraction, linear ones refused if
        negative beyond round-off.  False: negatives are kept (the read noise's; for
        ``richardson_lucy(read_noise=...)``, which bounds them, see ``raw_read_noise``).

    Returns
    -------
    image : ndarray of float32, ``m.image_shape`` or (t, *m.image_shape) ((K^2, ...) for "slfm")
    is_stack : bool
    """
    if expect not in ("any", "frame", "stack"):
        raise ValueError(f"expect = {expect!r} is invalid: expected 'any', 'frame' or 'stack'")
    arr = np.asarray(image)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"image has dtype {arr.dtype}; expected a real (integer or float) array")
    want = tuple(m.image_shape)
    sensor = tuple(m.camera.shape)
    k2 = m.scan_steps ** 2
    scan = (k2,) if m.kind == "slfm" and scan_stacks else ()  # a scanning LFM's frame is its K^2 scan frames
    what = f"({k2}, Y, X) scan frames of" if scan else "a frame of"
    accepted = (f"{what} {want} (the image of whole lenslets) or {sensor} (the full sensor, centre-cropped), "
                f"or (t, ...) of either")
    if arr.ndim not in (2 + len(scan), 3 + len(scan)) or (scan and arr.shape[-3] != k2):
        raise ValueError(f"image has shape {arr.shape}; expected {accepted}")
    is_stack = arr.ndim == 3 + len(scan)
    frame_shape = arr.shape[-2:]
    if frame_shape == sensor and sensor != want:
        oy, ox = (sensor[0] - want[0]) // 2, (sensor[1] - want[1]) // 2
        log.info("full-sensor frame %s centre-cropped to the lenslet image %s at offset (%d, %d)", sensor, want, oy, ox)
        arr = arr[..., oy: oy + want[0], ox: ox + want[1]]
    elif frame_shape != want:
        raise ValueError(f"image has shape {arr.shape}; expected {accepted}")
    one = (*scan, *want)
    if is_stack and expect == "frame":
        raise ValueError(f"image has shape {arr.shape}, a stack of {arr.shape[0]} frames, but a single frame "
                         f"{one} was expected (pass a stack on purpose with --stack / expect='stack')")
    if not is_stack and expect == "stack":
        raise ValueError(f"image has shape {arr.shape}, a single frame, but a stack (t, *{one}) was expected")
    if is_stack and arr.shape[0] < 1:
        raise ValueError(f"image has shape {arr.shape}: an empty stack")
    raw = is_raw(arr, raw)
    out = arr.astype(np.float32)
    if not np.isfinite(out).all():
        raise ValueError("image contains NaN or infinite values; expected finite values")
    if raw:
        cam = m.camera
        out -= np.float32(cam.offset_adu)
        out /= np.float32(cam.gain_adu_per_e * cam.quantum_efficiency)
        if clip:
            np.maximum(out, 0, out=out)
    elif clip:  # round-off negatives (e.g. of a forward projection) are clipped to 0, real ones refused
        out = clip_roundoff_negatives(out, hint="expected a linear image >= 0 (for a raw camera frame use "
                                      "raw=True / --raw to subtract camera.offset_adu)")
    return out, is_stack


def is_raw(image, raw: bool | None) -> bool:
    """The units rule of the module docstring: ``raw``, or integers are raw camera frames."""
    return bool(np.issubdtype(np.asarray(image).dtype, np.integer)) if raw is None else bool(raw)


def raw_read_noise(m) -> float:
    """The camera's read noise in the units of a raw frame converted by ``validate_image``
    (photons at the sensor, ``(ADU - offset) / (gain QE)``): electrons are Poisson, so the shift
    y_e + sigma_e^2 of ``richardson_lucy`` is y + sigma_e^2 / QE in photons, sigma_e / sqrt(QE)."""
    cam = m.camera
    return float(cam.read_noise_e) / float(np.sqrt(cam.quantum_efficiency))


def reconstruct(
    config,
    image,
    *,
    iterations: int = 8,
    device: str = "auto",
    filter=None,
    progress: bool = True,
    psf=None,
    raw: bool | None = None,
    expect: str = "any",
    checkpoint=None,
    checkpoint_every: int = 10,
    callback=None,
    frames_per_batch: int | None = None,
    method: str | None = None,
    dao: bool = False,
    rolling: float | None = None,
    dao_subfields: int = 1,
    background=None,
    read_noise=None,
    tiles=None,
):
    """Deconvolve a light-field frame (or a time series) of the microscope described by ``config``.

    Parameters
    ----------
    config : Microscope, path or str
        A ``Microscope``, a .toml/.json config file, or a preset name (``optics.presets.names()``).
    image : array_like, (Y, X) or (t, Y, X)
        See the module docstring for accepted shapes and units (``validate_image``).
    iterations : int
        Richardson-Lucy iterations.
    device : {"auto", "cpu", "gpu"}
    filter : None, "none" or "lanczos"
        S19 depth-adaptive anti-aliasing filter after each iteration (light-field only).
    progress : bool
        Progress bars (PSF computation, RL iterations), only on a terminal.
    psf : optics.LightFieldPSF, optional
        Precomputed kernels of this microscope (skips ``optics.compute_psf``).
    raw : bool or None
        Camera ADU (True), linear (False), by dtype (None).
    expect : {"any", "frame", "stack"}
    checkpoint, checkpoint_every, callback
        Passed to ``richardson_lucy``.  A stack deconvolved in several batches checkpoints each
        batch to its own file (``NAME.batchK.npz``).  The phase-space RL checkpoints after every
        pass (``checkpoint_every`` does not apply); DAO after every round (``reconstruction.dao.run_dao``).
    frames_per_batch : int, optional
        Frames of a time series deconvolved together (batched through the operator).  Default:
        as many as keep the RL working set (about 6 volumes per frame) under 4 GiB.
    method : {None, "joint", "phase-space"}
        Scanning LFM only: "joint" (default) is RL over all scan frames with the exact operator
        (``reconstruction.scanned``); "phase-space" the published view-by-view ordered-subset RL
        (``reconstruction.phasespace``; ``iterations`` passes over the views, each worth many
        joint iterations).  Other kinds take None or "joint".
    dao : bool or int
        Scanning LFM: digital adaptive optics (``reconstruction.dao.run_dao``; implies
        "phase-space"): estimate the pupil aberration from the views and correct it, in
        ``reconstruction.dao.DEFAULT_ROUNDS`` rounds (True) or that many (an int).
    dao_subfields : int
        DAO in S x S sub-fields of the field of view (multi-site: an aberration that varies across
        the field); 1 (default): one.

    background : float or array, optional
        Known background b of the data model y ~ Poisson(H x + b) (``richardson_lucy``), in the
        units of the converted image (photons for raw frames).  Joint RL only.
    read_noise : float, optional
        Gaussian read noise sigma in the image's units (joint RL only; ``richardson_lucy``'s shift).
        Default for raw frames: the camera's (``raw_read_noise``), and the offset-subtracted frame is
        not clipped at 0 (clipping biases dim regions upwards); for linear images none.  Pass 0 to
        clip raw frames as before.
    tiles : None, "auto" or int
        Deconvolve each frame in independent tiles of that many lenslets with halos of the kernels'
        reach (``reconstruction.tiling``; "auto": the largest that fits the memory available, and
        smaller after an out-of-memory error).  Periodic light-field kinds, joint RL, no checkpoint.
    rolling : float, optional
        Scanning LFM: ``image`` is a rolling scan, a (T, Y, X) series whose frame i was taken at scan
        position i mod K^2; every frame t gives a volume from the K^2 frames around it, weighted
        ``rolling``^|i - t| (``reconstruction.scanned.rolling_windows``; the published 0.9 is
        ``ROLLING_BASE``), by the weighted joint RL.

    Returns
    -------
    ndarray of float32, (nz, Y', X') = ``m.volume_shape``, or (t, nz, Y', X') for a time series.
    With ``dao=True``: ``DAOResult(volume, aberration)`` (``reconstruction.dao.Aberration``).
    """
    m = load_microscope(config)
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"iterations = {iterations!r} is invalid: expected an integer >= 0")
    if filter not in (None, "none", "lanczos"):
        raise ValueError(f"filter = {filter!r} is invalid: expected None, 'none' or 'lanczos'")
    if filter == "lanczos" and m.kind != "lfm":
        raise ValueError(f"filter = 'lanczos' is invalid for microscope.kind = {m.kind!r}: it is derived for "
                         "'lfm' (Stefanoiu 2019, MLA at the native image plane); expected None or 'none'")
    method = _check_method(m, method, dao, checkpoint, filter)
    if isinstance(dao_subfields, bool) or not isinstance(dao_subfields, (int, np.integer)) or dao_subfields < 1:
        raise ValueError(f"dao_subfields = {dao_subfields!r} is invalid: expected an integer >= 1")
    if dao_subfields > 1 and not dao:
        raise ValueError(f"dao_subfields = {dao_subfields} is invalid without dao: it sets DAO's sub-fields")
    if rolling is not None:
        if m.kind != "slfm" or method != "joint":
            raise ValueError(f"rolling = {rolling!r} is invalid here: a rolling scan is reconstructed by the joint RL of "
                             f"a scanning LFM (kind 'slfm', method 'joint'); got kind {m.kind!r}, method {method!r}")
        if not (isinstance(rolling, (int, float)) and not isinstance(rolling, bool) and 0 < rolling <= 1):
            raise ValueError(f"rolling = {rolling!r} is invalid: expected the weight base, a number in (0, 1]")
        if expect == "frame":
            raise ValueError("rolling needs a (T, Y, X) series, but expect = 'frame'")
    if method != "joint" and (background is not None or read_noise):
        raise ValueError(f"background / read_noise are for the joint Richardson-Lucy; method {method!r} does not take them")
    if read_noise is None and method == "joint" and is_raw(image, raw):
        read_noise = raw_read_noise(m)
    y, is_stack = validate_image(m, image, raw=raw, expect="stack" if rolling is not None else expect,
                                 scan_stacks=rolling is None, clip=not read_noise)
    if rolling is not None and y.shape[0] < m.scan_steps**2:
        raise ValueError(f"image has {y.shape[0]} frames: a rolling scan needs at least K^2 = {m.scan_steps**2}")
    if frames_per_batch is not None and (isinstance(frames_per_batch, bool)
                                         or not isinstance(frames_per_batch, (int, np.integer)) or frames_per_batch < 1):
        raise ValueError(f"frames_per_batch = {frames_per_batch!r} is invalid: expected an integer >= 1")
    dev = backend.get_device(device)
    if psf is None:
        from optics import compute_psf

        psf = compute_psf(m, progress=progress)
    elif psf.microscope.hash != m.hash:
        raise ValueError(f"psf belongs to another microscope (hash {psf.microscope.hash}, expected {m.hash})")
    if method == "phase-space":
        return _phase_space(y, psf, dev, iterations, dao, progress, callback, dao_subfields, checkpoint)
    if tiles is not None:
        return _tiled(y, is_stack, psf, dev, iterations, tiles, m, method, checkpoint, rolling, filter,
                      dict(background=background, read_noise=read_noise, callback=callback))
    t = y.shape[0] if is_stack else 1
    if is_stack and rolling is None and frames_per_batch is None:
        # about 6 volumes per frame, and 2 per scan position for a scanning LFM's shifted copies
        per_frame = 6 + (2 * m.scan_steps**2 if m.kind == "slfm" else 0)
        frames_per_batch = max(1, int(4 * 2**30 // (per_frame * 4 * int(np.prod(m.volume_shape)))))
    # the kernel storage is chosen for the frames each projection will carry (``LightFieldOperator``)
    batch = 1 if rolling is not None else min(t, frames_per_batch or 1)
    op = make_operator(psf, dev, np.float32, progress=progress, frames=batch)
    del psf
    if filter in (None, "none"):  # a Fourier LFM's field stop: the volume outside it stays empty
        from .filters import FieldMask

        filter = FieldMask.for_microscope(m, op.device) or filter
    kwargs = dict(filter=filter, progress=progress, checkpoint_every=checkpoint_every, callback=callback,
                  background=background, read_noise=read_noise)
    if not is_stack:
        return richardson_lucy(y, op, iterations, checkpoint=checkpoint, **kwargs)
    if rolling is not None:
        return _rolling(y, op, m, iterations, rolling, frames_per_batch, kwargs)
    if frames_per_batch >= t:
        return richardson_lucy(y, op, iterations, checkpoint=checkpoint, **kwargs)
    out = np.empty((t, *m.volume_shape), dtype=np.float32)
    for k, t0 in enumerate(range(0, t, frames_per_batch)):
        t1 = min(t, t0 + frames_per_batch)
        ck = None
        if checkpoint is not None:
            p = Path(checkpoint)
            ck = p.with_name(f"{p.stem}.batch{k}{p.suffix or '.npz'}")
        log.info("reconstruct: frames %d..%d of %d", t0, t1 - 1, t)
        out[t0:t1] = richardson_lucy(y[t0:t1], op, iterations, checkpoint=ck, **kwargs)
    return out


def _tiled(y, is_stack, psf, dev, iterations, tiles, m, method, checkpoint, rolling, filter, kwargs):
    """``reconstruct(..., tiles=...)``: every frame by ``tiling.tiled_richardson_lucy``."""
    from .tiling import tiled_richardson_lucy

    if m.shift_invariant or m.kind == "slfm" or method != "joint" or rolling is not None:
        raise ValueError(f"tiles = {tiles!r} is for the joint RL of the periodic light-field kinds ('lfm', "
                         f"'lfm-defocused'), not kind {m.kind!r} / method {method!r}"
                         + ("; a Fourier LFM's PSF spans the sensor: split its depths over dask workers instead "
                            "(reconstruction.depthsplit, --depth-groups)" if m.kind == "flfm" else ""))
    if checkpoint is not None or filter not in (None, "none"):
        raise ValueError("tiles cannot be combined with checkpoint or filter")
    if tiles != "auto" and (isinstance(tiles, bool) or not isinstance(tiles, (int, np.integer)) or tiles < 1):
        raise ValueError(f"tiles = {tiles!r} is invalid: expected None, 'auto' or a number of lenslets >= 1")
    frames = y if is_stack else y[None]
    out = np.empty((len(frames), *m.volume_shape), dtype=np.float32)
    for t, frame in enumerate(frames):
        out[t], info = tiled_richardson_lucy(psf, frame, iterations, tile_lenslets=None if tiles == "auto" else int(tiles),
                                             device=dev, **kwargs)
        log.info("reconstruct: frame %d in %d tiles of %d lenslets (halo %d)", t, info["tiles"],
                 info["core_lenslets"], info["halo_lenslets"])
    return out if is_stack else out[0]


class DAOResult(NamedTuple):
    """``reconstruct(..., dao=True)``: the volume and the aberration DAO estimated and corrected."""

    volume: np.ndarray
    aberration: object  # reconstruction.dao.Aberration


def _check_method(m, method, dao: bool, checkpoint, filter) -> str:
    """The reconstruction method, validated for the kind before any heavy work."""
    if method not in (None, "joint", "phase-space"):
        raise ValueError(f"method = {method!r} is invalid: expected None, 'joint' or 'phase-space'")
    if not (isinstance(dao, bool) or (isinstance(dao, (int, np.integer)) and dao >= 1)):
        raise ValueError(f"dao = {dao!r} is invalid: expected True, False or a number of rounds >= 1")
    if m.kind != "slfm" and (method == "phase-space" or dao):
        what = "dao = True" if dao else "method = 'phase-space'"
        raise ValueError(f"{what} is invalid for microscope.kind = {m.kind!r}: the view-by-view reconstruction and "
                         "digital adaptive optics are for the scanning LFM ('slfm'), whose views are sampled "
                         "K times per lenslet")
    if dao and method == "joint":
        raise ValueError("dao = True needs method = 'phase-space' (DAO corrects the views one by one); "
                         "leave method unset or pass 'phase-space'")
    method = "phase-space" if dao else (method or "joint")
    if method == "phase-space" and filter not in (None, "none"):
        raise ValueError(f"filter = {filter!r} is invalid with method = 'phase-space': expected None or 'none'")
    return method


def _phase_space(y, psf, dev, iterations: int, dao, progress: bool, callback, subfields: int = 1, checkpoint=None):
    from .dao import run_dao
    from .phasespace import PhaseSpaceViews, phase_space_rl

    if dao:
        return DAOResult(*run_dao(y, psf, dev, iterations, rounds=dao_rounds_of(dao), progress=progress,
                                  callback=callback, subfields=subfields, checkpoint=checkpoint))
    views = PhaseSpaceViews(psf, dev, np.float32, progress=progress)
    del psf
    return phase_space_rl(y, views, iterations, progress=progress, callback=callback, checkpoint=checkpoint)


def dao_rounds_of(dao) -> int:
    """``dao=True`` -> the default rounds of ``reconstruction.dao.run_dao``; an int -> that many."""
    from .dao import DEFAULT_ROUNDS

    return DEFAULT_ROUNDS if dao is True else int(dao)


def _rolling(y, op, m, iterations: int, base: float, frames_per_batch, kwargs):
    """Volumes of a rolling scan, a batch of output times at a time (each needs K^2 frames)."""
    from .scanned import rolling_windows

    t, k2 = y.shape[0], m.scan_steps**2
    per = frames_per_batch or max(1, int(2 * 2**30 // ((6 + 2 * k2) * 4 * int(np.prod(m.volume_shape)))))
    out = np.empty((t, *m.volume_shape), dtype=np.float32)
    for t0 in range(0, t, per):
        t1 = min(t, t0 + per)
        stacks, weights = rolling_windows(y, m.scan_steps, t0, t1, base)
        log.info("reconstruct: rolling scan, volumes %d..%d of %d", t0, t1 - 1, t)
        out[t0:t1] = richardson_lucy(stacks, op, iterations, weights=weights, **kwargs)
    return out
