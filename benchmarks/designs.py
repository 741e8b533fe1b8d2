"""The microscope designs the trade-off benchmark sweeps, and the measurement settings per size.

Designs (``standard_designs``): for each objective (20x/0.5W and 40x/0.95 by default, the
objectives of the ``lfm-20x-0.5w`` and ``lfm-40x-0.95`` presets) a standard LFM (MLA at the native
image plane) for several lenslet pitches d = N p with N pixels per lenslet (odd), the same camera
pixel p and f-number matched lenslets f_ml = d M / (2 NA) (Levoy et al. 2006), all on one fixed
camera; and a wide-field reference with the same objective and sensor area.  The wide-field
reference uses a design-specific, finer camera pixel (2 µm: 0.1 µm in the sample at 20x) so that
its image samples the Sparrow distance with several pixels (a 6.5 µm pixel would put the wide-field
two-point measurement on a 0.33 µm grid); its field of view is that of the same sensor area.

Other families (``Size.families``, the presets ``FAMILY_PRESETS`` on the 20x/0.5W objective): the
LFM 2.0 preset (MLA 1.5 mm behind the native image plane, on the sweep's camera), the Fourier LFM and
the XLFM-like two-focus array.  Each carries the depths and grid of the LFMs of its objective.

Scanning LFMs (``Size.slfm_scans``, on the objectives of ``SLFM_OBJECTIVES``): the N =
``Size.slfm_nnum`` f-number-matched LFM of the sweep, on the sweep's camera, turned into kind "slfm"
with a K x K scan in ring order (the published order, ``optics.scan``) for each K of
``Size.slfm_scans``, named e.g. ``slfm-20x-0.5w-N15-3x3``: the same optics, K^2 camera frames per
volume.  Reconstruction voxels: ``voxels_per_lenslet`` (an odd multiple of K).

Each design carries the depths at which it is measured and the reconstruction grid (``Size``):
the measured field is a crop of the camera (``crop_lenslets`` lenslets), the field of view and
resolvable voxels are reported for the full camera.  A Fourier LFM cannot be cropped (every point
lights every elemental image), so it is measured on its reduced copy (``flfm_surrogate``): lenslet
pitch, focal lengths, centres, sensor distance and Fourier lens all divided by one factor k, so
that the pupil image spans ``Size.flfm_pupil_px`` pixels.  F = f_obj f2 / f1, M_T = b / F, the
lenslets across the pupil N = 2 NA F / d, each view's aperture NA / N and f-number, and the
depth's phase across one lenslet ((d/k)^2 / (F/k)^2) are unchanged, so each elemental image (spot,
blur, disparity M_T z tan(theta)) is that of the full design in the paraxial chain; only the field
of one view, d / (k M_T), shrinks (the full design's is reported).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from benchmarks.twopoint import MIN_DIP
from optics import presets, theory
from optics.config import Microscope, load_config

__all__ = ["Size", "SIZES", "Design", "standard_designs", "design_from_config", "OBJECTIVES", "FAMILY_PRESETS",
           "SLFM_OBJECTIVES", "SLFM_ORDER", "scanned_lfm", "flfm_surrogate", "voxels_per_lenslet"]

#: Objectives swept by default: preset name -> short label.
OBJECTIVES = {"lfm-20x-0.5w": "20x/0.5W", "lfm-40x-0.95": "40x/0.95"}
#: Wide-field reference pixel (µm, sensor side): design-specific, see the module docstring.
WIDEFIELD_PIXEL_UM = 2.0
#: Designs of the other families, per objective preset: LFM 2.0, Fourier LFM, XLFM-like.
FAMILY_PRESETS = {"lfm-20x-0.5w": ("lfm2-20x-0.5w", "flfm-20x-0.5w", "xlfm-20x-0.5w")}
#: Objectives whose N = ``Size.slfm_nnum`` LFM is also measured as a scanning LFM (``Size.slfm_scans``).
SLFM_OBJECTIVES = ("lfm-20x-0.5w",)
#: Scan order of the sLFM designs: the published 3 x 3 ring (Wu et al. 2021), generalised outside in.
SLFM_ORDER = "ring"


@dataclass(frozen=True)
class Size:
    """Measurement settings of one benchmark size (``--quick``, ``--smallest``, full).

    Every size measures both signs of z (no mirroring) with the same photometric protocol
    (``benchmarks.protocol``); smaller sizes reduce the designs, the camera crop, the voxel
    sampling, the depths, the separations, the RL iterations and the convergence study.
    """

    name: str
    nnums: tuple[int, ...]               # pixels per lenslet swept per objective
    crop_lenslets: int                   # measured camera crop (lenslets per side)
    max_voxels_per_lenslet: int          # reconstruction s <= min(N, this)
    voxel_target: float                  # aim for a voxel of this many lambda0/NA (s rounded up to odd)
    iterations: int                      # Richardson-Lucy iterations
    depth_fractions: tuple[float, ...]   # measured depths, as fractions of the objective's z_max (both signs)
    z_max_um: dict = field(default_factory=dict)   # per objective preset: deepest measured depth (µm)
    z_step_um: dict = field(default_factory=dict)  # per objective preset: reconstruction plane step
    separations: tuple[float, ...] = (0.6, 0.75, 0.9, 1.0, 1.15, 1.35, 1.6, 1.9, 2.3, 2.8, 3.4)
    widefield_depths_um: dict = field(default_factory=dict)
    widefield_crop_px: int = 64
    widefield_axial_planes: int = 17      # through-focus planes of the wide-field axial FWHM
    objectives: tuple[str, ...] = tuple(OBJECTIVES)
    margin_planes: int = 2               # reconstruction planes beyond the deepest measured depth
    convergence_iterations: tuple[int, ...] = (5, 10, 20, 30, 50, 100)
    convergence_photons: tuple[float, ...] = (1e3, 1e4, 1e5)
    convergence_depth_fractions: tuple[float, ...] = (0.0, 0.3, -0.6)
    convergence_nnum: int = 15           # the LFM of the convergence study (N) ...
    convergence_objective: str = "lfm-40x-0.95"   # ... and its objective (with that objective's wide-field)
    families: bool = True                # also measure FAMILY_PRESETS (LFM 2.0, Fourier LFM, XLFM-like)
    family_depth_fractions: tuple[float, ...] | None = None  # their depths (None: the LFMs' depth_fractions)
    flfm_pupil_px: int = 192             # Fourier LFMs: pupil image of the reduced copy (pixels); one view's
    #                                      field shrinks with it (d / (k M_T): 21 um at 64 px for flfm-20x-0.5w)
    slfm_scans: tuple[int, ...] = ()     # scanning LFMs: K of each K x K scan (odd), on the N = slfm_nnum LFM
    slfm_nnum: int = 15                  # ... of the objectives SLFM_OBJECTIVES
    slfm_depth_fractions: tuple[float, ...] | None = None  # their depths (None: the LFMs' depth_fractions)
    slfm_passes: int = 3                 # their reconstruction: passes of the published phase-space RL
    slfm_max_voxels_per_lenslet: int | None = None  # their voxel cap (None: max_voxels_per_lenslet); the full
    #                                      size's 15 puts the 3x3 and 5x5 scans on one grid (15 = 5 x 3 = 3 x 5)
    near_focus: bool = False             # also measure each LFM 1.0 near focus on a finer depth grid
    #                                      (``benchmarks.tradeoff.near_focus``: the band at the native plane)

    def describe(self) -> str:
        return (f"size {self.name!r}: N = {list(self.nnums)} px/lenslet, camera crop {self.crop_lenslets} lenslets, "
                f"voxel ~{self.voxel_target:g} lambda0/NA (<= {self.max_voxels_per_lenslet} voxels/lenslet), "
                f"{self.iterations} RL iterations, {len(self.depth_fractions)} depths per LFM design (both signs), "
                f"{len(self.separations)} two-point separations; convergence: iterations "
                f"{list(self.convergence_iterations)}, photons {[f'{p:g}' for p in self.convergence_photons]}"
                + (f"; scanning LFMs {', '.join(f'{k}x{k}' for k in self.slfm_scans)} on the N = {self.slfm_nnum} LFM"
                   if self.slfm_scans else ""))


_WF_DEPTHS = {"lfm-20x-0.5w": (0.0, 0.5, 1.0, 2.0, 3.0, 4.5, 6.0), "lfm-40x-0.95": (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)}


def _both(depths) -> tuple[float, ...]:
    return tuple(sorted({-v for v in depths} | set(depths)))


SIZES = {
    "full": Size("full", nnums=(7, 11, 15, 19), crop_lenslets=15, max_voxels_per_lenslet=11, voxel_target=0.5,
                 iterations=30,
                 depth_fractions=(-1.0, -0.6, -0.3, -0.1, 0.0, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0),
                 z_max_um={"lfm-20x-0.5w": 100.0, "lfm-40x-0.95": 24.0},
                 z_step_um={"lfm-20x-0.5w": 4.0, "lfm-40x-0.95": 1.5},
                 widefield_depths_um={k: _both(d) for k, d in _WF_DEPTHS.items()},
                 widefield_crop_px=96, slfm_scans=(3, 5), slfm_max_voxels_per_lenslet=15, near_focus=True),
    "quick": Size("quick", nnums=(7, 15), crop_lenslets=7, max_voxels_per_lenslet=9, voxel_target=1.2,
                  iterations=20,
                  depth_fractions=(-1.0, -0.4, 0.0, 0.2, 0.4, 1.0),
                  z_max_um={"lfm-20x-0.5w": 60.0, "lfm-40x-0.95": 12.0},
                  z_step_um={"lfm-20x-0.5w": 6.0, "lfm-40x-0.95": 1.5},
                  separations=(0.7, 0.85, 1.0, 1.25, 1.6, 2.2),
                  widefield_depths_um={"lfm-20x-0.5w": (-4.5, -1.5, 0.0, 1.5, 4.5),
                                       "lfm-40x-0.95": (-2.0, -0.75, 0.0, 0.75, 2.0)},
                  widefield_axial_planes=11,
                  convergence_iterations=(5, 10, 20, 40), convergence_depth_fractions=(0.0, 0.4),
                  flfm_pupil_px=64, family_depth_fractions=(-1.0, 0.0, 0.4, 1.0),
                  # the 3x3 sLFM only, at 3 depths (both sides of focus): the 3x3 took ~60 s per depth and
                  # the 5x5 ~95 s on 2 shared cores (9 and 25 exact patterns per bead), too slow for a laptop run
                  slfm_scans=(3,), slfm_depth_fractions=(-0.4, 0.0, 0.4), slfm_passes=2),
    "smallest": Size("smallest", nnums=(7, 15), crop_lenslets=5, max_voxels_per_lenslet=3, voxel_target=2.0,
                     iterations=8,
                     depth_fractions=(-1.0, 0.0, 1.0), z_max_um={"lfm-20x-0.5w": 20.0},
                     z_step_um={"lfm-20x-0.5w": 10.0}, margin_planes=1,
                     separations=(0.8, 1.0, 1.3, 1.7, 2.2, 3.0),
                     widefield_depths_um={"lfm-20x-0.5w": (-1.0, 0.0, 1.0)},
                     widefield_crop_px=48, objectives=("lfm-20x-0.5w",), widefield_axial_planes=5,
                     convergence_iterations=(4, 8), convergence_photons=(1e3, 1e4),
                     convergence_depth_fractions=(1.0,), convergence_nnum=7,
                     convergence_objective="lfm-20x-0.5w", families=False),
}

#: Two-point separations of the wide-field reference, in units of its theory value (cheap: no reconstruction).
WIDEFIELD_SEPARATIONS = tuple(np.round(np.arange(0.7, 1.6, 0.05), 3)) + (1.8, 2.2, 2.8, 3.5)


@dataclass(frozen=True)
class Design:
    """One microscope to measure: the full design (fixed camera) and how to measure it."""

    name: str
    microscope: Microscope   # full-size design: its camera gives the field of view
    label: str               # objective label, e.g. "20x/0.5W"
    depths_um: tuple[float, ...]
    z_max_um: float          # reconstruction grid half-range
    z_step_um: float

    @property
    def kind(self) -> str:
        return self.microscope.kind


def _matched_lfm(base: Microscope, nnum: int, pixel_um: float, sensor_um: float) -> Microscope:
    o = base.objective
    pitch = nnum * pixel_um
    focal = pitch * o.magnification / (2 * o.na)  # f-number matched (L06)
    side = int(round(sensor_um / pixel_um))
    return base.replace(
        name=f"lfm-{o.magnification:g}x-{o.na:g}{'w' if o.immersion_index > 1.2 else ''}-N{nnum}",
        mla={"pitch_um": pitch, "focal_um": focal},
        camera={"pixel_um": pixel_um, "shape": [side, side]},
        volume={"voxels_per_lenslet": 1},
    )


def scanned_lfm(lfm: Microscope, steps: int, order: str = SLFM_ORDER) -> Microscope:
    """The scanning LFM (kind "slfm") with the optics and camera of the LFM ``lfm`` and a ``steps`` x
    ``steps`` scan in ``order``; named after it, e.g. "slfm-20x-0.5w-N15-3x3" for "lfm-20x-0.5w-N15".

    Its ``voxels_per_lenslet`` is K (the smallest the config accepts); the benchmark's reconstruction
    sets its own (``voxels_per_lenslet``).
    """
    if lfm.kind != "lfm":
        raise ValueError(f"microscope.kind = {lfm.kind!r} is invalid: a scanning LFM design is built from an 'lfm'")
    k = steps
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1 or k % 2 == 0:
        raise ValueError(f"slfm_scans: steps = {k!r} is invalid: expected an odd integer >= 1 (K of a K x K scan)")
    if k > lfm.pixels_per_lenslet:
        raise ValueError(f"slfm_scans: steps = {k} is invalid: expected at most the {lfm.pixels_per_lenslet} pixels "
                         f"per lenslet of {lfm.name!r} (a scan step below one pixel samples nothing new)")
    name = "s" + (lfm.name or "lfm") + f"-{k}x{k}"
    return lfm.replace(kind="slfm", name=name, scan={"steps": int(k), "order": order},
                       volume={"voxels_per_lenslet": int(k)})


def _widefield(base: Microscope, sensor_um: float) -> Microscope:
    o = base.objective
    side = int(round(sensor_um / WIDEFIELD_PIXEL_UM))
    d = {
        "microscope": {"kind": "widefield", "wavelength_um": base.wavelength_um,
                       "name": f"widefield-{o.magnification:g}x-{o.na:g}{'w' if o.immersion_index > 1.2 else ''}"},
        "objective": {"magnification": o.magnification, "na": o.na, "immersion_index": o.immersion_index,
                      "tube_lens_focal_um": o.tube_lens_focal_um},
        "camera": {"pixel_um": WIDEFIELD_PIXEL_UM, "shape": [side, side]},
        "volume": {"z_min_um": 0, "z_max_um": 0, "z_step_um": 1, "voxels_per_lenslet": 1},
        "simulation": {"oversampling": base.simulation.oversampling},
    }
    return Microscope.from_dict(d)


def _snap(values, step: float) -> tuple[float, ...]:
    return tuple(sorted({float(round(v / step) * step) + 0.0 for v in values}))


def standard_designs(size: Size, *, pixel_um: float = 10.0, sensor_px: int = 2048,
                     nnums: tuple[int, ...] | None = None, objectives: tuple[str, ...] | None = None) -> list[Design]:
    """Wide-field reference and f-number-matched LFMs for each objective and pitch, on one camera.

    The camera is ``sensor_px`` x ``sensor_px`` pixels of ``pixel_um`` (default 2048 x 10 µm, 20.5 mm);
    each LFM has N = ``nnums`` pixels per lenslet (odd).  Depths: ``size.depth_fractions`` of the
    objective's range, snapped to the reconstruction grid.  Then the other families (``size.families``)
    and, on the objectives of ``SLFM_OBJECTIVES`` when N = ``size.slfm_nnum`` is swept, the scanning
    LFMs of ``size.slfm_scans`` (``scanned_lfm`` of that LFM; depths ``size.slfm_depth_fractions``, or
    the LFMs' depths; the LFMs' grid).
    """
    nnums = tuple(size.nnums if nnums is None else nnums)
    for n in nnums:
        if n < 1 or n % 2 == 0:
            raise ValueError(f"nnums = {list(nnums)} is invalid: pixels per lenslet must be odd integers >= 1")
    objectives = tuple(size.objectives if objectives is None else objectives)
    sensor_um = sensor_px * pixel_um
    out: list[Design] = []
    for key in objectives:
        if key not in OBJECTIVES:
            raise ValueError(f"objective {key!r} is unknown; accepted: {', '.join(OBJECTIVES)}")
        if key not in size.z_max_um or key not in size.widefield_depths_um:
            raise ValueError(f"objective {key!r} is not measured at size {size.name!r}; "
                             f"accepted: {', '.join(size.objectives)}")
        base = presets.get(key)
        label = OBJECTIVES[key]
        wf = _widefield(base, sensor_um)
        wdepths = size.widefield_depths_um[key]
        out.append(Design(wf.name, wf, label, tuple(float(z) for z in wdepths), max(abs(z) for z in wdepths),
                          _wf_step(wdepths)))
        zmax, dz = size.z_max_um[key], size.z_step_um[key]
        depths = _snap([f * zmax for f in size.depth_fractions], dz)
        zmax = max(abs(z) for z in depths) + size.margin_planes * dz
        for n in nnums:
            m = _matched_lfm(base, n, pixel_um, sensor_um)
            out.append(Design(m.name, m, label, depths, zmax, dz))
        if size.families:
            fam = depths
            if size.family_depth_fractions is not None:
                fam = _snap([f * size.z_max_um[key] for f in size.family_depth_fractions], dz)
            for name in FAMILY_PRESETS.get(key, ()):
                m = presets.get(name)
                if m.kind == "lfm-defocused":  # on the sweep's camera, like the standard LFMs
                    m = m.replace(camera={"pixel_um": pixel_um, "shape": [int(round(sensor_um / pixel_um))] * 2},
                                  volume={"voxels_per_lenslet": 1})
                out.append(Design(m.name, m, label, fam, zmax, dz))
        if size.slfm_scans and key in SLFM_OBJECTIVES and size.slfm_nnum in nnums:
            sd = depths
            if size.slfm_depth_fractions is not None:
                sd = _snap([f * size.z_max_um[key] for f in size.slfm_depth_fractions], dz)
            lfm = _matched_lfm(base, size.slfm_nnum, pixel_um, sensor_um)
            for k in size.slfm_scans:
                m = scanned_lfm(lfm, k)
                out.append(Design(m.name, m, label, sd, zmax, dz))
    return out


def flfm_surrogate(m: Microscope, pupil_px: int) -> tuple[Microscope, float]:
    """The reduced copy of a Fourier LFM (module docstring) whose pupil image spans ``pupil_px``
    pixels, and the factor k (1 if the design is already that small)."""
    mla = m.mla
    d_px = 2 * m.objective.na * m.fourier_focal_um / m.camera.pixel_um
    k = max(1.0, d_px / float(pupil_px))
    f = mla.focal_um
    change = {"pitch_um": mla.pitch_um / k, "fourier_lens_focal_um": mla.fourier_lens_focal_um / k,
              "focal_um": [v / k for v in f] if isinstance(f, tuple) else f / k,
              "sensor_distance_um": mla.sensor_distance_um / k}
    if mla.centres_um:
        change["centres_um"] = [[x / k, y / k] for x, y in mla.centres_um]
    name = f"{m.name or 'flfm'} (reduced 1/{k:.3g})" if k > 1 else m.name
    return m.replace(mla=change, name=name), k


def _wf_step(depths) -> float:
    d = sorted({abs(float(z)) for z in depths})
    steps = [b - a for a, b in zip(d, d[1:]) if b > a]
    g = min(steps) if steps else 1.0
    return float(min(g, 0.25))


def design_from_config(path, size: Size) -> Design:
    """A design from a config file (TOML/JSON): its camera gives the field of view.

    Depths: ``size.depth_fractions`` of the config's volume range (max |z_min|, |z_max|), snapped to
    its ``z_step_um``; a wide-field config is measured at its grid depths within +-3 µm.
    """
    m = load_config(path)
    name = m.name or str(path)
    o = m.objective
    label = f"{o.magnification:g}x/{o.na:g}{'W' if o.immersion_index > 1.2 else ''}"
    if m.kind == "widefield":
        z = m.z_um
        depths = tuple(float(v) for v in z if abs(v) <= 3.0) or (0.0,)
        return Design(name, m, label, depths, max(abs(v) for v in depths), _wf_step(depths))
    zmax = max(abs(m.volume.z_min_um), abs(m.volume.z_max_um))
    dz = m.volume.z_step_um
    if zmax <= 0:
        zmax = 10 * dz
    depths = _snap([f * zmax for f in size.depth_fractions], dz)
    return Design(name, m, label, depths, max(abs(z) for z in depths) + size.margin_planes * dz, dz)


def with_depths(design: Design, depths_um, margin_planes: int = 2) -> Design:
    """The same design measured at other depths (e.g. from a notebook); the grid grows to cover them.

    Depths are measured on the nearest plane of the reconstruction grid (step ``design.z_step_um``).
    """
    z = tuple(float(v) for v in depths_um)
    if not z or not all(math.isfinite(v) for v in z):
        raise ValueError(f"depths_um = {depths_um!r} is invalid: expected finite depths in µm")
    zmax = max(design.z_max_um, max(abs(v) for v in z) + margin_planes * design.z_step_um)
    return replace(design, depths_um=z, z_max_um=zmax)


def reconstruction_microscope(design: Design, size: Size) -> Microscope:
    """The measured crop: ``size.crop_lenslets`` lenslets, s = min(N, size.max_voxels_per_lenslet), z grid."""
    m = design.microscope
    if m.kind == "widefield":
        c = widefield_crop_px(design, size)
        return m.replace(camera={"shape": [c, c]})
    zmax = design.z_max_um
    nsteps = int(math.ceil(zmax / design.z_step_um - 1e-9))
    zgrid = {"z_min_um": -nsteps * design.z_step_um, "z_max_um": nsteps * design.z_step_um,
             "z_step_um": design.z_step_um}
    if m.kind == "flfm":  # the reduced copy, on a camera that holds its elemental images at every depth
        from optics.support import flfm_window_pixels

        small, _ = flfm_surrogate(m.replace(volume=zgrid), size.flfm_pupil_px)
        side = max(flfm_window_pixels(small, z) for z in small.z_um)
        return small.replace(camera={"shape": [side, side]})
    n = m.pixels_per_lenslet
    c = size.crop_lenslets * n
    s = voxels_per_lenslet(m, size)
    return m.replace(camera={"shape": [c, c]}, volume=zgrid | {"voxels_per_lenslet": s})


#: The wide-field crop spans this many times the coarsest resolution theory's wave model expects at
#: its depths (``theory.lateral_resolution_m`` with the benchmark's contrast): the two-point sweep tests
#: separations up to 0.4 of the field (``benchmarks.tradeoff.measure_widefield``), so it then reaches
#: 1.6x that resolution.  A fixed 64-pixel crop capped the 40x/0.95 sweep at 1.25 um where the wave
#: model puts the resolution 2 um from focus at 4.4 um.  (The blur-disk model, 12 um there for the
#: dry NA 0.95, is a ray bound that ignores how the defocused PSF concentrates its energy inwards;
#: its sweep is cut at the same field.)
WIDEFIELD_FIELD_FACTOR = 4.0


def widefield_crop_px(design: Design, size: Size) -> int:
    """Side of the measured wide-field crop (pixels): ``size.widefield_crop_px``, or more where the
    design's depths need it (``WIDEFIELD_FIELD_FACTOR``)."""
    m = design.microscope
    z = np.asarray(design.depths_um, dtype=np.float64)
    coarsest = float(np.max(theory.lateral_resolution_m(m, z, MIN_DIP)))
    need = int(math.ceil(WIDEFIELD_FIELD_FACTOR * coarsest / m.voxel_um - 1e-9))
    return max(int(size.widefield_crop_px), need)


