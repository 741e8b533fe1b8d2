"""Field of view vs resolution vs depth, measured as an experiment would: ``python -m benchmarks tradeoff``.

For each design (``benchmarks.designs``: a wide-field reference and f-number-matched LFMs for two
objectives and several lenslet pitches on one camera) and each depth z, on both sides of focus:

* **protocol** (``benchmarks.protocol``), identical for every design and depth: each bead sends
  ``--photons`` detected photons (default 1e4) to the sensor, plus ``--background`` photons per
  pixel, shot and read noise of the camera model; beads at continuous off-grid (x, y, z) positions
  imaged from their exact positions by a finer model (``optics.lfpsf.sensor_pattern``), never from
  the reconstruction's kernels or depth grid; ``--repeats`` (>= 3) seeded realisations per point;
* **lateral resolution** by the two-point test (``benchmarks.twopoint``): a separation is resolved
  when >= 2/3 of the repeats resolve it (Sparrow-type test with a ``twopoint.MIN_DIP`` contrast); per
  depth the median and [min, max] over repeats; lateral and axial FWHM of single beads;
* **theory** beside it with the same criterion (``optics.theory.lateral_resolution_m(m, z, MIN_DIP)``)
  and the same usable-depth rule (``reconstruction.metrics.usable_depth_range``, the light-field
  artifact band ``theory.artifact_band_um`` spanned, once, for theory and measurement alike);
* **usable depth range** per side and in total, field of view of the full camera, resolvable voxels,
  and reconstruction time per volume on the full camera of the named device (``benchmarks.timing``:
  operator build and per-iteration time apart); the acquisition **volume rate** at ``--camera-fps``
  camera frames per second (``volume_rate``);
* **scanning LFMs** (``benchmarks.designs``: 3 x 3 and 5 x 5 scans of the N = 15 LFM's optics): the
  same photons per bead per volume split over the K^2 scan frames (``benchmarks.protocol``), all
  frames reconstructed jointly (``reconstruction.scanned.make_operator``), the artifact band of the
  scan step d / K;
* the **band at the native focal plane** of each LFM 1.0 and scanning LFM (``benchmarks.focusband``):
  the median resolution inside it against theory's d/M and against the depths where theory is
  clearly finer (the repeats are stratified over one lenslet pitch, since inside the band the
  outcome depends on where the pair falls);
* a **convergence study** (resolution vs RL iterations and vs photons) for one LFM and the
  wide-field design of the same objective, so each number can be read as limited by physics, noise
  or the solver, and the published figures (Prevedel 2014; Broxton 2013's band limit) beside ours.

Wide-field is measured on the raw camera image (a wide-field microscope does not reconstruct); its
axial FWHM from simulated through-focus stacks.  Outputs in ``--out`` (default a new
``results/tradeoff-YYYYmmdd-HHMMSS``; an existing folder is never overwritten): ``results.json``,
``results.md``, ``resolution_vs_depth.png``, ``tradeoff.png``, ``convergence.png``, and ``run.json``
with ``designs/`` (each design's entry, saved as it is measured: ``--resume FOLDER`` continues a
stopped run, ``benchmarks.resume``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from benchmarks import designs as D
from benchmarks import focusband, report, timing, twopoint
from benchmarks import protocol as P
from benchmarks.resume import DesignStore, ResumeError
from optics import theory
from optics.io import atomic_write, atomic_write_bytes
from optics.lfpsf import compute_psf
from optics.threads import ENV as THREADS_ENV
from optics.threads import cpu_threads
from reconstruction import backend, metrics
from reconstruction.phasespace import PhaseSpaceViews
from reconstruction.scanned import make_operator

log = logging.getLogger("benchmarks.tradeoff")

#: Default usable-depth threshold on the lateral (two-point) resolution, µm.
DEFAULT_THRESHOLD_UM = 4.0
#: Default camera frame rate of the volume-rate column (frames per second).
DEFAULT_CAMERA_FPS = 100.0
MIN_DIP = twopoint.MIN_DIP


def _finite(v):
    return None if v is None or not math.isfinite(v) else float(v)


def _floor(width, spacing: float):
    """A FWHM below one grid step is not resolved by the grid: report the step (an upper bound) and flag it."""
    w = _finite(width)
    if w is None:
        return None, False
    return (float(spacing), True) if w < spacing else (w, False)


def _nearest(values, targets) -> list[float]:
    v = np.asarray(values, dtype=np.float64)
    return sorted({float(v[int(np.argmin(np.abs(v - t)))]) for t in targets})


def convergence_role(design: D.Design, size: D.Size) -> bool:
    """Whether ``design`` is one of the two designs of the convergence study."""
    if design.label != D.OBJECTIVES.get(size.convergence_objective):
        return False
    # the LFM of pitch convergence_nnum (not a scanning LFM of its optics) and the wide-field design
    return design.kind == "widefield" or (design.kind == "lfm"
                                          and design.microscope.pixels_per_lenslet == size.convergence_nnum)


def volume_rate(m, camera_fps: float) -> dict:
    """Acquisition volume rate of ``m`` at ``camera_fps`` camera frames per second.

    A light-field design (LFM, LFM 2.0, Fourier LFM) records a volume in one frame: F volumes / s; a
    K x K scanning LFM needs K^2 frames: F / K^2.  A wide-field microscope records one plane per
    frame: F planes / s, i.e. F / n volumes / s for a volume of n planes (its "volume" here is the
    single plane it images; ``volume_rate_note`` says so).
    """
    f = float(camera_fps)
    if not (math.isfinite(f) and f > 0):
        raise ValueError(f"--camera-fps = {camera_fps!r} is invalid: expected camera frames per second, a number > 0")
    k2 = m.scan_steps ** 2
    if m.kind == "widefield":
        note = "one plane per camera frame (a volume of n planes takes n frames: F / n volumes / s)"
    elif k2 > 1:
        note = f"{k2} camera frames per volume ({m.scan_steps} x {m.scan_steps} scan)"
    else:
        note = "one camera frame per volume"
    return {"camera_fps": f, "frames_per_volume": int(k2), "volumes_per_second": f / k2, "volume_rate_note": note}


def artifact_band(m) -> float:
    """Half-width of the light-field artifact band about the native focal plane that the usable-depth
    rule spans (``theory.artifact_band_um``): the lenslet pitch d for the LFM 1.0, the scan step d / K
    for a K x K scanning LFM (it samples each view every d / K, as ``theory.lateral_resolution_m``
    assumes); 0 for LFM 2.0 and Fourier LFM (none excluded) and wide-field."""
    if m.kind not in ("lfm", "slfm"):
        return 0.0
    o = m.objective
    return float(theory.artifact_band_um(o.na, o.immersion_index, m.mla.pitch_um / m.scan_steps, o.magnification))


# ------------------------------------------------------------------------------------------ LFM
def measure_lfm(design: D.Design, size: D.Size, prot: P.Protocol, device: str, seed: int, index: int,
                tick, convergence: bool, full_timing: str) -> dict:
    m_rec = D.reconstruction_microscope(design, size)
    t0 = time.perf_counter()
    psf = compute_psf(m_rec, progress=False)
    t_psf = time.perf_counter() - t0
    t0 = time.perf_counter()
    # a ScannedOperator (all K^2 frames) for a scanning LFM; its kernel storage chosen for the batch
    # each point reconstructs at once (every repeat's pairs and single bead, ``twopoint.measure_point``)
    op = make_operator(psf, device=device, frames=prot.repeats * (len(size.separations) + 1))
    # a scanning LFM is reconstructed by its published phase-space RL (size.slfm_passes passes)
    views = PhaseSpaceViews(psf, device) if m_rec.kind == "slfm" else None
    iterations = size.slfm_passes if views is not None else size.iterations
    t_op = time.perf_counter() - t0
    xc, yc = twopoint.voxel_centres(m_rec)
    ctx = twopoint.Context(m_rec, P.simulation_microscope(m_rec, prot), op, xc, yc, m_rec.z_um,
                           float(m_rec.volume.z_step_um), prot, seed, index, iterations, views)
    vox = m_rec.voxel_um
    half_field = 0.5 * (xc[-1] - xc[0])
    zmax = max(abs(z) for z in design.depths_um)
    conv_depths = _nearest(design.depths_um, [f * zmax for f in size.convergence_depth_fractions]) if convergence else []
    rows, conv = [], []
    for j, z in enumerate(design.depths_um):
        t_theory = float(theory.lateral_resolution_m(m_rec, float(z), MIN_DIP))
        base = max(t_theory, 2 * vox)
        ceiling = min(0.9 * half_field, 8 * base)
        seps = twopoint.sweep(base, size.separations, 1.2 * vox, ceiling, vox)
        is_conv = float(z) in conv_depths
        row = twopoint.measure_point(ctx, j, float(z), seps,
                                     checkpoints=size.convergence_iterations if is_conv else (),
                                     photon_levels=size.convergence_photons if is_conv else (),
                                     floor_um=1.2 * vox, ceiling_um=ceiling)
        for c in row.pop("_convergence"):
            conv.append({"design": design.name, "z_um": float(z), **c})
        frame = row.pop("_frame")
        row["theory_lateral_resolution_um"] = t_theory
        lat, lat_lim = _floor(row["lateral_fwhm_um"], vox)
        ax, ax_lim = _floor(row.get("axial_resolution_um"), float(m_rec.volume.z_step_um))
        row.update({"lateral_fwhm_um": lat, "lateral_fwhm_sampling_limited": lat_lim,
                    "axial_resolution_um": ax, "axial_sampling_limited": ax_lim})
        rows.append(row)
        tick()
    band = artifact_band(m_rec)
    out = {"rows": rows, "convergence": conv, "reconstruction_shape": list(m_rec.volume_shape),
           "voxel_um": [float(m_rec.volume.z_step_um), vox, vox], "crop_px": list(m_rec.image_shape),
           "seconds_per_volume": None,
           "timing": {"psf_build_s": t_psf, "operator_build_s": t_op, "seconds_per_iteration_crop": None,
                      "full_camera": None,
                      "solver": (f"phase-space RL, {iterations} passes" if views is not None else
                                 f"joint RL, {iterations} iterations")},
           "band_um": band, "measured_as": m_rec.name}
    if full_timing is None:  # timed later, alone (``run`` with jobs > 1): the frame travels with the entry
        out["timing_frame"] = frame
    else:
        _apply_timing(out, lfm_timing(design, size, device, full_timing, frame, built=(psf, op, views)))
    return out


def lfm_timing(design: D.Design, size: D.Size, device: str, full_timing: str, frame, built=None) -> dict:
    """Reconstruction time of a light-field design: seconds per RL iteration (per phase-space pass for
    a scanning LFM) on the measured crop, for one volume ``frame``, and per volume on the full camera
    (``benchmarks.timing``).  ``built``: the measurement's (psf, operator, views); without it they are
    loaded from the PSF cache and built again (the operator build then timed here)."""
    m_rec = D.reconstruction_microscope(design, size)
    t_op = None
    if built is None:
        psf = compute_psf(m_rec, progress=False)
        t0 = time.perf_counter()
        op = make_operator(psf, device=device)
        views = PhaseSpaceViews(psf, device) if m_rec.kind == "slfm" else None
        backend.synchronize(device)
        t_op = time.perf_counter() - t0
    else:
        psf, op, views = built
    iterations = size.slfm_passes if views is not None else size.iterations
    per_it = timing.crop_iteration_seconds(op, frame, views=views)  # one volume: all K^2 frames
    full = timing.full_camera_seconds(psf, design.microscope.replace(volume=_volume_dict(m_rec)), per_it,
                                      iterations, device, full_timing, op=op)
    return {"seconds_per_iteration_crop": per_it, "seconds_per_volume": per_it * iterations, "full_camera": full,
            "operator_build_s": t_op}


def _apply_timing(meas: dict, tm: dict) -> None:
    meas["seconds_per_volume"] = tm["seconds_per_volume"]
    meas["timing"]["seconds_per_iteration_crop"] = tm["seconds_per_iteration_crop"]
    meas["timing"]["full_camera"] = tm["full_camera"]
    if tm["operator_build_s"] is not None:  # built again alone: the uncontended time
        meas["timing"]["operator_build_s"] = tm["operator_build_s"]


def _volume_dict(m) -> dict:
    v = m.volume
    return {"z_min_um": v.z_min_um, "z_max_um": v.z_max_um, "z_step_um": v.z_step_um,
            "voxels_per_lenslet": v.voxels_per_lenslet}


# ------------------------------------------------------------------------------------------ wide-field
def measure_widefield(design: D.Design, size: D.Size, prot: P.Protocol, seed: int, index: int, tick,
                      convergence: bool) -> dict:
    """Two-point resolution and FWHM of the raw wide-field image; axial FWHM from through-focus stacks."""
    m = D.reconstruction_microscope(design, size)
    o = m.objective
    xc, yc = twopoint.voxel_centres(m)
    px = m.voxel_um
    ctx = twopoint.Context(m, P.simulation_microscope(m, prot), None, xc, yc, None, float(design.z_step_um),
                           prot, seed, index, 0)
    zmax = max(abs(z) for z in design.depths_um)
    conv_depths = _nearest(design.depths_um, [f * zmax for f in size.convergence_depth_fractions]) if convergence else []
    lim = (1.2 * px, 0.4 * (xc[-1] - xc[0]))
    rows, conv = [], []
    for j, z in enumerate(design.depths_um):
        t_theory = float(theory.lateral_resolution_m(m, float(z), MIN_DIP))
        # the sweep spans the wave model and the blur-disk model: out of focus, separations far below
        # the blur only probe the rings of the defocused PSF
        geometric = float(theory.widefield_defocus_resolution_um(float(z), m.wavelength_um, o.na, o.immersion_index))
        seps = np.union1d(twopoint.sweep(max(t_theory, 2 * px), D.WIDEFIELD_SEPARATIONS, *lim, px, 0.5),
                          twopoint.sweep(max(geometric, 2 * px), size.separations, *lim, px, 0.5))
        is_conv = float(z) in conv_depths
        row = twopoint.measure_point(ctx, j, float(z), seps, photon_levels=size.convergence_photons if is_conv else (),
                                     floor_um=lim[0], quantum=0.5, ceiling_um=lim[1])
        for c in row.pop("_convergence"):
            conv.append({"design": design.name, "z_um": float(z), **c})
        row.pop("_frame")
        row["theory_lateral_resolution_um"] = t_theory
        rows.append(row)
        tick()
    zero = theory.axial_first_zero_um(m.wavelength_um, o.na, o.immersion_index)
    axial = twopoint.widefield_axial(ctx, 0.31 * px, 0.17 * px, 0.13 * zero / 8, zero, seed_key=10_000,
                                     planes=size.widefield_axial_planes)
    ax, ax_lim = _floor(axial["axial_resolution_um"], axial["axial_step_um"])
    for r in rows:
        r.update({"axial_resolution_um": ax, "axial_resolution_range_um": axial["axial_resolution_range_um"],
                  "axial_sampling_limited": ax_lim})
    return {"rows": rows, "convergence": conv, "reconstruction_shape": None, "voxel_um": [axial["axial_step_um"], px, px],
            "crop_px": list(m.image_shape), "seconds_per_volume": None, "timing": None, "band_um": 0.0}


# ------------------------------------------------------------------------------------------ per design
def best_lateral(entry: dict) -> float | None:
    """Smallest median two-point resolution over the depths inside the usable depth range (all depths
    when there is none)."""
    lo, hi = entry["usable_depth_limits_um"]
    pairs = [(z, v) for z, v in zip(entry["depths_um"], entry["lateral_resolution_um"]) if v is not None]
    inside = [v for z, v in pairs if lo is not None and hi is not None and lo - 1e-9 <= z <= hi + 1e-9]
    vals = inside or [v for _, v in pairs]
    return min(vals) if vals else None


def _depth_range(z, values, threshold_um: float, band: float) -> metrics.DepthRange:
    v = np.array([np.nan if x is None else x for x in values], dtype=np.float64)
    return metrics.usable_depth_range(np.asarray(z, dtype=np.float64), v, threshold_um, exclude_band_um=band)


def measure(design: D.Design, size: D.Size, *, device: str = "cpu", seed: int = 0,
            threshold_um: float = DEFAULT_THRESHOLD_UM, tick=lambda: None, protocol: P.Protocol | None = None,
            design_index: int = 0, convergence: bool | None = None, full_camera_timing: str = "auto",
            camera_fps: float = DEFAULT_CAMERA_FPS) -> dict:
    """Measure one design; returns its ``results.json`` entry (convergence rows under ``convergence``).

    Times are per volume (``seconds_per_volume``: one camera frame, or the K^2 frames of a scanning
    LFM); ``volumes_per_second`` is the acquisition rate at ``camera_fps`` (``volume_rate``).
    ``full_camera_timing=None`` leaves the reconstruction timing to ``finish_timing`` (the entry
    then carries its frame under ``_timing_frame``): a worker process measures, the parent times.
    """
    prot = protocol or P.Protocol()
    rate = volume_rate(design.microscope, camera_fps)
    conv = convergence_role(design, size) if convergence is None else convergence
    m = design.microscope
    o = m.objective
    t0 = time.perf_counter()
    if m.kind == "widefield":
        meas = measure_widefield(design, size, prot, seed, design_index, tick, conv)
    else:
        meas = measure_lfm(design, size, prot, device, seed, design_index, tick, conv, full_camera_timing)
    rows, band = meas["rows"], meas["band_um"]
    sensor = (m.camera.shape[0] * m.camera.pixel_um, m.camera.shape[1] * m.camera.pixel_um)
    if m.kind == "flfm":  # one elemental image (no field stop), within the objective's field
        fov = [float(theory.flfm_field_of_view_um(m.mla.pitch_um, m.lateral_magnification, o.magnification,
                                                  field_stop_um=m.mla.field_stop_um))] * 2
    else:
        fov = [float(v) for v in np.atleast_1d(theory.field_of_view_um(sensor, o.magnification))]
    z = np.array([r["z_um"] for r in rows])
    lat = [r["lateral_resolution_um"] for r in rows]
    ax = np.array([np.nan if r["axial_resolution_um"] is None else r["axial_resolution_um"] for r in rows])
    rng_ = _depth_range(z, lat, threshold_um, band)
    th = _depth_range(z, [r["theory_lateral_resolution_um"] for r in rows], threshold_um, band)
    lat_a = np.array([np.nan if v is None else v for v in lat])
    if m.kind == "widefield":
        i0 = int(np.argmin(np.abs(z)))
        sbp = theory.resolvable_voxels(fov, [0.0], lat_a[i0], 1.0)
    elif rng_.length_um > 0:
        inside = (z >= rng_.z_min_um - 1e-9) & (z <= rng_.z_max_um + 1e-9)
        sbp = theory.resolvable_voxels(fov, z[inside], lat_a[inside], ax[inside])
    else:
        sbp = 0.0
    full = (meas["timing"] or {}).get("full_camera") or {}
    zz = np.linspace(min(z.min(), 0.0), max(z.max(), 0.0), 121)
    entry = {
        "name": design.name, "kind": m.kind, "objective": design.label,
        "magnification": o.magnification, "na": o.na, "immersion_index": o.immersion_index,
        "wavelength_um": m.wavelength_um, "pixels_per_lenslet": m.pixels_per_lenslet,
        "scan_steps": m.scan_steps, "scan_order": m.scan.order if m.kind == "slfm" else None,
        "measured_as": meas.get("measured_as", m.name),
        "pitch_um": m.mla.pitch_um if m.mla is not None else None,
        "mla_focal_um": m.mla.focal_um if m.mla is not None else None,
        "camera_pixel_um": m.camera.pixel_um, "camera_shape": list(m.camera.shape),
        "fov_um": fov,
        "depths_um": [r["z_um"] for r in rows],
        "lateral_resolution_um": lat,
        "lateral_resolution_range_um": [r["lateral_resolution_range_um"] for r in rows],
        "lateral_fwhm_um": [r["lateral_fwhm_um"] for r in rows],
        "axial_resolution_um": [r["axial_resolution_um"] for r in rows],
        "theory_lateral_resolution_um": [r["theory_lateral_resolution_um"] for r in rows],
        "theory_curve": {"z_um": zz.tolist(),
                         "lateral_um": np.atleast_1d(theory.lateral_resolution_m(m, zz, MIN_DIP)).tolist()},
        "per_depth": rows,
        "artifact_band_um": band,
        "usable_depth_range_um": float(rng_.length_um),
        "usable_depth_range_per_side_um": [float(v) for v in rng_.per_side_um()],
        "usable_depth_limits_um": [_finite(rng_.z_min_um), _finite(rng_.z_max_um)],
        "usable_depth_open_ended": bool(rng_.open_low or rng_.open_high),
        "theory_usable_depth_range_um": float(th.length_um),
        "theory_usable_depth_range_per_side_um": [float(v) for v in th.per_side_um()],
        "depths_mirrored": False,
        "resolvable_voxels": float(sbp),
        "seconds_per_volume": meas["seconds_per_volume"],
        "seconds_per_volume_full_camera": full.get("seconds_per_volume"),
        **rate,
        "timing": meas["timing"],
        "measured_crop_px": meas["crop_px"], "reconstruction_shape": meas["reconstruction_shape"],
        "voxel_um": meas["voxel_um"],
        "theory": theory.theory_summary(m),
        "convergence": meas["convergence"],
        "wall_seconds": time.perf_counter() - t0,
    }
    entry["theory"]["fov_um"] = fov
    entry["best_lateral_resolution_um"] = best_lateral(entry)
    if m.kind in ("lfm", "slfm") and band > 0:  # the band about the native focal plane (benchmarks.focusband)
        in_band = theory.in_band_resolution_um(m)
        entry["focus_band"] = focusband.focus_band(rows, band, in_band)
    if size.near_focus and m.kind == "lfm" and band > 0:
        # the band at the native plane on a grid of a quarter band half-width (beads within 0.1 band of
        # the planes' nominal depths), reconstructed over +-(2 band + the size's margin planes) only
        step = band / 4
        zmax = 2 * band + size.margin_planes * step
        entry["near_focus"] = {"z_step_um": step, "artifact_band_um": band, "reconstruction_z_max_um": zmax,
                               "rows": near_focus(design, size, step, (0.0, 0.5 * band, band, 2 * band), device=device,
                                                  design_index=design_index, seed=seed, protocol=prot, z_max_um=zmax)}
        entry["near_focus"]["focus_band"] = focusband.focus_band(entry["near_focus"]["rows"], band, in_band)
    if "timing_frame" in meas:
        entry["_timing_frame"] = meas["timing_frame"]
    return entry


def finish_timing(entry: dict, design: D.Design, size: D.Size, device: str, full_camera_timing: str) -> None:
    """Time a design measured with ``full_camera_timing=None`` (``lfm_timing``, in this process) and
    fill its entry's timing fields."""
    frame = entry.pop("_timing_frame", None)
    if frame is None:
        return
    meas = {"timing": entry["timing"]}
    _apply_timing(meas, lfm_timing(design, size, device, full_camera_timing, frame))
    entry["seconds_per_volume"] = meas["seconds_per_volume"]
    entry["seconds_per_volume_full_camera"] = (meas["timing"]["full_camera"] or {}).get("seconds_per_volume")


