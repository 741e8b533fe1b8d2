"""Tables, published comparison and notes of the trade-off benchmark (results.md and the console summary).

The published figures (../shared/PHYSICS.md sec. 7): Prevedel et al. 2014, 40x/0.95 LFM with 150 um
lenslets, "up to ~1.4 um lateral, 2.6 um axial"; Broxton et al. 2013's depth-dependent band limit
0.94 lambda0 M |z| / (n d).  Each difference is explained from the measured convergence study:
a number is *noise-limited* when more photons improve it, *solver-limited* when more RL iterations
do, otherwise limited by the optics and sampling (compared with the design model and the voxel).
"""

from __future__ import annotations

import numpy as np

from benchmarks import designs as D
from optics import theory

__all__ = ["P14", "B13_DESIGN", "reductions", "published_comparison", "explain", "notes", "render_markdown",
           "summary"]

P14 = {"design": "lfm-40x-0.95-N15", "lateral_um": 1.4, "axial_um": 2.6}
B13_DESIGN = "lfm-20x-0.5w-N15"
#: A change larger than this fraction across the convergence sweep counts as a limit.
SENSITIVITY = 0.15


def reductions(size: D.Size) -> list[str]:
    """What a reduced size changes relative to the full run (the protocol itself is unchanged)."""
    full = D.SIZES["full"]
    if size.name == "full":
        return []
    out = [f"pitches N = {list(size.nnums)} (full: {list(full.nnums)})",
           f"camera crop {size.crop_lenslets} lenslets (full: {full.crop_lenslets}; FOV always for the full camera)",
           f"voxel ~{size.voxel_target:g} lambda0/NA, <= {size.max_voxels_per_lenslet} per lenslet "
           f"(full: {full.voxel_target:g}, <= {full.max_voxels_per_lenslet})",
           f"{len(size.depth_fractions)} LFM depths to {size.z_max_um} um (full: {len(full.depth_fractions)} to {full.z_max_um})",
           f"{len(size.separations)} separations (full: {len(full.separations)})",
           f"{size.iterations} RL iterations (full: {full.iterations})",
           f"convergence: iterations {list(size.convergence_iterations)}, photons "
           f"{[f'{p:g}' for p in size.convergence_photons]}, {len(size.convergence_depth_fractions)} depths"]
    if size.families and size.flfm_pupil_px != full.flfm_pupil_px:
        out.append(f"Fourier LFMs on a reduced copy with a {size.flfm_pupil_px}-pixel pupil (full: {full.flfm_pupil_px})")
    if size.families and size.family_depth_fractions is not None:
        out.append(f"{len(size.family_depth_fractions)} depths for the other families (full: as the LFMs)")
    if not size.families:
        out.append("no other families (LFM 2.0, Fourier LFM, XLFM)")
    if size.slfm_scans and size.slfm_passes != full.slfm_passes:
        out.append(f"{size.slfm_passes} phase-space RL passes for the scanning LFMs (full: {full.slfm_passes})")
    if size.slfm_scans != full.slfm_scans:
        out.append(f"scanning LFMs {[f'{k}x{k}' for k in size.slfm_scans]} "
                   f"(full: {[f'{k}x{k}' for k in full.slfm_scans]})")
    if size.slfm_scans and size.slfm_max_voxels_per_lenslet != full.slfm_max_voxels_per_lenslet:
        cap = size.slfm_max_voxels_per_lenslet or size.max_voxels_per_lenslet
        out.append(f"scanning LFMs <= {cap} voxels per lenslet (full: {full.slfm_max_voxels_per_lenslet})")
    if size.slfm_scans and size.slfm_depth_fractions is not None:
        out.append(f"{len(size.slfm_depth_fractions)} depths for the scanning LFMs (full: as the LFMs)")
    if full.near_focus and not size.near_focus:
        out.append("no near-focus study of the LFM 1.0 designs (full: each on a grid of a quarter band half-width)")
    if size.objectives != full.objectives:
        out.insert(0, f"objectives {list(size.objectives)} only")
    return out


