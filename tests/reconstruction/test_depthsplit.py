"""Richardson-Lucy with the depths split over dask workers (``reconstruction.depthsplit``): on a
LocalCluster of 2 workers, a Fourier LFM frame's result equals ``richardson_lucy`` with the whole
operator in one process, but for the order of the sum over depths (float32); the same with a
background and read noise (the ratio's other branch) and with more groups than workers."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("distributed")

from optics import compute_psf  # noqa: E402
from optics.simulation import point_photon_image  # noqa: E402
from reconstruction.deconvolution import richardson_lucy  # noqa: E402
from reconstruction.depthsplit import depth_groups, depth_split_rl, sub_psf  # noqa: E402
from reconstruction.operator import LightFieldOperator  # noqa: E402


def _flfm():
    """The 3 x 3-lenslet Fourier LFM of ``benchmarks scale --depth-split`` on 121^2 px, 5 depths."""
    from benchmarks.scale import small_flfm

    return small_flfm(121).replace(volume={"z_min_um": -20, "z_max_um": 20, "z_step_um": 10})


@pytest.fixture(scope="module")
def frame():
    m = _flfm()
    psf = compute_psf(m, cache=False, progress=False)
    y = point_photon_image(m, [(3.1, -2.4, 7.3), (-6.0, 5.2, -12.6)], photons_per_point=2e4)
    return psf, np.random.default_rng(1).poisson(y).astype(np.float32)


def test_groups_are_contiguous_and_cover_the_depths():
    assert depth_groups(5, 2) == [(0, 2), (2, 5)]
    assert depth_groups(4, 4) == [(0, 1), (1, 2), (2, 3), (3, 4)]
    with pytest.raises(ValueError, match="groups = 6 is invalid"):
        depth_groups(5, 6)


def test_a_depth_section_is_a_psf_of_its_own(frame):
    psf, _ = frame
    part = sub_psf(psf, 1, 4)
    np.testing.assert_allclose(part.z_um, psf.z_um[1:4])
    assert part.microscope.volume_shape == (3, *psf.volume_shape[1:])
    assert part.kernels[0] is psf.kernels[1]


@pytest.mark.parametrize("groups,extra", [(None, {}), (3, {"background": 2.0, "read_noise": 1.5})])
def test_depth_split_equals_richardson_lucy(frame, client, groups, extra):
    """Relative L2 difference < 1e-5 of the volume (float32 sums in another order; measured ~1e-7)."""
    psf, y = frame
    ref = richardson_lucy(y, LightFieldOperator(psf, "cpu"), 6, progress=False, **extra)
    out = depth_split_rl(y, psf, 6, client=client, groups=groups, device="cpu", progress=False, **extra)
    assert out.shape == ref.shape and out.dtype == np.float32
    assert np.linalg.norm(out - ref) / np.linalg.norm(ref) < 1e-5


def test_bad_input_is_refused_before_any_work(frame, client):
    psf, y = frame
    with pytest.raises(ValueError, match="image has shape"):
        depth_split_rl(y[:-1], psf, 2, client=client)
    with pytest.raises(ValueError, match="iterations = -1 is invalid"):
        depth_split_rl(y, psf, -1, client=client)
    with pytest.raises(ValueError, match="read_noise"):
        depth_split_rl(y, psf, 2, client=client, read_noise=-1)
    with pytest.raises(ValueError, match="groups = 9 is invalid"):
        depth_split_rl(y, psf, 2, workers=2, groups=9)  # before a cluster is started
    with pytest.raises(ValueError, match="needs a cluster"):
        depth_split_rl(y, psf, 2)


def test_command_line_depth_groups(frame, tmp_path, capsys):
    """``python -m reconstruction CONFIG FRAME.tif --out VOL.tif --workers 2 --depth-groups 2``: the volume
    of ``richardson_lucy`` (to 1e-5); without a cluster, with a stack or a checkpoint it is refused."""
    import tifffile

    from optics.config import save_config
    from reconstruction.__main__ import main

    psf, y = frame
    cfg = save_config(psf.microscope, tmp_path / "flfm.toml")
    tif = tmp_path / "frame.tif"
    tifffile.imwrite(tif, y)
    out = tmp_path / "vol.tif"
    args = [str(cfg), str(tif), "--out", str(out), "--iterations", "3", "--no-progress", "--linear"]
    assert main(args + ["--workers", "2", "--depth-groups", "2"]) == 0
    ref = richardson_lucy(y, LightFieldOperator(psf, "cpu"), 3, progress=False)
    vol = tifffile.imread(out)
    assert np.linalg.norm(vol - ref) / np.linalg.norm(ref) < 1e-5
    assert main(args + ["--depth-groups", "2", "--overwrite"]) == 2
    assert "--depth-groups needs a cluster" in capsys.readouterr().err
    assert main(args + ["--workers", "2", "--depth-groups", "2", "--overwrite", "--checkpoint", str(tmp_path / "c.npz")]) == 2
    assert "--checkpoint is not available with --depth-groups" in capsys.readouterr().err
