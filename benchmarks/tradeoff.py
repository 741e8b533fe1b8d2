"""Field of view vs resolution vs depth, measured: ``python -m benchmarks tradeoff [--quick] [--out DIR]``.

For each design (``benchmarks.designs``: a wide-field reference and f-number-matched LFMs for two
objectives and several lenslet pitches on one camera) and each measured depth z:

* lateral resolution by a two-point test: two beads a distance apart along x at depth z are
  simulated through a finer model than the reconstruction (a phantom grid with 2s+1 instead of s
  voxels per lenslet, more field samples per pixel, beads off the reconstruction grid, shot and
  read noise), reconstructed
  with Richardson-Lucy over the whole depth range, and called resolved by the Sparrow test on the
  x profile through them (``reconstruction.metrics.sparrow_resolved``, a dip of at least
  ``MIN_DIP`` of the lower peak as noise margin); the resolution is the smallest separation of the
  sweep from which on all are resolved (``two_point_resolution``);
* lateral and axial FWHM of one reconstructed sub-resolution bead;
* theory beside it (``optics.theory.lateral_resolution_m``: Sparrow / blur-disk model for
  wide-field, Broxton 2013's band limit and the design model with the artifact band for LFM).

Wide-field is measured on the raw (noisy) camera image: a wide-field microscope does not
reconstruct; its axial FWHM comes from a simulated through-focus stack of the bead.  Per design:
usable depth range (contiguous depths with lateral resolution <= ``--threshold-um``; for LFM the
low-resolution zone |z| < n d/(M NA) around focus, where a point's blur covers fewer than two
lenslets (twice the artifact band n d/(2 M NA)), is spanned rather than required to pass,
``metrics.usable_depth_range``; wide-field also within
its through-focus FWHM), field of view of the full
camera (``theory.field_of_view_um``), resolvable voxels (``theory.resolvable_voxels`` over the
usable range), and reconstruction seconds per frame on the named device.  Published numbers
(Prevedel 2014; Broxton 2013's band limit) are printed beside ours.

Outputs in ``--out`` (default a new ``results/tradeoff-YYYYmmdd-HHMMSS``; an existing folder is
never overwritten): ``results.json``, ``results.md``, ``resolution_vs_depth.png``, ``tradeoff.png``.
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
from optics import phantoms, theory
from optics.camera import apply_camera
from optics.io import atomic_write, atomic_write_bytes
from optics.lfpsf import compute_psf
from optics.simulation import photon_image
from reconstruction import backend, metrics
from reconstruction.deconvolution import richardson_lucy
from reconstruction.operator import LightFieldOperator

log = logging.getLogger("benchmarks.tradeoff")

#: Photons at the brightest pixel of a single bead's image (shot-noise SNR ~ 140 there).
PEAK_PHOTONS = 2.0e4
#: Noise margin of the Sparrow test: the dip must be this fraction below the lower peak.
MIN_DIP = 0.02
#: Default usable-depth threshold on the lateral (two-point) resolution, µm.
DEFAULT_THRESHOLD_UM = 4.0
#: Published figures (PHYSICS.md sec. 7): Prevedel et al. 2014, 40x/0.95 LFM, "up to ~1.4 µm lateral, 2.6 µm axial".
P14 = {"design": "lfm-40x-0.95-N15", "lateral_um": 1.4, "axial_um": 2.6}
B13_DESIGN = "lfm-20x-0.5w-N15"


# ------------------------------------------------------------------------------------------ helpers
def _index_of(centres: np.ndarray, coord: float) -> float:
    """Continuous index of ``coord`` on a uniform grid of voxel centres."""
    return float((coord - centres[0]) / (centres[1] - centres[0]))


def _to_electrons(frames: np.ndarray, camera) -> np.ndarray:
    e = (frames.astype(np.float64) - camera.offset_adu) / camera.gain_adu_per_e
    return np.maximum(e, 0.0).astype(np.float32)


def _frame_brightness(m_sim, psf_sim, pos) -> float:
    """Photons per bead so that a single bead's brightest pixel receives PEAK_PHOTONS."""
    vol = phantoms.beads(m_sim, np.atleast_2d(pos), interpolation="linear")
    img = photon_image(m_sim, vol, photons_per_voxel=1.0, psf=psf_sim, progress=False)
    return PEAK_PHOTONS / max(float(img.max()), 1e-30)


