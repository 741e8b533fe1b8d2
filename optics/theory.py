"""Closed-form resolution, depth-of-field and field-of-view figures of wide-field and light-field microscopes.

Wide-field (object space, vacuum wavelength lambda0, numerical aperture NA, immersion index n):
Rayleigh 0.6098 lambda0/NA and Sparrow 0.4736 lambda0/NA of the Airy pattern (Born & Wolf,
*Principles of Optics*, sec. 8.5.2 and 8.6.2; the constants are j_{1,1}/(2 pi) and half the
Sparrow separation 0.9472 lambda/D, ../shared/PHYSICS.md sec. 5 [D]), the Abbe limit
lambda0/(2 NA), the axial first zero 2 n lambda0/NA^2 (paraxial) and lambda0/(n (1 - cos alpha))
(exact Debye, uniform pupil), and the depth of field in Inoue's form lambda0 n/NA^2 + n e/(M NA)
(Inoue & Spring, *Video Microscopy* 1997; used by Levoy et al. 2006).

Light field (LFM 1.0, microlens array at the native image plane; Levoy et al. 2006, ACM TOG
25:924, and Broxton et al. 2013, Opt. Express 21:25418): rendering resolution d/M, resolvable
spots per lenslet N_u = d / (0.47 lambda0 M / NA), the depth-dependent band limit after
deconvolution delta_x(z) = 0.94 lambda0 M |z| / (n d) (B13's nu(z) = d/(0.94 lambda M |z|) with
the longitudinal magnification M^2/n made explicit: PHYSICS.md sec. 5 notes that whether B13's
lambda is lambda0 and whether n appears is not verified; we use lambda0 and n), the design model
max(0.47 lambda0/NA, 0.94 lambda0 M|z|/(n d), 2|z| M p/(n f_ml)) (PHYSICS.md sec. 5 [D]), the
low-resolution artifact band |z| < n d/(2 M NA) where the reconstruction falls back to d/M, and
the end of the useful range |z| = n d^2/(0.94 lambda0 M^2) where delta_x(z) reaches d/M.

Field of view: min(sensor side, field number)/M per axis (the field number FN, default 22 mm, is
the diameter of the objective's usable intermediate image; a square sensor larger than FN/sqrt(2)
is vignetted in its corners, which this per-axis bound ignores).  Resolvable voxels: the
space-bandwidth product, field area / delta_x^2 integrated over depth in units of the axial
resolution.

Fourier LFM (FLFM; Guo et al. 2019, Opt. Express 27:25573; PHYSICS.md sec. 1, 4, 5; FAMILIES.md
sec. 1.1), pupil relayed by f1 = f_tl and the Fourier lens f2 onto lenslets of pitch d and focal f_ml,
sensor b = f_ml behind them: F = f_obj f2 / f1, total magnification M_T = b / F = M b / f2, lenslets
across the pupil N = 2 NA F / d, each view's aperture NA_sub = NA / N.  OUR convention (with the
immersion index n; Sparrow-based like the rest of this module): lateral max(0.4736 lambda0 / NA_sub,
2 p / M_T) (the sub-aperture's Sparrow limit, or two sensor pixels), axial R_xy / tan(theta_edge)
with n sin(theta_edge) = NA - NA_sub (the parallax between the outermost views), depth of field
lambda0 n / NA_sub^2 + n p / (M_T NA_sub) (Inoue's form on one view), field of view min(d / M_T,
FN / M) (one elemental image), disparity M_T z tan(theta_k) toward the axis for z > 0 (a view at
n sin(theta_k) = |c_k| / F sees the source z tan(theta_k) off its in-focus position).  Published
conventions differ by up to 1.5x (FAMILIES.md sec. 1.1): ``flfm_olaf_performance`` reproduces the
oLaF-derived ``FLFM_performance`` of yangyanb/FLFM-Processing-Pipeline (Abbe-based, no n) exactly.

All lengths are micrometres.  Plain-number functions take ``wavelength_um, na, ...``; the
``*_m`` helpers read them from a ``Microscope``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "flfm_total_magnification",
    "flfm_lenslets_across_pupil",
    "flfm_lateral_resolution_um",
    "flfm_axial_resolution_um",
    "flfm_depth_of_field_um",
    "flfm_field_of_view_um",
    "flfm_disparity_um",
    "flfm_olaf_performance",
    "lfm2_conjugate_shift_um",
    "RAYLEIGH_AIRY",
    "SPARROW_AIRY",
    "SPARROW_AIRY_LAMBDA_OVER_D",
    "SPARROW_SINC2_LAMBDA_OVER_D",
    "B13_BAND_CONSTANT",
    "LFM_SPOT_CONSTANT",
    "DEFAULT_FIELD_NUMBER_UM",
    "airy_two_point_separation",
    "criterion_factor",
    "rayleigh_um",
    "sparrow_um",
    "abbe_um",
    "axial_first_zero_paraxial_um",
    "axial_first_zero_um",
    "depth_of_field_um",
    "widefield_defocus_resolution_um",
    "widefield_defocus_wave_resolution_um",
    "rendering_resolution_um",
    "spots_per_lenslet",
    "perspective_dof_um",
    "lfm_band_limit_um",
    "lfm_pixel_limit_um",
    "lfm_lateral_resolution_um",
    "artifact_band_um",
    "in_band_resolution_um",
    "useful_range_um",
    "field_of_view_um",
    "widefield_spots_per_axis",
    "lfm_samples_per_axis",
    "resolvable_voxels",
    "lateral_resolution_m",
    "theory_summary",
]

#: Rayleigh distance of the Airy pattern in units of lambda0/NA: j_{1,1} / (2 pi) (Born & Wolf 8.5.2).
RAYLEIGH_AIRY = 3.8317059702075125 / (2 * math.pi)
#: Sparrow separation of two incoherent Airy patterns in units of lambda/D (PHYSICS.md sec. 5, item 16).
SPARROW_AIRY_LAMBDA_OVER_D = 0.9472
#: The same in object space, in units of lambda0/NA (D = 2 NA f): 0.9472 / 2.
SPARROW_AIRY = SPARROW_AIRY_LAMBDA_OVER_D / 2
#: Sparrow separation of two incoherent sinc^2 patterns (square pupil) in units of lambda/D.
SPARROW_SINC2_LAMBDA_OVER_D = 0.8296
#: Broxton 2013's constant of the depth-dependent band limit nu(z) = d / (0.94 lambda M |z|).
B13_BAND_CONSTANT = 0.94
#: Levoy 2006's spot size constant (0.47 lambda0/NA, the rounded Sparrow limit) used for N_u.
LFM_SPOT_CONSTANT = 0.47
#: Default objective field number: 22 mm intermediate-image diameter (common wide-field eyepieces).
DEFAULT_FIELD_NUMBER_UM = 22000.0


def _pos(name: str, value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} = {value!r} is invalid: expected a positive number") from None
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} = {value!r} is invalid: expected a finite number > 0")
    return v


def _optics(wavelength_um, na, n=None) -> tuple[float, float, float]:
    lam = _pos("wavelength_um", wavelength_um)
    if not 0.2 <= lam <= 2.0:
        raise ValueError(f"wavelength_um = {wavelength_um!r} is invalid: expected 0.2..2.0 µm (0.52, not 520)")
    na_ = _pos("na", na)
    if n is None:
        return lam, na_, math.inf
    n_ = _pos("n", n)
    if na_ >= n_:
        raise ValueError(f"na = {na!r} is invalid: expected NA < n = {n_}")
    return lam, na_, n_


def _absz(z_um):
    z = np.abs(np.asarray(z_um, dtype=np.float64))
    if not np.all(np.isfinite(z)):
        raise ValueError(f"z_um = {z_um!r} is invalid: expected finite depths (µm)")
    return z


def _out(x):
    x = np.asarray(x, dtype=np.float64)
    return float(x) if x.ndim == 0 else x


# --------------------------------------------------------------------------- wide-field
def rayleigh_um(wavelength_um: float, na: float) -> float:
    """Rayleigh two-point distance 0.6098 lambda0/NA: the first zero of the Airy pattern (µm)."""
    lam, na_, _ = _optics(wavelength_um, na)
    return RAYLEIGH_AIRY * lam / na_


def sparrow_um(wavelength_um: float, na: float) -> float:
    """Sparrow two-point distance 0.4736 lambda0/NA: the sum of two Airy patterns is flat at the midpoint (µm)."""
    lam, na_, _ = _optics(wavelength_um, na)
    return SPARROW_AIRY * lam / na_


def airy_two_point_separation(min_dip: float = 0.0) -> float:
    """Separation (units of lambda0/NA) at which two incoherent Airy patterns show a dip ``min_dip``.

    The two-point criterion of ``reconstruction.metrics.sparrow_resolved``: the summed profile
    S(x) = A(x - s/2) + A(x + s/2), A = (2 J1(v)/v)^2 with v = 2 pi x (x in lambda0/NA), dips at the
    midpoint to (1 - min_dip) times its maxima.  ``min_dip = 0`` is Sparrow's limit (S''(0) = 0,
    0.4736); the Rayleigh distance 0.6098 gives a dip of about 26.5% (Born & Wolf 8.6.2).  This is
    the theory side of the criterion, so measurement and theory share one definition.
    """
    from scipy.optimize import brentq, minimize_scalar
    from scipy.special import j1

    dip = float(min_dip)
    if not (math.isfinite(dip) and 0 <= dip < 0.9):
        raise ValueError(f"min_dip = {min_dip!r} is invalid: expected 0 <= min_dip < 0.9")

    def airy(x):
        v = 2 * math.pi * np.abs(np.asarray(x, dtype=np.float64)) + 1e-300
        return np.where(v < 1e-6, 1.0, (2 * j1(v) / v) ** 2)

    def summed(x, sep):
        return float(airy(x - sep / 2) + airy(x + sep / 2))

    if dip == 0:
        h = 1e-4
        curv = lambda sep: summed(h, sep) - 2 * summed(0.0, sep) + summed(-h, sep)
        return float(brentq(curv, 0.3, 0.6, xtol=1e-10))

    def excess(sep):
        r = minimize_scalar(lambda x: -summed(x, sep), bounds=(0.0, sep), method="bounded",
                            options={"xatol": 1e-10})
        return 1.0 - summed(0.0, sep) / (-r.fun) - dip

    return float(brentq(excess, airy_two_point_separation(0.0) + 1e-6, 3.0, xtol=1e-10))


def criterion_factor(min_dip: float = 0.0) -> float:
    """Two-point separation at contrast ``min_dip`` over Sparrow's, for Airy spots (1 at ``min_dip = 0``).

    Scales the Sparrow-based theory figures (wide-field, the LFM diffraction and band-limit terms)
    to the criterion the measurement applies.
    """
    if float(min_dip) == 0:
        return 1.0
    return airy_two_point_separation(min_dip) / airy_two_point_separation(0.0)


def abbe_um(wavelength_um: float, na: float) -> float:
    """Abbe limit lambda0/(2 NA): the finest period the pupil passes (µm)."""
    lam, na_, _ = _optics(wavelength_um, na)
    return lam / (2 * na_)


def axial_first_zero_paraxial_um(wavelength_um: float, na: float, n: float) -> float:
    """Distance from focus of the first axial zero, paraxial: 2 n lambda0 / NA^2 (Born & Wolf 8.8.3; u = 4 pi)."""
    lam, na_, n_ = _optics(wavelength_um, na, n)
    return 2 * n_ * lam / na_**2


def axial_first_zero_um(wavelength_um: float, na: float, n: float) -> float:
    """First axial zero of the Debye field with a uniform pupil: lambda0 / (n (1 - cos alpha)) (PHYSICS.md sec. 5 [D]).

    The on-axis field int_0^alpha e^{ikz cos t} sin t dt vanishes when k z (1 - cos alpha) = 2 pi.
    """
    lam, na_, n_ = _optics(wavelength_um, na, n)
    cos_a = math.sqrt(1 - (na_ / n_) ** 2)
    return lam / (n_ * (1 - cos_a))


def depth_of_field_um(wavelength_um: float, na: float, n: float, pixel_um: float = 0.0,
                      magnification: float = 1.0) -> float:
    """Total depth of field in Inoue's form lambda0 n/NA^2 + n e/(M NA) (Inoue & Spring 1997; L06).

    The first term is the wave-optical depth (half the paraxial axial zero-to-zero distance
    2 n lambda0/NA^2 on one side), the second the geometric depth over which the blur circle stays
    inside one detector element ``pixel_um`` = e (sensor side) at magnification M.
    """
    lam, na_, n_ = _optics(wavelength_um, na, n)
    e = float(pixel_um)
    if e < 0 or not math.isfinite(e):
        raise ValueError(f"pixel_um = {pixel_um!r} is invalid: expected a number >= 0")
    mag = _pos("magnification", magnification)
    return lam * n_ / na_**2 + n_ * e / (mag * na_)


def widefield_defocus_resolution_um(z_um, wavelength_um: float, na: float, n: float):
    """Geometric two-point model of a defocused wide-field image: max(Sparrow, 2 |z| tan alpha).

    Out of focus the image of a point is a blur disk of diameter 2 |z| tan(alpha) (marginal ray at
    alpha = asin(NA/n)); the line profile through two uniform disks first dips between them when
    their separation exceeds one diameter.  A ray-optics estimate (it ignores the ring structure
    of the defocused wave-optical PSF); at focus it is the Sparrow limit.
    """
    lam, na_, n_ = _optics(wavelength_um, na, n)
    tan_a = na_ / math.sqrt(n_**2 - na_**2)
    return _out(np.maximum(sparrow_um(lam, na_), 2 * _absz(z_um) * tan_a))


def _ee50_radius_um(z: float, lam: float, na: float, n: float) -> float:
    """Radius holding half the power of the scalar Debye PSF (sqrt(cos) apodization) at defocus z.

    The enclosed power 2 pi int_0^rho |U|^2 r dr is normalised by the total power from Parseval's
    theorem for the Hankel transform, (2 pi / k^2)(1 - cos alpha) (independent of z), so the
    diffraction tail beyond the grid is accounted for.
    """
    from .debye import radial_field, total_power

    alpha = math.asin(na / n)
    total = total_power(alpha, 2 * math.pi * n / lam)
    r_max = abs(z) * math.tan(alpha) + 4 * lam / na
    r = np.linspace(0.0, r_max, int(math.ceil(r_max / (0.02 * lam / na))) + 1)
    inten = np.abs(radial_field(r, z, wavelength_um=lam, na=na, n=n)) ** 2
    f = 2 * math.pi * inten * r
    enclosed = np.concatenate([[0.0], np.cumsum(0.5 * (f[1:] + f[:-1]) * np.diff(r))]) / total
    return float(np.interp(0.5, enclosed, r))


def widefield_defocus_wave_resolution_um(z_um, wavelength_um: float, na: float, n: float, min_dip: float = 0.0):
    """Wave-optics model of the lateral resolution of a defocused wide-field image (µm).

    The Sparrow limit scaled by the growth of the PSF's 50%-encircled-energy diameter,
    sparrow * EE50(z) / EE50(0), with EE50 from the scalar Debye PSF (``optics.debye``, sqrt(cos)
    apodization).  It equals Sparrow at focus, stays near it within the depth of field (where the
    geometric blur-disk model ``widefield_defocus_resolution_um`` is far too pessimistic), and tends
    to the ray-optics limit far from focus, where the 50% radius is z tan(theta50) with
    1 - cos(theta50) = (1 - cos alpha) / 2 (the sqrt(cos) pupil sends equal power into equal
    1 - cos(theta) bands).  Energy, not a FWHM, is used because a defocused PSF can have a dark centre.
    ``min_dip`` > 0 scales the result to that two-point contrast (``criterion_factor``).
    """
    lam, na_, n_ = _optics(wavelength_um, na, n)
    z = np.atleast_1d(_absz(z_um)).astype(np.float64)
    ee0 = _ee50_radius_um(0.0, lam, na_, n_)
    vals = np.array([_ee50_radius_um(float(zz), lam, na_, n_) for zz in z.reshape(-1)]).reshape(z.shape)
    out = sparrow_um(lam, na_) * criterion_factor(min_dip) * vals / ee0
    return _out(out if np.ndim(z_um) else out[0])


# --------------------------------------------------------------------------- light field
def rendering_resolution_um(pitch_um: float, magnification: float) -> float:
    """Lateral sampling of the light field, the object-space lenslet pitch d/M (L06)."""
    return _pos("pitch_um", pitch_um) / _pos("magnification", magnification)


def spots_per_lenslet(wavelength_um: float, na: float, pitch_um: float, magnification: float) -> float:
    """Resolvable spots across one lenslet, N_u = d / (0.47 lambda0 M / NA) (L06, eq. 4)."""
    lam, na_, _ = _optics(wavelength_um, na)
    return _pos("pitch_um", pitch_um) / (LFM_SPOT_CONSTANT * lam * _pos("magnification", magnification) / na_)


def perspective_dof_um(wavelength_um: float, na: float, n: float, pitch_um: float, magnification: float) -> float:
    """Depth of field of one perspective view, D1 = (2 + N_u) lambda0 n / (2 NA^2) (L06, eq. 5)."""
    lam, na_, n_ = _optics(wavelength_um, na, n)
    nu = spots_per_lenslet(lam, na_, pitch_um, magnification)
    return (2 + nu) * lam * n_ / (2 * na_**2)


def lfm_band_limit_um(z_um, wavelength_um: float, n: float, pitch_um: float, magnification: float):
    """Depth-dependent lateral band limit after deconvolution, 0.94 lambda0 M |z| / (n d) (B13, eq. 22).

    B13 writes the cutoff frequency nu(z) = d / (0.94 lambda M |z|); the factor 1/n is the
    object-to-image longitudinal magnification M^2/n (PHYSICS.md sec. 5 [D]).  Zero at focus.
    """
    lam, _, n_ = _optics(wavelength_um, 1e-9, n)
    d, mag = _pos("pitch_um", pitch_um), _pos("magnification", magnification)
    return _out(B13_BAND_CONSTANT * lam * mag * _absz(z_um) / (n_ * d))


def lfm_pixel_limit_um(z_um, n: float, pixel_um: float, magnification: float, mla_focal_um: float):
    """Pixel-angle (Nyquist) limit 2 |z| M p / (n f_ml): one pixel subtends p/f_ml in angle (PHYSICS.md sec. 5)."""
    n_ = _pos("n", n)
    p, mag, f = _pos("pixel_um", pixel_um), _pos("magnification", magnification), _pos("mla_focal_um", mla_focal_um)
    return _out(2 * _absz(z_um) * mag * p / (n_ * f))


def lfm_lateral_resolution_um(z_um, wavelength_um: float, na: float, n: float, pitch_um: float,
                              magnification: float, pixel_um: float, mla_focal_um: float, min_dip: float = 0.0):
    """Design model of the LFM lateral resolution (PHYSICS.md sec. 5 [D]).

    max(0.47 lambda0/NA, 0.94 lambda0 M |z|/(n d), 2 |z| M p/(n f_ml)).  Inside the artifact band
    (``artifact_band_um``) real reconstructions fall back to about d/M; this model does not include
    that band (compare with ``rendering_resolution_um``).  ``min_dip`` > 0 scales the diffraction
    and band-limit terms (both Sparrow-based) to that two-point contrast (``criterion_factor``).
    """
    lam, na_, n_ = _optics(wavelength_um, na, n)
    f = criterion_factor(min_dip)
    diff = f * LFM_SPOT_CONSTANT * lam / na_
    band = f * lfm_band_limit_um(z_um, lam, n_, pitch_um, magnification)
    pix = lfm_pixel_limit_um(z_um, n_, pixel_um, magnification, mla_focal_um)
    return _out(np.maximum(np.maximum(diff, band), pix))


def artifact_band_um(na: float, n: float, pitch_um: float, magnification: float) -> float:
    """Half-width n d / (2 M NA) of the band around focus where the defocus blur is under one lenslet.

    The geometric blur diameter at the MLA is 2 M |z| NA / n; below d the lenslet samples are
    degenerate and the resolution falls to about d/M (B13 sec. 5; PHYSICS.md sec. 5).
    """
    na_, n_ = _pos("na", na), _pos("n", n)
    return n_ * _pos("pitch_um", pitch_um) / (2 * _pos("magnification", magnification) * na_)


def useful_range_um(wavelength_um: float, n: float, pitch_um: float, magnification: float) -> float:
    """|z| at which the band limit reaches the rendering resolution: n d^2 / (0.94 lambda0 M^2)."""
    lam, _, n_ = _optics(wavelength_um, 1e-9, n)
    d, mag = _pos("pitch_um", pitch_um), _pos("magnification", magnification)
    return n_ * d * d / (B13_BAND_CONSTANT * lam * mag * mag)


# --------------------------------------------------------------------------- field of view, budget
def field_of_view_um(sensor_um: float | Sequence[float], magnification: float,
                     field_number_um: float = DEFAULT_FIELD_NUMBER_UM):
    """Object-space field of view per axis, min(sensor side, FN) / M (µm).

    ``sensor_um`` is the sensor's side (or (rows, cols) sides) in µm; ``field_number_um`` the
    objective's field number (intermediate-image diameter, default 22 mm).
    """
    mag = _pos("magnification", magnification)
    fn = _pos("field_number_um", field_number_um)
    s = np.asarray(sensor_um, dtype=np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"sensor_um = {sensor_um!r} is invalid: expected positive side length(s) in µm")
    return _out(np.minimum(s, fn) / mag)


def widefield_spots_per_axis(fov_um: float, wavelength_um: float, na: float) -> float:
    """Sparrow-resolvable spots across a field ``fov_um``: fov / (0.4736 lambda0 / NA)."""
    return _pos("fov_um", fov_um) / sparrow_um(wavelength_um, na)


def lfm_samples_per_axis(sensor_um: float, pitch_um: float, wavelength_um: float, na: float,
                         magnification: float) -> float:
    """4-D sampling budget per axis: lenslets across the sensor times N_u (L06; PHYSICS.md sec. 5)."""
    return _pos("sensor_um", sensor_um) / _pos("pitch_um", pitch_um) * spots_per_lenslet(
        wavelength_um, na, pitch_um, magnification)


def resolvable_voxels(fov_um: Sequence[float], z_um, lateral_um, axial_um) -> float:
    """Space-bandwidth product: resolvable voxels in a field ``fov_um`` (rows, cols) over depths ``z_um``.

    With one depth it is the number of resolvable spots, A / delta_x^2 (one axial cell).  With
    several depths it is the integral over z (trapezoid) of A / (delta_x(z)^2 delta_z(z)), i.e. the
    resolvable cells per plane times the resolvable planes.  Non-finite resolutions count as zero.
    """
    fov = np.asarray(fov_um, dtype=np.float64).reshape(-1)
    if fov.size == 1:
        fov = np.repeat(fov, 2)
    if fov.size != 2 or np.any(~np.isfinite(fov)) or np.any(fov <= 0):
        raise ValueError(f"fov_um = {fov_um!r} is invalid: expected (rows, cols) > 0 in µm")
    z = np.atleast_1d(np.asarray(z_um, dtype=np.float64))
    lat = np.broadcast_to(np.asarray(lateral_um, dtype=np.float64), z.shape)
    ax = np.broadcast_to(np.asarray(axial_um, dtype=np.float64), z.shape)
    area = fov[0] * fov[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        dens = area / (lat**2 * ax)
    dens = np.where(np.isfinite(dens) & (lat > 0) & (ax > 0), dens, 0.0)
    if z.size == 1:
        with np.errstate(divide="ignore", invalid="ignore"):
            spots = area / lat[0] ** 2
        return float(spots) if np.isfinite(spots) and lat[0] > 0 else 0.0
    order = np.argsort(z)
    y, zs = dens[order], z[order]
    return float(np.sum(0.5 * (y[1:] + y[:-1]) * np.diff(zs)))


# --------------------------------------------------------------------------- Fourier LFM, LFM 2.0
def flfm_total_magnification(magnification: float, mla_focal_um: float, fourier_focal_um: float) -> float:
    """M_T = M f_ml / f2: object to sensor through objective, tube lens f1, Fourier lens f2 and a
    lenslet focused on the sensor (oLaF ``FLFM_setCameraParams``: f_ml f1 / (f2 f_obj))."""
    return _pos("magnification", magnification) * _pos("mla_focal_um", mla_focal_um) / _pos(
        "fourier_focal_um", fourier_focal_um)


def flfm_lenslets_across_pupil(na: float, magnification: float, fourier_focal_um: float, pitch_um: float) -> float:
    """N = D / d: the pupil's diameter at the array, D = 2 NA f_obj f2 / f1 = 2 NA f2 / M, in pitches."""
    return 2 * _pos("na", na) * _pos("fourier_focal_um", fourier_focal_um) / (
        _pos("magnification", magnification) * _pos("pitch_um", pitch_um))


