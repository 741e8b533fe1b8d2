"""Smoke test of ``python -m benchmarks perf``: one small case runs and its report is written."""

import json

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
