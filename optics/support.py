"""Windows and supports of the PSF computation: one home for how much of the sensor a source reaches.

Every rule that sizes a PSF window or a kernel lives here, so that the memory estimate made before
any work (``Microscope.estimate_operator_bytes``, ``optics.memory``) and the computation
(``optics.lfpsf``) cannot disagree.

* Light field (PHYSICS.md section 3, "Window/padding"): the propagation window of depth z spans
  W = 2R + 1 lenslets, R = ceil((M |z| tan(alpha) + o) / d) + GUARD_LENSLETS, with M |z| tan(alpha) the
  geometric blur radius at the MLA (the marginal ray from a source at depth z crosses the focal plane
  z tan(alpha) off axis, and the NIP is conjugate to that plane with magnification M), o the source's
  image offset from its lenslet's centre (at most d/2) and one guard lenslet for the diffraction tails.
  Each kernel is then cropped to the smallest odd number of lenslets that loses <= CROP_TOLERANCE.
* Wide-field: the window is the square that holds all but CROP_TOLERANCE / 2 of the Debye PSF's power
  (``optics.debye.tail_radius``, an encircled-energy rule, at the pixel size of the object space),
  and each kernel is cropped to the smallest odd side that holds all but CROP_TOLERANCE in total.  The
  power is known exactly (Parseval), so the loss of every kernel is measured, not estimated
  (``LightFieldPSF.discarded``).
* Fourier LFM: one window per depth centred on the axis, holding every illuminated lenslet's
  elemental image: the lenslets' extent (scaled by b / f for lenslets focused elsewhere), each spot's
  geometric blur (d/2)|1 - b (1/f + z / (n F^2))|, the disparity M_T |z| tan(alpha), half a pitch and
  FLFM_GUARD_PITCHES of guard; the kernel is then cropped to its energy like the others.
* Gibson-Lanni index mismatch: every rule takes, instead of |z|, the depth of a matched source whose
  rays spread as far at the focal plane (``optics.pupil.equivalent_defocus_um``); the loss of every
  kernel is still measured.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "CROP_TOLERANCE",
    "GUARD_LENSLETS",
    "blur_radius_um",
    "window_lenslets",
    "widefield_window_pixels",
    "kernel_side_pixels",
    "flfm_reach_um",
    "flfm_window_pixels",
    "FLFM_GUARD_PITCHES",
    "crop_side_pixels",
]

#: Largest fraction of the native-image-plane power a kernel may lose to its crop.  5e-3 is of the
#: order of the Debye tail that no affordable light-field window holds (3-6e-3 for set A,
#: ``discarded``) and drops the guard lenslet (1-3e-3 of power, partly FFT wrap-around) from the
#: stored kernels.  Wide-field kernels lose at most this much in all (window plus crop).
CROP_TOLERANCE = 5e-3
#: Lenslets of guard band around the geometric support of the field at the MLA.
GUARD_LENSLETS = 1
#: Guard band around the array's elemental images, in lenslet pitches: the Airy tail of a lenslet's
#: focus beyond half a pitch from its centre holds ~2 / (pi v), v = pi d r / (lambda b), i.e. ~0.3%
#: at r = d / 2 and ~0.15% at r = d for the 10x/0.4 preset.
FLFM_GUARD_PITCHES = 0.5




def _ray_depth_um(m, z_um: float) -> float:
    """|z|, or with a Gibson-Lanni term the |z| of a matched source whose rays spread as far
    (``optics.pupil.equivalent_defocus_um``): the depth the windows are sized for."""
    if not m.aberrations.gibson_lanni:
        return abs(z_um)
    from .pupil import equivalent_defocus_um

    return equivalent_defocus_um(m, z_um)[1]


def blur_radius_um(m, z_um: float) -> float:
    """Geometric radius of the defocused field at the MLA (image-side µm): M |z| tan(alpha) at the
    NIP, plus |a| tan(alpha') for an MLA a behind it (defocused LFM; sin alpha' = NA / M, the
    image-side cone).  With a Gibson-Lanni term |z| is its ray-equivalent depth."""
    mag = m.objective.magnification
    r = mag * _ray_depth_um(m, z_um) * math.tan(m.objective.half_angle)
    a = m.mla_offset_um
    if a:
        s = m.objective.na / mag
        r += abs(a) * s / math.sqrt(1 - s * s)
    return r


def window_lenslets(m, z_um: float, offset_um: float | None = None) -> int:
    """Odd number of lenslets per side of the light-field propagation window of depth ``z_um``.

    R = ceil((M |z| tan(alpha) + o) / d) + GUARD_LENSLETS, W = 2R + 1, where o is the source's image
    offset from its lenslet's centre (default d/2, the largest).  No 2x zero padding is used: the
    field outside the geometric support is the Debye field's diffraction tail, and between the MLA
    and the sensor each lenslet's light stays within ~one pitch (its cone has half-angle
    d/(2 f_ml) + NA/M, i.e. at most one pitch sideways over f_ml when matched), so the circular
    wrap-around of the FFT only exchanges the tails that reach the guard lenslet; the test suite
    bounds the difference from a 2x-padded computation.
    """
    if m.mla is None:
        raise ValueError(f"microscope.kind = {m.kind!r} has no lenslets: use widefield_window_pixels")
    d = m.mla.pitch_um
    o = d / 2 if offset_um is None else abs(offset_um)
    r = math.ceil((blur_radius_um(m, z_um) + o) / d - 1e-9) + GUARD_LENSLETS
    return 2 * max(r, 1) + 1


def widefield_window_pixels(m, z_um: float) -> int:
    """Odd side (camera pixels) of the wide-field window of depth ``z_um``.

    Half-side H = ceil(R / p' + 1/2) pixels, with p' = p / M the object-space pixel and R the radius
    outside which the Debye PSF holds <= CROP_TOLERANCE / 2 of its power (``debye.tail_radius``): the
    square of side (2H + 1) p' contains that disk, so the window holds at least 1 - CROP_TOLERANCE / 2.
    """
    from . import debye

    sim = m.simulation
    r = debye.tail_radius(round(float(_ray_depth_um(m, float(z_um))), 9), CROP_TOLERANCE / 2, wavelength_um=m.wavelength_um,
                          na=m.objective.na, n=m.objective.immersion_index,
                          apodization=sim.apodization, vectorial=sim.vectorial)
    h = math.ceil(r / m.pixel_object_um + 0.5)
    return 2 * h + 1


def flfm_reach_um(m, z_um: float) -> float:
    """Half-side (µm, sensor plane, from the axis) of the square that holds the on-axis source's
    elemental images at depth z: the illuminated lenslets' extent, each spot's geometric blur and
    disparity, and ``GUARD_PITCHES``.  With a Gibson-Lanni term: the larger reach of a matched source
    at +- its ray-equivalent depth."""
    if m.aberrations.gibson_lanni:
        z_eq = _ray_depth_um(m, z_um)
        return max(_flfm_reach_um(m, z_eq), _flfm_reach_um(m, -z_eq))
    return _flfm_reach_um(m, z_um)


def _flfm_reach_um(m, z_um: float) -> float:
    from .lenslets import circumradius, lenslet_centres, lenslet_focals

    c = lenslet_centres(m)
    f = lenslet_focals(m)
    d = m.mla.pitch_um
    lit = np.hypot(c[:, 0], c[:, 1]) < m.objective.na * m.fourier_focal_um + circumradius(m)
    if not lit.any():
        raise ValueError("no lenslet of the array meets the pupil (mla.lenslets / mla.centres_um)")
    c, f = c[lit], f[lit]
    b = m.mla_to_sensor_um
    nf2 = m.objective.immersion_index * m.fourier_focal_um**2
    # image distance s of each lenslet for a source at z: 1/s = 1/f + z / (n F^2) (paraxial,
    # FAMILIES.md section 1.4); geometric blur radius at the sensor (d/2) |1 - b/s|
    blur = (d / 2) * np.abs(1 - b * (1 / f + z_um / nf2))
    disparity = m.lateral_magnification * abs(z_um) * math.tan(m.objective.half_angle)
    extent = np.max(np.maximum(np.abs(c[:, 0]), np.abs(c[:, 1])) * (b / f) + blur)
    return float(extent + disparity + d / 2 + FLFM_GUARD_PITCHES * d)


def flfm_window_pixels(m, z_um: float) -> int:
    """Odd side (camera pixels) of the kernel window of depth ``z_um``, centred on the axis pixel."""
    p = m.camera.pixel_um
    return 2 * math.ceil(flfm_reach_um(m, z_um) / p) + 1


def kernel_side_pixels(m, z_um: float) -> int:
    """Upper bound of the side (pixels) of the kernel of depth ``z_um``: its computation window.

    Light field: ``window_lenslets(m, z)`` x pixels per lenslet; wide-field:
    ``widefield_window_pixels(m, z)``.  ``optics.compute_psf`` crops each kernel to its energy
    support, so stored kernels are at most this large; the memory estimates use it.
    """
    if m.mla is None:
        return widefield_window_pixels(m, z_um)
    if m.kind == "flfm":
        return flfm_window_pixels(m, z_um)
    return window_lenslets(m, z_um) * m.pixels_per_lenslet


def crop_side_pixels(pattern: np.ndarray, budget: float, unit: int = 1) -> int:
    """Smallest odd side, in steps of ``unit`` pixels (odd multiples), of a centred square of ``pattern``
    (or of every pattern of a stack (..., K, K)) that loses at most ``budget`` of the unit power.

    ``pattern`` values are fractions of the source's power; what the square loses is the pattern's sum
    minus its sum inside, plus whatever the pattern already misses (``budget`` is then what remains).
    Returns the side in pixels, an odd multiple of ``unit`` (``unit`` = pixels per lenslet keeps light-field
    kernels on whole lenslets).
    """
    k = pattern.shape[-1]
    if k % unit or (k // unit) % 2 == 0:
        raise ValueError(f"pattern side {k} is not an odd multiple of {unit}")
    p = pattern.reshape(-1, k, k)
    total = p.sum(axis=(1, 2), dtype=np.float64)
    r_max = (k // unit - 1) // 2
    # ring sums by Chebyshev distance (in units) from the centre unit, then the square sums: O(K^2)
    dist = np.abs(np.arange(k) // unit - r_max)
    ring = np.maximum(dist[:, None], dist[None, :]).ravel()
    inside = np.cumsum([np.bincount(ring, weights=pi.ravel().astype(np.float64), minlength=r_max + 1)
                        for pi in p], axis=1)
    ok = np.all(total[:, None] - inside <= budget, axis=0)
    return int(2 * np.argmax(ok) + 1) * unit if ok.any() else k