def voxels_per_lenslet(m: Microscope, size: Size) -> int:
    """Reconstruction s: the smallest odd s with a voxel d/(M s) <= voxel_target lambda0/NA, within 1..min(N, max).

    Scanning LFM (K = ``m.scan.steps``): each scan step d / K must be a whole number of voxels and the
    config takes s <= K N (``optics.config``), so s is the smallest odd multiple of K that meets the
    voxel target, capped at the largest odd multiple of K <= min(K N, cap), cap =
    ``size.slfm_max_voxels_per_lenslet`` (default ``size.max_voxels_per_lenslet``); K itself when K
    exceeds that cap.  (A cap below 15 can leave a 5 x 5 scan with coarser voxels than the 3 x 3 or
    the LFM of the same optics, e.g. 5 where they have 9: the size's voxel budget wins; the full
    size's cap of 15 gives both scans the same 15 voxels per lenslet.)
    """
    target = size.voxel_target * m.wavelength_um / m.objective.na
    s = max(1, math.ceil(m.lenslet_pitch_object_um / target - 1e-9))
    if m.kind == "slfm":
        k = m.scan.steps
        mult = -(-s // k)
        mult += 1 - mult % 2                     # odd multiple of K at or above the target
        budget = size.max_voxels_per_lenslet if size.slfm_max_voxels_per_lenslet is None else size.slfm_max_voxels_per_lenslet
        cap = min(k * m.pixels_per_lenslet, budget) // k
        cap -= 1 - cap % 2                       # largest odd multiple of K within the cap (0 if none)
        return int(k * max(1, min(mult, cap)))
    s += 1 - s % 2
    return int(min(s, m.pixels_per_lenslet, size.max_voxels_per_lenslet))


def depth_grid(values, step: float) -> np.ndarray:
    """Uniform grid from min to max of ``values`` with ``step`` (inclusive)."""
    lo, hi = min(values), max(values)
    n = int(round((hi - lo) / step)) + 1
    return lo + step * np.arange(n)
