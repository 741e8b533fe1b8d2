"""Smoke test of ``python -m benchmarks scale`` (the numbers are the benchmark's, not a test's)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("distributed")


def test_scale_runs_and_reports(tmp_path):
    from benchmarks.scale import main

    out = tmp_path / "scale"
    assert main(["--frames", "4", "--workers", "1", "--lenslets", "5", "--iterations", "2", "--frames-per-task", "2",
                 "--out", str(out)]) == 0
    d = json.loads((out / "scale.json").read_text())
    assert d["frames"] == 4 and d["frames_per_task"] == 2 and [r["workers"] for r in d["rows"]] == [0, 1]
    assert all(r["volumes_per_s"] > 0 for r in d["rows"])
    assert "speed-up vs serial (same run)" in (out / "scale.md").read_text()
    assert main(["--frames", "4", "--out", str(out)]) == 2  # an existing non-empty --out is refused


def test_depth_split_mode_runs_and_reports(tmp_path):
    from benchmarks.scale import main

    out = tmp_path / "ds"
    assert main(["--depth-split", "--workers", "2", "--flfm-pixels", "81", "--iterations", "2", "--out", str(out)]) == 0
    d = json.loads((out / "scale.json").read_text())
    assert d["mode"] == "depth-split" and [r["workers"] for r in d["rows"]] == [0, 2]
    assert d["rows"][1]["groups"] == [[0, 10], [10, 21]] and d["rows"][1]["relative_difference"] < 1e-5
