"""Input checks shared by the deconvolution entry points (one home for each rule).

``clip_roundoff_negatives``: an image for Richardson-Lucy must be non-negative, but the library's
own forward projection (``LightFieldOperator.forward``, FFT convolution in float32) leaves values
like -1e-9 where the exact image is 0.  Such round-off-sized negatives are clipped to 0; data that
are genuinely negative (an un-subtracted camera offset, read noise, a background subtraction) are
refused with the count of negative pixels, the most negative value and the bound used.
Used by ``reconstruction.deconvolution.richardson_lucy`` and ``reconstruction.api.validate_image``.
"""

from __future__ import annotations

import logging

from . import backend

__all__ = ["ROUNDOFF_REL", "clip_roundoff_negatives"]

log = logging.getLogger(__name__)

# Round-off bound, relative to the image's peak |value|, below which negatives count as FFT noise.
# float32 unit round-off is u = 2^-24 ~ 6e-8.  A projection is an rfft2 of the volume phases, a
# per-frequency matmul summing C = depths x phases channels, and an irfft2 of the sensor phases;
# the normwise error of a length-P FFT grows like u log2 P (Cooley-Tukey; Higham, "Accuracy and
# Stability of Numerical Algorithms", sec. 24.1) and that of a C-term sum like u sqrt(C) (random
# rounding).  For FFT grids up to 2^20 points (log2 P = 20, three transforms) and C up to ~1000
# (sqrt C ~ 30) this is ~ 100 u ~ 6e-6 of the peak at a pixel where the exact image is 0, so
# 1e-5 (~170 u) leaves headroom; measured on small operators the negatives are ~1e-7 of the peak.
# Real negatives are far larger: camera read noise after the offset is subtracted is ~1e-3 of the
# peak or more.  The bound is that of float32 whatever the dtype of the data (float32 is the least
# precise arithmetic the library computes in, and float64 data may have been computed in float32).
ROUNDOFF_REL = 1e-5


def clip_roundoff_negatives(image, *, name: str = "image", hint: str = "", rel: float = ROUNDOFF_REL):
    """``image`` with round-off-sized negatives set to 0; genuinely negative data are refused.

    Parameters
    ----------
    image : array (numpy or cupy), (Y, X) or (t, Y, X)
        Real, finite values.  Never modified in place: a clipped copy is returned when needed.
    name : str
        What the image is called in the error message.
    hint : str
        Appended to the error message (what to do about it).
    rel : float
        Negatives >= -rel * max|frame| (per frame of a stack) are round-off (``ROUNDOFF_REL``).

    Returns
    -------
    array, the same array when it has no negatives, else a clipped copy (same dtype and device)

    Raises
    ------
    ValueError
        Naming the count of pixels below the bound, the most negative value and the bound.
    """
    xp = backend.xp_of(image)
    if image.size == 0 or not bool((image < 0).any()):
        return image
    axes = (-2, -1) if image.ndim >= 2 else None
    peak = xp.abs(image).max(axis=axes, keepdims=True)
    bound = rel * peak
    below = image < -bound
    if bool(below.any()):
        count = int(below.sum())
        negative = int((image < 0).sum())
        low = float(image.min())
        worst = float(bound.max()) if image.ndim > 2 else float(bound.reshape(()))
        where = "" if image.ndim <= 2 else " in at least one frame"
        msg = (f"{name} has negative values: {count} pixel(s) below the round-off bound"
               f" (-{rel:g} x max|{name}| = -{worst:.4g}{where}; {negative} negative in all), min {low:.6g}")
        raise ValueError(msg + (f"; {hint}" if hint else ""))
    log.debug("%s: %d round-off negative value(s) (min %.3g) clipped to 0", name, int((image < 0).sum()),
              float(image.min()))
    return xp.maximum(image, 0)