def flfm_lateral_resolution_um(wavelength_um: float, na: float, n_across: float, pixel_um: float,
                               total_magnification: float, min_dip: float = 0.0) -> float:
    """Our convention: max(Sparrow of one view, 0.4736 lambda0 N / NA scaled to ``min_dip``, 2 p / M_T)."""
    n_ = _pos("n_across", n_across)
    view = sparrow_um(wavelength_um, na / n_) * criterion_factor(min_dip) if n_ >= 1 else sparrow_um(wavelength_um, na)
    return max(view, 2 * _pos("pixel_um", pixel_um) / _pos("total_magnification", total_magnification))


def flfm_axial_resolution_um(lateral_um: float, na: float, n: float, n_across: float) -> float:
    """Our convention: R_xy / tan(theta_edge), n sin(theta_edge) = NA - NA / N (the outermost views'
    parallax turns a depth step into a lateral one; PHYSICS.md sec. 5 [D])."""
    na_, n_ = _pos("na", na), _pos("n", n)
    s = (na_ - na_ / _pos("n_across", n_across)) / n_
    if s <= 0:
        return math.inf  # one view: no parallax
    return _pos("lateral_um", lateral_um) * math.sqrt(1 - s * s) / s


def flfm_depth_of_field_um(wavelength_um: float, na: float, n: float, n_across: float, pixel_um: float,
                           total_magnification: float) -> float:
    """Our convention: Inoue's form on one view, lambda0 n / NA_sub^2 + n p / (M_T NA_sub), NA_sub = NA / N."""
    sub = _pos("na", na) / _pos("n_across", n_across)
    return depth_of_field_um(wavelength_um, sub, n, pixel_um, total_magnification)


