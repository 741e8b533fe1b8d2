"""reconstruct() and ``python -m reconstruction``: input validation, units, CLI, bead recovery."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from recon_helpers import synthetic_psf

import optics
from optics.io import read_tiff, write_tiff
from reconstruction.__main__ import main
from reconstruction.api import reconstruct, validate_image


def _small(s=3, z=(-10, 10, 10), shape=(75, 75), **changes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optics.presets.get(
            "lfm-20x-0.5w", camera={"shape": list(shape)},
            volume={"z_min_um": z[0], "z_max_um": z[1], "z_step_um": z[2], "voxels_per_lenslet": s}, **changes,
        )


@pytest.fixture
def fake_psf(monkeypatch, rng):
    """Replace optics.compute_psf by synthetic kernels (the CLI tests exercise our code, not optics')."""
    calls = []

    def fake(m, cache=True, progress=True, **kw):
        calls.append(m)
        return synthetic_psf(m, [1] * len(m.z_um), rng)

    monkeypatch.setattr(optics, "compute_psf", fake, raising=False)
    return calls


def test_validate_shapes_and_units():
    m = _small(shape=(80, 77))  # 5 x 5 lenslets of 15 px = 75 x 75 inside an 80 x 77 sensor
    assert m.image_shape == (75, 75)
    img = np.arange(80 * 77, dtype=np.float32).reshape(80, 77)
    out, stack = validate_image(m, img)
    assert not stack and out.shape == (75, 75)
    np.testing.assert_array_equal(out, img[2:77, 1:76])  # centred crop
    out, stack = validate_image(m, np.stack([img, img]))
    assert stack and out.shape == (2, 75, 75)
    raw = np.full((75, 75), 140, np.uint16)
    cam = m.camera
    expect = (140 - cam.offset_adu) / (cam.gain_adu_per_e * cam.quantum_efficiency)
    np.testing.assert_allclose(validate_image(m, raw)[0], expect, rtol=1e-6)  # integers -> raw ADU
    np.testing.assert_allclose(validate_image(m, raw, raw=False)[0], 140)
    dark = np.full((75, 75), 90, np.uint16)
    assert (validate_image(m, dark)[0] == 0).all()  # below offset: clipped


@pytest.mark.parametrize("bad,match", [
    (np.ones((74, 75)), "image has shape"),
    (np.ones((2, 2, 75, 75)), "image has shape"),
    (np.full((75, 75), np.nan), "NaN"),
    (-np.ones((75, 75)), "negative"),
    (np.ones((75, 75), complex), "dtype"),
])
def test_validate_rejects(bad, match):
    with pytest.raises(ValueError, match=match):
        validate_image(_small(), bad)


def test_expect_frame_or_stack():
    m = _small()
    with pytest.raises(ValueError, match="single frame"):
        validate_image(m, np.ones((3, 75, 75)), expect="frame")
    with pytest.raises(ValueError, match="stack"):
        validate_image(m, np.ones((75, 75)), expect="stack")


def test_reconstruct_with_given_psf(rng):
    m = _small()
    psf = synthetic_psf(m, [1, 1, 1], rng)
    vol = reconstruct(m, np.ones((75, 75), np.float32), iterations=2, device="cpu", psf=psf, progress=False)
    assert vol.shape == m.volume_shape and vol.dtype == np.float32
    vols = reconstruct(m, np.ones((2, 75, 75), np.float32), iterations=2, device="cpu", psf=psf, progress=False)
    assert vols.shape == (2, *m.volume_shape)
    batched = reconstruct(m, np.ones((3, 75, 75), np.float32), iterations=2, device="cpu", psf=psf, progress=False,
                          frames_per_batch=2)
    np.testing.assert_allclose(batched[:2], vols, rtol=1e-5)
    with pytest.raises(ValueError, match="frames_per_batch"):
        reconstruct(m, np.ones((2, 75, 75), np.float32), psf=psf, frames_per_batch=0)
    with pytest.raises(ValueError, match="another microscope"):
        reconstruct(_small(s=5), np.ones((75, 75), np.float32), psf=psf, progress=False)
    with pytest.raises(ValueError, match="filter"):
        reconstruct(m, np.ones((75, 75), np.float32), filter="median", psf=psf)


def test_cli_writes_volume(tmp_path, fake_psf):
    m = _small()
    cfg = tmp_path / "m.toml"
    optics.save_config(m, cfg)
    frame = tmp_path / "f.tif"
    write_tiff(frame, (np.random.default_rng(0).random((75, 75)) * 50 + 100).astype(np.uint16), axes="YX")
    out = tmp_path / "v.tif"
    assert main([str(cfg), str(frame), "--out", str(out), "--iterations", "2", "--device", "cpu",
                 "--no-progress"]) == 0
    vol = read_tiff(out)
    assert vol.shape == m.volume_shape and vol.dtype == np.float32
    # existing output: refused without --overwrite, replaced with it
    assert main([str(cfg), str(frame), "--out", str(out), "--no-progress"]) == 2
    assert main([str(cfg), str(frame), "--out", str(out), "--iterations", "1", "--overwrite", "--device", "cpu",
                 "--no-progress", "--filter", "lanczos"]) == 0
    stack = tmp_path / "s.tif"
    write_tiff(stack, np.ones((2, 75, 75), np.float32), axes="TYX")
    out2 = tmp_path / "v2.tif"
    assert main([str(cfg), str(stack), "--out", str(out2), "--iterations", "1", "--device", "cpu",
                 "--no-progress"]) == 0
    assert read_tiff(out2).shape == (2, *m.volume_shape)


@pytest.mark.parametrize("case", ["shape", "nan", "negative", "missing", "unreadable", "stack-as-frame",
                                  "bad-config", "iterations"])
def test_cli_bad_input_exits_2_and_writes_nothing(case, tmp_path, fake_psf, capsys):
    m = _small()
    cfg = tmp_path / "m.toml"
    optics.save_config(m, cfg)
    frame = tmp_path / "f.tif"
    data = {"shape": np.ones((60, 75), np.float32), "nan": np.full((75, 75), np.nan, np.float32),
            "negative": -np.ones((75, 75), np.float32), "stack-as-frame": np.ones((2, 75, 75), np.float32)}
    arr = data.get(case, np.ones((75, 75), np.float32))
    write_tiff(frame, arr, axes="TYX" if arr.ndim == 3 else "YX")
    args = [str(cfg), str(frame)]
    if case == "missing":
        args[1] = str(tmp_path / "nope.tif")
    if case == "unreadable":
        frame.write_bytes(b"not a tiff")
    if case == "bad-config":
        args[0] = "no-such-preset"
    out = tmp_path / "v.tif"
    extra = ["--frame"] if case == "stack-as-frame" else []
    extra += ["--iterations", "-1"] if case == "iterations" else []
    assert main([*args, "--out", str(out), "--no-progress", *extra]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    assert not out.exists() and not fake_psf
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".v.tif")]