def _simulate(m_sim, psf_sim, positions: list[np.ndarray], ppv: float, rng) -> np.ndarray:
    """Noisy frames (photo-electrons) of each set of bead positions (x, y, z)."""
    frames = []
    for pos in positions:
        vol = phantoms.beads(m_sim, np.atleast_2d(pos), interpolation="linear")
        photons = photon_image(m_sim, vol, photons_per_voxel=ppv, psf=psf_sim, progress=False)
        frames.append(_to_electrons(apply_camera(photons, m_sim.camera, rng=rng), m_sim.camera))
    return np.stack(frames)


def _sweep(base: float, factors, lo: float, hi: float) -> np.ndarray:
    s = np.clip(base * np.asarray(factors, dtype=np.float64), lo, hi)
    return np.unique(np.round(s, 4))


def _finite(v):
    return None if v is None or not math.isfinite(v) else float(v)


def _floor(width, spacing: float):
    """A FWHM below one grid step is not resolved by the grid: report the step (an upper bound) and flag it."""
    w = _finite(width)
    if w is None:
        return None, False
    return (float(spacing), True) if w < spacing else (w, False)


# ------------------------------------------------------------------------------------------ LFM
def _sim_microscope(m_rec, z: float, size: D.Size):
    s_sim = min(m_rec.pixels_per_lenslet, 2 * m_rec.voxels_per_lenslet + 1)
    osr = m_rec.simulation.oversampling + size.sim_oversampling_extra
    return m_rec.replace(volume={"z_min_um": z, "z_max_um": z, "z_step_um": 1.0, "voxels_per_lenslet": s_sim},
                         simulation={"oversampling": min(osr, 15)})


def measure_lfm(design: D.Design, size: D.Size, device: str, rng, tick=lambda: None) -> dict:
    """Two-point resolution, FWHM and timing of one LFM design at its depths (see the module docstring)."""
    m_rec = D.reconstruction_microscope(design, size)
    psf = compute_psf(m_rec, progress=False)
    op = LightFieldOperator(psf, device=device)
    xc = phantoms.voxel_centres_um(m_rec, "x")
    yc = phantoms.voxel_centres_um(m_rec, "y")
    zs = m_rec.z_um
    vox = m_rec.voxel_um
    d_obj = m_rec.lenslet_pitch_object_um
    # pair centre: off the lenslet centre and off the voxel grid in x, on a voxel row in y
    y0 = float(yc[int(np.argmin(np.abs(yc - 0.2 * d_obj)))])
    x0 = 0.23 * d_obj + 0.31 * vox
    half_field = 0.5 * (xc[-1] - xc[0])
    rows = []
    timing = None
    for z in design.depths_um:
        iz = int(np.argmin(np.abs(zs - z)))
        m_sim = _sim_microscope(m_rec, float(zs[iz]), size)
        psf_sim = compute_psf(m_sim, progress=False)
        t_theory = float(theory.lateral_resolution_m(m_rec, float(z)))
        ppv = _frame_brightness(m_sim, psf_sim, (x0, y0, float(zs[iz])))
        result = _two_point(m_sim, psf_sim, op, iz, xc, yc, x0, y0, float(zs[iz]), ppv, rng, size,
                            base=max(t_theory, 2 * vox), lo=1.2 * vox, hi=min(half_field, 8 * max(t_theory, 2 * vox)))
        frame = result.pop("_frame")
        rows.append({"z_um": float(zs[iz]), "theory_lateral_resolution_um": t_theory, **result})
        if timing is None:
            timing = _time_frame(op, frame, size.iterations)
        tick()
    return {"rows": rows, "seconds_per_frame": timing, "reconstruction_shape": list(m_rec.volume_shape),
            "voxel_um": [float(m_rec.volume.z_step_um), vox, vox], "crop_px": list(m_rec.image_shape)}


