"""Richardson-Lucy deconvolution of light-field (and wide-field) images.

The multiplicative update (PHYSICS.md section 4; Richardson 1972, Lucy 1974; Broxton et al.
2013; Prevedel et al. 2014) is

    x_{k+1} = x_k ⊙ Hᵀ(y ⊘ H x_k) ⊘ Hᵀ1,

with H the ``LightFieldOperator``.  It keeps x >= 0 (round-off negatives of Hᵀ are clipped) and,
where Hᵀ1 > 0, conserves flux: sum(H x_{k+1}) = sum(y) after every iteration; y = H x* makes x* a
fixed point.  Optionally each iterate is low-passed per depth by the anti-aliasing filter of
Stefanoiu et al. 2019 (``reconstruction.filters``; this breaks the exact flux identity).  Long runs
can checkpoint (atomic .npz of the estimate and the iteration count) and resume where they stopped.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from pathlib import Path

import numpy as np

from . import backend
from .checks import clip_roundoff_negatives
from .filters import LanczosFilter

__all__ = ["richardson_lucy", "CheckpointError"]

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
    """A checkpoint file does not belong to this reconstruction."""


def _fingerprint(y_host: np.ndarray, op) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(y_host).tobytes())
    h.update(repr((op.volume_shape, op.image_shape, op.dtype.name)).encode())
    return h.hexdigest()[:16]


def _load_checkpoint(path: Path, fingerprint: str, shape: tuple, iterations: int):
    with np.load(path, allow_pickle=False) as data:
        try:
            fp, k, x = str(data["fingerprint"]), int(data["iteration"]), data["x"]
        except KeyError as e:
            raise CheckpointError(f"checkpoint {str(path)!r} is not a richardson_lucy checkpoint (missing {e})") from e
    if fp != fingerprint or tuple(x.shape) != tuple(shape):
        raise CheckpointError(
            f"checkpoint {str(path)!r} belongs to another image or operator (shape {x.shape}); "
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
):
    """Deconvolve a light-field image (or a time series of them) by Richardson-Lucy.

    Parameters
    ----------
    image : array, (Y, X) or (t, Y, X)
        Non-negative, finite image(s) on ``operator.image_shape`` ((K^2, Y, X) scan frames for a
        ``ScannedOperator``) (photo-electrons or any linear
        unit).  Round-off-sized negatives (>= -1e-5 max|frame|, e.g. of ``operator.forward``) are
        clipped to 0 (``reconstruction.checks.clip_roundoff_negatives``); larger ones are an
        error.  A NumPy array with a GPU operator is copied to the device once and the result is
        copied back; a CuPy array stays on the device.
    operator : LightFieldOperator or ScannedOperator
        H and Hᵀ (``reconstruction.operator``, ``reconstruction.scanned``).
    iterations : int
        Total number of RL iterations (>= 0; a resumed run counts the ones already done).
    x0 : array, (nz, Y', X') or (t, nz, Y', X'), optional
        Non-negative start.  Default: uniform, scaled so that sum(H x0) = sum(y).
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
        Pixels where H x_k <= eps get ratio 0 (guards y / 0).  Default 1e-12 max(y).
    weights : array, optional
        Non-negative weights broadcastable to ``image`` (e.g. (t, K^2, 1, 1) per scan frame): the
        weighted-likelihood update x ⊙ Hᵀ(w ⊙ y ⊘ H x) ⊘ Hᵀw, in which a pixel of weight w counts
        w times (``reconstruction.scanned.rolling_windows``: frames far in time count less).

    Returns
    -------
    volume : array, (nz, Y', X') or (t, nz, Y', X'), ``operator.dtype`` (float32 by default)

    References
    ----------
    PHYSICS.md section 4; Broxton et al., Opt. Express 21:25418 (2013); Stefanoiu et al.,
    Opt. Express 27:31644 (2019).

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
    if not bool(xp.isfinite(y).all()):
        raise ValueError("image contains NaN or infinite values; RL needs finite, non-negative data")
    # round-off negatives (e.g. of op.forward's FFTs) are clipped to 0; real negatives are refused
    y = clip_roundoff_negatives(y, hint="RL needs non-negative data: subtract the camera offset and clip first")
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
    inv_ht1 = xp.where(ht1 > 0, 1 / xp.where(ht1 > 0, ht1, 1), 0).astype(op.dtype)
    total = ht1.reshape((shape[0], -1) if batched and w is not None else (-1,)).sum(axis=-1, dtype=xp.float64)
    if eps is None:
        eps = 1e-12 * max(float(y.max()), np.finfo(op.dtype).tiny)

    ckpt = Path(checkpoint) if checkpoint is not None else None
    fp = _fingerprint(backend.to_host(y), op) if ckpt is not None else ""
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
        flux = (y if w is None else w * y).sum(axis=img_axes, dtype=xp.float64)
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
            hx = op.forward(x)
            ratio = xp.where(hx > eps, y / xp.where(hx > eps, hx, 1), 0).astype(op.dtype, copy=False)
            if w is not None:
                ratio *= w
            x = x * op.adjoint(ratio) * inv_ht1
            if flt is not None:
                x = flt(x)
            # the update is >= 0 in exact arithmetic, but Hᵀ's FFTs leave round-off negatives
            # (~ -1e-10) where the ratio is 0; clipped, so an estimate is a valid x0 again
            xp.maximum(x, 0, out=x)
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