def _conv_rows(convergence, design: str, z: float | None):
    rows = [c for c in convergence if c["design"] == design]
    if not rows:
        return []
    zs = sorted({c["z_um"] for c in rows})
    zz = zs[int(np.argmin([abs(v - (0.0 if z is None else z)) for v in zs]))]
    return [c for c in rows if c["z_um"] == zz]


def explain(convergence, design: str, z: float | None, measured, theory_um, voxel_um) -> str:
    """Why a measured number is what it is, from the convergence rows of ``design`` nearest depth z."""
    if measured is None:
        return "not resolved at any tested separation"
    rows = _conv_rows(convergence, design, z)
    parts = []
    for var, word in (("photons", "noise"), ("iterations", "solver")):
        vals = sorted(((c["value"], c["lateral_resolution_um"]) for c in rows if c["variable"] == var),
                      key=lambda t: t[0])
        if len(vals) >= 2:
            (v0, r0), (v1, r1) = vals[0], vals[-1]
            if r0 is not None and r1 is not None:
                change = (r1 - r0) / r0
                tag = f"{word}-limited" if change < -SENSITIVITY else f"not {word}-limited"
                parts.append(f"{tag} ({var} {v0:g} -> {v1:g}: {r0:.3g} -> {r1:.3g} um, z = {rows[0]['z_um']:g} um)")
            else:
                def shown(r):
                    return "not resolved" if r is None else f"{r:.3g} um"

                # unresolved at the low end and resolved at the high end: more of it helps
                tag = f"{word}-limited" if (r0 is None and r1 is not None) else f"{word}: unresolved at {v1:g}"
                parts.append(f"{tag} ({var} {v0:g} -> {v1:g}: {shown(r0)} -> {shown(r1)}, z = {rows[0]['z_um']:g} um)")
    if not rows:
        parts.append(f"no convergence study for {design}")
    if theory_um:
        parts.append(f"measured/theory = {measured / theory_um:.2f} (design model {theory_um:.3g} um)")
    if voxel_um and measured <= 2.5 * voxel_um:
        parts.append(f"within 2.5 voxels ({voxel_um:.3g} um): sampling-limited")
    return "; ".join(parts)


def published_comparison(entries: list[dict], convergence: list[dict], size: D.Size) -> list[dict]:
    """Our numbers beside Prevedel 2014 (40x/0.95) and Broxton 2013's band limit (20x/0.5W), each explained."""
    out = []
    by = {e["name"]: e for e in entries}

    def add(system, quantity, pub, meas, why, spread=None):
        rel = None if meas is None else (meas - pub) / pub
        out.append({"system": system, "quantity": quantity, "published": pub, "measured": meas,
                    "measured_range": spread, "relative_difference": rel, "explanation": why})

    e = by.get(P14["design"])
    if e is not None:
        best = e["best_lateral_resolution_um"]
        i = e["lateral_resolution_um"].index(best) if best is not None else None
        z = e["depths_um"][i] if i is not None else None
        th = e["theory_lateral_resolution_um"][i] if i is not None else None
        sys_ = f"Prevedel 2014, 40x/0.95 LFM, 150 um f/20 MLA (ours: {e['name']})"
        add(sys_, f"best lateral resolution (um; median of repeats, at z = {z} um)", P14["lateral_um"], best,
            explain(convergence, e["name"], z, best, th, e["voxel_um"][1]),
            e["lateral_resolution_range_um"][i] if i is not None else None)
        ax = [(r["axial_resolution_um"], r["z_um"]) for r in e["per_depth"]
              if r["axial_resolution_um"] is not None and not r.get("axial_sampling_limited")]
        a = min(ax) if ax else (None, None)
        add(sys_, "best axial resolution (um; FWHM, depths resolved by the z grid)", P14["axial_um"], a[0],
            f"single-bead FWHM along z of the reconstruction (grid step {e['voxel_um'][0]:g} um) at z = {a[1]} um"
            if a[0] is not None else "every axial FWHM is below one plane step (sampling-limited)")
    e = by.get(B13_DESIGN)
    if e is not None:
        band = e["artifact_band_um"]
        for z, v, th, spread in zip(e["depths_um"], e["lateral_resolution_um"], e["theory_lateral_resolution_um"],
                                    e["lateral_resolution_range_um"]):
            if abs(z) < band:
                continue
            pub = float(theory.lfm_band_limit_um(z, e["wavelength_um"], e["immersion_index"], e["pitch_um"],
                                                 e["magnification"]))
            conv_design = next((c["design"] for c in convergence if not c["design"].startswith("widefield")), e["name"])
            why = explain(convergence, conv_design, z, v, th, e["voxel_um"][1])
            if conv_design != e["name"]:
                why += f" (convergence measured on {conv_design})"
            add(f"Broxton 2013 band limit 0.94 lambda M|z|/(n d), 20x/0.5W, d = {e['pitch_um']:g} um",
                f"lateral resolution at z = {z:g} um (um)", pub, v, why, spread)
    return out