def near_focus(design: D.Design, size: D.Size, z_step_um: float, depths_um, *, device: str = "cpu",
               design_index: int = 0, seed: int = 0, protocol: P.Protocol | None = None,
               z_max_um: float | None = None) -> list[dict]:
    """The two-point resolution of a light-field design near its native focal plane on a finer depth grid.

    The benchmark's depth grid keeps every bead at least 0.15 of a plane step from the reconstruction
    planes (no inverse crime in z), so its "z = 0" beads sit 0.15-0.4 steps from focus (0.9-2.4 um at
    the 6 um step of ``--quick`` at 20x), where the low-resolution band of an LFM 1.0 is partly filled
    in.  This measures the same design with ``z_step_um`` planes at ``depths_um`` (same protocol,
    own reconstruction grid: the design's depth range, or +-``z_max_um`` when given) and returns, per
    depth, the beads' depths and the median and per-repeat resolution beside the theory's (no
    convergence study, crop timing only).
    """
    from dataclasses import replace

    d = replace(design, z_step_um=float(z_step_um), depths_um=tuple(float(v) for v in depths_um))
    if z_max_um is not None:
        d = replace(d, z_max_um=float(z_max_um))
    e = measure(d, replace(size, near_focus=False), device=device, design_index=design_index, seed=seed,
                protocol=protocol, convergence=False, full_camera_timing="extrapolate")
    return [{"z_um": r["z_um"], "bead_z_um": [p["z_um"] for p in r["bead_positions_um"]],
             "lateral_resolution_um": r["lateral_resolution_um"],
             "lateral_resolution_per_repeat_um": r["lateral_resolution_per_repeat_um"],
             "theory_lateral_resolution_um": r["theory_lateral_resolution_um"]} for r in e["per_depth"]]