def _two_point(m_sim, psf_sim, op, iz, xc, yc, x0, y0, z, ppv, rng, size, *, base, lo, hi) -> dict:
    iy = int(round(_index_of(yc, y0)))
    tested, resolved = [], []
    seps = _sweep(base, size.separations, lo, hi)
    single = None
    extended = False
    while True:
        positions = [np.array([[x0 - s / 2, y0, z], [x0 + s / 2, y0, z]]) for s in seps]
        if single is None:
            positions.append(np.array([[x0, y0, z]]))
        frames = _simulate(m_sim, psf_sim, positions, ppv, rng)
        rec = np.asarray(richardson_lucy(frames, op, iterations=size.iterations, progress=False))
        if single is None:
            single = (rec[-1], frames[-1])
            rec = rec[:-1]
        for s, vol in zip(seps, rec):
            plane = vol[max(0, iz - 1):iz + 2].sum(axis=0)
            left, right = _index_of(xc, x0 - s / 2), _index_of(xc, x0 + s / 2)
            tested.append(float(s))
            resolved.append(metrics.sparrow_resolved(plane[iy], left, right, min_dip=MIN_DIP))
        if extended:
            break
        order = np.argsort(tested)
        r_sorted = np.asarray(resolved)[order]
        if not r_sorted[-1] and max(tested) < hi:  # nothing resolved at the top: extend upwards once
            seps = _sweep(max(tested), (1.3, 1.7, 2.2), lo, hi)
        elif r_sorted.all() and min(tested) > lo:  # everything resolved: extend downwards once
            seps = _sweep(min(tested), (0.45, 0.6, 0.75, 0.88), lo, hi)
        else:
            break
        seps = seps[~np.isin(np.round(seps, 4), np.round(tested, 4))]
        if seps.size == 0:
            break
        extended = True
    res = metrics.two_point_resolution(tested, resolved)
    vol, frame = single
    ix = int(round(_index_of(xc, x0)))
    win = (slice(max(0, iz - 2), iz + 3), slice(max(0, iy - 3), iy + 4), slice(max(0, ix - 3), ix + 4))
    sub = vol[win]
    loc = np.unravel_index(int(np.argmax(sub)), sub.shape)
    centre = (loc[0] + win[0].start, loc[1] + win[1].start, loc[2] + win[2].start)
    vz = float(op.voxel_um[0])
    f = metrics.fwhm_3d(vol, centre, (vz, op.voxel_um[1], op.voxel_um[2]))
    lat_fwhm, lat_lim = _floor(f["lateral_um"], float(op.voxel_um[1]))
    ax_fwhm, ax_lim = _floor(f["axial_um"], vz)
    return {"lateral_resolution_um": _finite(res), "lateral_fwhm_um": lat_fwhm, "axial_resolution_um": ax_fwhm,
            "lateral_fwhm_sampling_limited": lat_lim, "axial_sampling_limited": ax_lim, "separations_um": tested,
            "resolved": [bool(r) for r in resolved], "upper_bound": bool(resolved and all(resolved)),
            "_frame": frame}


def best_lateral(entry: dict) -> float | None:
    """Smallest two-point resolution over the depths inside the usable depth range (all depths
    when there is none).  Out of focus, a wide-field PSF's narrow central lobe (its energy in
    rings) can pass the two-point test at separations below the in-focus limit; those depths lie
    outside the usable range, which ends at the through-focus FWHM."""
    lo, hi = entry["usable_depth_limits_um"]
    pairs = [(z, v) for z, v in zip(entry["depths_um"], entry["lateral_resolution_um"]) if v is not None]
    inside = [v for z, v in pairs if lo is not None and hi is not None and lo - 1e-9 <= z <= hi + 1e-9]
    vals = inside or [v for _, v in pairs]
    return min(vals) if vals else None


def _time_frame(op, frame, iterations: int) -> float:
    backend.synchronize(op.device)
    t0 = time.perf_counter()
    richardson_lucy(frame, op, iterations=iterations, progress=False)
    backend.synchronize(op.device)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------------------ wide-field