def notes(res: dict, size: D.Size) -> list[str]:
    p = res["protocol"]
    return [
        f"Protocol: {p['photons_per_bead']:g} detected photons per bead per volume on the sensor for every design and "
        f"depth, background {p['background_photons_per_pixel']:g} photons/pixel per volume (subtracted before "
        "reconstruction), camera "
        f"read noise {p['camera_read_noise_e']} e-, Poisson shot noise; {p['repeats']} seeded repeats per point "
        "(positions and noise); both signs of z measured (no mirroring).",
        "Simulation model: " + p["simulation_model"] + ".",
        f"Lateral resolution: smallest separation from which on >= {p['resolved_fraction']:.2g} of the repeats resolve "
        f"the pair (dip >= {p['min_dip']:.0%} of the lower peak, peaks at the beads); the table shows the median over "
        "repeats of each repeat's resolution and its [min, max]. Separations are swept about the theory's value; "
        "where all of them are resolved the sweep is refined below its smallest (up to 2 rounds at 0.55-0.85 of it, "
        "down to 1.2 grid steps; 'refined_rounds' per depth in results.json), and where a repeat leaves the largest "
        "unresolved it is extended above it (up to 2 rounds at 1.3 and 1.7 times it, within the sweep's ceiling; "
        "'extended_rounds'), so the theory's guess bounds no result. Theory uses the same contrast "
        f"(x {theory.criterion_factor(p['min_dip']):.3f} on Sparrow) and the same usable-depth rule, with the "
        "light-field artifact band n d/(2 M NA) spanned once for both.",
        "LFM: Richardson-Lucy (no filter) over the whole reconstruction depth range; profile through the pair in the "
        "bead's plane summed with its two neighbours. '(<=)' marks an upper bound (all tested separations resolved "
        "down to the floor of 1.2 grid steps, or a FWHM below one grid step). Beads stay 0.15-0.4 plane steps off "
        "the reconstruction planes, so the z = 0 row measures 0.15-0.4 steps from focus, where the LFM 1.0's "
        "low-resolution band is partly filled in; benchmarks.tradeoff.near_focus measures a design on a finer "
        "grid (the full run: a quarter of the band; 40x/0.95 N = 7 at the full run's sampling: 1.75 um = the pitch "
        "within 0.1 um of focus, 1.1-1.25 um one and two band half-widths away).",
        "Band at the native focal plane (LFM 1.0, scanning LFM; benchmarks.focusband): theory puts the resolution "
        "inside n d/(2 M NA) at d/M; 'shown' when the median inside the band is coarser than the median at every "
        "measured depth where theory is below 2/3 of d/M. Inside the band a pair straddling a lenslet boundary can be "
        f"resolved below d/M, so the repeats place the pair {p.get('placement', 'at random')} and the worst repeat "
        "is reported beside the median.",
        f"Wide-field: raw camera image (no reconstruction), {D.WIDEFIELD_PIXEL_UM:g} um camera pixel, a crop of "
        f"{D.WIDEFIELD_FIELD_FACTOR:g}x the coarsest theory resolution of its depths or more (benchmarks.designs."
        "widefield_crop_px: the sweep reaches 1.6x theory); axial FWHM from through-focus stacks of noisy frames.",
        "FOV and resolvable voxels are for the full camera (min(sensor, 22 mm field number) / M); the measurement uses a "
        "central crop. Seconds per volume (one reconstruction; RL iterations of the size): 'crop' timed on the measured "
        "crop, 'full camera' per benchmarks.timing (method in results.json); a volume is one camera frame for the LFM, "
        "LFM 2.0 and Fourier LFM and the K^2 scan frames of a K x K scanning LFM.",
        "Scanning LFM: reconstructed by its published phase-space RL (reconstruction.phasespace: one update per view "
        "per pass, weights from each view's light), with the size's passes (Size.slfm_passes); the joint RL with "
        "the LFMs' iterations left its off-focus beads unresolved (solver-limited).",
        f"Volume rate at {res['settings'].get('camera_fps', 100.0):g} camera frames/s (--camera-fps): F volumes/s for "
        "the one-frame light-field designs, F / K^2 for a K x K scanning LFM; wide-field records one plane per frame "
        "(F planes/s, F / n volumes/s for n planes), shown as '(1 plane)'.",
    ] + ([
        "Scanning LFM (sLFM, K x K ring scan of the N = 15 LFM's optics, steps d / K): the same photons per bead and "
        "background per pixel per volume, split evenly over its K^2 frames (1/K^2 each, each frame with its own shot and "
        "read noise); each frame the bead's exact pattern at its scan-shifted position; joint RL of all frames through "
        "the phase-space operator (reconstruction.scanned); voxels an odd multiple of K (benchmarks.designs."
        "voxels_per_lenslet: within the size's voxel budget, so a 5 x 5 scan may get coarser voxels than the LFM); the "
        "usable-depth rule spans the artifact band of the scan step, n d/(2 K M NA); theory: the LFM's model with the "
        "band of d / K (an approximation, optics.theory)."] if any(e["kind"] == "slfm" for e in res["designs"]) else []) + ([f"Reduced size ({size.name}): " + "; ".join(reductions(size)) + "."] if size.name != "full" else [])


