"""Forward simulation of a raw camera frame: volume -> light-field PSF -> photons -> camera noise.

Stages (DESIGN.md, data flow step 4): the light-field PSF kernels of the microscope
(``optics.lfpsf.compute_psf``, Broxton et al. 2013), the forward projection (by default the fast
lenslet-grid evaluation ``optics.forward.forward_project_lenslet``; ``method="reference"`` selects
the reference ``forward_project``, identical to round-off), scaling to photons, and the sensor model
(``optics.camera.apply_camera``, EMVA 1288).  Point sources off any grid: ``point_photon_image``
sums their exact sensor patterns (``optics.lfpsf.sensor_pattern``), with no volume grid at all.
A scanning LFM (kind "slfm") gives one frame per scan position, (K^2, Y, X) in acquisition order:
frame i is the LFM frame of the sample translated by ``optics.scan.scan_shifts_um(m)[i]``.

Photometric convention
----------------------
A voxel's value is the amount of fluorophore in it (``optics.phantoms``).  A voxel of value 1 sends
``photons_per_voxel`` photons per exposure into the objective's aperture, i.e. to the native image
plane; the PSF kernels give the fraction of that power landing on each camera pixel (light missing
the sensor, cut by the kernel crop or blocked by the lenslet apertures is lost).  So the mean
photons at pixel p are ``photons_per_voxel * (H volume)[p]`` and the frame is
``apply_camera(photons, m.camera)``.  To simulate without the inverse crime, build the phantom
with ``upsample=k`` and simulate with ``optics.phantoms.fine_microscope(m, k)``: the photon budget
is unchanged because amounts add when voxels are binned.
"""

from __future__ import annotations

import logging

import numpy as np

from .camera import apply_camera, digitize, expected_adu
from .config import Microscope
from .forward import forward_project, forward_project_lenslet
from .psfdata import LightFieldPSF
from .scan import scan_shifts_um, scan_shifts_voxels, shift_volume

__all__ = ["simulate", "photon_image", "point_photon_image", "check_volume", "METHODS"]

#: Forward projections of ``photon_image``: "auto" (the lenslet-grid fast path), "lenslet", "reference".
METHODS = ("auto", "lenslet", "reference")

log = logging.getLogger(__name__)


def check_volume(m: Microscope, volume, *, name: str = "volume") -> np.ndarray:
    """Validate a volume for ``m``: ndarray of shape ``m.volume_shape``, real, finite, >= 0.

    Raises ValueError/TypeError naming ``name``, the value and what is accepted; returns the array.
    """
    if not isinstance(m, Microscope):
        raise TypeError(f"m = {type(m).__name__} is invalid: expected an optics.Microscope")
    if not isinstance(volume, np.ndarray):
        raise TypeError(f"{name} = {type(volume).__name__} is invalid: expected a numpy array of shape {m.volume_shape}")
    if volume.shape != m.volume_shape:
        raise ValueError(
            f"{name} has shape {volume.shape} but the microscope's volume grid is {m.volume_shape} "
            f"(z, y, x: {len(m.z_um)} depths, {m.voxels_per_lenslet} voxels per lenslet on "
            f"{m.n_lenslets[0]} x {m.n_lenslets[1]} lenslets)"
        )
    if not (np.issubdtype(volume.dtype, np.integer) or np.issubdtype(volume.dtype, np.floating)):
        raise ValueError(f"{name} has dtype {volume.dtype}; expected a real (integer or float) array")
    if not np.all(np.isfinite(volume)):
        raise ValueError(f"{name} has non-finite values (NaN or inf); expected finite values >= 0")
    if volume.size and volume.min() < 0:
        raise ValueError(f"{name} has a negative value ({float(volume.min()):.6g}); expected values >= 0")
    return volume


def _check_photons(photons_per_voxel) -> float:
    if isinstance(photons_per_voxel, bool) or not isinstance(photons_per_voxel, (int, float, np.integer, np.floating)):
        raise TypeError(f"photons_per_voxel = {photons_per_voxel!r} is invalid: expected a number > 0")
    v = float(photons_per_voxel)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"photons_per_voxel = {photons_per_voxel!r} is invalid: expected a finite number > 0")
    return v


def _get_psf(m: Microscope, psf, progress: bool) -> LightFieldPSF:
    if psf is None:
        from .lfpsf import compute_psf

        return compute_psf(m, progress=progress)
    if not isinstance(psf, LightFieldPSF):
        raise TypeError(f"psf = {type(psf).__name__} is invalid: expected an optics.LightFieldPSF or None")
    if psf.microscope.hash != m.hash:
        raise ValueError(
            f"psf belongs to another microscope (config hash {psf.microscope.hash}, volume "
            f"{psf.volume_shape}) than m (hash {m.hash}, volume {m.volume_shape}); "
            "expected optics.compute_psf(m)"
        )
    return psf


def photon_image(
    m: Microscope,
    volume: np.ndarray,
    *,
    photons_per_voxel: float = 1000.0,
    psf: LightFieldPSF | None = None,
    progress: bool = True,
    method: str = "auto",
) -> np.ndarray:
    """Mean photons per camera pixel (float64, ``m.image_shape``; (K^2, *m.image_shape) for "slfm"),
    before the camera.

    ``photons_per_voxel * H volume``, with FFT round-off below zero clipped to 0; H is evaluated by
    ``method`` (``METHODS``: "auto" and "lenslet" use ``forward_project_lenslet``, "reference" the
    reference ``forward_project``).  Other arguments as in ``simulate``.
    """
    if method not in METHODS:
        raise ValueError(f"method = {method!r} is invalid: accepted {', '.join(map(repr, METHODS))}")
    check_volume(m, volume)
    ppv = _check_photons(photons_per_voxel)
    psf = _get_psf(m, psf, progress)
    project = forward_project if method == "reference" else forward_project_lenslet
    if m.kind == "slfm":  # one frame per scan position: the sample shifted by whole voxels
        image = _scan_frames(m, psf, volume, project, progress)
    else:
        image = project(psf, volume, progress=progress).astype(np.float64)
    np.maximum(image, 0.0, out=image)
    return image * ppv


