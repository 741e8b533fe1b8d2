"""Richardson-Lucy deconvolution of light-field (and wide-field) images.

The multiplicative update (PHYSICS.md section 4; Richardson 1972, Lucy 1974; Broxton et al.
2013; Prevedel et al. 2014), for y ~ Poisson(H x + b) plus Gaussian read noise N(0, σ²) by the
shift of Snyder, Hammoud & White (1993), is

    x_{k+1} = x_k ⊙ Hᵀ(w ⊙ (y + σ²)₊ ⊘ (H x_k + b + σ²)) ⊘ Hᵀw,

with H the ``LightFieldOperator``, b a known background (``background``), σ the read noise
(``read_noise``), w optional pixel weights and (.)₊ clipping at 0; b = σ = 0, w = 1 is the classical
x_k ⊙ Hᵀ(y ⊘ H x_k) ⊘ Hᵀ1.  It keeps x >= 0 (round-off negatives of Hᵀ are clipped); with b = σ = 0
and where Hᵀ1 > 0 it conserves flux, sum(H x_{k+1}) = sum(y) after every iteration, and y = H x*
makes x* a fixed point (so does y = H x* + b with a background b).  Optionally each iterate is low-passed
per depth by the anti-aliasing filter of Stefanoiu et al. 2019 (``reconstruction.filters``; this
breaks the exact flux identity).  Long runs can checkpoint (atomic .npz of the estimate and the
iteration count) and resume where they stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np

from . import backend
from .checks import ROUNDOFF_REL, clip_roundoff_negatives
from .filters import LanczosFilter

__all__ = ["richardson_lucy", "CheckpointError", "READ_NOISE_SIGMAS"]

log = logging.getLogger(__name__)

# With read noise sigma, offset-subtracted data are genuinely negative where the photon count is
# low, but y = Poisson(H x + b) + N(0, sigma^2) is never below its Gaussian part.  Values down to
# -(READ_NOISE_SIGMAS sigma + ROUNDOFF_REL max|frame|) are accepted.  A Gaussian falls below -8 sigma
# with probability 6e-16 per pixel, so even a 1e12-pixel series (a 4-Mpx camera, 250 000 frames) is
# refused by chance only once in ~1600; at 6 sigma (1e-9 per pixel) a 4-Mpx x 1000-frame stack
# would hold ~4 such pixels and be refused almost always.  What falls further below is an offset
# error (too much subtracted, data in ADU rather than photo-electrons), not read noise.
READ_NOISE_SIGMAS = 8.0

_NUMBER = (int, float, np.integer, np.floating)


class CheckpointError(ValueError):
    """A checkpoint file does not belong to this reconstruction."""


def _fingerprint(y_host: np.ndarray, op, background_host: np.ndarray | None = None, read_noise: float = 0.0) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(y_host).tobytes())
    h.update(repr((op.volume_shape, op.image_shape, op.dtype.name)).encode())
    # without background and read noise the fingerprint is what it was before they existed (older
    # checkpoints resume); the background as broadcast to the image, so 5.0 and a map of 5.0 agree
    if background_host is not None:
        h.update(b"background")
        h.update(np.ascontiguousarray(np.broadcast_to(background_host, y_host.shape)).tobytes())
    if read_noise:
        h.update(f"read_noise={float(read_noise)!r}".encode())
    return h.hexdigest()[:16]


def _load_checkpoint(path: Path, fingerprint: str, shape: tuple, iterations: int):
    with np.load(path, allow_pickle=False) as data:
        try:
            fp, k, x = str(data["fingerprint"]), int(data["iteration"]), data["x"]
        except KeyError as e:
            raise CheckpointError(f"checkpoint {str(path)!r} is not a richardson_lucy checkpoint (missing {e})") from e
    if fp != fingerprint or tuple(x.shape) != tuple(shape):
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to another image or operator, or another background or "
            f"read_noise (shape {x.shape}); "
            "delete it or pass another checkpoint path"
        )
    if k > iterations:
        raise CheckpointError(f"checkpoint {str(path)!r} is at iteration {k}, beyond iterations = {iterations}")
    return x, k


def _save_checkpoint(path: Path, x_host: np.ndarray, k: int, fingerprint: str) -> None:
    from optics.io import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, x=x_host, iteration=np.int64(k), fingerprint=np.array(fingerprint))

    atomic_write(path, write, overwrite=True)


def _check_read_noise(read_noise) -> float:
    """``read_noise`` as a float sigma >= 0 (None -> 0)."""
    if read_noise is None:
        return 0.0
    if (isinstance(read_noise, (bool, np.bool_)) or not isinstance(read_noise, _NUMBER)
            or not np.isfinite(float(read_noise)) or float(read_noise) < 0):
        raise ValueError(f"read_noise = {read_noise!r} is invalid: expected None or a finite number >= 0, "
                         "the read-noise standard deviation in the image's units (photo-electrons)")
    return float(read_noise)


def _check_background(background, op, shape: tuple):
    """``background`` on the operator's device in its dtype (0-d or broadcastable to ``shape``);
    None when it is None or 0 everywhere."""
    accepted = (f"expected None, a finite number >= 0 or a finite array >= 0 broadcastable to the image "
                f"{shape} (e.g. {shape[-2:]} per pixel, or (t, 1, 1) per frame of a series), in the image's units")
    if background is None:
        return None
    if isinstance(background, (bool, np.bool_)):
        raise ValueError(f"background = {background!r} is invalid: {accepted}")
    xp = op.xp
    if isinstance(background, _NUMBER):
        v = float(background)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"background = {background!r} is invalid: {accepted}")
        return None if v == 0 else xp.asarray(v, dtype=op.dtype)
    arr = background if backend.is_gpu_array(background) else np.asarray(background)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"background has dtype {arr.dtype} ({'boolean' if arr.dtype.kind == 'b' else 'not real'}): {accepted}")
    try:
        fits = np.broadcast_shapes(tuple(arr.shape), shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"background has shape {tuple(arr.shape)}, not broadcastable to the image {shape}: {accepted}")
    b = backend.to_device(arr, op.device, dtype=op.dtype)
    if not bool(xp.isfinite(b).all()):
        bad = int((~xp.isfinite(b)).sum())
        raise ValueError(f"background has {bad} NaN or infinite value(s) (in {op.dtype.name}): {accepted}")
    if bool((b < 0).any()):
        raise ValueError(f"background has {int((b < 0).sum())} negative value(s), min {float(b.min()):.6g}: {accepted}; "
                         "a per-pixel offset below the one subtracted belongs in the offset subtraction")
    return None if float(b.max()) == 0 else b


def _check_read_noise_negatives(y, sigma: float) -> None:
    """Refuse image values below -(READ_NOISE_SIGMAS sigma + ROUNDOFF_REL max|frame|) (per frame)."""
    xp = backend.xp_of(y)
    if y.size == 0 or not bool((y < 0).any()):
        return
    peak = xp.abs(y).max(axis=(-2, -1), keepdims=True)
    bound = READ_NOISE_SIGMAS * sigma + ROUNDOFF_REL * peak
    below = y < -bound
    if bool(below.any()):
        worst = float(bound.max())
        where = "" if y.ndim <= 2 else " in at least one frame"
        raise ValueError(
            f"image has values too negative for read_noise = {sigma:g}: {int(below.sum())} pixel(s) below "
            f"-({READ_NOISE_SIGMAS:g} x read_noise + {ROUNDOFF_REL:g} x max|frame|) = -{worst:.4g}{where} "
            f"({int((y < 0).sum())} negative in all), min {float(y.min()):.6g}; with read noise, RL accepts "
            f"offset-subtracted values down to {READ_NOISE_SIGMAS:g} read-noise standard deviations below 0: "
            "check the camera offset subtracted and that read_noise is in the image's units (photo-electrons)")


def _resolve_filter(filter, op):
    if filter is None or filter == "none":
        return None
    if isinstance(filter, str):
        if filter != "lanczos":
            raise ValueError(f"filter = {filter!r} is invalid: expected None, 'none', 'lanczos' or a callable")
        return LanczosFilter.for_microscope(op.microscope, op.device, op.dtype)
    if callable(filter):
        return filter
    raise ValueError(f"filter = {filter!r} is invalid: expected None, 'none', 'lanczos' or a callable")


def check_image_values(y, sigma: float):
    """RL's checks of the data's values: finite; with read noise sigma > 0, negatives down to
    ~ -8 sigma are data (``_check_read_noise_negatives``); without, round-off negatives (e.g. of
    op.forward's FFTs) are clipped to 0 and real negatives refused.  Returns y (clipped)."""
    xp = backend.xp_of(y)
    if not bool(xp.isfinite(y).all()):
        raise ValueError("image contains NaN or infinite values; RL needs finite, non-negative data")
    if sigma > 0:
        _check_read_noise_negatives(y, sigma)
        return y
    return clip_roundoff_negatives(y, hint="RL needs non-negative data: subtract the camera offset and clip "
                                           "first, or pass read_noise for offset-subtracted data")


class RatioTerms:
    """The ratio of a Richardson-Lucy step, w ⊙ y ⊘ H x or, with a background b and read noise sigma,
    (y + sigma²)₊ ⊘ (max(H x, 0) + b + sigma²) (``richardson_lucy``; the one home of the rule, also
    used by ``reconstruction.depthsplit``).  ``y`` on the device, ``b`` None or an array
    broadcastable to it, ``eps`` None for 1e-12 max(y)."""

    def __init__(self, y, b, sigma: float, eps, xp, dtype):
        self.y, self.xp, self.dtype = y, xp, np.dtype(dtype)
        self.eps = 1e-12 * max(float(y.max()), np.finfo(self.dtype).tiny) if eps is None else eps
        # the shifted model's additive term c = b + sigma² and numerator (y + sigma²)₊; None: classical RL
        self.c = self.y_shift = self.c_pos = None
        if b is not None or sigma > 0:
            s2 = self.dtype.type(sigma * sigma)
            self.c = xp.asarray(s2, dtype=self.dtype) if b is None else (b + s2 if sigma > 0 else b)
            self.y_shift = xp.maximum(y + s2, 0) if sigma > 0 else y
            if not float(self.c.min()) > 0:  # a background map with zeros and no read noise: guard those pixels
                self.c_pos = self.c > 0

    def ratio(self, hx):
        """The ratio for the forward projection ``hx`` (a new array of ``dtype``)."""
        xp, y, eps, dt = self.xp, self.y, self.eps, self.dtype
        if self.c is None:
            return xp.where(hx > eps, y / xp.where(hx > eps, hx, 1), 0).astype(dt, copy=False)
        den = xp.maximum(hx, 0)  # max(H x, 0) + b + sigma² >= b + sigma² > 0 (round-off negatives clipped)
        den += self.c
        if self.c_pos is None:
            return (self.y_shift / den).astype(dt, copy=False)
        ok = self.c_pos | (den > eps)
        return xp.where(ok, self.y_shift / xp.where(ok, den, 1), 0).astype(dt, copy=False)


def inverse_ht1(ht1, op):
    """1 / Hᵀw where it is > 0, else 0 (voxels no pixel sees are left as they start), in ``op.dtype``."""
    xp = op.xp
    return xp.where(ht1 > 0, 1 / xp.where(ht1 > 0, ht1, 1), 0).astype(op.dtype)


def rl_update(op, x, ratio, inv_ht1, flt=None):
    """x ⊙ Hᵀ ratio ⊘ Hᵀ1 (formed in the adjoint's new array, no temporaries), filtered by ``flt`` and
    clipped at 0: the update is >= 0 in exact arithmetic, but Hᵀ's FFTs leave round-off negatives
    (~ -1e-10) where the ratio is 0, so an estimate is a valid x0 again."""
    upd = op.adjoint(ratio)
    upd *= inv_ht1
    upd *= x
    if flt is not None:
        upd = flt(upd)
    op.xp.maximum(upd, 0, out=upd)
    return upd


def richardson_lucy(
    image,
    operator,
    iterations: int = 8,
    *,
    x0=None,
    filter=None,
    callback=None,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 10,
    eps: float | None = None,
    weights=None,
    background=None,
    read_noise: float | None = None,
):
    """Deconvolve a light-field image (or a time series of them) by Richardson-Lucy.

    Parameters
    ----------
    image : array, (Y, X) or (t, Y, X)
        Non-negative, finite image(s) on ``operator.image_shape`` ((K^2, Y, X) scan frames for a
        ``ScannedOperator``) (photo-electrons or any linear
        unit).  Round-off-sized negatives (>= -1e-5 max|frame|, e.g. of ``operator.forward``) are
        clipped to 0 (``reconstruction.checks.clip_roundoff_negatives``); larger ones are an
        error.  With ``read_noise`` = sigma > 0 the image is offset-subtracted data, negative where
        few photons arrived: values >= -(8 sigma + 1e-5 max|frame|) (``READ_NOISE_SIGMAS``) are
        accepted as they are (not clipped: the update uses (y + sigma²)₊), lower ones are an error.
        A NumPy array with a GPU operator is copied to the device once and the result is copied
        back; a CuPy array stays on the device.
    operator : LightFieldOperator or ScannedOperator
        H and Hᵀ (``reconstruction.operator``, ``reconstruction.scanned``).
    iterations : int
        Total number of RL iterations (>= 0; a resumed run counts the ones already done).
    x0 : array, (nz, Y', X') or (t, nz, Y', X'), optional
        Non-negative start.  Default: uniform, scaled so that sum(H x0) = max(sum(w (y - b)), 0)
        per frame (sum(y) without weights and background), so the background is not put into the
        volume; a frame whose background-subtracted sum is <= 0 starts (and stays) at 0.
    filter : None, "none", "lanczos" or callable
        Applied to each iterate: "lanczos" is the S19 depth-adaptive anti-aliasing filter
        (``filters.LanczosFilter``); negative values it creates are clipped to 0.
    callback : callable, optional
        ``callback(k, x)`` after iteration k (1-based) with the current estimate (device array).
    progress : bool
        tqdm progress bar (shown only on a terminal).
    checkpoint : path, optional
        ``.npz`` file: if it exists and belongs to this image and operator, resume from it;
        the estimate is written there atomically every ``checkpoint_every`` iterations and at
        the end.
    checkpoint_every : int
    eps : float, optional
        Pixels where H x_k + b + sigma² <= eps and b + sigma² = 0 get ratio 0 (guards y / 0; where
        b + sigma² > 0 the denominator max(H x_k, 0) + b + sigma² is > 0 and is not guarded).
        Default 1e-12 max(y).
    weights : array, optional
        Non-negative weights broadcastable to ``image`` (e.g. (t, K^2, 1, 1) per scan frame): the
        weighted-likelihood update x ⊙ Hᵀ(w ⊙ y ⊘ H x) ⊘ Hᵀw, in which a pixel of weight w counts
        w times (``reconstruction.scanned.rolling_windows``: frames far in time count less).
    background : float or array, optional
        Known background b >= 0 of the model y ~ Poisson(H x + b), in the image's units: a number
        (uniform), or a finite array broadcastable to ``image`` (a per-pixel dark-level residual
        (Y, X), a per-frame level (t, 1, 1), ...).  It enters the denominator of the ratio instead
        of being subtracted from y, so dim regions are not biased by clipping y - b at 0.
        None or 0: none.
    read_noise : float, optional
        Standard deviation sigma >= 0 of the camera's Gaussian read noise, in the image's units
        (photo-electrons; an sCMOS camera with a per-pixel noise map: a representative, e.g. RMS,
        value).  Handled by the shift of Snyder et al. (1993, 1995): y + sigma² is nearly Poisson
        with mean H x + b + sigma², so the ratio is w ⊙ (y + sigma²)₊ ⊘ (H x + b + sigma²).
        Allows negative image values (see ``image``).  None or 0: none.

        With neither (the default) the update and the result are exactly those of
        x ⊙ Hᵀ(w ⊙ y ⊘ H x) ⊘ Hᵀw.  With either, flux is no longer conserved at every iteration:
        at a fixed point sum(H x ⊙ (y + sigma²) ⊘ (H x + b + sigma²)) = sum(H x).

    Returns
    -------
    volume : array, (nz, Y', X') or (t, nz, Y', X'), ``operator.dtype`` (float32 by default)

    References
    ----------
    PHYSICS.md section 4; Broxton et al., Opt. Express 21:25418 (2013); Stefanoiu et al.,
    Opt. Express 27:31644 (2019).  Background and read noise: D. L. Snyder, A. M. Hammoud and
    R. L. White, "Image recovery from data acquired with a charge-coupled-device camera",
    J. Opt. Soc. Am. A 10:1014 (1993); D. L. Snyder, C. W. Helstrom, A. D. Lanterman, M. Faisal and
    R. L. White, "Compensation for readout noise in CCD images", J. Opt. Soc. Am. A 12:272 (1995).

    Examples
    --------
    >>> op = LightFieldOperator(psf, device="auto")                       # doctest: +SKIP
    >>> vol = richardson_lucy(frame, op, iterations=8, filter="lanczos")  # doctest: +SKIP
    """
    op = operator
    xp = op.xp
    if isinstance(iterations, bool) or not isinstance(iterations, (int, np.integer)) or iterations < 0:
        raise ValueError(f"iterations = {iterations!r} is invalid: expected an integer >= 0")
    if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, (int, np.integer)) or checkpoint_every < 1:
        raise ValueError(f"checkpoint_every = {checkpoint_every!r} is invalid: expected an integer >= 1")
    sigma = _check_read_noise(read_noise)
    on_host = not backend.is_gpu_array(image)
    if backend.xp_of(image) is not xp and not on_host:
        raise TypeError(f"image is a CuPy array but the operator lives on {op.device!r}")
    shape = tuple(image.shape)
    nd = len(op.image_shape)  # 2, or 3 for a scanning LFM's (K^2, Y, X) frames
    if shape == op.image_shape:
        batched = False
    elif len(shape) == nd + 1 and shape[1:] == op.image_shape:
        batched = True
    else:
        raise ValueError(
            f"image has shape {shape}; expected {op.image_shape} or (t, *{op.image_shape}) for a time series"
        )
    y = backend.to_device(image, op.device, dtype=op.dtype) if on_host else image.astype(op.dtype, copy=False)
    y = check_image_values(y, sigma)
    b = _check_background(background, op, shape)
    vol_shape = ((shape[0],) if batched else ()) + op.volume_shape
    img_axes = tuple(range(-nd, 0))

    flt = _resolve_filter(filter, op)
    w = None
    if weights is not None:
        w = backend.to_device(weights, op.device, dtype=op.dtype) if not backend.is_gpu_array(weights) else weights
        try:
            w = xp.broadcast_to(w, y.shape)
        except ValueError:
            raise ValueError(f"weights have shape {tuple(weights.shape)}, not broadcastable to the image {shape}") from None
        if not bool(xp.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("weights must be finite and >= 0")
        ht1 = op.adjoint(xp.ascontiguousarray(w))  # (t, ...) when batched: each frame its own Hᵀw
    else:
        ht1 = op.ones_adjoint()
    inv_ht1 = inverse_ht1(ht1, op)
    total = ht1.reshape((shape[0], -1) if batched and w is not None else (-1,)).sum(axis=-1, dtype=xp.float64)
    terms = RatioTerms(y, b, sigma, eps, xp, op.dtype)

    ckpt = Path(checkpoint) if checkpoint is not None else None
    fp = (_fingerprint(backend.to_host(y), op, None if b is None else backend.to_host(b), sigma)
          if ckpt is not None else "")
    start = 0
    if ckpt is not None and ckpt.exists():
        xh, start = _load_checkpoint(ckpt, fp, vol_shape, iterations)
        x = backend.to_device(xh, op.device, dtype=op.dtype)
        log.info("richardson_lucy: resuming from %s at iteration %d", ckpt, start)
    elif x0 is not None:
        if tuple(x0.shape) != vol_shape:
            raise ValueError(f"x0 has shape {tuple(x0.shape)}; expected {vol_shape}")
        x = backend.to_device(x0, op.device, dtype=op.dtype).copy() if not backend.is_gpu_array(x0) else x0.astype(op.dtype, copy=True)
        if bool((x < 0).any()) or not bool(xp.isfinite(x).all()):
            raise ValueError("x0 must be finite and non-negative")
    else:
        signal = y if b is None else y - b  # the background is not the volume's
        flux = xp.maximum((signal if w is None else w * signal).sum(axis=img_axes, dtype=xp.float64), 0)
        level = xp.where(total > 0, flux / xp.where(total > 0, total, 1), 0).astype(op.dtype)
        x = xp.ones(vol_shape, dtype=op.dtype) * level.reshape(level.shape + (1, 1, 1))
    if ckpt is not None and not ckpt.parent.exists():
        raise FileNotFoundError(f"checkpoint folder {str(ckpt.parent)!r} does not exist")

    steps = range(start, iterations)
    bar = None
    if progress and iterations > start:
        from tqdm.auto import tqdm

        bar = tqdm(total=iterations - start, desc="Richardson-Lucy", unit="it",
                   disable=None if sys.stderr.isatty() else True)
    try:
        for k in steps:
            ratio = terms.ratio(op.forward(x))
            if w is not None:
                ratio *= w
            x = rl_update(op, x, ratio, inv_ht1, flt)
            if callback is not None:
                callback(k + 1, x)
            if ckpt is not None and ((k + 1) % checkpoint_every == 0 or k + 1 == iterations):
                _save_checkpoint(ckpt, backend.to_host(x), k + 1, fp)
            if bar is not None:
                bar.update(1)
            log.debug("richardson_lucy: iteration %d/%d", k + 1, iterations)
    finally:
        if bar is not None:
            bar.close()
    return backend.to_host(x) if on_host else x
