"""Command line ``python -m optics`` (optics.__main__): presets, psf, simulate round trips and errors.

Runs in-process through ``main(argv)`` on a tiny config (5 x 5 lenslets, 3 depths), plus one
subprocess run of ``python -m optics presets``.
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from optics import presets
from optics.__main__ import main

ROOT = Path(__file__).resolve().parents[2]

TINY_TOML = """\
[microscope]
kind = "lfm"
wavelength_um = 0.52

[objective]
magnification = 20
na = 0.5
immersion_index = 1.33

[mla]
pitch_um = 150
focal_um = 3000

[camera]
pixel_um = 10
shape = [75, 75]

[volume]
z_min_um = -10
z_max_um = 10
z_step_um = 10
voxels_per_lenslet = 3
"""


@pytest.fixture
def cfg(tmp_path):
    p = tmp_path / "tiny.toml"
    p.write_text(TINY_TOML)
    return p


@pytest.fixture
def lfpsf():
    """The wave-optics PSF module (computes the PSFs of the psf and simulate commands)."""
    return pytest.importorskip("optics.lfpsf")


def run(argv, capsys):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return rc, out, err


def tiff_info(path):
    with tifffile.TiffFile(path) as t:
        arr = t.asarray()
        ij = t.imagej_metadata
        xres = t.pages[0].tags["XResolution"].value
        axes = t.series[0].axes
    return arr, ij, xres[1] / xres[0], axes  # pixel size = 1 / resolution


def test_presets_subprocess():
    r = subprocess.run([sys.executable, "-m", "optics", "presets"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    header = r.stdout.splitlines()[0].split()
    assert header[:3] == ["name", "kind", "objective"] and "FOV" in header
    for name in presets.names():
        assert name in r.stdout


def test_presets_in_process(capsys):
    rc, out, _ = run(["presets"], capsys)
    assert rc == 0
    line = next(ln for ln in out.splitlines() if ln.startswith("lfm-20x-0.5w"))
    assert "20x/0.5" in line and "150 um" in line and "15" in line and "0.5 um" in line and "1020 x 1020 um" in line


def test_help(capsys):
    rc, out, _ = run(["simulate", "--help"], capsys)
    assert rc == 0 and "--phantom" in out and "--photons" in out
    rc, out, _ = run(["--help"], capsys)
    assert rc == 0 and "presets" in out and "psf" in out and "simulate" in out


def test_simulate_round_trip(lfpsf, cfg, tmp_path, capsys):
    frame, truth = tmp_path / "frame.tif", tmp_path / "vol.tif"
    rc, out, err = run(["simulate", cfg, "--phantom", "beads", "--out", frame, "--truth-out", truth,
                        "--photons", 5000, "--seed", 3, "--count", 4, "--no-progress"], capsys)
    assert rc == 0, err
    arr, ij, px, axes = tiff_info(frame)
    assert arr.shape == (75, 75) and arr.dtype == np.uint16 and axes == "YX"
    assert px == pytest.approx(0.5, rel=1e-5)  # 10 µm pixel / 20x
    assert ij["unit"] == "um"
    assert arr.max() > 110  # light above the 100 ADU offset
    vol, ij, px, axes = tiff_info(truth)
    assert vol.shape == (3, 15, 15) and axes == "ZYX" and vol.dtype == np.float32
    assert ij["spacing"] == pytest.approx(10.0) and px == pytest.approx(2.5, rel=1e-5)
    assert vol.sum() == pytest.approx(4.0)
    # the truth re-reads as a phantom; noise-free frames are deterministic and the same seed repeats
    f2, f3 = tmp_path / "f2.tif", tmp_path / "f3.tif"
    assert run(["simulate", cfg, "--phantom", truth, "--out", f2, "--photons", 5000, "--no-noise", "--no-progress"], capsys)[0] == 0
    assert run(["simulate", cfg, "--phantom", truth, "--out", f3, "--photons", 5000, "--no-noise", "--no-progress"], capsys)[0] == 0
    a2, a3 = tifffile.imread(f2), tifffile.imread(f3)
    np.testing.assert_array_equal(a2, a3)
    assert abs(a2.astype(float).mean() - arr.astype(float).mean()) < 2
    f4 = tmp_path / "f4.tif"
    assert run(["simulate", cfg, "--phantom", "beads", "--out", f4, "--photons", 5000, "--seed", 3,
                "--count", 4, "--no-progress"], capsys)[0] == 0
    np.testing.assert_array_equal(tifffile.imread(f4), arr)


def test_simulate_neurons_upsampled(lfpsf, cfg, tmp_path, capsys):
    frame, truth = tmp_path / "frame.tif", tmp_path / "vol.tif"
    rc, _, err = run(["simulate", cfg, "--phantom", "neurons", "--out", frame, "--truth-out", truth,
                      "--upsample", 3, "--count", 2, "--no-progress"], capsys)
    assert rc == 0, err
    assert tifffile.imread(frame).shape == (75, 75)
    assert tifffile.imread(truth).shape == (3, 15, 15)  # binned back to the config's grid


def test_psf_writes_zyx_stack(lfpsf, cfg, tmp_path, capsys):
    from optics.__main__ import point_pattern
    from optics.psfdata import load_psf

    out, op = tmp_path / "psf.tif", tmp_path / "op.npz"
    rc, stdout, err = run(["psf", cfg, "--out", out, "--operator-out", op, "--no-progress"], capsys)
    assert rc == 0, err
    stack, ij, px, axes = tiff_info(out)
    assert axes == "ZYX" and stack.ndim == 3 and stack.shape[0] == 3
    assert stack.shape[1] == stack.shape[2] and stack.shape[1] % 2 == 1
    assert ij["spacing"] == pytest.approx(10.0) and px == pytest.approx(0.5, rel=1e-5)
    # plane z = 0 is the on-axis sensor pattern, centred on the window
    c = stack.shape[1] // 2
    ref = point_pattern(presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]},
                                     volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3}),
                         (0.0, 0.0, 0.0))
    np.testing.assert_allclose(stack[1, c - 37 : c + 38, c - 37 : c + 38], ref, rtol=1e-5, atol=1e-9)
    psf = load_psf(op)
    assert len(psf.kernels) == 3 and psf.kernels[0].shape[:2] == (3, 3)
    # the operator's centre-phase kernels agree with the written PSF (to 1% of the peak: the two
    # may be computed in different windows, which moves the tails at the window edge)
    for iz in range(3):
        k = psf.kernels[iz][1, 1]
        h = k.shape[0] // 2
        np.testing.assert_allclose(stack[iz, c - h : c + h + 1, c - h : c + h + 1], k, rtol=0, atol=1e-2 * k.max())


def test_psf_point_and_widefield(lfpsf, cfg, tmp_path, capsys):
    out = tmp_path / "pt.tif"
    rc, _, err = run(["psf", cfg, "--out", out, "--point", 1.0, -2.0, 5.0, "--no-progress"], capsys)
    assert rc == 0, err
    with tifffile.TiffFile(out) as t:
        arr = t.asarray()
    assert arr.reshape(-1, 75, 75).shape == (1, 75, 75)  # ImageJ stores one plane as (y, x)
    assert 0.5 < arr.sum() <= 1.0
    wf = tmp_path / "wf.toml"
    wf.write_text(
        '[microscope]\nkind = "widefield"\n[objective]\nmagnification = 20\nna = 0.5\nimmersion_index = 1.33\n'
        "[camera]\npixel_um = 6.5\nshape = [32, 32]\n"
        "[volume]\nz_min_um = -2\nz_max_um = 2\nz_step_um = 1\nvoxels_per_lenslet = 1\n"
    )
    out = tmp_path / "wf.tif"
    rc, _, err = run(["psf", wf, "--out", out, "--no-progress"], capsys)
    assert rc == 0, err
    stack, ij, px, axes = tiff_info(out)
    assert stack.shape[0] == 5 and axes == "ZYX" and px == pytest.approx(0.325, rel=1e-5)
    c = stack.shape[1] // 2
    assert np.unravel_index(np.argmax(stack[2]), stack[2].shape) == (c, c)  # in focus, peak on axis
    assert stack[2].max() > stack[0].max()


@pytest.mark.parametrize(
    "argv,names",
    [
        (["simulate", "{cfg}", "--phantom", "beads", "--out", "{out}", "--photons", "-5"], "--photons"),
        (["simulate", "{cfg}", "--phantom", "cubes", "--out", "{out}"], "--phantom"),
        (["simulate", "{cfg}", "--phantom", "beads", "--out", "{out}", "--count", "-1"], "--count"),
        (["simulate", "{cfg}", "--phantom", "beads", "--out", "{out}", "--upsample", "7"], "--upsample"),
        (["simulate", "{cfg}", "--phantom", "{tmp}/missing.tif", "--out", "{out}"], "--phantom"),
        (["simulate", "{cfg}", "--phantom", "{tmp}/wrong.tif", "--out", "{out}"], "--phantom"),
        (["simulate", "no-such-preset", "--phantom", "beads", "--out", "{out}"], "CONFIG"),
        (["simulate", "{tmp}/missing.toml", "--phantom", "beads", "--out", "{out}"], "CONFIG"),
        (["simulate", "{tmp}/bad.toml", "--phantom", "beads", "--out", "{out}"], "z_step_um"),
        (["simulate", "{cfg}", "--phantom", "beads", "--out", "{tmp}/nofolder/x.tif"], "--out"),
        (["simulate", "{cfg}", "--phantom", "beads", "--out", "{out}", "--truth-out", "{out}"], "--truth-out"),
        (["simulate", "{cfg}", "--phantom", "beads", "--out", "{out}", "--seed", "x"], "--seed"),
        (["simulate", "{cfg}", "--phantom", "beads"], "--out"),
        (["psf", "{cfg}", "--out", "{out}", "--point", "1", "2", "nan"], "--point"),
        (["psf", "{cfg}", "--out", "{out}", "--point", "1", "2"], "--point"),
        (["bogus"], "bogus"),
    ],
)
def test_bad_input_exit_2_names_parameter_writes_nothing(argv, names, cfg, tmp_path, capsys):
    out = tmp_path / "out.tif"
    tifffile.imwrite(tmp_path / "wrong.tif", np.zeros((3, 10, 10), np.float32), photometric="minisblack")
    (tmp_path / "bad.toml").write_text(TINY_TOML.replace("z_step_um = 10", "z_step_um = -1"))
    before = set(tmp_path.rglob("*"))
    argv = [a.format(cfg=cfg, out=out, tmp=tmp_path) for a in argv]
    rc, stdout, err = run(argv, capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert names in lines[0]
    assert set(tmp_path.rglob("*")) == before  # no file written, not even a temporary one


def test_existing_output_refused_without_overwrite(lfpsf, cfg, tmp_path, capsys):
    out = tmp_path / "frame.tif"
    out.write_bytes(b"keep me")
    rc, _, err = run(["simulate", cfg, "--phantom", "beads", "--out", out, "--no-progress"], capsys)
    assert rc == 2 and "exists" in err and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    rc, _, err = run(["simulate", cfg, "--phantom", "beads", "--out", out, "--no-progress", "--overwrite"], capsys)
    assert rc == 0, err
    assert tifffile.imread(out).shape == (75, 75)
    psf_out = tmp_path / "psf.tif"
    psf_out.write_bytes(b"keep")
    rc, _, err = run(["psf", cfg, "--out", psf_out, "--quiet"], capsys)  # the deprecated alias still works
    assert rc == 2 and psf_out.read_bytes() == b"keep"


def test_preset_name_as_config(lfpsf, tmp_path, capsys):
    # a preset name works as CONFIG; --point keeps it cheap on the full 2048 x 2048 sensor
    out = tmp_path / "pt.tif"
    rc, _, err = run(["psf", "lfm-20x-0.5w", "--out", out, "--point", 0, 0, 0, "--no-progress"], capsys)
    assert rc == 0, err
    assert tifffile.imread(out).shape == (2040, 2040)


def test_outputs_get_the_usual_file_mode(tmp_path):
    import os
    import stat

    from optics.io import atomic_write_bytes

    mask = os.umask(0o022)
    try:
        p = atomic_write_bytes(tmp_path / "x.txt", b"abc")
    finally:
        os.umask(mask)
    assert stat.S_IMODE(p.stat().st_mode) == 0o644
    assert [q.name for q in tmp_path.iterdir()] == ["x.txt"]  # no temp file left behind


# ------------------------------------------------------------------------ memory before allocation
@pytest.fixture
def no_heavy_work(monkeypatch):
    """Make any PSF computation or phantom fail loudly: the memory check must come first."""
    lfpsf = pytest.importorskip("optics.lfpsf")
    from optics import phantoms

    def boom(*a, **k):
        raise AssertionError("heavy work started before the memory check")

    for mod, name in ((lfpsf, "sensor_pattern"), (lfpsf, "compute_psf"), (phantoms, "random_beads"),
                      (phantoms, "neurons")):
        monkeypatch.setattr(mod, name, boom)


@pytest.mark.parametrize("argv", [
    ["psf", "{cfg}", "--out", "{out}"],
    ["psf", "{cfg}", "--out", "{out}", "--point", "1", "2", "3"],
    ["psf", "{cfg}", "--out", "{out}", "--operator-out", "{tmp}/op.npz"],
    ["simulate", "{cfg}", "--phantom", "beads", "--out", "{out}"],
    ["simulate", "{cfg}", "--phantom", "neurons", "--out", "{out}", "--upsample", "1"],
], ids=["psf", "point", "operator", "simulate", "simulate-k1"])
def test_too_little_memory_is_refused_before_any_work(argv, cfg, tmp_path, capsys, monkeypatch, no_heavy_work):
    monkeypatch.setenv("LFMSIM_MAX_MEMORY_GB", "0.001")
    out = tmp_path / "out.tif"
    before = set(tmp_path.rglob("*"))
    rc, _, err = run([a.format(cfg=cfg, out=out, tmp=tmp_path) for a in argv], capsys)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    msg = lines[0]
    assert "needs about" in msg and "GiB" in msg and "0.001 GiB available" in msg
    assert "LFMSIM_MAX_MEMORY_GB" in msg and "camera.shape" in msg
    assert set(tmp_path.rglob("*")) == before


def test_memory_error_is_one_line(cfg, tmp_path, capsys, monkeypatch):
    import optics.__main__ as cli

    def oom(m):
        raise MemoryError("Unable to allocate 30.0 GiB for an array with shape (51, 40000, 40000)")

    monkeypatch.setattr(cli, "axial_psf_stack", oom)
    rc, _, err = run(["psf", cfg, "--out", tmp_path / "p.tif"], capsys)
    assert rc == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("error: out of memory in 'python -m optics psf'") and "30.0 GiB" in line
    assert "camera.shape" in line
    assert not (tmp_path / "p.tif").exists()


# ------------------------------------------------------------------------ --upsample auto
@pytest.mark.parametrize("s,k", [(3, 3), (5, 3), (7, 2), (8, 1), (15, 1)])
def test_upsample_auto_picks_the_finest_valid_model(s, k, cfg, tmp_path, capsys, monkeypatch, no_heavy_work):
    # the tiny budget stops the command right after the choice, which its message reports
    monkeypatch.setenv("LFMSIM_MAX_MEMORY_GB", "0.001")
    c = tmp_path / f"s{s}.toml"
    c.write_text(TINY_TOML.replace("voxels_per_lenslet = 3", f"voxels_per_lenslet = {s}"))
    rc, _, err = run(["simulate", c, "--phantom", "beads", "--out", tmp_path / "f.tif"], capsys)
    assert rc == 2 and f"with --upsample {k})" in err and f"{s * k} voxels per lenslet" in err
    warned = "warning: --upsample auto" in err and "inverse crime" in err
    assert warned == (k == 1)
    # an explicit factor is taken as it is, without a warning
    rc, _, err = run(["simulate", c, "--phantom", "beads", "--out", tmp_path / "f.tif", "--upsample", "1"], capsys)
    assert rc == 2 and "with --upsample 1)" in err and "warning" not in err


def test_upsample_auto_reads_the_factor_of_a_tiff_phantom(cfg, tmp_path, capsys, monkeypatch, no_heavy_work):
    monkeypatch.setenv("LFMSIM_MAX_MEMORY_GB", "0.001")
    for shape, k in (((3, 45, 45), 3), ((3, 15, 15), 1)):
        p = tmp_path / f"ph{shape[1]}.tif"
        tifffile.imwrite(p, np.zeros(shape, np.float32), photometric="minisblack")
        rc, _, err = run(["simulate", cfg, "--phantom", p, "--out", tmp_path / "f.tif"], capsys)
        assert rc == 2 and f"with --upsample {k})" in err
        assert ("inverse crime" in err) == (k == 1)


@pytest.mark.parametrize("value", ["0", "-2", "x", "1.5"])
def test_upsample_bad_value(value, cfg, tmp_path, capsys):
    rc, _, err = run(["simulate", cfg, "--phantom", "beads", "--out", tmp_path / "f.tif", "--upsample", value], capsys)
    assert rc == 2 and "--upsample" in err and "'auto' or an integer >= 1" in err


def test_simulate_help_says_the_upsample_default(capsys):
    rc, out, _ = run(["simulate", "--help"], capsys)
    assert rc == 0
    text = " ".join(out.split())
    assert "--upsample auto|K" in text and "Default auto" in text and "inverse crime" in text


def test_simulate_default_upsample_runs(lfpsf, cfg, tmp_path, capsys):
    rc, out, err = run(["simulate", cfg, "--phantom", "beads", "--count", 3, "--out", tmp_path / "f.tif",
                        "--truth-out", tmp_path / "t.tif", "--no-progress"], capsys)
    assert rc == 0, err
    assert "--upsample 3" in out and "warning" not in err
    assert tifffile.imread(tmp_path / "t.tif").shape == (3, 15, 15)


# ------------------------------------------------------------------------ -v and --no-progress
@pytest.mark.parametrize("argv,verbose,no_progress", [
    (["psf", "c", "--out", "o.tif"], False, False),
    (["-v", "psf", "c", "--out", "o.tif"], True, False),
    (["psf", "c", "--out", "o.tif", "-v"], True, False),
    (["psf", "c", "--out", "o.tif", "--verbose", "--no-progress"], True, True),
    (["--no-progress", "simulate", "c", "--phantom", "beads", "--out", "o.tif"], False, True),
    (["simulate", "c", "--phantom", "beads", "--out", "o.tif", "--quiet"], False, True),
    (["presets", "-v", "--no-progress"], True, True),
    (["-v", "presets"], True, False),
])
def test_verbose_and_no_progress_before_or_after_the_command(argv, verbose, no_progress):
    from optics.__main__ import build_parser

    args = build_parser().parse_args(argv)
    assert args.verbose is verbose and args.no_progress is no_progress


def test_help_lists_no_progress_not_quiet(capsys):
    for cmd in ("psf", "simulate", "presets"):
        rc, out, _ = run([cmd, "--help"], capsys)
        assert rc == 0 and "--no-progress" in out and "--verbose" in out and "--quiet" not in out