def test_cli_gpu_without_gpu_is_an_error(tmp_path, fake_psf, capsys, monkeypatch):
    from reconstruction import backend

    monkeypatch.setattr(backend, "gpu_available", lambda: False)
    frame = tmp_path / "f.tif"
    write_tiff(frame, np.ones((75, 75), np.float32), axes="YX")
    assert main(["lfm-20x-0.5w", str(frame), "--out", str(tmp_path / "v.tif"), "--device", "gpu"]) == 2
    assert "error:" in capsys.readouterr().err


def test_beads_recovered_at_their_depths():
    """Simulate with a finer PSF model (oversampling 5 vs 3) and camera noise; each bead is found
    at its depth (negative ones included) and within one voxel laterally."""
    pytest.importorskip("optics.lfpsf")
    from optics import phantoms
    from optics.simulation import simulate

    m = _small(s=3, z=(-30, 30, 15), shape=(135, 135))  # 9 x 9 lenslets, 5 depths
    m_sim = m.replace(simulation={"oversampling": 5})
    xs, ys = phantoms.voxel_centres_um(m, "x"), phantoms.voxel_centres_um(m, "y")
    truth = [(4, 5, -30.0), (21, 6, -15.0), (7, 20, 15.0), (20, 21, 30.0)]  # (ix, iy, z)
    pos = [(xs[ix], ys[iy], z) for ix, iy, z in truth]
    vol = phantoms.beads(m_sim, pos, brightness=1.0)
    frame = simulate(m_sim, vol, photons_per_voxel=20000, seed=3, progress=False)
    rec = reconstruct(m, frame, iterations=10, device="cpu", progress=False)
    z = m.z_um
    for ix, iy, zt in truth:
        win = rec[:, max(iy - 4, 0): iy + 5, max(ix - 4, 0): ix + 5]
        kz, ky, kx = np.unravel_index(np.argmax(win), win.shape)
        assert z[kz] == zt, f"bead at z={zt} found at z={z[kz]}"
        assert abs(ky + max(iy - 4, 0) - iy) <= 1 and abs(kx + max(ix - 4, 0) - ix) <= 1


