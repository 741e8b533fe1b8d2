"""Safe file output: atomic writes (temp file + rename) and TIFFs with axes and physical voxel sizes.

Every file lfmsim writes goes through here, so a crash never leaves a half-written file, and an
existing file is only replaced when the caller asks (``overwrite=True``).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

__all__ = ["atomic_write", "atomic_write_bytes", "check_writable", "write_tiff", "read_tiff"]


def check_writable(path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Raise FileExistsError if ``path`` exists and ``overwrite`` is False; check the folder exists."""
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"output {str(p)!r} exists; pass overwrite=True (--overwrite) to replace it")
    if not p.parent.exists():
        raise FileNotFoundError(f"output folder {str(p.parent)!r} does not exist")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Call ``writer(tmp_path)`` then rename the temp file onto ``path`` (same folder, atomic)."""
    p = check_writable(path, overwrite=overwrite)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp" + p.suffix, dir=p.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes private files; give the usual mode
        os.replace(tmp_path, p)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return p


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda t: t.write_bytes(data), overwrite=overwrite)


def write_tiff(
    path: str | os.PathLike,
    array: np.ndarray,
    *,
    axes: str,
    voxel_um: tuple[float, ...] | None = None,
    overwrite: bool = False,
    metadata: dict | None = None,
) -> Path:
    """Write an ImageJ-compatible TIFF with ``axes`` (e.g. "ZYX", "YX", "TYX") and voxel sizes.

    ``voxel_um`` gives the physical size of each axis in ``axes`` order (µm; None to omit), so
    Fiji and napari open the file at the right scale.
    """
    import tifffile

    arr = np.asarray(array)
    if arr.ndim != len(axes):
        raise ValueError(f"axes = {axes!r} has {len(axes)} letters but the array has {arr.ndim} dimensions")
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    md: dict = {"axes": axes, "unit": "um"}
    if metadata:
        md.update(metadata)
    kwargs: dict = {}
    if voxel_um is not None:
        sizes = dict(zip(axes, voxel_um, strict=True))
        if "Z" in sizes and sizes["Z"] is not None:
            md["spacing"] = float(sizes["Z"])
        if "X" in sizes and "Y" in sizes:
            kwargs["resolution"] = (1.0 / float(sizes["X"]), 1.0 / float(sizes["Y"]))
    return atomic_write(
        path, lambda t: tifffile.imwrite(t, arr, imagej=True, metadata=md, **kwargs), overwrite=overwrite
    )


def read_tiff(path: str | os.PathLike) -> np.ndarray:
    """Read a TIFF into a NumPy array; clear error if the file is missing or unreadable."""
    import tifffile

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"image file {str(p)!r} does not exist")
    try:
        return tifffile.imread(p)
    except Exception as e:
        raise ValueError(f"image file {str(p)!r} cannot be read as TIFF: {e}") from e