def flfm_field_of_view_um(pitch_um: float, total_magnification: float, magnification: float,
                          field_number_um: float = DEFAULT_FIELD_NUMBER_UM, field_stop_um: float = 0.0) -> float:
    """min(d / M_T, D_stop / M, FN / M): one elemental image, within the field stop (diameter D_stop
    at the native image plane; 0: none) and the objective's field."""
    mag = _pos("magnification", magnification)
    fov = min(_pos("pitch_um", pitch_um) / _pos("total_magnification", total_magnification),
              _pos("field_number_um", field_number_um) / mag)
    return min(fov, float(field_stop_um) / mag) if field_stop_um and field_stop_um > 0 else fov


def flfm_disparity_um(z_um, centre_um, fourier_focal_um: float, n: float, total_magnification: float) -> np.ndarray:
    """Shift (x, y) on the sensor of the elemental image of the lenslet at ``centre_um`` (x, y) for a
    source at depth z: -M_T z tan(theta_k) c_k / |c_k|, n sin(theta_k) = |c_k| / F (µm).

    A ray leaving the source at angle theta crosses the focal plane z tan(theta) off axis, on the far
    side from the lenslet it reaches (the relay inverts the pupil), so for z > 0 (away from the
    objective) each elemental image moves toward the axis; the axial lenslet's does not move.
    """
    z = np.asarray(z_um, dtype=np.float64)
    c = np.asarray(centre_um, dtype=np.float64)
    r = float(np.hypot(c[0], c[1]))
    if r == 0:
        return np.zeros(z.shape + (2,))
    s = r / (_pos("fourier_focal_um", fourier_focal_um) * _pos("n", n))
    if s >= 1:
        raise ValueError(f"centre_um = {centre_um!r} is beyond the pupil of an n = {n} medium")
    t = s / math.sqrt(1 - s * s)
    return -_pos("total_magnification", total_magnification) * z[..., None] * t * (c / r)