# ------------------------------------------------------------------------------------------ run
def _new_out_dir(out: str | None) -> Path:
    if out is None:
        base = Path("results")
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        p = base / f"tradeoff-{stamp}"
        k = 1
        while p.exists():
            k += 1
            p = base / f"tradeoff-{stamp}-{k}"
    else:
        p = Path(out)
        if p.exists():
            raise FileExistsError(f"--out {str(p)!r} exists; choose a new folder (results are never overwritten)")
    p.mkdir(parents=True, exist_ok=False)
    return p


def resolve_jobs(jobs, device: str, n_designs: int) -> int:
    """Designs measured side by side: ``jobs`` (an integer >= 1) or "auto" (one per CPU on the CPU, at most
    one per design; 1 on a GPU, whose memory and streams one process should own)."""
    if jobs == "auto":
        return 1 if device == "gpu" else max(1, min(cpu_threads(), n_designs))
    if isinstance(jobs, bool) or not isinstance(jobs, (int, np.integer)) or jobs < 1:
        raise ValueError(f"--jobs = {jobs!r} is invalid: expected a positive integer or 'auto'")
    return int(min(jobs, max(1, n_designs)))


def _cost(design: D.Design, size: D.Size) -> float:
    """Rough relative cost of measuring ``design`` (to start the longest first)."""
    m = design.microscope
    if m.kind == "widefield":
        return 0.5 * len(design.depths_um)
    n = min(m.pixels_per_lenslet, 15) / 7.0
    return len(design.depths_um) * n * n * m.scan_steps ** 2 * (2.0 if convergence_role(design, size) else 1.0)


