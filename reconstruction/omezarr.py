"""OME-Zarr (NGFF 0.5 on Zarr v3) for frame stacks and volume series.

An image is a Zarr v3 group whose attributes hold ``{"ome": {"version": "0.5", "multiscales":
[...]}}`` (https://ngff.openmicroscopy.org/0.5/): the axes (name, type, unit) and, for the one
resolution level ``"0"``, a scale transformation (µm per voxel along space, seconds per frame along
time when known).  lfmsim adds ``{"lfmsim": {...}}``: the microscope config (``Microscope.to_dict``),
what the array holds and, for a reconstruction in progress, the run's identity and an array
``"done"`` of one flag per time point (chunks of one, so each task writes its own chunk).

Volumes are chunked one time point per chunk, (1, nz, Y, X): the task that reconstructs frame t is
the only writer of chunk t (concurrent writers of one chunk or shard lose data).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

__all__ = ["is_zarr_path", "create_image", "open_image", "ome_metadata", "read_stack_lazily", "DONE"]

#: Name of the per-time-point completion flags in an lfmsim run's group.
DONE = "done"
_UNITS = {"space": "micrometer", "time": "second"}


def is_zarr_path(path) -> bool:
    """A path that names a Zarr store: ends in ``.zarr`` (e.g. ``vols.ome.zarr``)."""
    return str(path).rstrip("/\\").lower().endswith(".zarr")


def _zarr():
    try:
        import zarr
    except ImportError:  # the "distributed" extra
        raise ImportError("OME-Zarr needs zarr >= 3: pip install 'lfmsim[distributed]'") from None
    if int(zarr.__version__.split(".")[0]) < 3:
        raise ImportError(f"OME-Zarr needs zarr >= 3 (NGFF 0.5 is Zarr v3); found {zarr.__version__}")
    return zarr


def ome_metadata(axes: str, scale, name: str = "") -> dict:
    """The ``"ome"`` attribute of an NGFF 0.5 image with one resolution level ``"0"``.

    ``axes``: letters of t, c, z, y, x in order; ``scale``: one number per axis (µm, or seconds for
    t; 1 where unknown)."""
    kinds = {"t": "time", "c": "channel", "z": "space", "y": "space", "x": "space"}
    ax = []
    for a in axes.lower():
        if a not in kinds:
            raise ValueError(f"axes = {axes!r} is invalid: letters of 'tczyx' expected")
        entry = {"name": a, "type": kinds[a]}
        if kinds[a] in _UNITS:
            entry["unit"] = _UNITS[kinds[a]]
        ax.append(entry)
    scale = [float(s) for s in scale]
    if len(scale) != len(ax):
        raise ValueError(f"scale has {len(scale)} entries for {len(ax)} axes {axes!r}")
    return {"version": "0.5", "multiscales": [{
        "name": name, "axes": ax,
        "datasets": [{"path": "0", "coordinateTransformations": [{"type": "scale", "scale": scale}]}],
    }]}


def create_image(path, shape, *, axes: str, scale, chunks, dtype="float32", attrs: dict | None = None,
                 name: str = "", done_flags: bool = False, overwrite: bool = False):
    """Create an OME-Zarr image (group + array ``"0"``; optionally the ``"done"`` flags); returns the group."""
    zarr = _zarr()
    p = Path(path)
    if p.exists() and not overwrite:
        raise FileExistsError(f"{str(p)!r} exists; pass overwrite to replace it")
    group = zarr.open_group(store=str(p), mode="w", zarr_format=3)
    group.create_array("0", shape=tuple(int(s) for s in shape), chunks=tuple(int(c) for c in chunks),
                       dtype=dtype, fill_value=0)
    if done_flags:
        group.create_array(DONE, shape=(int(shape[0]),), chunks=(1,), dtype="uint8", fill_value=0)
    meta = {"ome": ome_metadata(axes, scale, name)}
    if attrs:
        meta["lfmsim"] = json.loads(json.dumps(attrs))
    group.attrs.update(meta)
    return group


def open_image(path, mode: str = "r"):
    """(group, array "0", axes letters, scale) of an OME-Zarr image; clear errors otherwise."""
    zarr = _zarr()
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"OME-Zarr {str(p)!r} does not exist")
    try:
        group = zarr.open_group(store=str(p), mode=mode, zarr_format=3)
        ome = dict(group.attrs)["ome"]
        ms = ome["multiscales"][0]
        axes = "".join(a["name"] for a in ms["axes"])
        ds = ms["datasets"][0]
        scale = next(t["scale"] for t in ds["coordinateTransformations"] if t["type"] == "scale")
        arr = group[ds["path"]]
    except (KeyError, StopIteration, IndexError, TypeError) as e:
        raise ValueError(f"{str(p)!r} is not an NGFF 0.5 OME-Zarr image (missing {e})") from None
    except Exception as e:  # not a zarr v3 group
        raise ValueError(f"{str(p)!r} cannot be opened as OME-Zarr (NGFF 0.5, Zarr v3): {e}") from None
    return group, arr, axes, scale


class _TiffFrames:
    """Frames of a (t, Y, X) TIFF read one page at a time (the file is not loaded whole): the pages,
    when they are all 2-D frames of one shape (a stack written page by page, or an ImageJ
    hyperstack), else the first series.

    Uncompressed pages stored contiguously (what cameras and ``tifffile`` write) are read at their
    data offsets, recorded once when the view is made: finding page i through the file's chain of
    directories reads i directories (39 ms for page 5000 of a 225^2 stack, as long as the
    reconstruction of a small frame), so a long series would cost a time quadratic in its length.
    A contiguous series that is not page-per-frame is memory-mapped; anything else (compressed
    pages) is read through ``tifffile``.
    """

    def __init__(self, path):
        import tifffile

        self.path = str(path)
        self.offsets = self.series_offset = None
        with tifffile.TiffFile(self.path) as tf:
            pages = list(tf.pages)
            shapes = {tuple(p.shape) for p in pages}
            self.by_page = len(shapes) == 1 and len(next(iter(shapes))) == 2
            self.byteorder = tf.byteorder
            if self.by_page:
                self.shape = (len(pages), *next(iter(shapes)))
                self.dtype = np.dtype(pages[0].dtype)
                if all(p.is_contiguous and p.predictor == 1 and p.fillorder == 1 and np.dtype(p.dtype) == self.dtype
                       for p in pages):
                    self.offsets = np.array([p.dataoffsets[0] for p in pages], dtype=np.int64)
            else:
                series = tf.series[0]
                self.shape = tuple(series.shape) if len(series.shape) > 2 else (1, *series.shape)
                self.dtype = np.dtype(series.dtype)
                self.series_offset = series.dataoffset  # None unless contiguous and uncompressed

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, sl: slice) -> np.ndarray:
        import tifffile

        start, stop, _ = sl.indices(self.shape[0])
        stored = self.dtype.newbyteorder(self.byteorder)
        if self.offsets is not None:
            count = self.shape[1] * self.shape[2]
            out = np.empty((max(0, stop - start), *self.shape[1:]), dtype=self.dtype)
            with open(self.path, "rb") as fh:
                for j, i in enumerate(range(start, stop)):
                    fh.seek(int(self.offsets[i]))
                    out[j] = np.fromfile(fh, dtype=stored, count=count).reshape(self.shape[1:])
            return out
        if self.series_offset is not None:
            mm = np.memmap(self.path, dtype=stored, mode="r", offset=self.series_offset, shape=self.shape)
            return np.array(mm[start:stop], dtype=self.dtype)
        with tifffile.TiffFile(self.path) as tf:
            if self.by_page:
                return np.stack([tf.pages[i].asarray() for i in range(start, stop)])
            return tf.series[0].asarray().reshape(self.shape)[start:stop]


def read_stack_lazily(path):
    """An indexable (t, Y, X) view of a TIFF or OME-Zarr stack: ``obj.shape``, ``obj.dtype``,
    ``obj[t0:t1]`` reads those frames only."""
    p = Path(path)
    if is_zarr_path(p):
        _, arr, axes, _ = open_image(p)
        if arr.ndim == 2:
            raise ValueError(f"{str(p)!r} holds one frame {arr.shape}; expected a (t, Y, X) stack")
        if arr.ndim != 3:
            raise ValueError(f"{str(p)!r} has axes {axes!r}, shape {arr.shape}; expected (t, y, x)")
        return arr
    if not p.is_file():
        raise FileNotFoundError(f"image file {str(p)!r} does not exist")
    return _TiffFrames(p)
