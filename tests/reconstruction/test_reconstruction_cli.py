"""Command line ``python -m reconstruction``: plain-text help, and ``--psf OP.npz`` written by
``python -m optics psf --operator-out`` read back end to end."""

import argparse

import numpy as np
import pytest

import optics
from optics.io import read_tiff, write_tiff
from reconstruction.__main__ import _parser, main

SMALL = dict(camera={"shape": [45, 45]},
             volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})


def test_help_is_plain_text_and_every_option_has_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "``" not in out and "usage: python -m reconstruction" in out
    assert "--psf OP.npz" in out
    parser = _parser()
    for action in parser._actions:
        if action.option_strings:  # every option, not the positionals
            assert action.help and action.help is not argparse.SUPPRESS, action.option_strings
    assert {"-v", "--verbose", "--no-progress", "--device", "--checkpoint-every", "--psf"} <= {
        s for a in parser._actions for s in a.option_strings}


@pytest.fixture
def tiny(tmp_path, monkeypatch):
    """A 3 x 3 lenslet config file, its operator written by ``python -m optics psf``, and a frame."""
    pytest.importorskip("optics.lfpsf")
    from optics.__main__ import main as optics_main

    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path / "cache"))
    m = optics.presets.get("lfm-20x-0.5w", **SMALL)
    cfg = tmp_path / "m.toml"
    optics.save_config(m, cfg)
    op = tmp_path / "op.npz"
    assert optics_main(["psf", str(cfg), "--out", str(tmp_path / "psf.tif"), "--operator-out", str(op),
                        "--no-progress"]) == 0
    frame = tmp_path / "f.tif"
    rng = np.random.default_rng(0)
    write_tiff(frame, (rng.random(m.image_shape) * 50 + 100).astype(np.uint16), axes="YX")
    return m, cfg, op, frame


def _no_compute(monkeypatch):
    """Any computation of the operator fails: --psf must be what the run uses."""
    import optics.lfpsf

    def boom(*a, **k):
        raise AssertionError("the operator was computed although --psf was given")

    monkeypatch.setattr(optics, "compute_psf", boom, raising=False)
    monkeypatch.setattr(optics.lfpsf, "compute_psf", boom)


def test_psf_file_is_used(tiny, tmp_path, monkeypatch, capsys):
    from optics.psfdata import load_psf
    from reconstruction import reconstruct

    m, cfg, op, frame = tiny
    (tmp_path / "cache").joinpath(f"psf-{m.hash}.npz").unlink(missing_ok=True)  # no cache to fall back on
    _no_compute(monkeypatch)
    out = tmp_path / "v.tif"
    rc = main([str(cfg), str(frame), "--out", str(out), "--psf", str(op), "--iterations", "2",
               "--device", "cpu", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    vol = read_tiff(out)
    assert vol.shape == m.volume_shape
    ref = reconstruct(m, read_tiff(frame), psf=load_psf(op), iterations=2, device="cpu", progress=False)
    np.testing.assert_allclose(vol, ref, rtol=1e-5, atol=1e-6 * float(ref.max()))


def test_psf_of_another_microscope_is_refused(tiny, tmp_path, monkeypatch, capsys):
    m, cfg, op, frame = tiny
    _no_compute(monkeypatch)
    other = tmp_path / "other.toml"
    optics.save_config(m.replace(volume={"z_step_um": 5}), other)
    out = tmp_path / "v.tif"
    rc = main([str(other), str(frame), "--out", str(out), "--psf", str(op), "--device", "cpu", "--no-progress"])
    assert rc == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --psf = {str(op)!r} is invalid: it belongs to another microscope")
    assert m.hash in line and m.replace(volume={"z_step_um": 5}).hash in line
    assert "volume.z_step_um: 10.0 vs 5.0" in line or "volume.z_step_um: 10 vs 5" in line
    assert not out.exists()


@pytest.mark.parametrize("case", ["missing", "garbage", "not-an-operator"])
def test_unreadable_psf_file_is_refused(case, tiny, tmp_path, monkeypatch, capsys):
    m, cfg, op, frame = tiny
    _no_compute(monkeypatch)
    bad = tmp_path / "bad.npz"
    if case == "garbage":
        bad.write_bytes(b"not an npz")
    elif case == "not-an-operator":
        np.savez(bad, x=np.zeros(3))
    out = tmp_path / "v.tif"
    rc = main([str(cfg), str(frame), "--out", str(out), "--psf", str(bad), "--device", "cpu", "--no-progress"])
    assert rc == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --psf = {str(bad)!r} is invalid")
    assert not out.exists()


def test_psf_from_another_model_version_warns(tmp_path, monkeypatch, capsys):
    """An operator file computed by other PSF code (model version) is used as given, with a warning."""
    import optics.psfdata as pd
    from optics import presets
    from optics.lfpsf import compute_psf
    from reconstruction.__main__ import load_operator

    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path / "cache"))
    m = presets.get("lfm-20x-0.5w", camera={"shape": [45, 45]},
                    volume={"z_min_um": 0, "z_max_um": 0, "z_step_um": 1, "voxels_per_lenslet": 1})
    psf = compute_psf(m, cache=False, progress=False)
    psf.meta["model_version"] = "1-000000000000"
    path = psf.save(tmp_path / "op.npz")
    loaded = load_operator(str(path), m)
    assert loaded.meta["model_version"] == "1-000000000000" != pd.model_version()
    assert "computed by PSF model 1-000000000000" in capsys.readouterr().err


