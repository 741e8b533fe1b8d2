"""Reconstruction time per volume on the full camera of a design: operator build and RL iterations, separately.

A volume is what one reconstruction turns into a 3-D stack: one camera frame for the LFM, LFM 2.0
and Fourier LFM, the K^2 scan frames of a K x K scanning LFM (reconstructed jointly, one RL run).

``measure``: the reconstruction's kernels (they do not depend on the camera size) wrapped for the
full camera (``optics.psfdata.LightFieldPSF`` of the full-camera microscope), the operator built
(``reconstruction.scanned.make_operator``: a ``LightFieldOperator``, or a ``ScannedOperator`` for
"slfm", timed) and RL iterations timed on a full volume of frames (H^T 1 and the host-device copy
outside the timed iterations).  ``extrapolate``: the per-iteration time measured on the crop,
scaled by the ratio of the full-camera to the crop FLOP count of the Fourier route
(``reconstruction.cost.projection_cost``, same storage for both; for "slfm" on the phase-space grids
of K L virtual lenslets with s / K phases, the grid its operator projects on): an estimate,
labelled as such.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from optics.psfdata import LightFieldPSF
from reconstruction import backend
from reconstruction.cost import projection_cost
from reconstruction.deconvolution import richardson_lucy
from reconstruction.phasespace import PhaseSpaceViews, phase_space_rl
from reconstruction.scanned import make_operator

__all__ = ["MODES", "crop_iteration_seconds", "full_camera_seconds"]

log = logging.getLogger("benchmarks.timing")

MODES = ("auto", "measure", "extrapolate")


#: Timed runs per measurement of a short RL call (the best is kept: the machine may be shared).
TIMING_REPEATS = 3


def _time_iterations(op, frame, iterations: int, views=None) -> float:
    """Seconds per RL iteration on ``frame`` (device-resident; H^T 1 computed before the clock), or per
    pass of the phase-space RL over ``views`` (a scanning LFM)."""
    y = backend.to_device(np.asarray(frame, dtype=np.float32), op.device)

    def run(k):
        if views is not None:
            return phase_space_rl(y, views, k, progress=False)
        return richardson_lucy(y, op, iterations=k, progress=False)

    def clock(k):
        t0 = time.perf_counter()
        run(k)
        backend.synchronize(op.device)
        return time.perf_counter() - t0

    run(1)  # warm-up: plans, H^T 1 cache if any
    backend.synchronize(op.device)
    t_all = clock(iterations + 1)
    # best of TIMING_REPEATS when a run is short (one sample of a ~50 ms run was off by 5x, and the
    # difference below went negative: a Fourier LFM read 3e-10 s per iteration)
    reps = TIMING_REPEATS if t_all < 2.0 else 1
    t_all = min([t_all] + [clock(iterations + 1) for _ in range(reps - 1)])
    t_one = min(clock(1) for _ in range(reps))
    if t_all - t_one > 0.1 * t_all:  # RL's iterations are most of a call: k of k + 1 at the least set-up
        return (t_all - t_one) / iterations  # the difference removes the per-call set-up
    return t_all / (iterations + 1)  # the difference within the noise: the whole call, an upper bound


def crop_iteration_seconds(op, frame, iterations: int = 3, views=None) -> float:
    """Seconds per RL iteration of ``op`` on ``frame``, or per phase-space pass over ``views``."""
    return _time_iterations(op, frame, iterations if views is None else 1, views)


def full_camera_seconds(psf, m_full, crop_per_iteration_s: float, iterations: int, device: str,
                        mode: str = "auto", op=None) -> dict:
    """Seconds per volume of ``iterations`` RL iterations on the full camera ``m_full`` (module docstring).

    ``op``: the crop's operator; for a scanning LFM its ``base`` (the phase-space operator) gives the
    virtual grid and kernel radii of the extrapolation (without it they are derived from ``psf``).
    """
    if mode not in MODES:
        raise ValueError(f"--full-camera-timing = {mode!r} is invalid; accepted: {', '.join(MODES)}")
    if mode == "auto":
        mode = "measure" if device == "gpu" else "extrapolate"
    out = {"device": device, "device_name": backend.device_name(device), "iterations": int(iterations),
           "camera_shape": list(m_full.camera.shape)}
    if mode == "measure" and m_full.kind == "flfm":  # the reduced copy's kernels would not be the design's
        out["measure_error"] = "not measured: the Fourier LFM is measured on a reduced copy"
        mode = "extrapolate"
    if mode == "measure":
        try:
            full = LightFieldPSF(m_full, psf.z_um, psf.kernels, psf.discarded, dict(psf.meta))
            t0 = time.perf_counter()
            fop = make_operator(full, device=device)
            fviews = PhaseSpaceViews(full, device) if m_full.kind == "slfm" else None  # its phase-space RL
            backend.synchronize(device)
            build = time.perf_counter() - t0
            frame = np.ones(fop.image_shape, dtype=np.float32)  # (K^2, Y, X) for a scanning LFM
            per_it = _time_iterations(fop, frame, 2 if fviews is None else 1, fviews)
            del fop, fviews
            out.update({"method": "measured on the full camera", "operator_build_s": build,
                        "seconds_per_iteration": per_it, "seconds_per_volume": per_it * iterations})
            return out
        except (MemoryError, ValueError, RuntimeError) as e:  # too large for this device: say so, estimate
            log.warning("full-camera timing of %s failed (%s); extrapolating from the crop", m_full.name, e)
            out["measure_error"] = f"{type(e).__name__}: {e}"
    crop = psf.microscope
    nz, s, n = len(psf.z_um), crop.voxels_per_lenslet, crop.pixels_per_lenslet
    lens_crop, lens_full = tuple(crop.n_lenslets), tuple(m_full.n_lenslets)
    radii = [int(r) for r in np.atleast_1d(psf.radius_lenslets)]
    grid = "lenslet grid"
    if crop.kind == "slfm":  # the phase-space grid: K L virtual lenslets of pitch d / K, s / K phases
        k = crop.scan.steps
        if op is not None and hasattr(op, "base"):
            radii = [int(r) for r in op.base.radii]
        else:
            from optics.scan import phase_space_psf

            radii = [int(r) for r in phase_space_psf(psf).radius_lenslets]
        s = s // k
        lens_crop = (k * lens_crop[0], k * lens_crop[1])
        lens_full = (k * lens_full[0], k * lens_full[1])
        grid = f"phase-space grid: {k} L virtual lenslets per side, s / {k} phases"
    radii_full = radii
    if m_full.kind == "flfm":  # measured on a reduced copy: the full design's kernels are larger
        from optics.support import flfm_window_pixels

        radii_full = [flfm_window_pixels(m_full, float(z)) // 2 for z in psf.z_um]
    c_crop = projection_cost(nz, s, n, lens_crop, radii)
    c_full = projection_cost(nz, s, n, lens_full, radii_full)
    ratio = c_full.fourier_flops / c_crop.fourier_flops
    out.update({"method": f"extrapolated: crop seconds per iteration (per pass of the phase-space RL) x full/crop FLOP ratio (reconstruction.cost, "
                          f"{grid})",
                "flop_ratio": ratio, "operator_build_s": None,
                "seconds_per_iteration": crop_per_iteration_s * ratio,
                "seconds_per_volume": crop_per_iteration_s * ratio * iterations})
    return out
