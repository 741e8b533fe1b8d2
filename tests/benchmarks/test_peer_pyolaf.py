"""pyolaf side by side (``perf --peer pyolaf``): a tiny configuration through pyolaf, result sanity."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyolaf")

from benchmarks import perf  # noqa: E402
from benchmarks.peer_pyolaf import case_config_from_microscope, run_pyolaf  # noqa: E402


def _tiny():
    from optics import presets

    # 5 px per lenslet, 11 x 11 lenslets, 3 planes, 3 voxels per lenslet: about 2 s in pyolaf
    return presets.get("lfm-20x-0.5w", mla={"pitch_um": 100.0, "focal_um": 2000.0},
                       camera={"pixel_um": 20.0, "shape": [55, 55]},
                       volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})


@pytest.fixture(scope="module")
def tiny_run():
    m = _tiny()
    return m, run_pyolaf(case_config_from_microscope(m), iterations=2, timeout=120)


def test_config_carries_the_optics():
    m = _tiny()
    c = case_config_from_microscope(m)
    assert c["magnification"] == 20 and c["na"] == 0.5 and c["immersion_index"] == 1.33
    assert c["mla_pitch_um"] == 100 and c["mla_focal_um"] == 2000 and c["pixel_um"] == 20
    assert c["image_shape"] == [55, 55] and c["voxels_per_lenslet"] == 3
    assert (c["z_min_um"], c["z_max_um"], c["z_step_um"]) == (-10, 10, 10)


def test_result_is_sane(tiny_run):
    m, r = tiny_run
    assert "error" not in r, r.get("output_tail", r.get("error"))
    assert r["peer"] == "pyolaf" and r["device"] == "cpu" and r["iterations"] == 2
    # same sizes as lfmsim's operator: image, (z, y, x) volume, voxels per lenslet, planes
    assert r["image_shape"] == list(m.image_shape)
    assert r["volume_shape"] == list(m.volume_shape)
    assert r["tex_nnum"] == [3, 3] and r["nnum"] == [5, 5]
    np.testing.assert_allclose(r["depths_um"], m.z_um)
    for key in ("build_s", "operator_s", "rl_setup_s", "forward_s", "backward_s", "rl_iter_s"):
        assert np.isfinite(r[key]) and r[key] > 0, key
    assert len(r["rl_iter_all_s"]) == 2 and r["rl_iter_s"] == min(r["rl_iter_all_s"])
    assert r["forward_s"] + r["backward_s"] <= max(r["rl_iter_all_s"]) * 1.01
    assert r["build_s"] < r["child_wall_s"]
    # peak memory is the child's own: above its start, below anything absurd for this size
    assert r["baseline_rss_bytes"] < r["peak_after_build_bytes"] <= r["peak_bytes"] < 4e9
    assert r["operator_bytes"] > 0
    assert r["volume_finite"] and r["volume_mean"] > 0


def test_side_by_side_table(tiny_run):
    _, p = tiny_run
    p = dict(p, label="P-s3")
    ours = {"label": "P-s3", "device": "cpu", "image_shape": p["image_shape"], "volume_shape": p["volume_shape"],
            "build_s": 1.0, "setup_s": 0.5, "rl_iter_s": p["rl_iter_s"] / 4, "peak_bytes": p["peak_bytes"] // 2}
    rows = perf.peer_comparison([ours], [p])
    assert rows[0]["build_s"] == 1.5
    assert rows[0]["rl_iter_ratio"] == pytest.approx(4.0)
    assert rows[0]["peak_ratio"] == pytest.approx(2.0, rel=1e-6)
    text = perf.peer_markdown(rows)
    assert "| P-s3 |" in text and "4x" in text and "pyolaf/ours" in text


def test_error_is_reported_not_raised():
    c = case_config_from_microscope(_tiny())
    c["pixel_um"] = 30.0  # 3.33 px per lenslet: refused in the child
    r = run_pyolaf(c, iterations=1, timeout=60)
    assert "error" in r and "whole number" in r["error"]
    rows = perf.peer_comparison([], [dict(r, label="P-s3")])
    assert "error" in rows[0] and "error:" in perf.peer_markdown(rows)
