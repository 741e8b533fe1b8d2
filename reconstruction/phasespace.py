"""Phase-space Richardson-Lucy of the scanning LFM: ordered subsets over the views.

The realigned scan frames (``optics.scan.realign``) are N^2 views, each the sample seen through one
pixel (one sub-aperture of the pupil) of every lenslet, sampled K times per lenslet pitch.  View
(u, v) is a periodic projection of the volume on the K L virtual lenslets of the phase-space grid
(``optics.scan.PhaseSpacePSF``) with one output pixel per virtual lenslet; with a full scan
(K = N) it is a shift-invariant 2-D convolution per depth.  Wu et al. (Cell 184:3318, 2021;
../shared/FAMILIES.md section 3.4) update the volume view by view (ordered-subset EM):

    x_add = x ⊙ H_vᵀ(y_v ⊘ H_v x) ⊘ H_vᵀ1,        x <- w_v x_add + (1 - w_v) x,

one pass over the views per iteration, from the outer ring of the pupil inward.  Here the weight
w_v = ``weight_max`` E_v / max E, with E_v the light the view receives from the volume (its
kernels' sum over depths and phases); views under ``min_energy`` of the brightest carry too little
light to be worth an update and are skipped (the published code zeroes views outside a pupil radius
and uses w_max 0.2 for beads, 0.8 in the protocol; our weights are its energy rule without the
hand-set radius).  Each view is a ``LightFieldOperator`` with N = 1 on the virtual grid, so the
views' spectra together hold what the joint operator holds.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from optics.psfdata import kernel_radii
from optics.scan import PhaseSpacePSF, phase_space_psf, realign

from . import backend
from .checks import clip_roundoff_negatives
from .deconvolution import inverse_ht1
from .operator import LightFieldOperator

__all__ = ["ViewPSF", "PhaseSpaceViews", "view_order", "phase_space_rl", "DEFAULT_WEIGHT_MAX", "MIN_ENERGY"]

log = logging.getLogger(__name__)

#: Largest view weight (the published protocol's 0.8).
DEFAULT_WEIGHT_MAX = 0.8
#: Views receiving less than this fraction of the brightest view's light are not updated.
MIN_ENERGY = 0.05
#: Device memory for the views' 1 / H_vᵀ1 volumes (bytes); beyond it they are recomputed when needed.
MAX_CACHE_BYTES = 2 * 2**30


@dataclass(frozen=True, eq=False)
class ViewPSF:
    """The kernels of one view (u, v) on the virtual grid: a light-field PSF with one pixel per
    virtual lenslet (duck-types ``optics.psfdata.LightFieldPSF`` for ``LightFieldOperator``)."""

    microscope: object
    z_um: np.ndarray
    kernels: tuple  # per depth (s/K, s/K, 2R'+1, 2R'+1)
    n_lenslets: tuple
    voxels_per_lenslet: int

    pixels_per_lenslet = 1

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.n_lenslets)

    @property
    def volume_shape(self) -> tuple[int, int, int]:
        return self.microscope.volume_shape

    @property
    def radius_lenslets(self) -> np.ndarray:
        return kernel_radii(self.kernels, 1)


def view_order(nnum: int) -> list[tuple[int, int]]:
    """Views (u, v) from the outer ring of the pupil inward (by decreasing radius, then angle)."""
    c = (nnum - 1) / 2
    views = [(u, v) for u in range(nnum) for v in range(nnum)]
    return sorted(views, key=lambda uv: (-round(math.hypot(uv[0] - c, uv[1] - c), 9),
                                         math.atan2(uv[0] - c, uv[1] - c)))


class PhaseSpaceViews:
    """The per-view operators of a scanning LFM, their weights and H_vᵀ1 (built once, reused).

    Parameters
    ----------
    psf : optics.psfdata.LightFieldPSF or optics.scan.PhaseSpacePSF
        Kernels of an "slfm" microscope.
    device, dtype
        As ``LightFieldOperator``.
    weight_max, min_energy
        See the module docstring.
    """

    def __init__(self, psf, device: str = "auto", dtype=np.float32, *, weight_max: float = DEFAULT_WEIGHT_MAX,
                 min_energy: float = MIN_ENERGY, progress: bool = False):
        if not (isinstance(weight_max, (int, float)) and 0 < weight_max <= 1):
            raise ValueError(f"weight_max = {weight_max!r} is invalid: expected a number in (0, 1]")
        if not (isinstance(min_energy, (int, float)) and 0 <= min_energy < 1):
            raise ValueError(f"min_energy = {min_energy!r} is invalid: expected a number in [0, 1)")
        ps = psf if isinstance(psf, PhaseSpacePSF) else phase_space_psf(psf)
        m = ps.microscope
        self.microscope, self.steps, self.nnum = m, ps.steps, ps.pixels_per_lenslet
        self.order_name = m.scan.order
        n = self.nnum
        energy = np.zeros((n, n))
        for k in ps.kernels:
            energy += k.reshape(*k.shape[:2], k.shape[2] // n, n, k.shape[3] // n, n).sum(axis=(0, 1, 2, 4))
        self.energy = energy / energy.max()
        self.weights = np.where(self.energy >= min_energy, weight_max * self.energy, 0.0)
        self.order = [uv for uv in view_order(n) if self.weights[uv] > 0]
        views = self.order
        if progress:
            from tqdm.auto import tqdm

            views = tqdm(views, desc="view operators", unit="view", disable=None if sys.stderr.isatty() else True)
        self.ops = {}
        for u, v in views:
            vp = ViewPSF(m, ps.z_um, tuple(k[:, :, u::n, v::n] for k in ps.kernels), ps.n_lenslets, ps.voxels_per_lenslet)
            self.ops[(u, v)] = LightFieldOperator(vp, device, dtype)
        first = self.ops[self.order[0]]
        self.device, self.xp, self.dtype = first.device, first.xp, first.dtype
        self.volume_shape = first.volume_shape
        self.view_shape = first.image_shape
        self._inv = {}
        self._total = None
        # 1 / H_vᵀ1 is a volume per view: kept while they fit MAX_CACHE_BYTES, else recomputed (one
        # more projection per update) rather than N^2 volumes held
        vol_bytes = int(np.prod(self.volume_shape)) * np.dtype(self.dtype).itemsize
        self._cache_views = int(MAX_CACHE_BYTES // max(vol_bytes, 1))

    def ht1(self, uv):
        """H_vᵀ1 of view ``uv``."""
        return self.ops[uv].ones_adjoint()

    def inv_ht1(self, uv):
        """1 / H_vᵀ1 of view ``uv`` (0 where H_vᵀ1 = 0), cached within ``MAX_CACHE_BYTES``."""
        if uv in self._inv:
            return self._inv[uv]
        out = inverse_ht1(self.ht1(uv), self.ops[uv])
        if len(self._inv) < self._cache_views:
            self._inv[uv] = out
        return out

    def total_ht1(self) -> float:
        """sum over the updated views of sum(H_vᵀ1) = <1, H_v 1> (the uniform start's scale), once."""
        if self._total is None:
            self._total = sum(float(self.ht1(uv).sum(dtype=self.xp.float64)) for uv in self.order)
        return self._total

    def views_of(self, frames):
        """Scan frames (..., K^2, Y, X) on the device -> views (..., N, N, K L_y, K L_x)."""
        return realign(frames, self.steps, self.nnum, self.order_name, self.xp)


def phase_space_rl(frames, views: PhaseSpaceViews, iterations: int = 3, *, x0=None, progress: bool = True,
                   callback=None, correction=None, eps: float | None = None, checkpoint=None):
    """Ordered-subset RL over the views (module docstring) of scan frames (K^2, Y, X) or (t, K^2, Y, X).

    ``iterations`` passes over the views.  ``correction(k, views_measured, x)``, if given, is called
    before pass k (0-based) and returns the measured views to use in that pass (digital adaptive
    optics, ``reconstruction.dao``).  ``callback(k, x)`` after pass k (1-based).  ``checkpoint``: an
    .npz written atomically after every pass and resumed from when it belongs to these frames (as
    ``richardson_lucy``'s; not with ``correction``, whose state it would not hold).  Returns the
    volume (host array for host input), float32 by default.
    """
    from .deconvolution import _fingerprint, _load_checkpoint, _save_checkpoint

    if checkpoint is not None and correction is not None:
        raise ValueError("checkpoint is invalid with a correction (DAO): its estimate is not checkpointed")
    xp = views.xp
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"iterations = {iterations!r} is invalid: expected an integer >= 0")
    on_host = not backend.is_gpu_array(frames)
    k2 = views.steps**2
    shape = tuple(frames.shape)
    frame_shape = tuple(views.microscope.image_shape)
    if shape[-3:] != (k2, *frame_shape) or len(shape) not in (3, 4):
        raise ValueError(f"frames have shape {shape}; expected ({k2}, {frame_shape[0]}, {frame_shape[1]}) scan "
                         "frames or a (t, ...) stack of them")
    batched = len(shape) == 4
    y = backend.to_device(frames, views.device, dtype=views.dtype) if on_host else frames.astype(views.dtype, copy=False)
    if not bool(xp.isfinite(y).all()):
        raise ValueError("frames contain NaN or infinite values; RL needs finite, non-negative data")
    y = clip_roundoff_negatives(y, hint="RL needs non-negative data: subtract the camera offset and clip first")
    y = y if batched else y[None]
    measured = views.views_of(y)  # (t, N, N, KLy, KLx)
    t = y.shape[0]
    vol_shape = (t, *views.volume_shape)
    if eps is None:
        eps = 1e-12 * max(float(y.max()), np.finfo(views.dtype).tiny)
    ckpt = Path(checkpoint) if checkpoint is not None else None
    tag = SimpleNamespace(volume_shape=vol_shape, image_shape=("phase-space", *views.view_shape), dtype=views.dtype)
    fp = _fingerprint(backend.to_host(y), tag) if ckpt is not None else ""
    start = 0
    if ckpt is not None and not ckpt.parent.exists():
        raise FileNotFoundError(f"checkpoint folder {str(ckpt.parent)!r} does not exist")
    if ckpt is not None and ckpt.exists():
        xh, start = _load_checkpoint(ckpt, fp, vol_shape, iterations)
        x = backend.to_device(xh, views.device, dtype=views.dtype)
        log.info("phase_space_rl: resuming from %s after pass %d", ckpt, start)
    elif x0 is not None:
        x = backend.to_device(x0, views.device, dtype=views.dtype) if not backend.is_gpu_array(x0) else x0.astype(views.dtype, copy=True)
        x = x.reshape(vol_shape).copy()
    else:  # uniform, scaled so that sum_v sum(H_v x0) = sum(y): <1, H_v 1> = sum(H_vᵀ1)
        total = views.total_ht1()
        flux = y.reshape(t, -1).sum(axis=1, dtype=xp.float64)
        level = (flux / total).astype(views.dtype) if total > 0 else xp.zeros_like(flux, dtype=views.dtype)
        x = xp.ones(vol_shape, dtype=views.dtype) * level.reshape(t, 1, 1, 1)
    bar = None
    if progress and iterations > start:
        from tqdm.auto import tqdm

        bar = tqdm(total=(iterations - start) * len(views.order), desc="phase-space RL", unit="view",
                   disable=None if sys.stderr.isatty() else True)
    try:
        for k in range(start, iterations):
            obs = correction(k, measured, x) if correction is not None else measured
            for uv in views.order:
                op, w = views.ops[uv], float(views.weights[uv])
                hx = op.forward(x)
                yv = obs[:, uv[0], uv[1]]
                ratio = xp.where(hx > eps, yv / xp.where(hx > eps, hx, 1), 0).astype(views.dtype, copy=False)
                # x <- w x Hᵀratio / Hᵀ1 + (1 - w) x = x (1 - w + w Hᵀratio / Hᵀ1), formed in the
                # adjoint's new array (no temporaries of the volume's size)
                upd = op.adjoint(ratio)
                upd *= views.inv_ht1(uv)
                upd *= views.dtype.type(w)
                upd += views.dtype.type(1 - w)
                upd *= x
                x = upd
                xp.maximum(x, 0, out=x)
                if bar is not None:
                    bar.update(1)
            if callback is not None:
                callback(k + 1, x if batched else x[0])
            if ckpt is not None:
                _save_checkpoint(ckpt, backend.to_host(x), k + 1, fp)
    finally:
        if bar is not None:
            bar.close()
    out = x if batched else x[0]
    return backend.to_host(out) if on_host else out
