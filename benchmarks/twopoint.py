"""Two-point resolution and bead widths of one design at one depth, over seeded repeats.

One *point* is a (design, nominal depth z).  For each repeat (``benchmarks.protocol``): a left bead
and, for every separation s of the sweep, a partner at +s in x, all at one off-grid depth near z,
imaged from their exact positions; one frame per pair plus one of the left bead alone, with the
protocol's photons and noise.  LFM frames are reconstructed by Richardson-Lucy (all repeats in one
batch), wide-field frames are measured raw.  A scanning LFM's "frame" is its volume of K^2 scan
frames (the protocol's photons per volume split over them), reconstructed by its published
phase-space RL over ``ctx.views`` (``solve``).  The two-point test (``reconstruction.metrics.
sparrow_resolved`` with contrast ``MIN_DIP``) runs on the x profile through the pair; a separation is
resolved when at least 2/3 of the repeats resolve it; each repeat's resolution is the smallest
separation from which on it resolves all (``metrics.two_point_resolution``), reported as median and
[min, max] over repeats.  The same frames, reconstructed to other iteration counts, and the same
bead patterns with other photon budgets, give the convergence study.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from benchmarks import protocol as P
from optics import phantoms
from reconstruction import metrics
from reconstruction.deconvolution import richardson_lucy
from reconstruction.phasespace import phase_space_rl

__all__ = ["MIN_DIP", "Context", "measure_point", "sweep"]

#: Contrast of the two-point criterion: the dip between the pair must be this fraction of the lower
#: peak (theory uses the same number: ``optics.theory.criterion_factor``).  10% keeps the decision
#: above the shot noise of 1e3-1e5 photon beads; Sparrow is 0, Rayleigh about 26.5%.
MIN_DIP = 0.10


@dataclasses.dataclass
class Context:
    """What the points of one design share."""

    m_rec: object            # reconstruction (measured crop) microscope
    m_sim: object            # simulation model (finer)
    op: object | None        # LightFieldOperator or ScannedOperator (None: wide-field, raw image)
    xc: np.ndarray           # voxel (pixel) centres, object space (µm)
    yc: np.ndarray
    zs: np.ndarray           # reconstruction planes (LFM) or None
    z_step: float            # depth step used to keep z off grid
    protocol: P.Protocol
    seed: int
    design_index: int
    iterations: int          # RL iterations, or passes over the views with ``views``
    views: object | None = None  # reconstruction.phasespace.PhaseSpaceViews: a scanning LFM's phase-space RL


def sweep(base: float, factors, lo: float, hi: float, step: float, quantum: float = 0.25) -> np.ndarray:
    """Separations base * factors within [lo, hi], on multiples of ``quantum`` grid ``step``: the partners
    then sit at 1/quantum grid phases of the left bead, so all can be kept off the grid together."""
    q = step * quantum
    s = np.clip(base * np.asarray(factors, dtype=np.float64), lo, hi)
    return np.unique(np.round(np.maximum(np.round(s / q), 1) * q, 6))


def _index(centres: np.ndarray, coord: float) -> float:
    return float((coord - centres[0]) / (centres[1] - centres[0]))


def _row(img2d: np.ndarray, fy: float) -> np.ndarray:
    """Row of a 2-D array at continuous index fy (linear interpolation between rows)."""
    i0 = int(math.floor(fy))
    i0 = min(max(i0, 0), img2d.shape[0] - 2)
    t = min(max(fy - i0, 0.0), 1.0)
    return (1 - t) * img2d[i0] + t * img2d[i0 + 1]


def _plane(ctx: Context, vol: np.ndarray, z: float) -> np.ndarray:
    """The reconstructed plane nearest z, summed with its two neighbours."""
    iz = int(round(_index(ctx.zs, z)))
    return vol[max(0, iz - 1):iz + 2].sum(axis=0)


def _decide(ctx: Context, planes: list[np.ndarray], pos: dict, seps: np.ndarray) -> list[bool]:
    fy = _index(ctx.yc, pos["y_um"])
    left = _index(ctx.xc, pos["x_left_um"])
    out = []
    for s, img in zip(seps, planes):
        right = _index(ctx.xc, pos["x_left_um"] + s)
        if not (0 <= left < right <= len(ctx.xc) - 1):
            out.append(False)
            continue
        out.append(bool(metrics.sparrow_resolved(_row(img, fy), left, right, min_dip=MIN_DIP)))
    return out


def _lfm_fwhm(ctx: Context, vol: np.ndarray, pos: dict) -> tuple[float, float]:
    iz = int(round(_index(ctx.zs, pos["z_um"])))
    iy = int(round(_index(ctx.yc, pos["y_um"])))
    ix = int(round(_index(ctx.xc, pos["x_left_um"])))
    win = (slice(max(0, iz - 2), iz + 3), slice(max(0, iy - 3), iy + 4), slice(max(0, ix - 3), ix + 4))
    sub = vol[win]
    loc = np.unravel_index(int(np.argmax(sub)), sub.shape)
    centre = tuple(int(l + w.start) for l, w in zip(loc, win))
    vz = float(ctx.zs[1] - ctx.zs[0])
    f = metrics.fwhm_3d(vol, centre, (vz, ctx.m_rec.voxel_um, ctx.m_rec.voxel_um))
    return f["lateral_um"], f["axial_um"]


def _wf_fwhm(ctx: Context, img: np.ndarray, pos: dict) -> float:
    px = ctx.m_rec.voxel_um
    fy, fx = _index(ctx.yc, pos["y_um"]), _index(ctx.xc, pos["x_left_um"])
    wx = metrics.fwhm(_row(img, fy), px)
    wy = metrics.fwhm(_row(img.T, fx), px)
    return 0.5 * (wx + wy)


def _summarise(seps: np.ndarray, resolved: list[list[bool]]) -> dict:
    per = [metrics.two_point_resolution(seps, r) for r in resolved]
    med, lo, hi = metrics.repeat_spread(per)
    frac, decision = metrics.fraction_resolved(resolved)
    rule = metrics.two_point_resolution(seps, decision)

    def fin(v):
        return None if v is None or not math.isfinite(v) else float(v)

    return {"lateral_resolution_um": fin(med),
            "lateral_resolution_range_um": [fin(lo), None if not math.isfinite(hi) else float(hi)],
            "lateral_resolution_per_repeat_um": [fin(v) for v in per],
            "lateral_resolution_two_thirds_um": fin(rule),
            "resolved_fraction": [float(f) for f in frac],
            "upper_bound": bool(decision.all())}


def solve(ctx: Context, frames, iterations: int, callback=None):
    """Reconstruct ``frames``: ``iterations`` joint RL iterations with ``ctx.op``, or, for a scanning LFM
    (``ctx.views``), that many passes of its published phase-space RL (``reconstruction.phasespace``:
    one pass updates the volume once per view; at 20 joint iterations the scanning LFM's beads 24 µm
    from focus were not yet separated where 2 passes separated them)."""
    if ctx.views is not None:
        return phase_space_rl(frames, ctx.views, iterations, callback=callback, progress=False)
    return richardson_lucy(frames, ctx.op, iterations=iterations, callback=callback, progress=False)


def measure_point(ctx: Context, depth_index: int, z_nominal: float, seps: np.ndarray, *,
                  checkpoints=(), photon_levels=()) -> dict:
    """Measure one (design, depth): see the module docstring.

    ``checkpoints``: extra RL iteration counts whose two-point results are also reported
    (``convergence_iterations``); ``photon_levels``: other photons per bead, same positions and
    patterns, fresh noise (``convergence_photons``).  Returns the row for results.json.
    """
    prot = ctx.protocol
    lfm = ctx.op is not None
    repeats = []
    for r in range(prot.repeats):
        rng = P.repeat_rng(ctx.seed, ctx.design_index, depth_index, r)
        centre_range = ctx.m_rec.lenslet_pitch_object_um if lfm else 10 * ctx.m_rec.voxel_um
        pos = P.draw_pair(rng, ctx.xc, ctx.yc, z_nominal, ctx.z_step, seps, centre_range,
                          ctx.zs if lfm else None)
        if lfm:
            pts = [(pos["x_left_um"], pos["y_um"], pos["z_um"])] + [(x, pos["y_um"], pos["z_um"]) for x in pos["x_right_um"]]
            pats = P.bead_patterns(ctx.m_sim, pts, prot)
        else:
            pats = _widefield_patterns(ctx, pos, seps)
        repeats.append({"pos": pos, "pats": pats, "rng": rng})

    def frames_for(photons: float, tag: int) -> np.ndarray:
        out = []
        pr = dataclasses.replace(prot, photons_per_bead=float(photons))
        for r, rep in enumerate(repeats):
            rng = rep["rng"] if tag == 0 else P.repeat_rng(ctx.seed, ctx.design_index, depth_index, r, 1000 + tag)
            sets = [[rep["pats"][0], p] for p in rep["pats"][1:]] + [[rep["pats"][0]]]
            out.append(P.noisy_frames(ctx.m_rec.camera, sets, pr, rng, frames_per_volume=k2))
        return np.concatenate(out)

    n = len(seps) + 1
    cam_crop = ctx.m_rec.image_shape
    k2 = ctx.m_rec.scan_steps ** 2 if lfm else 1  # camera frames per volume (K^2 for a scanning LFM)
    in_crop = [float(np.sum(rep["pats"][0])) / k2 for rep in repeats]  # mean over the volume's frames
    row = {"z_um": float(z_nominal), "separations_um": [float(s) for s in seps],
           "bead_positions_um": [{k: v for k, v in rep["pos"].items()} for rep in repeats],
           "bead_fraction_on_crop": in_crop, "crop_px": list(cam_crop)}

    def evaluate(outputs, raw_frames=None) -> tuple[dict, list, list]:
        resolved, lat, ax = [], [], []
        for r, rep in enumerate(repeats):
            block = outputs[r * n:(r + 1) * n]
            if lfm:
                planes = [_plane(ctx, v, rep["pos"]["z_um"]) for v in block[:-1]]
                lw, aw = _lfm_fwhm(ctx, block[-1], rep["pos"])
            else:
                planes = list(block[:-1])
                lw, aw = _wf_fwhm(ctx, block[-1], rep["pos"]), math.nan
            resolved.append(_decide(ctx, planes, rep["pos"], seps))
            lat.append(lw)
            ax.append(aw)
        return _summarise(seps, resolved), lat, ax

    frames = frames_for(prot.photons_per_bead, 0)
    conv = []
    if lfm:
        want = sorted({int(k) for k in checkpoints} | {ctx.iterations})
        snaps = {}

        def cb(k, x):
            if k in want:
                snaps[k] = np.asarray(x.get() if hasattr(x, "get") else x).copy()

        solve(ctx, frames, max(want), callback=cb)
        main, lat, ax = evaluate(snaps[ctx.iterations])
        for k in want:
            if k in checkpoints:
                s_k = main if k == ctx.iterations else evaluate(snaps[k])[0]
                conv.append({"variable": "iterations", "value": k, **_conv(s_k)})
    else:
        main, lat, ax = evaluate(frames)
    if photon_levels:
        for t, p in enumerate(photon_levels, start=1):
            if float(p) == prot.photons_per_bead:
                conv.append({"variable": "photons", "value": float(p), **_conv(main)})
                continue
            fr = frames_for(p, t)
            out = np.asarray(solve(ctx, fr, ctx.iterations)) if lfm else fr
            conv.append({"variable": "photons", "value": float(p), **_conv(evaluate(out)[0])})
    lmed = metrics.repeat_spread(lat)
    row.update(main)
    row["lateral_fwhm_um"] = None if not math.isfinite(lmed[0]) else lmed[0]
    row["lateral_fwhm_range_um"] = [None if not math.isfinite(v) else v for v in lmed[1:]]
    if lfm:
        amed = metrics.repeat_spread(ax)
        row["axial_resolution_um"] = None if not math.isfinite(amed[0]) else amed[0]
        row["axial_resolution_range_um"] = [None if not math.isfinite(v) else v for v in amed[1:]]
    row["_convergence"] = conv
    row["_frame"] = frames[n - 1]
    return row


def _widefield_patterns(ctx: Context, pos: dict, seps: np.ndarray) -> list[np.ndarray]:
    """Exact wide-field patterns of the left bead and its partners from two computed patterns.

    Wide-field imaging is shift-invariant: a source moved by j whole pixels gives the same pixel
    values moved by j pixels (``sensor_pattern`` places the same patch j pixels further).  The
    separations are multiples of half a pixel, so every partner is the left bead's pattern or the
    pattern of a source half a pixel to its right, shifted; both are computed on a camera wider by
    the largest shift, so the shifted crops are exact.
    """
    px = ctx.m_rec.voxel_um
    k = np.rint(np.asarray(seps) / (px / 2)).astype(int)
    if not np.allclose(k * px / 2, seps, atol=1e-6 * px):
        raise ValueError("wide-field separations must be multiples of half a pixel")
    h, w = ctx.m_rec.image_shape
    mg = int(k.max() // 2 + 2)
    big = ctx.m_sim.replace(camera={"shape": [h + 2 * mg, w + 2 * mg]})
    x, y, z = pos["x_left_um"], pos["y_um"], pos["z_um"]
    base = P.bead_patterns(big, [(x, y, z), (x + px / 2, y, z)], ctx.protocol)
    crop = lambda c, j: c[mg:mg + h, mg - j:mg - j + w]
    return [crop(base[0], 0)] + [crop(base[kk % 2], kk // 2) for kk in k]


def _conv(summary: dict) -> dict:
    return {"lateral_resolution_um": summary["lateral_resolution_um"],
            "lateral_resolution_range_um": summary["lateral_resolution_range_um"],
            "resolved_fraction": summary["resolved_fraction"]}


def widefield_axial(ctx: Context, x: float, y: float, z0: float, zero_um: float, seed_key: int,
                    planes: int = 13) -> dict:
    """Through-focus FWHM of the brightest pixel near a bead's image, over repeats (raw noisy frames).

    The bead (off the pixel grid at (x, y), focus offset z0) is imaged at ``planes`` depths
    z0 + k dz spanning +-1.6 first axial zeros; each repeat draws its own noise.
    """
    prot = ctx.protocol
    k = (planes - 1) // 2
    step = 1.6 * zero_um / k
    zz = z0 + step * np.arange(-k, k + 1)
    pats = P.bead_patterns(ctx.m_sim, [(x, y, float(v)) for v in zz], prot)
    widths = []
    for r in range(prot.repeats):
        rng = P.repeat_rng(ctx.seed, ctx.design_index, seed_key, r)
        xr, yr = x, y
        frames = P.noisy_frames(ctx.m_rec.camera, [[p] for p in pats], prot, rng)
        iy, ix = int(round(_index(ctx.yc, yr))), int(round(_index(ctx.xc, xr)))
        peak = frames[:, max(0, iy - 1):iy + 2, max(0, ix - 1):ix + 2].max(axis=(1, 2))
        widths.append(metrics.fwhm(peak, step))
    med, lo, hi = metrics.repeat_spread(widths)
    fin = lambda v: None if not math.isfinite(v) else float(v)
    return {"axial_resolution_um": fin(med), "axial_resolution_range_um": [fin(lo), fin(hi)], "axial_step_um": step}


def voxel_centres(m) -> tuple[np.ndarray, np.ndarray]:
    return phantoms.voxel_centres_um(m, "x"), phantoms.voxel_centres_um(m, "y")
