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
[min, max] over repeats.  A sweep whose every separation is resolved (an upper bound at its start)
is refined below its smallest separation (``REFINE_FACTORS``, same left beads, new off-grid partners,
fresh noise) down to a floor of 1.2 grid steps, and a sweep whose largest separation some repeat
leaves unresolved is extended above it (``EXTEND_FACTORS``, up to the sweep's ceiling), so no result
is bounded by the sweep's guess.  The
same frames, reconstructed to other iteration counts, and the same bead patterns with other photon
budgets, give the convergence study (refined alike).
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


#: Refinement below a sweep whose smallest separation was resolved (an upper bound): new
#: separations at these fractions of the smallest tested one (down to ``floor_um``), up to
#: ``MAX_REFINE_ROUNDS`` rounds, so that a depth where the design beats the sweep's guess is measured
#: rather than reported at the sweep's start.
REFINE_FACTORS = (0.55, 0.7, 0.85)
MAX_REFINE_ROUNDS = 2


def _pick(ctx: Context, repeats: list, ks, targets, q: float) -> list[float]:
    """For each target, the multiple k q (k in ``ks``) nearest to it, not yet picked, whose partner is
    off the grid for every repeat's left bead."""
    out: list[float] = []
    for target in targets:
        for k in sorted(ks, key=lambda k: abs(k * q - target)):
            v = round(k * q, 6)
            if v in out:
                continue
            if all(P.off_grid(rep["pos"]["x_left_um"] + v, ctx.xc) for rep in repeats):
                out.append(v)
                break
    return out


def _refinement(ctx: Context, repeats: list, smallest: float, floor: float, quantum: float) -> list[float]:
    """Separations below ``smallest`` (>= ``floor``) on multiples of ``quantum``, each the nearest to a
    ``REFINE_FACTORS`` target whose partner is off the grid for every repeat's left bead."""
    q = quantum
    ks = range(max(1, math.ceil(floor / q - 1e-9)), math.ceil(smallest / q - 1e-9))
    out = _pick(ctx, repeats, ks, [max(floor, f * smallest) for f in REFINE_FACTORS], q)
    return sorted(v for v in out if floor - 1e-9 <= v < smallest - 1e-9)


#: Extension above a sweep whose largest separation some repeat did not resolve (its resolution
#: then unknown): new separations at these multiples of the largest tested one (up to the
#: ``ceiling_um`` of ``measure_point``), up to ``MAX_EXTEND_ROUNDS`` rounds.
EXTEND_FACTORS = (1.3, 1.7)
MAX_EXTEND_ROUNDS = 2


def _extension(ctx: Context, repeats: list, largest: float, ceiling: float, quantum: float) -> list[float]:
    """Separations above ``largest`` (<= ``ceiling``) on multiples of ``quantum``, each the nearest to an
    ``EXTEND_FACTORS`` target whose partner is off the grid for every repeat's left bead."""
    q = quantum
    ks = range(math.floor(largest / q + 1e-9) + 1, math.floor(ceiling / q + 1e-9) + 1)
    out = _pick(ctx, repeats, ks, [min(ceiling, f * largest) for f in EXTEND_FACTORS], q)
    return sorted(v for v in out if largest + 1e-9 < v <= ceiling + 1e-9)


def measure_point(ctx: Context, depth_index: int, z_nominal: float, seps: np.ndarray, *,
                  checkpoints=(), photon_levels=(), floor_um: float | None = None, quantum: float = 0.25,
                  ceiling_um: float | None = None) -> dict:
    """Measure one (design, depth): see the module docstring.

    ``checkpoints``: extra RL iteration counts whose two-point results are also reported
    (``convergence_iterations``); ``photon_levels``: other photons per bead, same positions and
    patterns, fresh noise (``convergence_photons``).  ``floor_um``: the smallest separation worth
    testing; when every separation of the sweep is resolved and the smallest is above it, the sweep
    is refined downwards (``REFINE_FACTORS``; the same left beads, new partners, fresh noise) on
    multiples of ``quantum`` grid steps.  ``ceiling_um``: the largest separation worth testing; when
    some repeat does not resolve the largest separation of the sweep (its resolution would be
    unknown), the sweep is extended upwards (``EXTEND_FACTORS``) to at most it.  Returns the row for
    results.json.
    """
    prot = ctx.protocol
    lfm = ctx.op is not None
    seps = np.asarray(seps, dtype=np.float64)
    repeats = []
    for r in range(prot.repeats):
        rng = P.repeat_rng(ctx.seed, ctx.design_index, depth_index, r)
        centre_range = ctx.m_rec.lenslet_pitch_object_um if lfm else 10 * ctx.m_rec.voxel_um
        pos = P.draw_pair(rng, ctx.xc, ctx.yc, z_nominal, ctx.z_step, seps, centre_range,
                          ctx.zs if lfm else None, stratum=(r, prot.repeats))
        repeats.append({"pos": pos, "pats": _patterns(ctx, pos, seps), "rng": rng})

    n = len(seps) + 1
    cam_crop = ctx.m_rec.image_shape
    k2 = ctx.m_rec.scan_steps ** 2 if lfm else 1  # camera frames per volume (K^2 for a scanning LFM)

    def frames_for(partners: list, photons: float, rng_of, single: bool) -> np.ndarray:
        """Frames of every repeat: left bead + each partner of ``partners[r]`` (and the left bead alone)."""
        out = []
        pr = dataclasses.replace(prot, photons_per_bead=float(photons))
        for r, rep in enumerate(repeats):
            sets = [[rep["pats"][0], p] for p in partners[r]] + ([[rep["pats"][0]]] if single else [])
            out.append(P.noisy_frames(ctx.m_rec.camera, sets, pr, rng_of(r), frames_per_volume=k2))
        return np.concatenate(out)

    def decide(outputs, sep_list, per: int) -> list[list[bool]]:
        res = []
        for r, rep in enumerate(repeats):
            block = outputs[r * per:r * per + len(sep_list)]
            planes = [_plane(ctx, v, rep["pos"]["z_um"]) for v in block] if lfm else list(block)
            res.append(_decide(ctx, planes, rep["pos"], sep_list))
        return res

    def reconstruct(frames, want) -> dict:
        """{iterations: reconstructions} for the counts ``want`` (LFM), or the raw frames (wide-field)."""
        if not lfm:
            return {0: frames}
        snaps = {}

        def cb(k, x):
            if k in want:
                snaps[k] = np.asarray(x.get() if hasattr(x, "get") else x).copy()

        solve(ctx, frames, max(want), callback=cb)
        return snaps

    main_rng = lambda r: repeats[r]["rng"]  # noqa: E731
    want = sorted({int(k) for k in checkpoints} | {ctx.iterations}) if lfm else [0]
    key_main = ctx.iterations if lfm else 0
    main_frames = frames_for([rep["pats"][1:] for rep in repeats], prot.photons_per_bead, main_rng, True)
    outs = reconstruct(main_frames, want)
    in_crop = [float(np.sum(rep["pats"][0])) / k2 for rep in repeats]  # mean over the volume's frames
    # resolved[key][r]: decisions of repeat r over ``seps``; keys: iteration counts, ("photons", p)
    resolved = {k: decide(outs[k], seps, n) for k in want}
    single = outs[key_main][n - 1::n]  # the left bead alone, one per repeat
    lat, ax = [], []
    for r, rep in enumerate(repeats):
        if lfm:
            lw, aw = _lfm_fwhm(ctx, single[r], rep["pos"])
        else:
            lw, aw = _wf_fwhm(ctx, single[r], rep["pos"]), math.nan
        lat.append(lw)
        ax.append(aw)
    # the convergence study's other photon budgets: (seed key, photons)
    levels = [(t, float(p)) for t, p in enumerate(photon_levels, start=1) if float(p) != prot.photons_per_bead]

    def at_photons(partners, photons, rng_of, single, sep_list, per) -> list[list[bool]]:
        fr = frames_for(partners, photons, rng_of, single)
        out = reconstruct(fr, [ctx.iterations])[ctx.iterations] if lfm else fr
        return decide(out, sep_list, per)

    for t, p in levels:
        resolved[("photons", p)] = at_photons(
            [rep["pats"][1:] for rep in repeats], p,
            lambda r, t=t: P.repeat_rng(ctx.seed, ctx.design_index, depth_index, r, 1000 + t), True, seps, n)

    def add(new: np.ndarray, key_base: int, below: bool) -> None:
        """Measure the new separations ``new`` (the same left beads, new partners, fresh noise from
        streams ``key_base`` + ...) and merge them below (``below``) or above the sweep."""
        nonlocal seps
        partners = [_patterns(ctx, rep["pos"], new, left=False) for rep in repeats]
        for rep in repeats:
            xs = [float(rep["pos"]["x_left_um"] + v) for v in new]
            rep["pos"]["x_right_um"] = xs + rep["pos"]["x_right_um"] if below else rep["pos"]["x_right_um"] + xs

        def merge(key, decisions) -> None:
            resolved[key] = [d + old if below else old + d for d, old in zip(decisions, resolved[key])]

        rng_n = lambda r: P.repeat_rng(ctx.seed, ctx.design_index, depth_index, r, key_base)  # noqa: E731
        outs_n = reconstruct(frames_for(partners, prot.photons_per_bead, rng_n, False), want)
        for k in want:
            merge(k, decide(outs_n[k], new, len(new)))
        for t, p in levels:
            rng_p = lambda r, t=t: P.repeat_rng(ctx.seed, ctx.design_index, depth_index, r,  # noqa: E731
                                                key_base + 100 * t)
            merge(("photons", p), at_photons(partners, p, rng_p, False, new, len(new)))
        seps = np.concatenate([new, seps] if below else [seps, new])

    # refine below a resolved smallest separation
    refined = 0
    step = float(ctx.xc[1] - ctx.xc[0])
    while (floor_um is not None and refined < MAX_REFINE_ROUNDS
           and bool(metrics.fraction_resolved(resolved[key_main])[1].all()) and seps[0] > floor_um + 1e-9):
        extra = _refinement(ctx, repeats, float(seps[0]), float(floor_um), quantum * step)
        if not extra:
            break
        refined += 1
        add(np.asarray(extra), 2000 + refined, below=True)
    # extend above a largest separation that some repeat left unresolved, so that repeat's
    # resolution is measured rather than unknown
    extended = 0
    while (ceiling_um is not None and extended < MAX_EXTEND_ROUNDS
           and not all(r[-1] for r in resolved[key_main]) and seps[-1] < ceiling_um - 1e-9):
        extra = _extension(ctx, repeats, float(seps[-1]), float(ceiling_um), quantum * step)
        if not extra:
            break
        extended += 1
        add(np.asarray(extra), 3000 + extended, below=False)

    main = _summarise(seps, resolved[key_main])
    conv = []
    for k in want:
        if lfm and k in checkpoints:
            conv.append({"variable": "iterations", "value": k, **_conv(_summarise(seps, resolved[k]))})
    for p in photon_levels:
        s_p = main if float(p) == prot.photons_per_bead else _summarise(seps, resolved[("photons", float(p))])
        conv.append({"variable": "photons", "value": float(p), **_conv(s_p)})
    row = {"z_um": float(z_nominal), "separations_um": [float(v) for v in seps],
           "refined_rounds": refined, "extended_rounds": extended,
           "bead_positions_um": [{k: v for k, v in rep["pos"].items()} for rep in repeats],
           "bead_fraction_on_crop": in_crop, "crop_px": list(cam_crop)}
    lmed = metrics.repeat_spread(lat)
    row.update(main)
    row["lateral_fwhm_um"] = None if not math.isfinite(lmed[0]) else lmed[0]
    row["lateral_fwhm_range_um"] = [None if not math.isfinite(v) else v for v in lmed[1:]]
    if lfm:
        amed = metrics.repeat_spread(ax)
        row["axial_resolution_um"] = None if not math.isfinite(amed[0]) else amed[0]
        row["axial_resolution_range_um"] = [None if not math.isfinite(v) else v for v in amed[1:]]
    row["_convergence"] = conv
    row["_frame"] = main_frames[n - 1]  # the first repeat's left bead alone: one volume, for the timing
    return row


def _patterns(ctx: Context, pos: dict, seps: np.ndarray, left: bool = True) -> list[np.ndarray]:
    """Exact patterns of the left bead at ``pos`` (unless ``left`` is False) and of its partners at
    +``seps`` in x."""
    if ctx.op is None:
        pats = _widefield_patterns(ctx, pos, seps)
        return pats if left else pats[1:]
    y, z = pos["y_um"], pos["z_um"]
    pts = ([(pos["x_left_um"], y, z)] if left else []) + [(pos["x_left_um"] + float(v), y, z) for v in seps]
    return P.bead_patterns(ctx.m_sim, pts, ctx.protocol)


def _widefield_patterns(ctx: Context, pos: dict, seps: np.ndarray) -> list[np.ndarray]:
    """Exact wide-field patterns of the left bead and its partners from two computed patterns.

    Wide-field imaging is shift-invariant: a source moved by j whole pixels gives the same pixel
    values moved by j pixels (``sensor_pattern`` places the same patch j pixels further).  The
    separations are multiples of half a pixel, so every partner is the left bead's pattern or the
    pattern of a source half a pixel to its right, shifted; both are computed on a camera wider by
    the largest shift on either side (same rows: the shifts are along x only), so the shifted crops
    are exact.
    """
    px = ctx.m_rec.voxel_um
    k = np.rint(np.asarray(seps) / (px / 2)).astype(int)
    if not np.allclose(k * px / 2, seps, atol=1e-6 * px):
        raise ValueError("wide-field separations must be multiples of half a pixel")
    h, w = ctx.m_rec.image_shape
    mg = int(k.max() // 2 + 2)
    big = ctx.m_sim.replace(camera={"shape": [h, w + 2 * mg]})  # the axis stays at the crop's centre
    x, y, z = pos["x_left_um"], pos["y_um"], pos["z_um"]
    base = P.bead_patterns(big, [(x, y, z), (x + px / 2, y, z)], ctx.protocol)
    crop = lambda c, j: c[:, mg - j:mg - j + w]
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