def _scan_frames(m: Microscope, psf: LightFieldPSF, volume: np.ndarray, project, progress: bool) -> np.ndarray:
    """The scan frames (K^2, Y, X) of a volume: each the LFM frame of the volume translated by its scan
    step (``optics.scan``), on a grid one lenslet wider per side so that what a step moves past the
    edge of the volume is still imaged (onto the sensor where it reaches it), then cropped back."""
    n, s = m.pixels_per_lenslet, m.voxels_per_lenslet
    ly, lx = m.n_lenslets
    wide = m.replace(camera={"shape": [(ly + 2) * n, (lx + 2) * n]})  # kernels do not depend on the camera
    wpsf = LightFieldPSF(wide, psf.z_um, psf.kernels, psf.discarded, dict(psf.meta))
    padded = np.zeros(wide.volume_shape, dtype=volume.dtype)
    padded[:, s:-s, s:-s] = volume
    frames = [project(wpsf, shift_volume(padded, dy, dx), progress=progress)[n:-n, n:-n]
              for dy, dx in scan_shifts_voxels(m)]
    return np.stack(frames).astype(np.float64)


def point_photon_image(m: Microscope, points_um, *, photons_per_point: float = 1000.0,
                       window_lenslets: int | None = None) -> np.ndarray:
    """Mean photons per camera pixel of point sources at continuous (x, y, z) positions (µm).

    ``photons_per_point * sum_i sensor_pattern(m, p_i)``: each point's exact pattern, so nothing is
    tied to the volume grid (the per-bead fast path for sparse scenes; the photometric convention
    is that of the module: photons sent into the objective's aperture).  ``window_lenslets`` is
    passed to ``optics.lfpsf.sensor_pattern``.  For "slfm", (K^2, Y, X): each point translated by
    each scan position's ``optics.scan.scan_shifts_um``.
    """
    from .lfpsf import sensor_patterns

    if not isinstance(m, Microscope):
        raise TypeError(f"m = {type(m).__name__} is invalid: expected an optics.Microscope")
    pts = np.asarray(points_um, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or pts.shape[0] == 0 or not np.all(np.isfinite(pts)):
        raise ValueError(f"points_um has shape {pts.shape}; expected finite (n, 3) positions (x, y, z) in µm, n >= 1")
    ppp = _check_photons(photons_per_point)
    # "slfm": each scan position sees the points translated by its shift (y, x); the points are (x, y, z)
    shifts = [(0.0, 0.0)] if m.kind != "slfm" else scan_shifts_um(m)
    frames = np.zeros((len(shifts), *m.image_shape), dtype=np.float64)
    for p in pts:  # a point's scan positions together: they share one field evaluation (``sensor_patterns``)
        frames += sensor_patterns(m, [(p[0] + dx, p[1] + dy, p[2]) for dy, dx in shifts],
                                  window_lenslets=window_lenslets)
    frames *= ppp
    return frames if m.kind == "slfm" else frames[0]



def simulate(
    m: Microscope,
    volume: np.ndarray,
    *,
    photons_per_voxel: float = 1000.0,
    noise: bool = True,
    seed: np.random.Generator | int | None = None,
    psf: LightFieldPSF | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Raw camera frame of a fluorescent volume seen through microscope ``m``.

    Parameters
    ----------
    m : Microscope
    volume : ndarray, ``m.volume_shape`` (z, y, x)
        Fluorophore amount per voxel (finite, >= 0), e.g. from ``optics.phantoms``.
    photons_per_voxel : float
        Photons per exposure that a voxel of value 1 sends into the objective (see the module's
        photometric convention).
    noise : bool
        Apply shot and read noise (``optics.camera.apply_camera``); if False, the frame is the
        expected digital number, rounded and clipped (``expected_adu`` then ``digitize``).
    seed : numpy.random.Generator, int or None
        Randomness of the noise (an int makes the frame reproducible).
    psf : LightFieldPSF, optional
        Kernels of ``m``; default ``optics.lfpsf.compute_psf(m)`` (cached on disk).
    progress : bool
        Progress bars (only when attached to a terminal).

    Returns
    -------
    ndarray, ``m.image_shape`` (y, x); (K^2, y, x) for "slfm", one frame per scan position
        Digital numbers, uint16 (uint32 for camera bit depths above 16).

    Examples
    --------
    >>> from optics import phantoms, presets
    >>> m = presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]},
    ...                 volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})
    >>> vol, pos = phantoms.random_beads(m, 5, seed=0)
    >>> frame = simulate(m, vol, photons_per_voxel=2000, seed=1)  # doctest: +SKIP
    """
    check_volume(m, volume)
    _check_photons(photons_per_voxel)
    if seed is not None and not isinstance(seed, np.random.Generator) and (
        isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
    ):
        raise TypeError(f"seed = {seed!r} is invalid: expected a numpy Generator, an int or None")
    photons = photon_image(m, volume, photons_per_voxel=photons_per_voxel, psf=psf, progress=progress)
    log.info("simulated %.4g photons on the sensor (peak %.4g per pixel)", photons.sum(), photons.max(initial=0))
    if noise:
        return apply_camera(photons, m.camera, rng=seed)
    return digitize(expected_adu(photons, m.camera), m.camera)
