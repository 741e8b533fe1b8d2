"""The scanning LFM's operators: all K^2 scan frames of one volume, with exact adjoints.

Frame i of a scanning LFM (kind "slfm", ``optics.scan``) is the standard LFM frame of the sample
translated by the scan step ``optics.scan.scan_shifts_voxels(m)[i]`` (whole voxels).  Two exact
operators compute it:

* ``ScannedOperator`` (used by ``reconstruct``): the frames in the phase-space layout
  (``optics.scan.phase_space_psf``) are one periodic light-field projection on K L virtual lenslets
  of pitch d / K with s / K voxel phases; the frames are a permutation of that image.  It costs
  about one LFM projection of the same voxels, not K^2 of them.
* ``ShiftedScanOperator`` (the reference): y_i = H S_i x and Aᵀ y = sum_i S_iᵀ Hᵀ y_i, with H the
  LFM operator and S_i a zero-filled shift (its adjoint the opposite shift), K^2 projections.

The two agree wherever no voxel is shifted across the volume's edge (the reference drops what S_i
moves out of the grid; the phase-space operator images every voxel in every frame).  Richardson-Lucy
over either is the joint RL of all scan frames (Wu et al., Cell 184:3318, 2021 reconstruct the
realigned phase space view by view instead).
"""

from __future__ import annotations

import numpy as np

from optics.scan import (
    frames_to_phase_image,
    phase_image_to_frames,
    phase_space_psf,
    scan_shifts_voxels,
    shift_volume,
)

from .operator import LightFieldOperator

__all__ = ["ScannedOperator", "ShiftedScanOperator", "make_operator", "rolling_windows", "ROLLING_BASE"]

#: Weight base of the rolling scan's sliding window: frame i counts ROLLING_BASE^|i - t| for time t
#: (Wu et al. 2021, DAOSLIMIT ``time_weighted.m``: 0.9).
ROLLING_BASE = 0.9


def _split(arr, expected: tuple, name: str):
    if tuple(arr.shape) == expected:
        return arr[None], False
    if arr.ndim == len(expected) + 1 and tuple(arr.shape[1:]) == expected:
        return arr, True
    raise ValueError(f"{name} has shape {tuple(arr.shape)}; expected {expected} or (t, *{expected}) for a time series")


class _ScanFrames:
    """What both scanned operators share: the attributes of their base operator and its spectra."""

    def _adopt(self, base, m, frames: int) -> None:
        self.base, self.microscope = base, m
        for name in ("device", "xp", "dtype", "cdtype", "volume_shape", "z_um", "voxel_um"):
            setattr(self, name, getattr(base, name))
        self.frame_shape = tuple(m.image_shape)
        self.image_shape = (int(frames), *self.frame_shape)

    @property
    def nbytes(self) -> int:
        return self.base.nbytes

    def cost(self):
        """The base operator's ``ProjectionCost``: one projection of all K^2 frames for
        ``ScannedOperator``, one frame (a projection costs K^2 of them) for ``ShiftedScanOperator``."""
        return self.base.cost()


class ScannedOperator(_ScanFrames):
    """``forward``: volume (nz, Y', X') -> scan frames (K^2, Y, X) in acquisition order; ``adjoint``:
    its exact transpose; through the phase-space kernels (module docstring).

    Parameters
    ----------
    psf : optics.psfdata.LightFieldPSF
        The kernels of an "slfm" microscope (``optics.compute_psf``).
    device, dtype, **kwargs
        As ``LightFieldOperator`` (which ``base`` is, on the virtual grid).

    Attributes as ``LightFieldOperator`` (``microscope``, ``device``, ``xp``, ``dtype``,
    ``volume_shape``, ``z_um``, ``voxel_um``, ``nbytes``); ``image_shape`` is (K^2, Y, X).  Both
    projections accept a leading time axis: (t, nz, Y', X') <-> (t, K^2, Y, X).
    """

    def __init__(self, psf, device: str = "auto", dtype=np.float32, **kwargs):
        m = psf.microscope
        if m.kind != "slfm":
            raise ValueError(f"microscope.kind = {m.kind!r} does not scan: a ScannedOperator needs kind 'slfm'")
        self.steps, self.nnum, self.order = m.scan.steps, m.pixels_per_lenslet, m.scan.order
        self._adopt(LightFieldOperator(phase_space_psf(psf), device, dtype, **kwargs), m, self.steps**2)

    def __repr__(self) -> str:
        return f"ScannedOperator({self.steps}x{self.steps} scan, phase-space base={self.base!r})"

    def forward(self, volume):
        """Scan frames of a volume: (nz, Y', X') -> (K^2, Y, X) (or with a time axis)."""
        img = self.base.forward(volume)
        return phase_image_to_frames(img, self.steps, self.nnum, self.order, self.xp)

    def adjoint(self, image):
        """The transpose: scan frames (K^2, Y, X) -> volume (nz, Y', X') (or with a time axis)."""
        y, batched = _split(image, self.image_shape, "image")
        ps = frames_to_phase_image(y.astype(self.dtype, copy=False), self.steps, self.nnum, self.order, self.xp)
        out = self.base.adjoint(ps)
        return out if batched else out[0]

    def ones_adjoint(self):
        """Aᵀ1, RL's normaliser, shape ``volume_shape``."""
        return self.base.ones_adjoint()


