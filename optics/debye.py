"""Debye diffraction integrals of the objective: the field of a point source at the native image plane.

Scalar form (Broxton et al. 2013, eq. 3-4, in the equivalent cos-theta form of ../shared/PHYSICS.md
section 2)::

    U(r, z) = integral_0^alpha P(theta) J0(k r sin theta) exp(+i k z cos theta) sin theta dtheta

with k = 2 pi n / lambda0, alpha = asin(NA / n), r the object-space lateral distance from the
source (image-plane radius / M) and z the source's axial offset from the focal plane, positive
away from the objective.  The sign of the defocus phase is pinned by a named test: a source at
z > 0 is imaged in front of the native image plane, so its wave diverges there.  With the
time factor exp(-i omega t) used throughout lfmsim, a diverging wave is the in-focus field
propagated forward, i.e. each plane-wave component gains exp(+i k z cos theta).

The apodization P is selectable: "sqrtcos" (Abbe sine condition, emission; default), "uniform"
(P = 1) and "sqrtcos-1pluscos" (sqrt(cos) (1 + cos): the I0 term of Richards-Wolf that oLaF and
Prevedel-derived codes use).

Vectorial (Richards & Wolf 1959): I0, I1, I2 with sqrt(cos) apodization; an unpolarized or
isotropic emitter gives |I0|^2 + 2|I1|^2 + |I2|^2.

Quadrature: Gauss-Legendre in theta on [0, alpha] (nodes by Newton's method, cached) (not [0, 1 rad], a bug of lflib's Debye branch)
with at least max(64, 4 (n|z|(1 - cos alpha)/lambda0 + r_max NA/lambda0)) nodes, doubled for margin.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import special

__all__ = [
    "APODIZATIONS",
    "gauss_legendre",
    "integrand_weights",
    "total_power",
    "quadrature_nodes",
    "radial_field",
    "vectorial_integrals",
    "widefield_intensity",
    "encircled_energy",
    "tail_radius",
    "bessel_matrices",
]

APODIZATIONS = ("sqrtcos", "uniform", "sqrtcos-1pluscos")


def _apodization(name: str, cos_t: np.ndarray) -> np.ndarray:
    if name == "sqrtcos":
        return np.sqrt(cos_t)
    if name == "uniform":
        return np.ones_like(cos_t)
    if name == "sqrtcos-1pluscos":
        return np.sqrt(cos_t) * (1 + cos_t)
    raise ValueError(f"apodization = {name!r} is invalid; accepted: {', '.join(APODIZATIONS)}")


def _check(wavelength_um: float, na: float, n: float) -> float:
    if not 0.2 <= wavelength_um <= 2.0:
        raise ValueError(f"wavelength_um = {wavelength_um!r} is invalid; expected 0.2..2.0 µm")
    if not 0 < na < n:
        raise ValueError(f"na = {na!r} is invalid; expected 0 < NA < n = {n}")
    return math.asin(na / n)


def quadrature_nodes(z_um: float, r_max_um: float, wavelength_um: float, na: float, n: float) -> int:
    """Gauss-Legendre nodes needed to resolve the integrand's oscillations (PHYSICS.md section 2).

    Counts the phase cycles of exp(i k z cos theta) over [0, alpha], n|z|(1 - cos alpha)/lambda0, and of
    J0(k r sin theta), r NA / lambda0; asks for 4 nodes per cycle and at least 64, then doubles it.
    """
    alpha = math.asin(na / n)
    cycles = n * abs(z_um) * (1 - math.cos(alpha)) / wavelength_um + abs(r_max_um) * na / wavelength_um
    return int(2 * max(64, math.ceil(4 * cycles)))


@functools.lru_cache(maxsize=8)
def gauss_legendre(count: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights on [-1, 1] by Newton's method on P_n (Abramowitz & Stegun
    25.4.29; initial guesses cos(pi (i - 1/4) / (n + 1/2))).  numpy's ``leggauss`` solves a dense
    eigenproblem, O(n^3), which dominated the operator build; this is O(n^2) and cached."""
    n = int(count)
    x = np.cos(np.pi * (np.arange(1, n + 1) - 0.25) / (n + 0.5))
    for _ in range(100):
        p_prev, p = np.ones_like(x), x.copy()
        for j in range(2, n + 1):
            p_prev, p = p, ((2 * j - 1) * x * p - (j - 1) * p_prev) / j
        dp = n * (x * p - p_prev) / (x**2 - 1)
        step = p / dp
        x = x - step
        if np.max(np.abs(step)) < 1e-15:
            break
    p_prev, p = np.ones_like(x), x.copy()
    for j in range(2, n + 1):
        p_prev, p = p, ((2 * j - 1) * x * p - (j - 1) * p_prev) / j
    dp = n * (x * p - p_prev) / (x**2 - 1)
    w = 2 / ((1 - x**2) * dp**2)
    return x[::-1].copy(), w[::-1].copy()


