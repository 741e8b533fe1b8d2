"""Digital adaptive optics (DAO) of the scanning LFM: a digital Shack-Hartmann on the views.

Wu et al., Cell 184:3318 (2021) (../shared/FAMILIES.md section 3.5).  Each view (u, v) sees the
sample through one sub-aperture of the pupil, at normalised pupil position rho_uv
(``view_pupil_coordinates``).  A pupil aberration W(rho) (waves) displaces that view's image by the
transverse ray aberration

    eps(rho) = (lambda0 / NA) grad W(rho)          (object space, µm),

the sign and scale of which are pinned by the package's conventions: a Zernike tilt 2 c rho cos(phi)
moves the image by +2 c lambda0 / NA in x (tests/optics/test_aberrations.py), a Zernike defocus is
a source at z = -4 sqrt(3) c lambda0 n / NA^2, so a source at depth z displaces view rho by
-z NA rho / n.  The pixel behind a lenslet at +x sees the pupil at -x (``view_pupil_coordinates``:
checked on the model's defocus parallax in tests/reconstruction/test_dao.py).

From the second pass of phase-space RL (``reconstruction.phasespace``) on, every view of the
current estimate is forward-projected through the ideal (unaberrated) model and cross-correlated
with the measured view; the correlation peak (sub-sample by a parabola through the peak and its
neighbours, refined, ``shift_of``) is the view's shift.  A uniform shift (tilt: the sample's position) and the component
proportional to rho (defocus: it masquerades as depth) are removed by weighted least squares; the
measured views are moved back by what remains (Fourier shift), and RL goes on with them.  The
aberration is the least-squares fit of the gradients of Zernike terms (Noll ``indices``, default
5..21), passed through the same tilt/defocus removal, to the shifts: a modal, deterministic
integration (the published code integrates along random lattice paths).

Warping the views corrects what the aberration does to the views' positions, not to their shapes:
on our wave-optics model of a 20x/0.5W sLFM with 0.15 waves rms of spherical aberration, the warp
alone estimated 0.091 waves and left the beads blurrier (light within one voxel of them 0.59,
against 0.74 uncorrected).  ``run_dao`` therefore also puts the estimate into the model: each round
recomputes the kernels with the terms estimated so far (non-radial ones through the 2-D pupil
integral, ``optics.debye2d``, scalar or vectorial) and estimates what remains against them (the
Protocol's calibration loop, FAMILIES.md section 3.6, with the data's own views in place of a bead
stack).  Measured on that example (tests/reconstruction/test_dao.py): 0.091, 0.123, 0.139 waves after
rounds 1-3, light near the beads 0.59, 0.90, 0.95 (0.98 from unaberrated data).  ``subfields``
repeats the estimate in S x S parts of the field of view (multi-site DAO).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from optics.pupil import zernike

from . import backend

__all__ = ["view_pupil_coordinates", "shift_of", "remove_tilt_defocus", "zernike_shift_basis", "fit_zernike",
           "shift_images", "DigitalAO", "Aberration", "DEFAULT_INDICES", "DEFAULT_ROUNDS", "write_aberration",
           "run_dao", "MIN_SUBFIELD"]

log = logging.getLogger(__name__)

#: Rounds of estimate -> kernels with the estimate -> estimate of the residual (``run_dao``).
DEFAULT_ROUNDS = 3
#: Noll indices fitted by default: astigmatism (5, 6) to the fifth radial order (21); 1-4 (piston,
#: tilt, defocus) cannot be told from the sample's position and depth.
DEFAULT_INDICES = tuple(range(5, 22))


def view_pupil_coordinates(m) -> np.ndarray:
    """(N, N, 2) normalised pupil coordinates (rho_y, rho_x) of the views (u, v) of an LFM / sLFM.

    Behind each lenslet the pupil is imaged with radius r = f_ml NA / M (sensor µm); pixel (u, v),
    (u - c, v - c) p from the lenslet's centre (c = (N - 1) / 2), sees the pupil at
    rho = -(u - c, v - c) p / r: the lenslet inverts it.
    """
    if m.mla is None or m.shift_invariant:
        raise ValueError(f"microscope.kind = {m.kind!r} has no views behind lenslets: expected 'lfm' or 'slfm'")
    n = m.pixels_per_lenslet
    c = (n - 1) / 2
    r = m.pupil_radius_um / m.camera.pixel_um  # pupil radius in pixels
    u = -(np.arange(n) - c) / r
    return np.stack(np.meshgrid(u, u, indexing="ij"), axis=-1)


def shift_of(model, measured, max_shift: float, xp=np, refine: int = 3) -> tuple[float, float]:
    """(dy, dx) such that measured(p) ~ model(p - d): the cross-correlation peak within |d| <= max_shift.

    ``model``/``measured``: (..., H, W) images (leading axes summed into one correlation).  Sub-sample
    by a parabola through the peak and its two neighbours per axis, then ``refine`` times: the
    measured image moved back by the estimate (``shift_images``) and the residual added.  A parabola
    is biased toward whole samples where the peak is sharp (views sampled at d / K are); at zero
    shift it is unbiased, so the refinement converges on the shift (measured: a 0.2-sample shift of a
    Gaussian spot 1.6 samples wide (FWHM) is read as 0.15 by the parabola alone, 0.19 after refining).
    """
    dy, dx = _peak_shift(model, measured, max_shift, xp)
    for _ in range(int(refine)):
        ry, rx = _peak_shift(model, shift_images(measured, -dy, -dx, xp), 1.0, xp)
        dy, dx = dy + ry, dx + rx
    return dy, dx


def _peak_shift(model, measured, max_shift: float, xp=np) -> tuple[float, float]:
    """The cross-correlation peak of ``shift_of``, without refinement."""
    fft = np.fft if xp is np else xp.fft
    h, w = model.shape[-2:]
    a = model.reshape(-1, h, w)
    b = measured.reshape(-1, h, w)
    a = a - a.mean(axis=(-2, -1), keepdims=True)
    b = b - b.mean(axis=(-2, -1), keepdims=True)
    # zero-padded to 2H x 2W: a linear (not circular) correlation
    fa = fft.rfft2(a, s=(2 * h, 2 * w))
    fb = fft.rfft2(b, s=(2 * h, 2 * w))
    corr = fft.irfft2((xp.conj(fa) * fb).sum(axis=0), s=(2 * h, 2 * w))
    corr = backend.to_host(corr) if xp is not np else corr
    corr = np.fft.fftshift(corr)
    cy, cx = h, w  # zero lag after the shift
    r = int(math.ceil(max_shift))
    win = corr[cy - r: cy + r + 1, cx - r: cx + r + 1]
    iy, ix = np.unravel_index(int(np.argmax(win)), win.shape)
    out = []
    for i, line in ((iy, win[:, ix]), (ix, win[iy, :])):
        d = float(i - r)
        if 0 < i < len(line) - 1:
            lo, mid, hi = line[i - 1], line[i], line[i + 1]
            den = lo - 2 * mid + hi
            if den < 0:
                d += 0.5 * (lo - hi) / den
        out.append(d)
    return out[0], out[1]


def remove_tilt_defocus(shifts: np.ndarray, rho: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``shifts`` (N, N, 2) less their weighted mean (tilt) and their weighted least-squares component
    k rho (defocus), k = sum w (rho . d') / sum w |rho|^2 with d' the mean-free shifts."""
    w = weights[..., None]
    tot = float(weights.sum())
    if tot <= 0:
        return np.zeros_like(shifts)
    rho_c = rho - (w * rho).sum(axis=(0, 1)) / tot
    d = shifts - (w * shifts).sum(axis=(0, 1)) / tot
    den = float((w * rho_c**2).sum())
    k = float((w * rho_c * d).sum()) / den if den > 0 else 0.0
    return (d - k * rho_c) * (weights[..., None] > 0)