def _fmt(v, nd=3):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}g}"
    return str(v)


def _range(r) -> str:
    if not r or r[0] is None:
        return ""
    return f" [{_fmt(r[0])}, {_fmt(r[1])}]"


def _band_cells(rows) -> str:
    if not rows:
        return "-"
    return ", ".join(f"{_fmt(r['median_um'])} / {_fmt(r['worst_um'])} [{r['z_um']:.3g}]" for r in rows)


def _shown(v) -> str:
    return "-" if v is None else ("yes" if v else "no")


def _fps(res: dict) -> float:
    return float(res.get("settings", {}).get("camera_fps", 100.0))


def _rate(e: dict) -> str:
    """Volumes per second of a design; wide-field: planes per second, marked '(1 plane)'."""
    v = e.get("volumes_per_second")
    if v is None:
        return "-"
    return f"{v:.3g} (1 plane)" if e["kind"] == "widefield" else f"{v:.3g}"


def render_markdown(res: dict) -> str:
    p = res["protocol"]
    lines = [f"# Trade-off benchmark ({res['size']})", "",
             f"Device: {res['device']} ({res['device_name']}). Started {res['started']}, wall time "
             f"{res['wall_seconds']:.0f} s ({res.get('jobs', 1)} designs side by side; reconstruction times measured "
             f"afterwards, one design at a time). Settings: {res['settings']['description']}.", "",
             f"Protocol: {p['photons_per_bead']:g} detected photons per bead per volume, background "
             f"{p['background_photons_per_pixel']:g} photons/pixel per volume, {p['repeats']} repeats, both signs of z, "
             f"usable depth = contiguous depths with median lateral resolution <= {res['threshold_um']:g} um.", "",
             "## Summary", "",
             "| design | kind | objective | N | FOV (um) | best lateral (um) | usable depth (um) [below, above] "
             "| theory depth (um) | resolvable voxels | s / volume (crop) | s / volume (full camera) "
             f"| volumes / s at {_fps(res):g} fps |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in res["designs"]:
        ps = e["usable_depth_range_per_side_um"]
        full = (e.get("timing") or {}).get("full_camera") or {}
        tag = "" if not full else (" (est.)" if full.get("method", "").startswith("extrap") else "")
        lines.append(f"| {e['name']} | {e['kind']} | {e['objective']} | {e['pixels_per_lenslet']} | "
                     f"{e['fov_um'][0]:.0f} x {e['fov_um'][1]:.0f} | {_fmt(e['best_lateral_resolution_um'])} | "
                     f"{e['usable_depth_range_um']:.3g}{'+' if e['usable_depth_open_ended'] else ''} "
                     f"[{ps[0]:.3g}, {ps[1]:.3g}] | {e['theory_usable_depth_range_um']:.3g} | "
                     f"{e['resolvable_voxels']:.3g} | {_fmt(e['seconds_per_volume'])} | "
                     f"{_fmt(e['seconds_per_volume_full_camera'])}{tag} | {_rate(e)} |")
    reduced = [e for e in res["designs"] if e.get("measured_as") and e["measured_as"] != e["name"]]
    if reduced:
        lines += ["", "Measured on a reduced copy (same M_T, views and f-numbers; the FOV is the full design's; "
                  "benchmarks.designs.flfm_surrogate): " + ", ".join(f"{e['name']} as {e['measured_as']}" for e in reduced)
                  + "."]
    lines += ["", "## Per depth", "",
              "| design | z (um) | two-point median [min, max] (um) | theory (um) | lateral FWHM (um) | axial FWHM (um) |",
              "|---|---|---|---|---|---|"]
    for e in res["designs"]:
        for r in e["per_depth"]:
            ub = " (<=)" if r.get("upper_bound") else ""
            lf = " (<=)" if r.get("lateral_fwhm_sampling_limited") else ""
            af = " (<=)" if r.get("axial_sampling_limited") else ""
            lines.append(f"| {e['name']} | {r['z_um']:g} | {_fmt(r['lateral_resolution_um'])}"
                         f"{_range(r['lateral_resolution_range_um'])}{ub} | "
                         f"{_fmt(r['theory_lateral_resolution_um'])} | {_fmt(r['lateral_fwhm_um'])}{lf} | "
                         f"{_fmt(r['axial_resolution_um'])}{af} |")
    bands = [e for e in res["designs"] if e.get("focus_band")]
    if bands:
        lines += ["", "## Band at the native focal plane (benchmarks.focusband)", "",
                  "| design | band half-width (um) | theory in band (um) | in band: median / worst repeat (um) [z] "
                  "| where theory < 2/3 of it: median / worst (um) [z] | shown |", "|---|---|---|---|---|---|"]
        for e in bands:
            for tag, fb in (("", e["focus_band"]), (" (near focus)", (e.get("near_focus") or {}).get("focus_band"))):
                if fb:
                    lines.append(f"| {e['name']}{tag} | {fb['artifact_band_um']:.3g} | {fb['in_band_theory_um']:.3g} | "
                                 f"{_band_cells(fb['in_band'])} | {_band_cells(fb['compared'])} | "
                                 f"{_shown(fb['shown'])} |")
    near = [e for e in res["designs"] if e.get("near_focus")]
    if near:
        lines += ["", "## Near focus (LFM 1.0, finer depth grid: the band at the native plane)", "",
                  "| design | grid step (um) | z (um) | beads at z (um) | two-point median (um) [per repeat] | theory (um) |",
                  "|---|---|---|---|---|---|"]
        for e in near:
            nf = e["near_focus"]
            for r in nf["rows"]:
                per = ", ".join(_fmt(v) for v in r["lateral_resolution_per_repeat_um"])
                beads = ", ".join(f"{v:.2f}" for v in r["bead_z_um"])
                lines.append(f"| {e['name']} | {nf['z_step_um']:.3g} | {r['z_um']:.3g} | {beads} | "
                             f"{_fmt(r['lateral_resolution_um'])} [{per}] | {_fmt(r['theory_lateral_resolution_um'])} |")
    lines += ["", "## Convergence", "", "| design | z (um) | variable | value | two-point median [min, max] (um) |",
              "|---|---|---|---|---|"]
    for c in res["convergence"]:
        lines.append(f"| {c['design']} | {c['z_um']:g} | {c['variable']} | {c['value']:g} | "
                     f"{_fmt(c['lateral_resolution_um'])}{_range(c['lateral_resolution_range_um'])} |")
    lines += ["", "## Published", "", "| system | quantity | published | measured [min, max] | relative difference | why |",
              "|---|---|---|---|---|---|"]
    for q in res["published"]:
        rel = "-" if q["relative_difference"] is None else f"{q['relative_difference']:+.0%}"
        lines.append(f"| {q['system']} | {q['quantity']} | {q['published']:.3g} | {_fmt(q['measured'])}"
                     f"{_range(q.get('measured_range'))} | {rel} | {q['explanation']} |")
    lines += ["", "Notes: " + " ".join(res["notes"]), ""]
    return "\n".join(lines)


def summary(res: dict) -> str:
    out = [f"tradeoff ({res['size']}) on {res['device']} ({res['device_name']}): {len(res['designs'])} designs "
           f"in {res['wall_seconds']:.0f} s -> {res['out']}"]
    out.append(f"{'design':24s} {'FOV um':>8s} {'best lat':>9s} {'depth um':>9s} {'[below, above]':>15s} "
               f"{'voxels':>9s} {'s/volume':>8s} {'full cam':>9s} {f'vol/s@{_fps(res):g}':>16s}")
    for e in res["designs"]:
        ps = e["usable_depth_range_per_side_um"]
        out.append(f"{e['name']:24s} {e['fov_um'][0]:8.0f} {_fmt(e['best_lateral_resolution_um']):>9s} "
                   f"{e['usable_depth_range_um']:9.3g} {f'[{ps[0]:.3g}, {ps[1]:.3g}]':>15s} "
                   f"{e['resolvable_voxels']:9.3g} {_fmt(e['seconds_per_volume']):>8s} "
                   f"{_fmt(e['seconds_per_volume_full_camera']):>9s} {_rate(e):>16s}")
    for e in res["designs"]:
        fb = e.get("focus_band")
        if fb:
            out.append(f"  band at focus {e['name']}: median inside +-{fb['artifact_band_um']:.3g} um "
                       f"{_fmt(fb['median_in_band_um'])} um, worst repeat {_fmt(fb['worst_in_band_um'])} um (theory d/M "
                       f"{fb['in_band_theory_um']:.3g} um); shown: {_shown(fb['shown'])}")
    for c in res["convergence"]:
        out.append(f"  convergence {c['design']} z = {c['z_um']:g}: {c['variable']} {c['value']:g} -> "
                   f"{_fmt(c['lateral_resolution_um'])}{_range(c['lateral_resolution_range_um'])} um")
    for q in res["published"]:
        rel = "-" if q["relative_difference"] is None else f"{q['relative_difference']:+.0%}"
        out.append(f"  {q['quantity']}: published {q['published']:.3g}, ours {_fmt(q['measured'])} ({rel}) "
                   f"[{q['system'].split(',')[0]}]: {q['explanation']}")
    return "\n".join(out)