def _nodes(alpha: float, count: int) -> tuple[np.ndarray, np.ndarray]:
    x, w = gauss_legendre(count)
    theta = 0.5 * alpha * (x + 1)
    return theta, 0.5 * alpha * w


def _power_integrand(theta: np.ndarray, apodization: str, vectorial: bool) -> np.ndarray:
    """|g(rho)|^2 rho drho / dtheta for the pupil function g of each Hankel transform."""
    c, s = np.cos(theta), np.sin(theta)
    if vectorial:
        # x-polarised: |I0|^2 + |I2|^2 + 2|I1|^2 after the azimuthal integral
        return ((1 + c) ** 2 + (1 - c) ** 2 + 2 * s**2) * s
    return _apodization(apodization, c) ** 2 * s / c


@functools.lru_cache(maxsize=64)
def total_power(alpha: float, k: float, apodization: str = "sqrtcos", vectorial: bool = False) -> float:
    """Power 2 pi int |U|^2 r dr of the Debye field (object space, units of ``radial_field``), any z.

    Parseval's theorem for the Hankel transform: with U(r) = int g(rho) J_m(k r rho) rho drho
    (rho = sin theta), 2 pi int |U|^2 r dr = (2 pi / k^2) int |g|^2 rho drho.  Scalar sqrt(cos):
    (2 pi / k^2)(1 - cos alpha); vectorial (unpolarised |I0|^2 + 2|I1|^2 + |I2|^2 type intensity):
    (2 pi / k^2) 4 (1 - cos alpha).  ``alpha`` = asin(NA/n), ``k`` = 2 pi n / lambda0.
    """
    x, w = gauss_legendre(64)  # smooth integrand: exact to ~1e-16
    theta = 0.5 * alpha * (x + 1)
    integral = 0.5 * alpha * float(w @ _power_integrand(theta, apodization, vectorial))
    return 2 * math.pi / k**2 * integral


def integrand_weights(
    theta: np.ndarray, w: np.ndarray, k: float, z_um: float, apodization: str, vectorial: bool,
    aberration_waves: np.ndarray | None = None,
) -> list[np.ndarray]:
    """Quadrature weights of each Debye integral at nodes ``theta`` (weights ``w``) and depth ``z_um``.

    Scalar: [w P(theta) sin(theta) e^{ikz cos}] for the J0 integral.  Vectorial (RW59, sqrt(cos)):
    the J0, J1, J2 weights of I0, I1, I2.  ``U = J_m(k r sin theta) @ weights``.
    ``aberration_waves``: a radially symmetric pupil phase at the nodes, in waves (``optics.pupil``),
    multiplying every integrand by exp(2 pi i W).
    """
    c, s = np.cos(theta), np.sin(theta)
    phase = np.exp(1j * k * z_um * c)
    if aberration_waves is not None:
        phase = phase * np.exp(2j * np.pi * np.asarray(aberration_waves, dtype=np.float64))
    if vectorial:
        base = w * np.sqrt(c) * phase
        return [base * s * (1 + c), base * s**2, base * s * (1 - c)]
    return [w * _apodization(apodization, c) * s * phase]