_TICKS = None  # a worker process's queue of finished depths (``_worker_init``)


def _worker_init(ticks, threads: int) -> None:
    """A measuring worker: its share of the cores (``optics.threads``, BLAS) and the parent's progress queue."""
    global _TICKS
    os.environ[THREADS_ENV] = str(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)  # for the life of the process
    _TICKS = ticks


def _measure_in_worker(index: int, design: D.Design, size: D.Size, kwargs: dict) -> dict:
    return measure(design, size, design_index=index, tick=lambda: _TICKS.put(1), full_camera_timing=None, **kwargs)


def _measure_all(size, design_list, dev, jobs, bar, full_camera_timing, store, done, **kwargs) -> list[dict]:
    """Every design's entry: in this process (jobs = 1), or in ``jobs`` worker processes with
    cpu_threads() / jobs threads each, longest first, then timed here one at a time with every core
    (so that the times reported are those of the machine, not of a shared core).  ``done``: entries
    of a resumed run (``benchmarks.resume``), not measured again; each new entry is saved to
    ``store`` as soon as it is measured, and again once timed."""
    entries: list = [done.get(i) for i in range(len(design_list))]
    for i in done:
        bar.update(len(design_list[i].depths_um))
    if jobs == 1:
        for i, d in enumerate(design_list):
            if entries[i] is None:
                bar.set_postfix_str(d.name)
                entries[i] = measure(d, size, device=dev, design_index=i, tick=lambda: bar.update(1),
                                     full_camera_timing=full_camera_timing, **kwargs)
                store.save(i, entries[i])
        _time_all(entries, design_list, size, dev, full_camera_timing, store)
        return entries
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from queue import Empty

    ctx = mp.get_context("spawn")  # no fork of a process with running threads
    ticks = ctx.Queue()
    threads = max(1, cpu_threads() // jobs)
    order = sorted((i for i in range(len(design_list)) if entries[i] is None), key=lambda i: -_cost(design_list[i], size))
    bar.set_postfix_str(f"{jobs} designs side by side")
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init, initargs=(ticks, threads)) as pool:
        futures = {pool.submit(_measure_in_worker, i, design_list[i], size, {"device": dev, **kwargs}): i
                   for i in order}
        pending = set(futures)
        try:
            while pending:
                finished, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                try:
                    while True:
                        bar.update(ticks.get_nowait())
                except Empty:
                    pass
                for f in finished:
                    i = futures[f]
                    entries[i] = f.result()  # a worker's exception is raised here
                    store.save(i, entries[i])
        except BaseException:  # an error or Ctrl-C: the designs not started are not started
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    bar.set_postfix_str("timing")
    _time_all(entries, design_list, size, dev, full_camera_timing, store)
    return entries


