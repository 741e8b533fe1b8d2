"""The photometric and sampling protocol of the trade-off benchmark: the same for every design and depth.

* **Photons**: every bead sends ``photons_per_bead`` detected photons (photo-electrons) to an
  unbounded sensor: the mean photons arriving at a pixel are ``photons_per_bead / QE`` times the
  bead's exact sensor pattern (``optics.lfpsf.sensor_pattern``: fractions of the power reaching the
  native image plane, which an unbounded sensor behind 100%-fill lenslets receives in full), plus a
  uniform background of ``background_photons_per_pixel / QE`` photons per pixel; then shot noise, the
  camera's read noise and digitisation (``optics.camera.apply_camera``, EMVA 1288).  No per-design
  or per-depth rescaling: signal-to-noise follows from the design.
* **No inverse crime**: each bead sits at a continuous position drawn at random, at least
  ``MIN_OFF_GRID`` of a grid step away from the reconstruction's voxel centres in x and y and from its
  depth planes in z, and its image is computed from that exact position with finer pixel integration
  (``sim_oversampling_extra`` more field samples per pixel) and a larger window
  (``sim_window_extra_lenslets`` more lenslets per side, up to what covers the measured crop), never
  from the reconstruction's kernels or depth grid.
* **Scanning LFM** (kind "slfm", K x K scan): the same budget per *volume*.  A volume is K^2 camera
  frames, each exposed for 1/K^2 of the volume's time, so a bead sends ``photons_per_bead / K^2``
  detected photons to each frame (``photons_per_bead`` over the volume) and the background is
  ``background_photons_per_pixel / K^2`` per pixel per frame; a bead's pattern is the (K^2, Y, X)
  stack of its exact sensor patterns at its scan-shifted positions (``optics.simulation.
  point_photon_image``, the convention of ``optics.scan``), with the same finer model and wider
  window as the LFM's (the window of the farthest shifted position).  Each frame has its own shot
  and read noise.
* **Repeats**: ``repeats`` realisations (positions and noise) per point, each from its own seeded
  generator (``repeat_rng``), so any point can be reproduced alone.  The pair's position along the
  separation axis is stratified over the repeats (``PLACEMENT``): repeat k of n draws it from the
  k-th n-th of one lenslet pitch, so the n repeats see the pair at n different phases of the
  lenslet grid.  At the native focal plane of an LFM 1.0 the outcome depends on that phase (a pair
  s < d apart can be resolved only when a lenslet boundary lies between its beads), and
  independent draws could put all repeats on the same side of the boundary.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from optics.camera import apply_camera
from optics.lfpsf import sensor_pattern
from optics.scan import scan_shifts_um
from optics.simulation import point_photon_image
from optics.support import window_lenslets

__all__ = ["Protocol", "MIN_OFF_GRID", "PLACEMENT", "repeat_rng", "off_grid", "draw_pair", "simulation_microscope",
           "bead_patterns", "mean_photons", "noisy_frames", "to_electrons"]

#: Smallest distance of a drawn coordinate from the reconstruction grid, in grid steps.
MIN_OFF_GRID = 0.1
#: Default detected photons per bead: a bright fluorescent bead or a labelled soma in one frame.
DEFAULT_PHOTONS = 1.0e4

#: How the repeats of a point place the pair along the lenslet grid (``draw_pair``'s ``stratum``).
PLACEMENT = "stratified: repeat k of n in the k-th n-th of one lenslet pitch (wide-field: of 10 pixels)"


@dataclass(frozen=True)
class Protocol:
    """What is held fixed across designs and depths (recorded in results.json ``protocol``)."""

    photons_per_bead: float = DEFAULT_PHOTONS
    background_photons_per_pixel: float = 0.0
    repeats: int = 3
    sim_oversampling_extra: int = 1
    sim_window_extra_lenslets: int = 2

    def __post_init__(self):
        p = self.photons_per_bead
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p <= 0:
            raise ValueError(f"--photons = {p!r} is invalid: expected detected photons per bead, a number > 0")
        b = self.background_photons_per_pixel
        if isinstance(b, bool) or not isinstance(b, (int, float)) or not math.isfinite(b) or b < 0:
            raise ValueError(f"--background = {b!r} is invalid: expected photons per pixel, a number >= 0")
        r = self.repeats
        if isinstance(r, bool) or not isinstance(r, int) or r < 3:
            raise ValueError(f"--repeats = {r!r} is invalid: expected an integer >= 3 (median and spread need 3)")

    def as_dict(self) -> dict:
        return asdict(self)

    def simulation_model(self) -> str:
        return ("each bead imaged from its own continuous (x, y, z) by optics.lfpsf.sensor_pattern, off the "
                f"reconstruction grid by >= {MIN_OFF_GRID:g} step in x, y and z, with "
                f"{self.sim_oversampling_extra} more field samples per pixel than the reconstruction's kernels and "
                f"a window {self.sim_window_extra_lenslets} lenslets wider per side (capped at the measured crop "
                "plus one guard lenslet); the reconstruction uses its own kernels on its voxel phases and depth "
                "planes; wide-field: exact pattern at the continuous position, finer pixel integration, raw image; "
                "scanning LFM (K x K): the same photons per bead and background per pixel per volume, split evenly "
                "over its K^2 frames (1/K^2 each), each frame the exact pattern of the bead at its scan-shifted "
                "position (optics.simulation.point_photon_image), same finer model and window, own noise")


def repeat_rng(seed: int, *keys: int) -> np.random.Generator:
    """Generator of one repeat of one point: seeded by (seed, design, depth, repeat, ...) only."""
    return np.random.default_rng([int(seed)] + [int(k) for k in keys])


def _grid_distance(coord: float, centres: np.ndarray) -> float:
    """Distance of ``coord`` to the nearest point of the uniform grid ``centres`` (in steps)."""
    step = float(centres[1] - centres[0]) if centres.size > 1 else 1.0
    f = (coord - float(centres[0])) / step
    return abs(f - round(f))


def off_grid(coord: float, centres: np.ndarray) -> bool:
    """True when ``coord`` is at least ``MIN_OFF_GRID`` steps from every grid point."""
    return _grid_distance(coord, centres) >= MIN_OFF_GRID - 1e-12


def draw_pair(rng: np.random.Generator, xc: np.ndarray, yc: np.ndarray, z_nominal: float, z_step: float,
              separations, centre_range_um: float, z_planes: np.ndarray | None = None,
              stratum: tuple[int, int] | None = None) -> dict:
    """Off-grid positions of one repeat: the left bead and, for each separation s, its partner at +s in x.

    The left bead is at x = c - median(s)/2, y ~ U(-r/2, r/2) with c ~ U(-r/2, r/2) (r =
    ``centre_range_um``), redrawn until it, every partner and y are ``MIN_OFF_GRID`` away from the
    voxel centres ``xc``/``yc``.  z = z_nominal +- U(0.15, 0.4) z_step (random sign), off the
    reconstruction planes ``z_planes`` (default: the grid of step ``z_step`` through 0).

    ``stratum = (k, n)``: c ~ U of the k-th of n equal parts of (-r/2, r/2) instead (stratified
    sampling: the n repeats of a point then place the pair at n different phases of the period r,
    e.g. the lenslet pitch, instead of n independent ones; see ``PLACEMENT``).
    """
    seps = np.asarray(separations, dtype=np.float64)
    planes = np.array([0.0, z_step]) if z_planes is None or len(z_planes) < 2 else np.asarray(z_planes)
    if stratum is not None:
        k, n = (int(v) for v in stratum)
        if not (n >= 1 and 0 <= k < n):
            raise ValueError(f"stratum = {stratum!r} is invalid: expected (k, n) with 0 <= k < n")
    for _ in range(10000):
        u = rng.uniform(0.0, 1.0) if stratum is None else (k + rng.uniform(0.0, 1.0)) / n
        c = (u - 0.5) * centre_range_um
        y = rng.uniform(-0.5, 0.5) * centre_range_um
        z = z_nominal + rng.choice((-1.0, 1.0)) * rng.uniform(0.15, 0.4) * z_step
        x_left = c - 0.5 * float(np.median(seps))
        xs = [x_left] + list(x_left + seps)
        if all(off_grid(v, xc) for v in xs) and off_grid(y, yc) and off_grid(z, planes):
            return {"x_left_um": float(x_left), "y_um": float(y), "z_um": float(z),
                    "x_right_um": [float(v) for v in x_left + seps]}
    raise RuntimeError("could not draw off-grid positions (grid too fine for MIN_OFF_GRID)")


def simulation_microscope(m_rec, protocol: Protocol):
    """The finer simulation model of ``m_rec``: more field samples per pixel (same optics and camera)."""
    osr = m_rec.simulation.oversampling + protocol.sim_oversampling_extra
    return m_rec.replace(simulation={"oversampling": int(min(osr, 15))})


def _window(m_sim, z: float, x: float, y: float, protocol: Protocol) -> int | None:
    if m_sim.mla is None or m_sim.shift_invariant:  # their windows hold the whole pattern already
        return None
    default = window_lenslets(m_sim, z) + 2 * protocol.sim_window_extra_lenslets
    d_obj = m_sim.lenslet_pitch_object_um
    far = max(abs(round(x / d_obj)), abs(round(y / d_obj)))
    cover = 2 * (max(m_sim.n_lenslets) // 2 + far + 1) + 1  # the crop from the bead's lenslet, + 1 guard
    return int(min(default, cover))


def bead_patterns(m_sim, points, protocol: Protocol) -> list[np.ndarray]:
    """Exact sensor pattern (fractions of the native-image-plane power, float64) of each (x, y, z).

    Scanning LFM: the (K^2, Y, X) stack of each point's patterns at its scan-shifted positions, in
    acquisition order (``optics.simulation.point_photon_image``); each frame holds the fractions of
    one full exposure (the split of the photons over the frames is ``mean_photons``'s).
    """
    out = []
    for x, y, z in points:
        if m_sim.kind == "slfm":  # the window of the farthest scan-shifted position serves every frame
            w = max(_window(m_sim, z, x + dx, y + dy, protocol) for dy, dx in scan_shifts_um(m_sim))
            out.append(point_photon_image(m_sim, [(x, y, z)], photons_per_point=1.0, window_lenslets=w))
            continue
        w = _window(m_sim, z, x, y, protocol)
        out.append(sensor_pattern(m_sim, (x, y, z), window_lenslets=w))
    return out


def _check_frames_per_volume(frames_per_volume) -> int:
    f = frames_per_volume
    if isinstance(f, bool) or not isinstance(f, (int, np.integer)) or f < 1:
        raise ValueError(f"frames_per_volume = {f!r} is invalid: expected camera frames per volume, an integer >= 1 "
                         "(K^2 for a K x K scanning LFM, else 1)")
    return int(f)


def mean_photons(camera, beads: list[np.ndarray], protocol: Protocol, frames_per_volume: int = 1) -> np.ndarray:
    """Mean photons arriving per pixel: photons_per_bead / QE per bead pattern, plus the background / QE.

    A pattern holds fractions of the power reaching the native image plane, all of which reaches an
    unbounded sensor; so each bead yields ``photons_per_bead`` detected photons (QE applied by the
    camera) whatever the design or depth, less what falls outside the measured crop.

    ``frames_per_volume`` = K^2 (scanning LFM, patterns (K^2, Y, X)): the volume's budget is split
    evenly over its frames, ``photons_per_bead / K^2`` per bead and ``background / K^2`` per pixel in
    each frame (each frame is exposed for 1/K^2 of the volume), so the bead's photons summed over the
    K^2 frames are ``photons_per_bead``, as for a one-frame design.
    """
    f = _check_frames_per_volume(frames_per_volume)
    total = np.sum(beads, axis=0)
    if f > 1 and (total.ndim != 3 or total.shape[0] != f):
        raise ValueError(f"bead patterns have shape {total.shape}; expected ({f}, Y, X): one pattern per scan frame "
                         f"for frames_per_volume = {f}")
    qe = camera.quantum_efficiency
    return (protocol.photons_per_bead / (qe * f)) * total + protocol.background_photons_per_pixel / (qe * f)


def noisy_frames(camera, bead_sets: list[list[np.ndarray]], protocol: Protocol, rng: np.random.Generator,
                 frames_per_volume: int = 1) -> np.ndarray:
    """Noisy frames in photo-electrons, background subtracted: one per list of bead patterns.

    ``frames_per_volume`` > 1 (scanning LFM): each list gives a (K^2, Y, X) volume of frames, with
    the per-frame budget of ``mean_photons``; the result is (len(bead_sets), K^2, Y, X).
    """
    f = _check_frames_per_volume(frames_per_volume)
    frames = []
    for beads in bead_sets:
        photons = mean_photons(camera, beads, protocol, f)
        frames.append(to_electrons(apply_camera(photons, camera, rng=rng), camera)
                      - np.float32(protocol.background_photons_per_pixel / f))
    return np.maximum(np.stack(frames), 0.0).astype(np.float32)


def to_electrons(adu: np.ndarray, camera) -> np.ndarray:
    """Digital numbers back to photo-electrons: (ADU - offset) / gain, clipped at 0."""
    e = (adu.astype(np.float64) - camera.offset_adu) / camera.gain_adu_per_e
    return np.maximum(e, 0.0).astype(np.float32)