@functools.lru_cache(maxsize=8)  # depths alternate between a few node counts (the benchmark's beads)
def bessel_matrices(
    r_max: float, h: float, k: float, alpha: float, count: int, vectorial: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """Radii 0, h, ..., >= r_max + 3h, theta nodes and weights on [0, alpha], and the z-independent
    Bessel matrices J_m(k r sin theta) (m = 0, or 0, 1, 2 for the vectorial integrals).

    Shared by every depth whose radius grid and node count agree, so a depth costs one
    matrix-vector product per integral (with ``integrand_weights``) instead of a full quadrature.
    """
    r = np.arange(0.0, r_max + 4 * h, h)
    x, w = gauss_legendre(count)
    theta, w = 0.5 * alpha * (x + 1), 0.5 * alpha * w
    arg = k * np.outer(r, np.sin(theta))
    mats = (special.j0(arg),) + ((special.j1(arg), special.jv(2, arg)) if vectorial else ())
    return r, theta, w, mats


def radial_field(
    r_um,
    z_um: float,
    *,
    wavelength_um: float,
    na: float,
    n: float,
    apodization: str = "sqrtcos",
    nodes: int | None = None,
) -> np.ndarray:
    """Scalar Debye field U(r, z) (complex128, unnormalised) at object-space radii ``r_um``.

    Parameters
    ----------
    r_um : array_like
        Object-space lateral distances from the source (µm), any shape.
    z_um : float
        Source offset from the focal plane (µm), positive away from the objective.
    wavelength_um, na, n : float
        Vacuum wavelength (µm), numerical aperture, immersion index.
    apodization : {"sqrtcos", "uniform", "sqrtcos-1pluscos"}
    nodes : int, optional
        Gauss-Legendre nodes; default from ``quadrature_nodes``.

    Returns
    -------
    ndarray of complex128 with the shape of ``r_um``.  U(r, -z) = conj U(r, z) exactly.
    """
    alpha = _check(wavelength_um, na, n)
    r = np.asarray(r_um, dtype=np.float64)
    if nodes is None:
        nodes = quadrature_nodes(z_um, float(r.max(initial=0.0)), wavelength_um, na, n)
    theta, w = _nodes(alpha, nodes)
    k = 2 * math.pi * n / wavelength_um
    sin_t = np.sin(theta)
    (weights,) = integrand_weights(theta, w, k, z_um, apodization, False)
    flat = r.reshape(-1)
    out = np.empty(flat.shape, dtype=np.complex128)
    step = max(1, 2_000_000 // nodes)  # bound the (radii x nodes) temporary
    for i in range(0, flat.size, step):
        out[i : i + step] = special.j0(k * np.outer(flat[i : i + step], sin_t)) @ weights
    return out.reshape(r.shape)


def vectorial_integrals(
    r_um, z_um: float, *, wavelength_um: float, na: float, n: float, nodes: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Richards-Wolf integrals (I0, I1, I2) with sqrt(cos) apodization (RW59; PHYSICS.md section 2).

    I0 = int sqrt(cos) sin (1 + cos) J0(k r sin) e^{ikz cos},  I1 = int sqrt(cos) sin^2 J1(...) e^{...},
    I2 = int sqrt(cos) sin (1 - cos) J2(...) e^{...}.  For x-polarised light the focal field is
    Ex = I0 + I2 cos 2phi, Ey = I2 sin 2phi, Ez = 2i I1 cos phi (up to a common factor).
    """
    alpha = _check(wavelength_um, na, n)
    r = np.asarray(r_um, dtype=np.float64)
    if nodes is None:
        nodes = quadrature_nodes(z_um, float(r.max(initial=0.0)), wavelength_um, na, n)
    theta, w = _nodes(alpha, nodes)
    k = 2 * math.pi * n / wavelength_um
    w0, w1, w2 = integrand_weights(theta, w, k, z_um, "sqrtcos", True)
    arg = k * np.outer(r.reshape(-1), np.sin(theta))
    i0 = special.j0(arg) @ w0
    i1 = special.j1(arg) @ w1
    i2 = special.jv(2, arg) @ w2
    return i0.reshape(r.shape), i1.reshape(r.shape), i2.reshape(r.shape)


def widefield_intensity(
    r_um,
    z_um: float,
    *,
    wavelength_um: float,
    na: float,
    n: float,
    apodization: str = "sqrtcos",
    vectorial: bool = False,
    nodes: int | None = None,
) -> np.ndarray:
    """Wide-field intensity PSF |U|^2 (scalar) or |I0|^2 + 2|I1|^2 + |I2|^2 (vectorial, unpolarised).

    Unnormalised; ``r_um`` object-space radii (µm), ``z_um`` defocus (µm).
    """
    if vectorial:
        i0, i1, i2 = vectorial_integrals(r_um, z_um, wavelength_um=wavelength_um, na=na, n=n, nodes=nodes)
        return np.abs(i0) ** 2 + 2 * np.abs(i1) ** 2 + np.abs(i2) ** 2
    u = radial_field(r_um, z_um, wavelength_um=wavelength_um, na=na, n=n, apodization=apodization, nodes=nodes)
    return np.abs(u) ** 2


def _radial_intensity(r_um: np.ndarray, z_um: float, wavelength_um: float, na: float, n: float,
                      apodization: str, vectorial: bool) -> np.ndarray:
    """Azimuthally averaged intensity (units of ``total_power`` per area) at radii ``r_um``."""
    return widefield_intensity(r_um, z_um, wavelength_um=wavelength_um, na=na, n=n,
                               apodization=apodization, vectorial=vectorial)


def _ee_grid(z_um: float, r_max_um: float, wavelength_um: float, na: float, n: float,
             apodization: str, vectorial: bool) -> tuple[np.ndarray, np.ndarray]:
    """Radii (0.05 lambda0/NA apart, up to >= r_max) and the encircled energy on them."""
    from scipy.integrate import cumulative_simpson

    alpha = _check(wavelength_um, na, n)
    unit = wavelength_um / na
    h = 0.05 * unit
    span = 16 * unit * math.ceil(max(r_max_um, h) / (16 * unit))  # few distinct grids: matrices reused
    count = quadrature_nodes(z_um, span, wavelength_um, na, n)
    count = 128 * math.ceil(count / 128)
    k = 2 * math.pi * n / wavelength_um
    r, theta, w, mats = bessel_matrices(span, h, k, alpha, count, vectorial)
    wts = integrand_weights(theta, w, k, z_um, apodization, vectorial)
    vals = [mat @ wt for mat, wt in zip(mats, wts)]
    inten = np.abs(vals[0]) ** 2 if not vectorial else (
        np.abs(vals[0]) ** 2 + 2 * np.abs(vals[1]) ** 2 + np.abs(vals[2]) ** 2)
    ee = 2 * math.pi * cumulative_simpson(inten * r, x=r, initial=0.0)
    return r, ee / total_power(alpha, k, apodization, vectorial)


def encircled_energy(
    r_um, z_um: float, *, wavelength_um: float, na: float, n: float,
    apodization: str = "sqrtcos", vectorial: bool = False,
) -> np.ndarray:
    """Fraction of the Debye PSF's power within object-space radius ``r_um`` of its axis, at depth ``z_um``.

    EE(R) = 2 pi int_0^R I(r) r dr / P, with P = ``total_power`` (Parseval: exact for any z) and I the
    intensity of ``widefield_intensity`` (vectorial: unpolarised |I0|^2 + 2|I1|^2 + |I2|^2), integrated by
    Simpson's rule on radii 0.05 lambda0/NA apart (10 per period of the intensity's highest frequency),
    then from the grid radius below R to R by 4-point Gauss-Legendre.  Closed-form check (tests):
    uniform pupil, low NA, in focus, EE = 1 - J0(v)^2 - J1(v)^2 with v = k NA r / n (Rayleigh 1881;
    Born & Wolf 8.5.2).
    """
    alpha = _check(wavelength_um, na, n)
    r = np.asarray(r_um, dtype=np.float64)
    grid, ee = _ee_grid(z_um, float(r.max(initial=0.0)), wavelength_um, na, n, apodization, vectorial)
    h = grid[1] - grid[0]
    flat = r.reshape(-1)
    i = np.clip(np.floor(flat / h).astype(int), 0, grid.size - 1)
    lo = grid[i]
    x, w = gauss_legendre(4)
    pts = lo[:, None] + (flat - lo)[:, None] * (x[None, :] + 1) / 2
    vals = widefield_intensity(pts.reshape(-1), z_um, wavelength_um=wavelength_um, na=na, n=n,
                               apodization=apodization, vectorial=vectorial).reshape(pts.shape)
    k = 2 * math.pi * n / wavelength_um
    part = 2 * math.pi * (flat - lo) / 2 * ((vals * pts) @ w) / total_power(alpha, k, apodization, vectorial)
    return (ee[i] + part).reshape(r.shape)


@functools.lru_cache(maxsize=512)
def tail_radius(
    z_um: float, tolerance: float, *, wavelength_um: float, na: float, n: float,
    apodization: str = "sqrtcos", vectorial: bool = False,
) -> float:
    """Smallest object-space radius (µm, to 0.05 lambda0/NA) outside which the Debye PSF at ``z_um``
    holds <= ``tolerance`` of its power (``encircled_energy``).

    The diffraction tail of the pupil's edge decays like 1/r^3 in intensity, so the radius grows like
    1/tolerance: about 42 lambda0/NA beyond the geometric blur |z| tan(alpha) for 2.5e-3.  Cached; the
    Bessel matrices are shared between depths (``bessel_matrices``), so a depth costs ~1 ms.
    """
    if not 0 < tolerance < 1:
        raise ValueError(f"tolerance = {tolerance!r} is invalid; expected 0 < tolerance < 1")
    alpha = _check(wavelength_um, na, n)
    unit = wavelength_um / na
    r_max = abs(z_um) * math.tan(alpha) + 64 * unit
    for _ in range(12):
        grid, ee = _ee_grid(z_um, r_max, wavelength_um, na, n, apodization, vectorial)
        above = np.nonzero(1.0 - ee > tolerance)[0]
        if above.size == 0:
            return 0.0
        if grid[above[-1]] < r_max - 4 * unit:  # found, with margin before the grid's end
            return float(grid[above[-1] + 1])
        r_max *= 2
    raise ValueError(f"tolerance = {tolerance!r}: no radius below {r_max:.4g} µm holds the PSF at z = {z_um} µm")
