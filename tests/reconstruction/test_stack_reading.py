"""Lazy reading of (t, Y, X) TIFF stacks (``reconstruction.omezarr.read_stack_lazily``): frames read at
their recorded data offsets (uncompressed pages), memory-mapped (a contiguous series) or through
tifffile (compressed pages) equal tifffile's own reading of the whole file, in either byte order."""

import numpy as np
import pytest
import tifffile

from reconstruction.omezarr import read_stack_lazily


@pytest.fixture
def frames():
    return np.random.default_rng(0).integers(0, 60000, (37, 19, 23), dtype=np.uint16)


def _page_by_page(path, frames, **kw):
    with tifffile.TiffWriter(path, byteorder=kw.pop("byteorder", "<")) as tw:
        for f in frames:
            tw.write(f, **kw)
    return path


@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_uncompressed_pages_are_read_at_their_offsets(tmp_path, frames, byteorder):
    view = read_stack_lazily(_page_by_page(tmp_path / "s.tif", frames, byteorder=byteorder))
    assert view.offsets is not None and view.shape == frames.shape and view.dtype == np.uint16
    np.testing.assert_array_equal(view[30:37], frames[30:37])
    np.testing.assert_array_equal(view[0:1], frames[0:1])
    assert view[36:36].shape == (0, 19, 23)
    assert view[5:7].dtype == np.uint16 and view[5:7].dtype.isnative


def test_compressed_pages_are_read_through_tifffile(tmp_path, frames):
    view = read_stack_lazily(_page_by_page(tmp_path / "z.tif", frames, compression="zlib"))
    assert view.offsets is None
    np.testing.assert_array_equal(view[10:14], frames[10:14])


def test_a_float_stack_written_whole_is_read_in_slices(tmp_path, frames):
    path = tmp_path / "w.tif"
    data = frames.astype(np.float32) / 7
    tifffile.imwrite(path, data)
    view = read_stack_lazily(path)
    np.testing.assert_array_equal(view[3:9], data[3:9])


def test_a_single_page_of_planes_is_memory_mapped(tmp_path, frames):
    path = tmp_path / "planes.tif"
    tifffile.imwrite(path, frames[:5], photometric="minisblack", planarconfig="separate")
    view = read_stack_lazily(path)
    assert not view.by_page and view.series_offset is not None
    np.testing.assert_array_equal(view[1:4], frames[1:4])