def flfm_olaf_performance(*, wavelength_um: float, na: float, magnification: float, fourier_focal_um: float,
                          tube_lens_focal_um: float, pitch_um: float, mla_focal_um: float, pixel_um: float,
                          lenslet_image_pixels: float, field_number_um: float) -> dict:
    """The design figures of oLaF's ``FLFM_performance`` as used by yangyanb/FLFM-Processing-Pipeline
    (``Code/internal/Util/Configuration/FLFM_performance.m``; FAMILIES.md sec. 1.1), in THAT
    convention (Abbe-based, no immersion index): Sr = lambda / ((d / f_ml) p), Nr = floor(2 NA f2 /
    (M d)), DOF = (f2 / (M d))^2 8 lambda (1 + 1 / (2 Sr)), FOV = min(p N_d / M_T, FN / M,
    (d / f_ml) f2 / M), R_xy = lambda f2 / (M d) and R_z = 2 lambda f2^2 / (2 NA f2 M d - (M d)^2),
    both x 2 / Sr when Sr < 2; object pixel p f2 f_obj / (f_ml f1).  ``lenslet_image_pixels`` is
    its ``MLANump_d`` (the elemental image's diameter in pixels)."""
    lam, na_ = _pos("wavelength_um", wavelength_um), _pos("na", na)
    mag, f2 = _pos("magnification", magnification), _pos("fourier_focal_um", fourier_focal_um)
    f1 = _pos("tube_lens_focal_um", tube_lens_focal_um)
    d, fml, p = _pos("pitch_um", pitch_um), _pos("mla_focal_um", mla_focal_um), _pos("pixel_um", pixel_um)
    fobj = f1 / mag
    sr = lam / ((d / fml) * p)
    mt = fml * f1 / (f2 * fobj)
    rxy = lam * f2 / (mag * d)
    rz = 2 * lam * f2**2 / (2 * na_ * f2 * mag * d - (mag * d) ** 2)
    if sr < 2:
        rxy, rz = rxy * 2 / sr, rz * 2 / sr
    return {
        "sr": sr, "nr": math.floor(2 * na_ * f2 / (mag * d)), "n": 2 * na_ * f2 / (mag * d),
        "total_magnification": mt, "object_pixel_um": p * f2 * fobj / (fml * f1),
        "lateral_um": rxy, "axial_um": rz,
        "dof_um": (f2 / (mag * d)) ** 2 * 8 * lam * (1 + 1 / (2 * sr)),
        "fov_um": min(p * _pos("lenslet_image_pixels", lenslet_image_pixels) / mt,
                      _pos("field_number_um", field_number_um) / mag, (d / fml) * f2 / mag),
    }