def _time_all(entries, design_list, size, dev, full_camera_timing, store) -> None:
    """Time, one at a time, the entries measured without their reconstruction time (``finish_timing``)."""
    for i, (e, d) in enumerate(zip(entries, design_list)):
        if "_timing_frame" in e:
            finish_timing(e, d, size, dev, full_camera_timing)
            store.timed(i, e)


def run(size: D.Size, design_list: list[D.Design], out_dir: Path, *, device: str = "auto", seed: int = 0,
        threshold_um: float = DEFAULT_THRESHOLD_UM, progress: bool = True, plots: bool = True,
        protocol: P.Protocol | None = None, full_camera_timing: str = "auto",
        camera_fps: float = DEFAULT_CAMERA_FPS, jobs=1, resume: bool = False) -> dict:
    """Measure ``design_list`` and write the outputs into ``out_dir`` (which must exist and be empty,
    or, with ``resume``, hold a stopped run of the same settings and code: ``benchmarks.resume``).

    Each design's entry is saved in ``out_dir/designs`` as soon as it is measured; a resumed run
    measures only the designs not saved there (a design interrupted half-way is measured again), and
    ``results.json`` then lists the loaded ones under ``resumed_designs``.

    ``jobs``: designs measured side by side in worker processes (``resolve_jobs``; "auto": one per
    CPU).  They are spawned (not forked), so a script that calls this with jobs > 1 must do so under
    ``if __name__ == "__main__":`` (notebooks and ``python -m benchmarks`` need nothing); a worker's
    error is raised here and the designs not yet started are cancelled.  The results do not depend on it (each design's beads and noise come from its own seeded
    streams; reconstructed values agree to the float32 round-off of another thread split); the
    reconstruction times are measured afterwards in this process, one design at a time.
    """
    from tqdm.auto import tqdm

    prot = protocol or P.Protocol()
    dev = backend.get_device(device)
    njobs = resolve_jobs(jobs, dev, len(design_list))
    manifest = {"benchmark": "tradeoff", "size": size.name, "device": dev, "seed": seed, "threshold_um": threshold_um,
                "protocol": prot.as_dict(), "full_camera_timing": full_camera_timing, "camera_fps": camera_fps,
                "designs": [[d.name, d.microscope.hash, list(d.depths_um)] for d in design_list]}
    store = DesignStore(out_dir, manifest, resume=resume)
    done = store.done()
    t0 = time.perf_counter()
    started = datetime.now().isoformat(timespec="seconds")
    total = sum(len(d.depths_um) for d in design_list)
    bar = tqdm(total=total, desc="tradeoff", unit="depth", disable=not progress or None)
    try:
        entries = _measure_all(size, design_list, dev, njobs, bar, full_camera_timing, store, done, seed=seed,
                               threshold_um=threshold_um, protocol=prot, camera_fps=camera_fps)
    finally:
        bar.close()
    convergence = [c for e in entries for c in e.pop("convergence")]
    res = {
        "benchmark": "tradeoff", "size": size.name, "device": dev, "device_name": backend.device_name(dev),
        "started": started, "threshold_um": threshold_um, "seed": seed, "jobs": njobs,
        "protocol": {**prot.as_dict(), "simulation_model": prot.simulation_model(), "mirrored_z": False,
                     "placement": P.PLACEMENT, "camera_read_noise_e": sorted({float(d.microscope.camera.read_noise_e) for d in design_list}),
                     "resolved_fraction": metrics.RESOLVED_FRACTION, "min_dip": MIN_DIP},
        "settings": {"description": size.describe(), "crop_lenslets": size.crop_lenslets,
                     "max_voxels_per_lenslet": size.max_voxels_per_lenslet, "iterations": size.iterations,
                     "separation_factors": list(size.separations), "min_dip": MIN_DIP,
                     "widefield_pixel_um": D.WIDEFIELD_PIXEL_UM, "reduced": report.reductions(size),
                     "camera_fps": float(camera_fps), "slfm_scans": list(size.slfm_scans)},
        "designs": entries,
        "convergence": convergence,
    }
    res["published"] = report.published_comparison(entries, convergence, size)
    res["notes"] = report.notes(res, size)
    res["wall_seconds"] = time.perf_counter() - t0  # of this session alone when resumed
    res["resumed_designs"] = [design_list[i].name for i in sorted(done)]
    res["out"] = str(out_dir)
    write_outputs(res, out_dir, plots=plots)
    return res