def _zernike_gradient(j: int, rho: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """grad Z_j at rho (..., 2) = (rho_y, rho_x), by central differences of ``optics.pupil.zernike``."""
    def z(ry, rx):
        return zernike(j, np.hypot(ry, rx), np.arctan2(ry, rx))

    ry, rx = rho[..., 0], rho[..., 1]
    gy = (z(ry + h, rx) - z(ry - h, rx)) / (2 * h)
    gx = (z(ry, rx + h) - z(ry, rx - h)) / (2 * h)
    return np.stack([gy, gx], axis=-1)


def zernike_shift_basis(m, rho: np.ndarray, weights: np.ndarray, indices=DEFAULT_INDICES) -> np.ndarray:
    """(n_terms, N, N, 2): the view shifts (µm, object space) of one wave rms of each Zernike term,
    (lambda0 / NA) grad Z_j(rho), with tilt and defocus removed as from the measured shifts."""
    scale = m.wavelength_um / m.objective.na
    return np.stack([remove_tilt_defocus(scale * _zernike_gradient(int(j), rho), rho, weights) for j in indices])


def fit_zernike(m, shifts_um: np.ndarray, rho: np.ndarray, weights: np.ndarray,
                indices=DEFAULT_INDICES) -> tuple[dict[int, float], float]:
    """Weighted least-squares Zernike coefficients (waves rms) of tilt/defocus-free view shifts (µm),
    and the rms residual (µm)."""
    basis = zernike_shift_basis(m, rho, weights, indices)
    sw = np.sqrt(weights)[..., None]
    a = (basis * sw).reshape(len(indices), -1).T
    b = (shifts_um * sw).ravel()
    coef, *_ = np.linalg.lstsq(a, b, rcond=None)
    resid = b - a @ coef  # sqrt(w) r: sum(resid^2) = sum w |r|^2
    rms = float(np.sqrt((resid**2).sum() / max(2 * float(weights.sum()), 1e-30)))
    return {int(j): float(c) for j, c in zip(indices, coef)}, rms


def shift_images(images, dy, dx, xp=np):
    """``images`` (..., H, W) moved by (dy, dx) samples (out(p) = in(p - d)), by the Fourier shift
    theorem on a zero-padded grid (no wrap-around for |d| below the padding)."""
    fft = np.fft if xp is np else xp.fft
    h, w = images.shape[-2:]
    pad = int(math.ceil(max(abs(dy), abs(dx)))) + 2
    hh, ww = h + 2 * pad, w + 2 * pad
    spec = fft.rfft2(images, s=(hh, ww))  # zero-padded at the far edge: roll the content to the middle
    fy = xp.fft.fftfreq(hh)[:, None]
    fx = xp.fft.rfftfreq(ww)[None, :]
    # shift by d + pad, so the content sits inside the padded grid, then crop at pad
    ramp = xp.exp(-2j * np.pi * (fy * (dy + pad) + fx * (dx + pad)))
    out = fft.irfft2(spec * ramp, s=(hh, ww))
    return out[..., pad: pad + h, pad: pad + w].astype(images.dtype, copy=False)


@dataclass
class Aberration:
    """What DAO estimated: Zernike coefficients (waves rms, Noll, ``[aberrations]`` convention) and
    the view shifts behind them."""

    zernike_waves: dict[int, float]
    view_shifts_um: np.ndarray           # (N, N, 2) tilt/defocus-free shifts the correction used
    weights: np.ndarray                  # (N, N) the views' RL weights (0: not used)
    fit_rms_um: float
    history: list = field(default_factory=list)  # per pass: {"pass", "rms_shift_um"}
    subfields: list = field(default_factory=list)  # multi-site: per sub-field {"rows_um", "cols_um", "zernike_waves"}

    def as_dict(self) -> dict:
        sub = [{**b, "zernike_waves": {str(j): round(c, 6) for j, c in sorted(b["zernike_waves"].items())}}
               for b in self.subfields]
        return {"zernike_waves": {str(j): round(c, 6) for j, c in sorted(self.zernike_waves.items())},
                **({"subfields": sub} if sub else {}),
                "convention": "Noll indices, waves rms over the objective's pupil, as in a config's "
                              "[aberrations] zernike_waves; tilt and defocus (Noll 1-4) are not estimable",
                "fit_rms_um": self.fit_rms_um,
                "view_shifts_um": np.round(self.view_shifts_um, 5).tolist(),
                "history": self.history}


def write_aberration(path, aberration: Aberration, *, overwrite: bool = False) -> Path:
    """Write ``aberration.as_dict()`` as JSON, atomically."""
    from optics.io import atomic_write_bytes

    return atomic_write_bytes(Path(path), json.dumps(aberration.as_dict(), indent=1).encode(), overwrite=overwrite)


class DigitalAO:
    """The ``correction`` hook of ``phase_space_rl``: estimate, remove and report the aberration.

    Parameters
    ----------
    views : reconstruction.phasespace.PhaseSpaceViews
    start : int
        First pass (0-based) that corrects: the estimate needs a first reconstruction (default 1).
    max_shift : float
        Largest view shift searched (phase-space samples of d / (K M)); default 5% of the view side,
        at least 3 (the published code searches 4%).
    indices : Noll indices of the fit.
    subfields : int
        S: estimate the aberration in S x S sub-fields of the field of view ("multi-site" DAO; each at
        least ``MIN_SUBFIELD`` samples per side) and warp each view by the shifts of the sub-fields,
        blended linearly between their centres (a partition of unity).  1: one field.
    initial : ndarray (N, N, 2) or (S, S, N, N, 2), optional
        View shifts (samples) corrected from the first pass, before the first estimate (the previous
        round's estimate in ``run_dao``: the estimate is biased toward what the first reconstruction
        absorbs, and a reconstruction started from corrected views absorbs less).
    """

    def __init__(self, views, *, start: int = 1, max_shift: float | None = None, indices=DEFAULT_INDICES,
                 subfields: int = 1, initial=None):
        m = views.microscope
        self.views, self.m, self.start = views, m, int(start)
        self.rho = view_pupil_coordinates(m)
        self.weights = np.array(views.weights, dtype=np.float64)
        hv, wv = views.view_shape
        nb = subfields
        if isinstance(nb, bool) or not isinstance(nb, (int, np.integer)) or nb < 1:
            raise ValueError(f"subfields = {subfields!r} is invalid: expected an integer >= 1")
        if nb > 1 and min(hv, wv) // nb < MIN_SUBFIELD:
            raise ValueError(f"subfields = {nb} is invalid: the views are {hv} x {wv} samples, so a sub-field "
                             f"would be under {MIN_SUBFIELD} samples per side; expected at most "
                             f"{max(1, min(hv, wv) // MIN_SUBFIELD)}")
        self.nb = int(nb)
        self.edges = [np.linspace(0, n, self.nb + 1).round().astype(int) for n in (hv, wv)]
        self.blend = [_tents(e) for e in self.edges]  # (S, n) per axis, columns summing to 1
        block = min(hv, wv) / self.nb
        self.max_shift = float(max_shift) if max_shift is not None else max(3.0, 0.05 * block)
        self.sample_um = m.lenslet_pitch_object_um / m.scan.steps
        self.indices = tuple(int(j) for j in indices)
        full = (self.nb, self.nb, *self.weights.shape, 2)
        self.field = np.zeros(full) if initial is None else np.broadcast_to(np.asarray(initial, dtype=np.float64), full).copy()
        self.history: list = []

    @property
    def shifts(self) -> np.ndarray:
        """(N, N, 2) view shifts (samples), the mean over the sub-fields."""
        return self.field.mean(axis=(0, 1))

    def _blocks(self):
        (ey, ex) = self.edges
        for i in range(self.nb):
            for j in range(self.nb):
                yield i, j, slice(ey[i], ey[i + 1]), slice(ex[j], ex[j + 1])

    def __call__(self, k: int, measured, x):
        xp = self.views.xp
        if k >= self.start:
            raw = np.zeros_like(self.field)
            for uv in self.views.order:
                model = self.views.ops[uv].forward(x)  # (t, H, W), the ideal model of the current estimate
                meas = measured[:, uv[0], uv[1]]
                for i, j, sy, sx in self._blocks():
                    raw[(i, j, *uv)] = shift_of(model[..., sy, sx], meas[..., sy, sx], self.max_shift, xp)
            for i, j, _, _ in self._blocks():
                self.field[i, j] = remove_tilt_defocus(raw[i, j], self.rho, self.weights)
            w = self.weights[..., None]
            rms = float(np.sqrt((w * self.field**2).sum() / max(self.nb**2 * self.weights.sum(), 1e-30)))
            self.history.append({"pass": k + 1, "rms_shift_um": rms * self.sample_um})
            log.info("DAO pass %d: rms view shift %.3g um", k + 1, rms * self.sample_um)
        if not self.field.any():
            return measured
        out = measured.copy()
        by, bx = (xp.asarray(b, dtype=measured.dtype) for b in self.blend)
        for uv in self.views.order:
            f = self.field[:, :, uv[0], uv[1]]
            if not f.any():
                continue
            src = measured[:, uv[0], uv[1]]
            if self.nb == 1:
                out[:, uv[0], uv[1]] = shift_images(src, -f[0, 0, 0], -f[0, 0, 1], xp)
                continue
            acc = xp.zeros_like(src)
            for i, j, _, _ in self._blocks():
                acc += by[i][:, None] * bx[j][None, :] * shift_images(src, -f[i, j, 0], -f[i, j, 1], xp)
            out[:, uv[0], uv[1]] = acc
        return out

    def result(self) -> Aberration:
        fits = [fit_zernike(self.m, self.field[i, j] * self.sample_um, self.rho, self.weights, self.indices)
                for i, j, _, _ in self._blocks()]
        coef = {j: float(np.mean([f[0][j] for f in fits])) for j in self.indices}
        rms = float(np.sqrt(np.mean([f[1] ** 2 for f in fits])))
        sub = []
        if self.nb > 1:  # bounds in the sample, µm from the optical axis (y rows, x columns)
            step = self.sample_um
            hy, hx = (self.edges[0][-1] / 2, self.edges[1][-1] / 2)
            for (_, _, sy, sx), (c, r) in zip(self._blocks(), fits):
                sub.append({"rows_um": [(sy.start - hy) * step, (sy.stop - hy) * step],
                            "cols_um": [(sx.start - hx) * step, (sx.stop - hx) * step],
                            "zernike_waves": c, "fit_rms_um": r})
        return Aberration(coef, self.shifts * self.sample_um, self.weights, rms, list(self.history), sub)


#: Smallest sub-field side (phase-space samples) of multi-site DAO.
MIN_SUBFIELD = 16


def _tents(edges: np.ndarray) -> np.ndarray:
    """(S, n) linear blending weights of S blocks over n samples: 1 at each block's centre, falling
    linearly to 0 at the neighbours' centres, flat beyond the outer centres; they sum to 1."""
    n, nb = int(edges[-1]), len(edges) - 1
    centres = 0.5 * (edges[:-1] + edges[1:]) - 0.5
    x = np.arange(n, dtype=np.float64)
    out = np.zeros((nb, n))
    if nb == 1:
        return np.ones((1, n))
    for b in range(nb):
        e = np.zeros(nb)
        e[b] = 1.0
        out[b] = np.interp(x, centres, e)  # np.interp holds the end values: flat beyond the outer centres
    return out


def _dao_fingerprint(frames, psf, iterations: int, rounds: int, indices, subfields: int, min_change: float) -> str:
    import hashlib

    h = hashlib.sha256(np.ascontiguousarray(np.asarray(frames, dtype=np.float32)).tobytes())
    h.update(repr((psf.microscope.hash, int(iterations), int(rounds), tuple(indices), int(subfields),
                   float(min_change))).encode())
    return h.hexdigest()[:16]


def _load_dao_checkpoint(path, fingerprint: str):
    """(next round, modelled, history) of a DAO checkpoint of this run, or None."""
    import json
    from pathlib import Path

    p = Path(path)
    if not p.exists():
        return None
    with np.load(p, allow_pickle=False) as data:
        try:
            state = json.loads(str(data["dao_state"]))
        except KeyError:
            raise ValueError(f"checkpoint {str(p)!r} is not a DAO checkpoint") from None
    if state.get("fingerprint") != fingerprint:
        raise ValueError(f"checkpoint {str(p)!r} belongs to another DAO run (frames, kernels, iterations, rounds or "
                         "sub-fields differ); delete it or pass another checkpoint path")
    if any(state.get("warped", [])):  # written when vectorial kernels could not take non-radial terms
        raise ValueError(f"checkpoint {str(p)!r} holds terms corrected by the view warp only, from an older "
                         "lfmsim whose vectorial kernels could not take them; delete it to start the run again")
    modelled = {int(j): float(c) for j, c in state["modelled"].items()}
    return int(state["next_round"]), modelled, state["history"]


def _save_dao_checkpoint(path, fingerprint: str, next_round: int, modelled, hist) -> None:
    import json

    from optics.io import atomic_write

    def clean(v):
        return json.loads(json.dumps(v, default=lambda o: o.tolist() if hasattr(o, "tolist") else float(o)))

    state = {"fingerprint": fingerprint, "next_round": next_round, "modelled": {str(j): c for j, c in modelled.items()},
             "history": clean(hist)}

    def write(tmp):
        with open(tmp, "wb") as fh:
            np.savez(fh, dao_state=np.array(json.dumps(state)))

    atomic_write(path, write, overwrite=True)


def run_dao(frames, psf, device: str, iterations: int, *, rounds: int = DEFAULT_ROUNDS, progress: bool = True,
            callback=None, indices=DEFAULT_INDICES, min_change: float = 0.005, subfields: int = 1,
            checkpoint=None):
    """Phase-space RL with digital adaptive optics over ``rounds`` rounds (module docstring).

    Each round reconstructs ``frames`` from a fresh start by ``phase_space_rl`` with the view warp
    (``DigitalAO``, in ``subfields`` x ``subfields`` sub-fields) on kernels that carry the terms
    estimated so far (non-radial ones through ``optics.debye2d``; their mean over the sub-fields, the
    kernels being one for the whole field); what a round estimates is a residual (added).  Stops
    early when no term changes by ``min_change`` waves.  Returns (volume, Aberration).

    ``checkpoint``: an ``.npz`` path written atomically after every round but the last with what the
    next round needs (the terms in the kernels and the history); a run restarted with
    the same frames, kernels and settings resumes at the next round (a round is the unit: one killed
    mid-round starts that round again).
    """
    from optics import compute_psf

    from .phasespace import PhaseSpaceViews, phase_space_rl

    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"rounds = {rounds!r} is invalid: expected an integer >= 1")
    m = psf.microscope

    modelled: dict[int, float] = {}  # in the kernels
    hist: list = []
    vol = ab = None
    first = 0
    fp = _dao_fingerprint(frames, psf, iterations, rounds, indices, subfields, min_change) if checkpoint else ""
    if checkpoint is not None:
        from pathlib import Path

        if not Path(checkpoint).parent.exists():
            raise FileNotFoundError(f"checkpoint folder {str(Path(checkpoint).parent)!r} does not exist")
        state = _load_dao_checkpoint(checkpoint, fp)
        if state is not None:
            first, modelled, hist = state
            log.info("DAO: resuming at round %d of %d from %s", first + 1, rounds, checkpoint)
    for r in range(first, int(rounds)):
        if modelled:
            m_r = m.replace(aberrations={"zernike_waves": {str(j): c for j, c in modelled.items()}})
            log.info("DAO round %d: kernels with %s", r + 1, modelled)
            p_r = compute_psf(m_r, progress=progress, cache=False)
        else:
            p_r = psf
        views = PhaseSpaceViews(p_r, device, np.float32, progress=progress)
        del p_r
        hook = DigitalAO(views, indices=indices, subfields=subfields)
        vol = phase_space_rl(frames, views, iterations, progress=progress, callback=callback, correction=hook)
        ab = hook.result()
        step = ab.zernike_waves  # a residual against kernels that carry the estimate so far
        hist.append({"round": r + 1, "modelled": dict(modelled), "estimate": ab.zernike_waves,
                     "passes": ab.history})
        for j, c in step.items():
            modelled[j] = modelled.get(j, 0.0) + c
        del views
        change = max([abs(c) for c in step.values()], default=0.0)
        if r + 1 < rounds and change < min_change:
            break
        if checkpoint is not None and r + 1 < rounds:
            _save_dao_checkpoint(checkpoint, fp, r + 1, modelled, hist)
    sub = [{**b, "zernike_waves": dict(modelled)} for b in ab.subfields]
    return vol, Aberration(dict(modelled), ab.view_shifts_um, ab.weights, ab.fit_rms_um, hist, sub)
