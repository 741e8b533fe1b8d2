"""Camera model: photons at the sensor to digital numbers (ADU), with shot and read noise.

The standard linear sensor model of the EMVA 1288 standard (release 4.0, 2021, section 2) without
dark current: for N photons arriving at a pixel in one exposure,

    electrons  e ~ Poisson(QE * N)                      (shot noise)
    signal     s = e + r,  r ~ Normal(0, read_noise_e^2) (read noise, in electrons)
    ADU        D = clip(round(gain * s + offset), 0, 2^bit_depth - 1)

so that, away from clipping, mean(D) = gain * QE * N + offset and
var(D) = gain^2 (QE * N + read_noise_e^2) + 1/12 (the quantisation noise of rounding, EMVA 1288
eq. 2.9).  The camera parameters are those of ``optics.config.Camera``.
"""

from __future__ import annotations

import numpy as np

from .config import Camera, Microscope

__all__ = ["expected_adu", "apply_camera", "digitize", "output_dtype", "max_adu"]

#: numpy's Poisson sampler refuses means above about 1e19; far beyond any real pixel.
_MAX_MEAN_ELECTRONS = 1e15


def _camera(camera) -> Camera:
    if isinstance(camera, Microscope):
        return camera.camera
    if not isinstance(camera, Camera):
        raise TypeError(
            f"camera = {type(camera).__name__} is invalid: expected an optics.config.Camera or a Microscope"
        )
    return camera


def _photons(photons) -> np.ndarray:
    arr = np.asarray(photons)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ValueError(f"photons has dtype {arr.dtype}; expected a real (integer or float) array")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise ValueError(f"photons has {bad} non-finite value(s) (NaN or inf); expected finite counts >= 0")
    if arr.size and arr.min() < 0:
        raise ValueError(f"photons has a negative value ({arr.min():.6g}); expected counts >= 0")
    if arr.size and arr.max() > _MAX_MEAN_ELECTRONS:
        raise ValueError(f"photons has a value of {arr.max():.6g}; expected at most {_MAX_MEAN_ELECTRONS:g} per pixel")
    return arr


def max_adu(camera) -> int:
    """Largest digital number, 2^bit_depth - 1 (the saturation level)."""
    return (1 << _camera(camera).bit_depth) - 1


def output_dtype(camera) -> np.dtype:
    """uint16 for bit depths up to 16, else uint32."""
    return np.dtype(np.uint16 if _camera(camera).bit_depth <= 16 else np.uint32)


def expected_adu(photons, camera) -> np.ndarray:
    """Mean digital number before rounding and clipping: ``gain * QE * photons + offset``.

    Parameters
    ----------
    photons : array_like
        Mean photons arriving at each pixel in one exposure (>= 0, finite).
    camera : Camera or Microscope
        Sensor parameters (``quantum_efficiency``, ``gain_adu_per_e``, ``offset_adu``).

    Returns
    -------
    ndarray of float64, same shape as ``photons``
        Not rounded and not clipped to the bit depth (see ``digitize``).
    """
    cam = _camera(camera)
    n = _photons(photons)
    return cam.gain_adu_per_e * cam.quantum_efficiency * n + cam.offset_adu


def digitize(adu, camera) -> np.ndarray:
    """Round to the nearest integer and clip to [0, 2^bit_depth - 1]; uint16 (uint32 above 16 bits)."""
    cam = _camera(camera)
    arr = np.asarray(adu, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("adu has non-finite value(s); expected finite numbers")
    return np.clip(np.rint(arr), 0, max_adu(cam)).astype(output_dtype(cam))


def apply_camera(photons, camera, *, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """One noisy camera frame from the mean photons per pixel.

    photons -> x QE -> Poisson shot noise (electrons) -> + Gaussian read noise (electrons)
    -> x gain (ADU/e) -> + offset -> round -> clip to [0, 2^bit_depth - 1] (saturation).

    Parameters
    ----------
    photons : array_like
        Mean photons arriving at each pixel during the exposure (>= 0, finite); any shape
        (an image (y, x) or a stack (t, y, x)).
    camera : Camera or Microscope
        Sensor parameters.
    rng : numpy.random.Generator, int or None
        Source of randomness; an int seeds a new Generator (reproducible), None draws fresh
        entropy.

    Returns
    -------
    ndarray of uint16 (uint32 for bit depths above 16), same shape as ``photons``

    Notes
    -----
    Mean and variance away from clipping: ``gain QE N + offset`` and
    ``gain^2 (QE N + read_noise_e^2) + 1/12``.  Model of EMVA 1288 (release 4.0), section 2.
    """
    cam = _camera(camera)
    n = _photons(photons)
    if not isinstance(rng, np.random.Generator):
        if rng is not None and (isinstance(rng, bool) or not isinstance(rng, (int, np.integer))):
            raise TypeError(f"rng = {rng!r} is invalid: expected a numpy Generator, an int seed or None")
        rng = np.random.default_rng(rng)
    electrons = rng.poisson(cam.quantum_efficiency * n).astype(np.float64)
    if cam.read_noise_e > 0:
        electrons += rng.normal(0.0, cam.read_noise_e, size=n.shape)
    return digitize(cam.gain_adu_per_e * electrons + cam.offset_adu, cam)