def make_operator(psf, device: str = "auto", dtype=np.float32, **kwargs):
    """The operator of ``psf``'s microscope: ``ScannedOperator`` for "slfm", else ``LightFieldOperator``."""
    cls = ScannedOperator if psf.microscope.kind == "slfm" else LightFieldOperator
    return cls(psf, device, dtype, **kwargs)


class ShiftedScanOperator(_ScanFrames):
    """The reference scanned operator: ``forward`` y_i = H S_i x, ``adjoint`` sum_i S_iᵀ Hᵀ y_i.

    Parameters
    ----------
    base : LightFieldOperator
        The standard LFM operator of an "slfm" microscope's kernels (``optics.compute_psf``).

    Attributes as ``LightFieldOperator`` (``microscope``, ``device``, ``xp``, ``dtype``,
    ``volume_shape``, ``z_um``, ``voxel_um``, ``nbytes``); ``image_shape`` is (K^2, Y, X) and
    ``shifts`` the (K^2, 2) voxel shifts in acquisition order.  Both projections accept a leading
    time axis: (t, nz, Y', X') <-> (t, K^2, Y, X).
    """

    def __init__(self, base: LightFieldOperator):
        if not isinstance(base, LightFieldOperator):
            raise TypeError(f"base = {type(base).__name__} is invalid: expected a LightFieldOperator")
        m = base.microscope
        if m.kind != "slfm":
            raise ValueError(f"microscope.kind = {m.kind!r} does not scan: a ShiftedScanOperator needs kind 'slfm'")
        self.shifts = scan_shifts_voxels(m)
        self._adopt(base, m, len(self.shifts))

    def __repr__(self) -> str:
        return f"ShiftedScanOperator({len(self.shifts)} scan frames, base={self.base!r})"

    def forward(self, volume):
        """Scan frames ``y_i = H S_i x`` of a volume: (nz, Y', X') -> (K^2, Y, X) (or with a time axis)."""
        x, batched = _split(volume, self.volume_shape, "volume")
        x = x.astype(self.dtype, copy=False)
        t, k2 = x.shape[0], len(self.shifts)
        moved = self.xp.empty((t, k2, *self.volume_shape), dtype=self.dtype)
        for i, (dy, dx) in enumerate(self.shifts):
            shift_volume(x, dy, dx, out=moved[:, i])
        img = self.base.forward(moved.reshape(t * k2, *self.volume_shape)).reshape(t, *self.image_shape)
        return img if batched else img[0]

    def adjoint(self, image):
        """``sum_i S_iᵀ Hᵀ y_i``: scan frames (K^2, Y, X) -> volume (nz, Y', X') (or with a time axis)."""
        y, batched = _split(image, self.image_shape, "image")
        t, k2 = y.shape[0], len(self.shifts)
        back = self.base.adjoint(y.astype(self.dtype, copy=False).reshape(t * k2, *self.frame_shape))
        back = back.reshape(t, k2, *self.volume_shape)
        out = self.xp.zeros((t, *self.volume_shape), dtype=self.dtype)
        tmp = self.xp.empty_like(out)
        for i, (dy, dx) in enumerate(self.shifts):
            out += shift_volume(back[:, i], -dy, -dx, out=tmp)
        return out if batched else out[0]

    def ones_adjoint(self):
        """Aᵀ1, RL's normaliser, shape ``volume_shape``."""
        return self.adjoint(self.xp.ones(self.image_shape, dtype=self.dtype))



def rolling_windows(frames, steps: int, t0: int = 0, t1: int | None = None, base: float = ROLLING_BASE):
    """Scan stacks and weights of a rolling scan: camera frame i (of ``frames``, (T, Y, X)) was taken at
    scan position i mod K^2 (acquisition order), so any K^2 consecutive frames hold every position once.

    For each output time t in t0..t1-1: the K^2 consecutive frames centred on t (shifted inward at the
    ends of the series), placed at their scan positions, with weights base^|i - t| (the sliding-window
    weighting of Wu et al. 2021: a moving sample is seen mostly as it was at t; base 1 weights the
    window evenly, base -> 0 keeps frame t only, the others counting almost nothing).  Returns
    (stacks (t1-t0, K^2, Y, X), weights (t1-t0, K^2, 1, 1)) for ``richardson_lucy(..., weights=...)``.
    """
    k2 = int(steps) ** 2
    n = int(frames.shape[0])
    if frames.ndim != 3 or n < k2:
        raise ValueError(f"a rolling scan needs a (T, Y, X) series of T >= K^2 = {k2} frames; got shape {tuple(frames.shape)}")
    if not (isinstance(base, (int, float)) and 0 < base <= 1):
        raise ValueError(f"rolling weight base = {base!r} is invalid: expected a number in (0, 1]")
    t1 = n if t1 is None else int(t1)
    half = (k2 - 1) // 2
    stacks = np.empty((t1 - t0, k2, *frames.shape[1:]), dtype=frames.dtype)
    weights = np.empty((t1 - t0, k2, 1, 1), dtype=np.float32)
    for j, t in enumerate(range(t0, t1)):
        first = min(max(t - half, 0), n - k2)
        for i in range(first, first + k2):
            stacks[j, i % k2] = frames[i]
            weights[j, i % k2] = float(base) ** abs(i - t)
    return stacks, weights