def test_validate_linear_clips_roundoff_and_refuses_negatives(small_op32, roundoff_projection):
    """Linear mode (raw=False) shares richardson_lucy's rule: FFT round-off negatives of a forward
    projection are clipped to 0; a clearly negative pixel is refused with the count and the min."""
    m = small_op32.microscope
    y = roundoff_projection
    out, stack = validate_image(m, y, raw=False)
    assert not stack and out.dtype == np.float32 and float(out.min()) == 0.0
    np.testing.assert_array_equal(out, np.maximum(y, 0))
    assert (y < 0).any()  # the input is untouched
    bad = np.maximum(y, 0)
    bad[3, 4] = -0.25 * bad.max()
    with pytest.raises(ValueError, match=r"1 pixel\(s\) below the round-off bound.*min -") as err:
        validate_image(m, bad, raw=False)
    assert f"min {float(bad[3, 4]):.6g}" in str(err.value) and "raw=True" in str(err.value)


def test_raw_frames_keep_read_noise_negatives_and_are_unbiased(rng):
    """A dim raw frame (mean 1 photon per pixel, read noise 3 e-): reconstruct() keeps the offset-
    subtracted negatives and gives RL the camera's read noise (raw_read_noise), so the light it puts
    in the volume matches the frame's (within 3%; measured +1.3%), where clipping at 0 first
    (read_noise=0, the old behaviour) adds the read noise's positive half (measured +112%)."""
    from optics.camera import apply_camera
    from reconstruction.api import raw_read_noise
    from reconstruction.scanned import make_operator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = optics.presets.get("lfm-20x-0.5w", camera={"shape": [75, 75], "read_noise_e": 3.0, "gain_adu_per_e": 2.0,
                                                       "offset_adu": 100.0, "quantum_efficiency": 0.8},
                               volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})
    psf = synthetic_psf(m, [1] * len(m.z_um), rng)
    op = make_operator(psf, "cpu", np.float32, progress=False)
    x = rng.uniform(0, 1, m.volume_shape).astype(np.float32)
    photons = op.forward(x)
    photons *= 1.0 / photons.mean()
    frames = np.stack([apply_camera(photons, m, rng=int(k)) for k in range(8)])
    assert raw_read_noise(m) == pytest.approx(3.0 / np.sqrt(0.8))
    flux = {}
    for rn in (None, 0):
        vol = reconstruct(m, frames, psf=psf, iterations=10, progress=False, read_noise=rn, device="cpu")
        flux[rn] = float(op.forward(vol).sum() / (photons.sum() * len(frames)))
    assert abs(flux[None] - 1) < 0.03, flux
    assert flux[0] > 1.5, flux
