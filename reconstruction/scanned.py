"""The scanning LFM's operator: all K^2 scan frames of one volume, with its exact adjoint.

Frame i of a scanning LFM (kind "slfm", ``optics.scan``) is the standard LFM frame of the sample
translated by the scan step ``optics.scan.scan_shifts_voxels(m)[i]`` (whole voxels):

    y_i = H S_i x,        Aᵀ y = sum_i S_iᵀ Hᵀ y_i,

with H the ``LightFieldOperator`` of the same kernels and S_i a zero-filled shift, whose adjoint is
the opposite shift.  The K^2 shifted copies of a volume go through H as one batch, so the kernel
spectra are read once per projection.  Richardson-Lucy over this operator is the joint RL of all
scan frames (the exact-operator reconstruction; Wu et al., Cell 184:3318, 2021 reconstruct the
realigned phase space view by view instead).
"""

from __future__ import annotations

from optics.scan import scan_shifts_voxels, shift_volume

from .operator import LightFieldOperator

__all__ = ["ScannedOperator", "as_scanned"]


class ScannedOperator:
    """``forward``: volume (nz, Y', X') -> scan frames (K^2, Y, X); ``adjoint``: its exact transpose.

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
            raise ValueError(f"microscope.kind = {m.kind!r} does not scan: a ScannedOperator needs kind 'slfm'")
        self.base = base
        self.microscope = m
        self.shifts = scan_shifts_voxels(m)
        for name in ("device", "xp", "dtype", "cdtype", "volume_shape", "z_um", "voxel_um"):
            setattr(self, name, getattr(base, name))
        self.frame_shape = base.image_shape
        self.image_shape = (len(self.shifts), *base.image_shape)

    @property
    def nbytes(self) -> int:
        return self.base.nbytes

    def cost(self):
        """The base operator's ``ProjectionCost`` (per scan frame; a projection costs K^2 of them)."""
        return self.base.cost()

    def __repr__(self) -> str:
        return f"ScannedOperator({len(self.shifts)} scan frames, base={self.base!r})"

    def _split(self, arr, expected: tuple, name: str):
        if tuple(arr.shape) == expected:
            return arr[None], False
        if arr.ndim == len(expected) + 1 and tuple(arr.shape[1:]) == expected:
            return arr, True
        raise ValueError(f"{name} has shape {tuple(arr.shape)}; expected {expected} or (t, *{expected}) for a time series")

    def forward(self, volume):
        """Scan frames ``y_i = H S_i x`` of a volume: (nz, Y', X') -> (K^2, Y, X) (or with a time axis)."""
        x, batched = self._split(volume, self.volume_shape, "volume")
        x = x.astype(self.dtype, copy=False)
        t, k2 = x.shape[0], len(self.shifts)
        moved = self.xp.empty((t, k2, *self.volume_shape), dtype=self.dtype)
        for i, (dy, dx) in enumerate(self.shifts):
            shift_volume(x, dy, dx, out=moved[:, i])
        img = self.base.forward(moved.reshape(t * k2, *self.volume_shape)).reshape(t, *self.image_shape)
        return img if batched else img[0]

    def adjoint(self, image):
        """``sum_i S_iᵀ Hᵀ y_i``: scan frames (K^2, Y, X) -> volume (nz, Y', X') (or with a time axis)."""
        y, batched = self._split(image, self.image_shape, "image")
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


def as_scanned(op, microscope):
    """``op`` wrapped in a ``ScannedOperator`` for a scanning LFM, else ``op`` itself."""
    return ScannedOperator(op) if microscope.kind == "slfm" else op