def lfm2_conjugate_shift_um(offset_um: float, n: float, magnification: float) -> float:
    """Object plane conjugate to an MLA ``offset_um`` = a behind the native image plane, paraxially:
    z = -n a / M^2 (longitudinal magnification M^2 / n; FAMILIES.md sec. 2.1 writes -a / M^2, which
    is pyOLaF's lens law without n)."""
    return -_pos("n", n) * float(offset_um) / _pos("magnification", magnification) ** 2


# --------------------------------------------------------------------------- from a Microscope
def lateral_resolution_m(m, z_um, min_dip: float = 0.0):
    """Theory lateral resolution of microscope ``m`` at depths ``z_um`` (µm), for the two-point
    contrast ``min_dip`` (0: Sparrow; see ``criterion_factor``).

    Wide-field: ``widefield_defocus_wave_resolution_um`` (Sparrow at focus, scaled by the
    growth of the Debye PSF's 50%-energy diameter out of focus).  LFM: the design model
    ``lfm_lateral_resolution_um``, and d/M inside the artifact band; LFM 2.0: the same about the
    plane conjugate to the MLA (an approximation); Fourier LFM: one view's resolution at every depth;
    scanning LFM: the LFM's, with the band and the in-band fallback of the scan step d / K (an
    approximation: the scan samples each view at d / K, the views' apertures are the LFM's).
    """
    o = m.objective
    z = np.asarray(z_um, dtype=np.float64)
    if m.mla is None:
        return widefield_defocus_wave_resolution_um(z, m.wavelength_um, o.na, o.immersion_index, min_dip)
    if m.kind == "flfm":  # one view's resolution, the same at every depth inside the depth of field
        n_across = flfm_lenslets_across_pupil(o.na, o.magnification, m.mla.fourier_lens_focal_um, m.mla.pitch_um)
        res = flfm_lateral_resolution_um(m.wavelength_um, o.na, n_across, m.camera.pixel_um,
                                         m.lateral_magnification, min_dip)
        return _out(np.full(z.shape, res))
    if m.kind == "lfm-defocused":
        # approximation, not validated: the plane conjugate to the MLA, z* = -n a / M^2, plays the
        # native focal plane's role (the lenslets see a focused image there)
        z = z - lfm2_conjugate_shift_um(m.mla_offset_um, o.immersion_index, o.magnification)
    res = lfm_lateral_resolution_um(z, m.wavelength_um, o.na, o.immersion_index, m.mla.pitch_um,
                                    o.magnification, m.camera.pixel_um, m.mla.focal_um, min_dip)
    # a scanning LFM samples every view K times per lenslet (approximation, not validated: the band
    # and the fallback of the LFM with the lenslet sampling d replaced by the scan step d / K)
    step = m.mla.pitch_um / m.scan_steps
    band = artifact_band_um(o.na, o.immersion_index, step, o.magnification)
    return _out(np.where(np.abs(z) < band, np.maximum(res, in_band_resolution_um(m)), res))