def test_scanning_lfm_simulate_then_reconstruct(tmp_path, monkeypatch, capsys):
    """kind "slfm": ``python -m optics simulate`` writes the (K^2, Y, X) scan frames (TYX) and
    ``python -m reconstruction`` turns them into one (z, y, x) volume."""
    from optics.__main__ import main as optics_main

    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path / "cache"))
    m = optics.presets.get("lfm-20x-0.5w", kind="slfm", scan={"steps": 3, "order": "ring"}, **SMALL)
    cfg = tmp_path / "s.toml"
    optics.save_config(m, cfg)
    frames, vol = tmp_path / "frames.tif", tmp_path / "vol.tif"
    assert optics_main(["simulate", str(cfg), "--phantom", "beads", "--count", "3", "--photons", "20000",
                        "--upsample", "1", "--seed", "1", "--out", str(frames), "--no-progress"]) == 0
    assert "9 scan frames (9, 45, 45)" in capsys.readouterr().out
    assert read_tiff(frames).shape == (9, 45, 45)
    assert main([str(cfg), str(frames), "--out", str(vol), "--iterations", "2", "--no-progress"]) == 0
    assert read_tiff(vol).shape == m.volume_shape


def test_scanning_lfm_dao_writes_the_aberration_beside_the_volume(tmp_path, monkeypatch, capsys):
    import json

    from optics.__main__ import main as optics_main

    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path / "cache"))
    m = optics.presets.get("lfm-20x-0.5w", kind="slfm", scan={"steps": 3}, **SMALL)
    cfg = tmp_path / "s.toml"
    optics.save_config(m, cfg)
    frames, vol = tmp_path / "frames.tif", tmp_path / "vol.tif"
    assert optics_main(["simulate", str(cfg), "--phantom", "beads", "--count", "4", "--photons", "20000",
                        "--upsample", "1", "--seed", "2", "--out", str(frames), "--no-progress"]) == 0
    assert main([str(cfg), str(frames), "--out", str(vol), "--iterations", "2", "--dao", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "vol.aberration.json" in out
    data = json.loads((tmp_path / "vol.aberration.json").read_text())
    assert set(data["zernike_waves"]) == {str(j) for j in range(5, 22)}
    assert read_tiff(vol).shape == m.volume_shape
    # a number of rounds below 1 is refused before any work
    assert main([str(cfg), str(frames), "--out", str(tmp_path / "v2.tif"), "--dao", "0", "--no-progress"]) == 2
    assert "--dao = 0 is invalid" in capsys.readouterr().err


def test_scanning_lfm_rolling_series_gives_one_volume_per_frame(tmp_path, monkeypatch):
    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path / "cache"))
    m = optics.presets.get("lfm-20x-0.5w", kind="slfm", scan={"steps": 3}, **SMALL)
    cfg = tmp_path / "s.toml"
    optics.save_config(m, cfg)
    series, vol = tmp_path / "series.tif", tmp_path / "vol.tif"
    rng = np.random.default_rng(3)
    write_tiff(series, rng.random((11, *m.image_shape)).astype(np.float32), axes="TYX")
    assert main([str(cfg), str(series), "--out", str(vol), "--iterations", "2", "--rolling", "--no-progress"]) == 0
    assert read_tiff(vol).shape == (11, *m.volume_shape)