def measure_widefield(design: D.Design, size: D.Size, rng, tick=lambda: None) -> dict:
    """Two-point resolution and FWHM of the raw wide-field image; axial FWHM from a through-focus stack."""
    m = D.reconstruction_microscope(design, size)
    o = m.objective
    step = design.z_step_um
    zr = max(2.2 * theory.axial_first_zero_um(m.wavelength_um, o.na, o.immersion_index), design.z_max_um)
    nst = int(math.ceil(zr / step))
    osr = m.simulation.oversampling + size.sim_oversampling_extra
    m_sim = m.replace(volume={"z_min_um": -nst * step, "z_max_um": nst * step, "z_step_um": step},
                      simulation={"oversampling": min(osr, 15)})
    psf_sim = compute_psf(m_sim, progress=False)
    zs = m_sim.z_um
    xc = phantoms.voxel_centres_um(m, "x")
    yc = phantoms.voxel_centres_um(m, "y")
    px = m.voxel_um
    y0 = float(yc[len(yc) // 2])
    x0 = 0.31 * px
    ppv = _frame_brightness(m_sim, psf_sim, (x0, y0, 0.0))
    iy = int(round(_index_of(yc, y0)))
    ix = int(round(_index_of(xc, x0)))
    rows = []
    for z in design.depths_um:
        t_theory = float(theory.lateral_resolution_m(m, float(z)))
        lim = (1.2 * px, 0.45 * (xc[-1] - xc[0]))
        sparrow = theory.sparrow_um(m.wavelength_um, o.na)
        # the sweep is centred on the blur-disk model: out of focus, separations far below it would
        # probe the ring structure of the defocused PSF, whose narrow central lobes pass a dip test
        # while the image is no sharper (the wave-model theory column lies between the two)
        geometric = float(theory.widefield_defocus_resolution_um(float(z), m.wavelength_um, o.na, o.immersion_index))
        seps = np.union1d(_sweep(max(geometric, 2 * px), D.WIDEFIELD_SEPARATIONS, *lim),
                          _sweep(max(sparrow, 2 * px), D.WIDEFIELD_SEPARATIONS, *lim))
        positions = [np.array([[x0 - s / 2, y0, z], [x0 + s / 2, y0, z]]) for s in seps]
        positions.append(np.array([[x0, y0, z]]))
        frames = _simulate(m_sim, psf_sim, positions, ppv, rng)
        resolved = [metrics.sparrow_resolved(fr[iy], _index_of(xc, x0 - s / 2), _index_of(xc, x0 + s / 2),
                                             min_dip=MIN_DIP) for s, fr in zip(seps, frames[:-1])]
        res = metrics.two_point_resolution(seps, resolved)
        img = frames[-1]
        wy = metrics.fwhm(img[:, ix], px)
        wx = metrics.fwhm(img[iy, :], px)
        rows.append({"z_um": float(z), "theory_lateral_resolution_um": t_theory,
                     "lateral_resolution_um": _finite(res),
                     "lateral_fwhm_um": _finite(0.5 * (wy + wx)), "axial_resolution_um": None,
                     "separations_um": [float(s) for s in seps], "resolved": [bool(r) for r in resolved],
                     "upper_bound": bool(all(resolved))})
        tick()
    # through-focus stack of one bead: the brightest in-focus pixel against z (noisy frames)
    stack = _simulate(m_sim, psf_sim, [np.array([[x0, y0, float(z)]]) for z in zs], ppv, rng)
    axial, ax_lim = _floor(metrics.fwhm(stack[:, iy, ix], step), step)
    for r in rows:
        r["axial_resolution_um"] = axial
        r["axial_sampling_limited"] = ax_lim
    return {"rows": rows, "seconds_per_frame": None, "reconstruction_shape": None,
            "voxel_um": [step, px, px], "crop_px": list(m.image_shape)}


# ------------------------------------------------------------------------------------------ per design
def _mirror(rows: list[dict], symmetric: bool):
    z = np.array([r["z_um"] for r in rows])
    lat = np.array([np.nan if r["lateral_resolution_um"] is None else r["lateral_resolution_um"] for r in rows])
    ax = np.array([np.nan if r["axial_resolution_um"] is None else r["axial_resolution_um"] for r in rows])
    if symmetric or np.any(z < 0):
        return z, lat, ax
    neg = z > 0
    return (np.concatenate([-z[neg][::-1], z]), np.concatenate([lat[neg][::-1], lat]),
            np.concatenate([ax[neg][::-1], ax]))


def measure(design: D.Design, size: D.Size, *, device: str = "cpu", seed: int = 0,
            threshold_um: float = DEFAULT_THRESHOLD_UM, tick=lambda: None) -> dict:
    """Measure one design; returns its ``results.json`` entry."""
    rng = np.random.default_rng(seed)
    m = design.microscope
    o = m.objective
    t0 = time.perf_counter()
    if m.kind == "widefield":
        meas = measure_widefield(design, size, rng, tick)
        band = 0.0
    else:
        meas = measure_lfm(design, size, device, rng, tick)
        # low-resolution zone spanned by the usable range: |z| < n d / (M NA), where the defocus blur at
        # the MLA (diameter 2 M |z| NA / n) covers fewer than two lenslets, so no parallax separates
        # depths: twice the artifact band of theory.artifact_band_um (B13 sec. 5)
        band = 2 * theory.artifact_band_um(o.na, o.immersion_index, m.mla.pitch_um, o.magnification)
    rows = meas["rows"]
    sensor = (m.camera.shape[0] * m.camera.pixel_um, m.camera.shape[1] * m.camera.pixel_um)
    fov = [float(v) for v in np.atleast_1d(theory.field_of_view_um(sensor, o.magnification))]
    z_all, lat_all, ax_all = _mirror(rows, size.symmetric)
    rng_ = metrics.usable_depth_range(z_all, lat_all, threshold_um, exclude_band_um=band)
    if m.kind == "widefield" and rng_.length_um > 0 and np.isfinite(ax_all).any():
        # a wide-field frame records only the slab where a bead keeps half its in-focus peak (the
        # through-focus FWHM); outside it the residual core still passes a noise-free-ish Sparrow test
        half = float(np.nanmax(ax_all)) / 2
        lo, hi = max(rng_.z_min_um, -half), min(rng_.z_max_um, half)
        rng_ = metrics.DepthRange(lo, hi, max(0.0, hi - lo), rng_.open_low and lo > -half,
                                  rng_.open_high and hi < half)
    if m.kind == "widefield":
        i0 = int(np.argmin(np.abs(z_all)))
        sbp = theory.resolvable_voxels(fov, [0.0], lat_all[i0], 1.0)
    elif rng_.length_um > 0:
        inside = (z_all >= rng_.z_min_um - 1e-9) & (z_all <= rng_.z_max_um + 1e-9)
        sbp = theory.resolvable_voxels(fov, z_all[inside], lat_all[inside], ax_all[inside])
    else:
        sbp = 0.0
    entry = {
        "name": design.name, "kind": m.kind, "objective": design.label,
        "magnification": o.magnification, "na": o.na, "immersion_index": o.immersion_index,
        "wavelength_um": m.wavelength_um, "pixels_per_lenslet": m.pixels_per_lenslet,
        "pitch_um": m.mla.pitch_um if m.mla is not None else None,
        "mla_focal_um": m.mla.focal_um if m.mla is not None else None,
        "camera_pixel_um": m.camera.pixel_um, "camera_shape": list(m.camera.shape),
        "fov_um": fov,
        "depths_um": [r["z_um"] for r in rows],
        "lateral_resolution_um": [r["lateral_resolution_um"] for r in rows],
        "lateral_fwhm_um": [r["lateral_fwhm_um"] for r in rows],
        "axial_resolution_um": [r["axial_resolution_um"] for r in rows],
        "theory_lateral_resolution_um": [r["theory_lateral_resolution_um"] for r in rows],
        "per_depth": rows,
        "usable_depth_range_um": float(rng_.length_um),
        "usable_depth_limits_um": [_finite(rng_.z_min_um), _finite(rng_.z_max_um)],
        "usable_depth_open_ended": bool(rng_.open_low or rng_.open_high),
        "depths_mirrored": bool(not size.symmetric and not any(r["z_um"] < 0 for r in rows)),
        "resolvable_voxels": float(sbp),
        "seconds_per_frame": meas["seconds_per_frame"],
        "measured_crop_px": meas["crop_px"], "reconstruction_shape": meas["reconstruction_shape"],
        "voxel_um": meas["voxel_um"],
        "theory": theory.theory_summary(m),
        "wall_seconds": time.perf_counter() - t0,
    }
    entry["theory"]["fov_um"] = fov
    entry["best_lateral_resolution_um"] = best_lateral(entry)
    return entry


# ------------------------------------------------------------------------------------------ published
def published_comparison(entries: list[dict]) -> list[dict]:
    """Our numbers beside Prevedel 2014 (40x/0.95) and Broxton 2013's band limit (20x/0.5W)."""
    out = []
    by = {e["name"]: e for e in entries}

    def add(system, quantity, pub, meas):
        rel = None if meas is None else (meas - pub) / pub
        out.append({"system": system, "quantity": quantity, "published": pub, "measured": meas,
                    "relative_difference": rel})

    e = by.get(P14["design"])
    if e is not None:
        best = e["best_lateral_resolution_um"]
        ax = [r["axial_resolution_um"] for r in e["per_depth"]
              if r["axial_resolution_um"] is not None and not r.get("axial_sampling_limited")]
        add("Prevedel 2014, 40x/0.95 LFM, 150 um f/20 MLA (ours: " + e["name"] + ")",
            "best lateral resolution (um)", P14["lateral_um"], best)
        add("Prevedel 2014, 40x/0.95 LFM, 150 um f/20 MLA (ours: " + e["name"] + ")",
            "best axial resolution (um; FWHM, depths resolved by the z grid)", P14["axial_um"], min(ax) if ax else None)
    e = by.get(B13_DESIGN)
    if e is not None:
        band = e["theory"]["artifact_band_um"]
        for z, v in zip(e["depths_um"], e["lateral_resolution_um"]):
            if abs(z) < band:
                continue
            pub = float(theory.lfm_band_limit_um(z, e["wavelength_um"], e["immersion_index"], e["pitch_um"],
                                                 e["magnification"]))
            add(f"Broxton 2013 band limit 0.94 lambda M|z|/(n d), 20x/0.5W, d = {e['pitch_um']:g} um",
                f"lateral resolution at z = {z:g} um (um)", pub, v)
    return out


# ------------------------------------------------------------------------------------------ output
def _fmt(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return str(v)


def render_markdown(res: dict) -> str:
    lines = [f"# Trade-off benchmark ({res['size']})", "",
             f"Device: {res['device']} ({res['device_name']}). Started {res['started']}, wall time "
             f"{res['wall_seconds']:.0f} s. Settings: {res['settings']['description']}.", "",
             f"Lateral resolution = smallest two-point separation resolved (Sparrow, dip >= {MIN_DIP:.0%}); "
             f"usable depth range = contiguous depths with lateral resolution <= {res['threshold_um']:g} um "
             "(for LFM the zone |z| < n d/(M NA) around focus, where a point covers fewer than two lenslets, is spanned; "
             "wide-field is also limited to its through-focus FWHM); resolvable voxels over that range for the full camera.",
             "",
             "## Summary", "",
             "| design | objective | N | FOV (um) | best lateral (um) | usable depth (um) | resolvable voxels | s / frame |",
             "|---|---|---|---|---|---|---|---|"]
    for e in res["designs"]:
        lines.append(f"| {e['name']} | {e['objective']} | {e['pixels_per_lenslet']} | "
                     f"{e['fov_um'][0]:.0f} x {e['fov_um'][1]:.0f} | {_fmt(e['best_lateral_resolution_um'])} | "
                     f"{e['usable_depth_range_um']:.3g}{'+' if e['usable_depth_open_ended'] else ''} | "
                     f"{e['resolvable_voxels']:.3g} | {_fmt(e['seconds_per_frame'])} |")
    lines += ["", "## Per depth", "",
              "| design | z (um) | two-point (um) | theory (um) | lateral FWHM (um) | axial FWHM (um) |",
              "|---|---|---|---|---|---|"]
    for e in res["designs"]:
        for r in e["per_depth"]:
            ub = " (<=)" if r.get("upper_bound") else ""
            lf = " (<=)" if r.get("lateral_fwhm_sampling_limited") else ""
            af = " (<=)" if r.get("axial_sampling_limited") else ""
            lines.append(f"| {e['name']} | {r['z_um']:g} | {_fmt(r['lateral_resolution_um'])}{ub} | "
                         f"{_fmt(r['theory_lateral_resolution_um'])} | {_fmt(r['lateral_fwhm_um'])}{lf} | "
                         f"{_fmt(r['axial_resolution_um'])}{af} |")
    lines += ["", "## Published", "", "| system | quantity | published | measured | relative difference |",
              "|---|---|---|---|---|"]
    for p in res["published"]:
        rel = "-" if p["relative_difference"] is None else f"{p['relative_difference']:+.0%}"
        lines.append(f"| {p['system']} | {p['quantity']} | {p['published']:.3g} | {_fmt(p['measured'])} | {rel} |")
    lines += ["", "Notes: " + " ".join(res["notes"]), ""]
    return "\n".join(lines)


def _summary(res: dict) -> str:
    out = [f"tradeoff ({res['size']}) on {res['device']} ({res['device_name']}): {len(res['designs'])} designs "
           f"in {res['wall_seconds']:.0f} s -> {res['out']}"]
    out.append(f"{'design':24s} {'FOV um':>8s} {'best lat':>9s} {'depth um':>9s} {'voxels':>9s} {'s/frame':>8s}")
    for e in res["designs"]:
        out.append(f"{e['name']:24s} {e['fov_um'][0]:8.0f} {_fmt(e['best_lateral_resolution_um']):>9s} "
                   f"{e['usable_depth_range_um']:9.3g} {e['resolvable_voxels']:9.3g} {_fmt(e['seconds_per_frame']):>8s}")
    for p in res["published"]:
        rel = "-" if p["relative_difference"] is None else f"{p['relative_difference']:+.0%}"
        out.append(f"  {p['quantity']}: published {p['published']:.3g}, ours {_fmt(p['measured'])} ({rel}) "
                   f"[{p['system'].split(',')[0]}]")
    return "\n".join(out)


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


def run(size: D.Size, design_list: list[D.Design], out_dir: Path, *, device: str = "auto", seed: int = 0,
        threshold_um: float = DEFAULT_THRESHOLD_UM, progress: bool = True, plots: bool = True) -> dict:
    """Measure ``design_list`` and write the outputs into ``out_dir`` (which must exist and be empty)."""
    from tqdm.auto import tqdm

    dev = backend.get_device(device)
    t0 = time.perf_counter()
    started = datetime.now().isoformat(timespec="seconds")
    total = sum(len(d.depths_um) for d in design_list)
    bar = tqdm(total=total, desc="tradeoff", unit="depth", disable=not progress or None)
    entries = []
    try:
        for i, d in enumerate(design_list):
            bar.set_postfix_str(d.name)
            entries.append(measure(d, size, device=dev, seed=seed + i, threshold_um=threshold_um,
                                   tick=lambda: bar.update(1)))
    finally:
        bar.close()
    res = {
        "benchmark": "tradeoff", "size": size.name, "device": dev, "device_name": backend.device_name(dev),
        "started": started, "threshold_um": threshold_um, "seed": seed,
        "settings": {"description": size.describe(), "crop_lenslets": size.crop_lenslets,
                     "max_voxels_per_lenslet": size.max_voxels_per_lenslet, "iterations": size.iterations,
                     "separation_factors": list(size.separations), "peak_photons": PEAK_PHOTONS,
                     "min_dip": MIN_DIP, "sim_oversampling_extra": size.sim_oversampling_extra,
                     "widefield_pixel_um": D.WIDEFIELD_PIXEL_UM},
        "designs": entries,
        "published": published_comparison(entries),
        "notes": [
            "Simulation: beads on a phantom grid with 2s+1 (at most N) voxels per lenslet against the reconstruction's s "
            "(linear interpolation, off the reconstruction grid), "
            f"{size.sim_oversampling_extra} more field samples per pixel than the reconstruction model, Poisson shot and "
            "Gaussian read noise (EMVA model), brightest pixel of a single bead at "
            f"{PEAK_PHOTONS:.0f} photons.",
            "LFM: Richardson-Lucy (no filter) over the whole reconstruction depth range; profiles through the pair in the "
            "bead's plane summed with its two neighbours. '(<=)' marks an upper bound: a two-point value at the smallest "
            "separation tested, or a FWHM below one grid step (reported as the step).",
            "Wide-field: measured on the raw camera image (no reconstruction) with a design-specific "
            f"{D.WIDEFIELD_PIXEL_UM:g} um camera pixel; axial FWHM from a simulated through-focus stack; its usable depth "
            "is also limited to that axial FWHM (the slab where a bead keeps half its in-focus peak): out of focus the "
            "residual central core of the PSF still passes the Sparrow test on low-noise data.",
            "FOV and resolvable voxels are for the full camera (min(sensor, 22 mm field number) / M); the measurement "
            "uses a central crop.",
            "Depths measured at z >= 0 are mirrored to -z for the usable range (the LFM PSF is not exactly symmetric in z)"
            if not size.symmetric else "Depths measured on both sides of focus.",
            "Published: Prevedel 2014 reports 'up to ~1.4 um lateral, 2.6 um axial' (best values); Broxton 2013's "
            "published curve follows its band limit, evaluated here for our design (lambda0 and n as in PHYSICS.md sec. 5).",
        ],
    }
    res["wall_seconds"] = time.perf_counter() - t0
    res["out"] = str(out_dir)
    write_outputs(res, out_dir, plots=plots)
    return res


def write_outputs(res: dict, out_dir: Path, *, plots: bool = True) -> None:
    text = json.dumps(res, indent=1, default=float)
    atomic_write_bytes(out_dir / "results.json", text.encode())
    atomic_write_bytes(out_dir / "results.md", render_markdown(res).encode())
    if plots:
        from benchmarks import plots as P

        for name, fig in (("resolution_vs_depth.png", P.resolution_vs_depth_figure(res["designs"], res["threshold_um"])),
                          ("tradeoff.png", P.tradeoff_figure(res["designs"], res["threshold_um"]))):
            atomic_write(out_dir / name, lambda t, f=fig: f.savefig(t, format="png", dpi=110))
            P.close(fig)


# ------------------------------------------------------------------------------------------ CLI
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks tradeoff",
                                description="Field of view vs resolution vs depth, measured (the main job).")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--quick", action="store_true", help="reduced size for a laptop (about 6 min on 2 cores with a cold PSF cache)")
    g.add_argument("--smallest", action="store_true", help="the test-suite size (< 1 min)")
    p.add_argument("--out", default=None, help="output folder (new; default results/tradeoff-YYYYmmdd-HHMMSS)")
    p.add_argument("--designs", nargs="+", default=None, metavar="CONFIG",
                   help="config files (TOML/JSON) or preset names to measure instead of the standard sweep")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "gpu"))
    p.add_argument("--threshold-um", type=float, default=DEFAULT_THRESHOLD_UM,
                   help=f"lateral resolution threshold of the usable depth range (default {DEFAULT_THRESHOLD_UM} um)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-plots", action="store_true")
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
    try:
        dev = backend.get_device(args.device)
        if args.designs:
            design_list = [D.design_from_config(_config_path(c), size) for c in args.designs]
        else:
            design_list = D.standard_designs(size)
        out_dir = _new_out_dir(args.out)
    except (ValueError, FileExistsError, FileNotFoundError, backend.DeviceError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"tradeoff: {size.describe()}; {len(design_list)} designs; device {dev}; output {out_dir}", flush=True)
    if size.name != "full":
        print(f"tradeoff: reduced settings ({size.name}): camera crop of {size.crop_lenslets} lenslets, "
              f"voxels of ~{size.voxel_target:g} lambda0/NA (at most {size.max_voxels_per_lenslet} per lenslet), "
              f"{size.iterations} RL iterations, "
              f"depths {', '.join(f'{d.name}: {list(d.depths_um)}' for d in design_list[:2])} ...", flush=True)
    res = run(size, design_list, out_dir, device=dev, seed=args.seed, threshold_um=args.threshold_um,
              progress=not args.no_progress, plots=not args.no_plots)
    print(_summary(res))
    return 0


def _config_path(c: str) -> str:
    if os.path.exists(c):
        return c
    from optics import presets

    return str(presets.path(c))  # a preset name; raises a ConfigError (ValueError) naming the accepted ones