def write_outputs(res: dict, out_dir: Path, *, plots: bool = True) -> None:
    text = json.dumps(res, indent=1, default=float)
    atomic_write_bytes(out_dir / "results.json", text.encode())
    atomic_write_bytes(out_dir / "results.md", report.render_markdown(res).encode())
    if plots:
        from benchmarks import plots as PL

        figs = (("resolution_vs_depth.png", PL.resolution_vs_depth_figure(res["designs"], res["threshold_um"])),
                ("tradeoff.png", PL.tradeoff_figure(res["designs"], res["threshold_um"])),
                ("convergence.png", PL.convergence_figure(res["convergence"])))
        for name, fig in figs:
            atomic_write(out_dir / name, lambda t, f=fig: f.savefig(t, format="png", dpi=110))
            PL.close(fig)


# ------------------------------------------------------------------------------------------ CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks tradeoff",
                                description="Field of view vs resolution vs depth, measured under one photometric "
                                            "protocol for every design and depth (the main job).")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true",
                   help="reduced size for a laptop, same protocol: N = 7 and 15 only, a 7-lenslet crop, coarser "
                        "voxels, 6 LFM depths, 6 separations, 20 RL iterations, a small convergence study, "
                        "the other families at 4 depths and a 3x3 scanning LFM at 3 (measured 4 min 10 s - 4 min 41 s on 2 cores "
                        "with a cold PSF cache, 10 designs, 2 side by side (--jobs auto); the scanning LFM ~2.4 min of it)")
    g.add_argument("--smallest", action="store_true", help="the test-suite size (one objective, about 1 min)")
    p.add_argument("--out", default=None, help="output folder (new; default results/tradeoff-YYYYmmdd-HHMMSS)")
    p.add_argument("--resume", default=None, metavar="FOLDER",
                   help="continue a stopped run in FOLDER (its output folder), measuring only the designs it has not "
                        "saved; every other option must be as in that run (checked, with the code's digest)")
    p.add_argument("--designs", nargs="+", default=None, metavar="CONFIG",
                   help="config files (TOML/JSON) or preset names to measure instead of the standard sweep")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"),
                   help="reconstruction device: auto uses a CUDA GPU when present (default auto)")
    p.add_argument("--photons", type=float, default=P.DEFAULT_PHOTONS,
                   help=f"detected photons per bead per volume, the same for every design and depth (a scanning LFM "
                        f"splits them over its K^2 frames; default {P.DEFAULT_PHOTONS:g})")
    p.add_argument("--background", type=float, default=0.0,
                   help="uniform background, detected photons per pixel per volume (split over a scanning LFM's "
                        "K^2 frames like the beads' photons; default 0)")
    p.add_argument("--repeats", type=int, default=3,
                   help="independent realisations (positions and noise) per design and depth, >= 3 (default 3)")
    p.add_argument("--full-camera-timing", default="auto", choices=timing.MODES,
                   help="seconds per volume on the full camera: measure (build the full-camera operator), "
                        "extrapolate (crop time x FLOP ratio) or auto (measure on a GPU, else extrapolate)")
    p.add_argument("--camera-fps", type=float, default=DEFAULT_CAMERA_FPS,
                   help="camera frame rate of the volume-rate column: F volumes/s for one-frame light-field designs, "
                        f"F / K^2 for a K x K scanning LFM, F planes/s for wide-field (default {DEFAULT_CAMERA_FPS:g})")
    p.add_argument("--jobs", default="auto", type=_jobs_arg,
                   help="designs measured side by side in worker processes, each with its share of the cores "
                        "(default auto: one per CPU on the CPU, 1 on a GPU); results do not depend on it, and "
                        "reconstruction times are measured afterwards one design at a time with every core")
    p.add_argument("--threshold-um", type=float, default=DEFAULT_THRESHOLD_UM,
                   help=f"lateral resolution threshold of the usable depth range (default {DEFAULT_THRESHOLD_UM} um)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of bead positions and noise; each (design, depth, repeat) has its own stream (default 0)")
    p.add_argument("--no-plots", action="store_true", help="write results.json and results.md only, no PNG plots")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress messages (INFO)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    size = D.SIZES["quick" if args.quick else "smallest" if args.smallest else "full"]
    if not (math.isfinite(args.threshold_um) and args.threshold_um > 0):
        print(f"error: --threshold-um = {args.threshold_um} is invalid: expected a number > 0", file=sys.stderr)
        return 2
    if not (math.isfinite(args.camera_fps) and args.camera_fps > 0):
        print(f"error: --camera-fps = {args.camera_fps} is invalid: expected camera frames per second, a number > 0",
              file=sys.stderr)
        return 2
    try:
        prot = P.Protocol(photons_per_bead=args.photons, background_photons_per_pixel=args.background,
                          repeats=args.repeats)
        dev = backend.get_device(args.device)
        if args.designs:
            design_list = [D.design_from_config(_config_path(c), size) for c in args.designs]
        else:
            design_list = D.standard_designs(size)
        if args.resume is not None and args.out is not None:
            raise ValueError("--resume FOLDER writes into FOLDER: give --out or --resume, not both")
        if args.resume is not None:
            out_dir = Path(args.resume)
            if not out_dir.is_dir():
                raise FileNotFoundError(f"--resume {args.resume!r}: no such folder")
        else:
            out_dir = _new_out_dir(args.out)
    except (ValueError, FileExistsError, FileNotFoundError, backend.DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    njobs = resolve_jobs(args.jobs, dev, len(design_list))
    print(f"tradeoff: {size.describe()}; {len(design_list)} designs ({njobs} side by side); device {dev}; "
          f"output {out_dir}", flush=True)
    print(f"tradeoff: protocol {prot.photons_per_bead:g} detected photons per bead per volume, background "
          f"{prot.background_photons_per_pixel:g} photons/pixel per volume (a scanning LFM splits both over its "
          f"K^2 frames), {prot.repeats} repeats, both signs of z", flush=True)
    if size.name != "full":
        print(f"tradeoff: reduced settings ({size.name}): {'; '.join(report.reductions(size))}", flush=True)
    try:
        res = run(size, design_list, out_dir, device=dev, seed=args.seed, threshold_um=args.threshold_um,
                  progress=not args.no_progress, plots=not args.no_plots, protocol=prot,
                  full_camera_timing=args.full_camera_timing, camera_fps=args.camera_fps, jobs=args.jobs,
                  resume=args.resume is not None)
    except ResumeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(report.summary(res))
    return 0


def _jobs_arg(v: str):
    if v == "auto":
        return v
    try:
        n = int(v)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"--jobs = {v!r} is invalid: expected a positive integer or 'auto'")
    return n


def _config_path(c: str) -> str:
    if os.path.exists(c):
        return c
    from optics import presets

    return str(presets.path(c))  # a preset name; raises a ConfigError (ValueError) naming the accepted ones