def in_band_resolution_um(m) -> float:
    """The fallback inside the artifact band of an LFM (kinds "lfm", "lfm-defocused") or scanning
    LFM: one sample per lenslet, d/M (L06), or per scan step, d/(K M).

    It is the separation resolved wherever the pair falls: at the native focal plane a bead's light
    reaches one lenslet and the pixels behind it record only its angles, so two beads behind one
    lenslet give the same pattern, and a pair of separation s < d/M can be resolved only when a
    lenslet boundary lies between them (both cases in tests/benchmarks/test_focus_band.py)."""
    if m.mla is None or m.kind == "flfm":
        raise ValueError(f"kind = {m.kind!r} has no artifact band; expected 'lfm', 'lfm-defocused' or 'slfm'")
    return rendering_resolution_um(m.mla.pitch_um / m.scan_steps, m.objective.magnification)


def theory_summary(m, field_number_um: float = DEFAULT_FIELD_NUMBER_UM) -> dict:
    """Derived theory figures of ``m`` (µm), for tables and notebooks."""
    o = m.objective
    lam, na, n, mag = m.wavelength_um, o.na, o.immersion_index, o.magnification
    sensor = (m.image_shape[0] * m.camera.pixel_um, m.image_shape[1] * m.camera.pixel_um)
    out = {
        "rayleigh_um": rayleigh_um(lam, na),
        "sparrow_um": sparrow_um(lam, na),
        "abbe_um": abbe_um(lam, na),
        "axial_first_zero_um": axial_first_zero_um(lam, na, n),
        "axial_first_zero_paraxial_um": axial_first_zero_paraxial_um(lam, na, n),
        "depth_of_field_um": depth_of_field_um(lam, na, n, m.camera.pixel_um, mag),
        "fov_um": list(np.atleast_1d(field_of_view_um(sensor, mag, field_number_um)).tolist()),
    }
    if m.kind == "flfm":
        d, mt = m.mla.pitch_um, m.lateral_magnification
        nac = flfm_lenslets_across_pupil(na, mag, m.mla.fourier_lens_focal_um, d)
        lat = flfm_lateral_resolution_um(lam, na, nac, m.camera.pixel_um, mt)
        out.update({
            "total_magnification": mt,
            "lenslets_across_pupil": nac,
            "flfm_lateral_um": lat,
            "flfm_axial_um": flfm_axial_resolution_um(lat, na, n, nac),
            "flfm_depth_of_field_um": flfm_depth_of_field_um(lam, na, n, nac, m.camera.pixel_um, mt),
            "flfm_fov_um": flfm_field_of_view_um(d, mt, mag, field_number_um, m.mla.field_stop_um),
        })
        out["fov_um"] = [out["flfm_fov_um"]] * 2  # one elemental image, not the sensor / M
    elif m.mla is not None:
        d = m.mla.pitch_um
        out.update({
            "rendering_resolution_um": rendering_resolution_um(d, mag),
            "spots_per_lenslet": spots_per_lenslet(lam, na, d, mag),
            "perspective_dof_um": perspective_dof_um(lam, na, n, d, mag),
            "artifact_band_um": artifact_band_um(na, n, d, mag),
            "useful_range_um": useful_range_um(lam, n, d, mag),
        })
    return out
