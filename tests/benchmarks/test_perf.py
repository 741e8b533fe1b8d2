"""Smoke test of ``python -m benchmarks perf``: one small case runs and its report is written."""

import json

import pytest

from benchmarks import perf


def test_perf_small_case_writes_its_report(tmp_path):
    out = tmp_path / "perf"
    rc = perf.main(["--case", "P", "--s", "3", "--synthetic-kernels", "--iterations", "1", "--in-process",
                    "--device", "cpu", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "perf.json").read_text())
    (r,) = doc["results"]
    assert r["case"] == "P" and r["s"] == 3 and r["device"] == "cpu"
    assert r["volume_shape"] == [11, 75, 75] and r["image_shape"] == [375, 375]
    for key in ("forward_s", "adjoint_s", "rl_iter_s"):
        assert 0 < r[key] < 60
    assert "| P-s3 |" in (out / "perf.md").read_text()


# ------------------------------------------------------------------------ --out and the common flags


@pytest.fixture
def no_work(monkeypatch):
    """Every case and the operator build fail loudly: the checks must come before any work."""
    def boom(*a, **k):
        raise AssertionError("work started")

    for name in ("run_case", "_run_isolated", "operator_build", "full_frame_projection"):
        monkeypatch.setattr(perf, name, boom)


def test_existing_non_empty_out_is_refused_without_overwrite(tmp_path, capsys, no_work):
    out = tmp_path / "perf"
    out.mkdir()
    (out / "perf.md").write_text("keep me")
    rc = perf.main(["--case", "P", "--device", "cpu", "--out", str(out)])
    assert rc == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --out = {str(out)!r} exists and is not empty") and "--overwrite" in line
    assert [p.name for p in out.iterdir()] == ["perf.md"] and (out / "perf.md").read_text() == "keep me"
    afile = tmp_path / "a-file"
    afile.write_text("x")
    assert perf.main(["--case", "P", "--device", "cpu", "--out", str(afile)]) == 2
    assert "--out" in capsys.readouterr().err and afile.read_text() == "x"


def test_overwrite_and_empty_out_are_accepted(tmp_path, monkeypatch, capsys, no_work):
    monkeypatch.setattr(perf, "_specs", lambda args, device: [])  # no case to run: only the report
    out = tmp_path / "perf"
    out.mkdir()
    assert perf.main(["--case", "P", "--device", "cpu", "--out", str(out), "-v", "--no-progress"]) == 0
    assert (out / "perf.json").is_file()
    assert perf.main(["--case", "P", "--device", "cpu", "--out", str(out), "--overwrite", "--verbose"]) == 0
    capsys.readouterr()


def test_default_out_is_a_new_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = perf._out_dir(None, False)
    second = perf._out_dir(None, False)
    assert first != second and first.is_dir() and second.is_dir()
    assert first.parent.name == "results" and first.name.startswith("perf-")


def test_common_flags_of_the_benchmarks():
    from benchmarks import tradeoff

    for parser in (perf._parser(), tradeoff._parser()):
        args = parser.parse_args(["-v", "--no-progress"])
        assert args.verbose and args.no_progress
        args = parser.parse_args(["--verbose"])
        assert args.verbose and not args.no_progress
    for action in perf._parser()._actions:
        if action.option_strings:
            assert action.help, action.option_strings


def test_machine_peaks_are_measured_rates():
    from benchmarks.perf import machine_peaks

    peaks = machine_peaks("cpu")
    assert peaks["device"] == "cpu"
    # a 2048^3 float32 product and a 256 MiB copy: positive, finite, and not absurd for one CPU
    assert 0.1 < peaks["sgemm_gflops"] < 1e5 and 0.1 < peaks["copy_gbps"] < 1e4
