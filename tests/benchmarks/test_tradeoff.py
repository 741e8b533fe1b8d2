"""The trade-off benchmark at its smallest size: structure and sanity of results.json, no overwrite."""

from __future__ import annotations

import json
import math
import os

import pytest

from benchmarks import designs, tradeoff


@pytest.fixture(scope="module")
def smallest_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tradeoff") / "run"
    cache = tmp_path_factory.getbasetemp() / "lfmsim-cache"
    old = os.environ.get("LFMSIM_CACHE_DIR")
    os.environ["LFMSIM_CACHE_DIR"] = str(cache)
    try:
        rc = tradeoff.main(["--smallest", "--out", str(out), "--device", "cpu", "--no-progress"])
    finally:
        if old is None:
            os.environ.pop("LFMSIM_CACHE_DIR", None)
        else:
            os.environ["LFMSIM_CACHE_DIR"] = old
    assert rc == 0
    return out


def test_outputs_exist(smallest_run):
    for name in ("results.json", "results.md", "resolution_vs_depth.png", "tradeoff.png"):
        assert (smallest_run / name).stat().st_size > 0, name
    assert not [p for p in smallest_run.iterdir() if p.name.startswith(".")]  # no temp files left


def test_results_structure_and_sanity(smallest_run):
    res = json.loads((smallest_run / "results.json").read_text())
    assert res["device"] in ("cpu", "gpu") and res["device_name"]
    expected = {d.name for d in designs.standard_designs(designs.SIZES["smallest"])}
    names = {e["name"] for e in res["designs"]}
    assert names == expected
    kinds = {e["kind"] for e in res["designs"]}
    assert kinds == {"widefield", "lfm"}
    for e in res["designs"]:
        for key in ("name", "kind", "magnification", "na", "wavelength_um", "pixels_per_lenslet", "fov_um",
                    "depths_um", "lateral_resolution_um", "lateral_fwhm_um", "axial_resolution_um",
                    "theory_lateral_resolution_um", "usable_depth_range_um", "resolvable_voxels",
                    "seconds_per_frame"):
            assert key in e, (e["name"], key)
        n = len(e["depths_um"])
        assert n >= 2
        for key in ("lateral_resolution_um", "lateral_fwhm_um", "axial_resolution_um", "theory_lateral_resolution_um"):
            assert len(e[key]) == n
            assert all(v is None or (math.isfinite(v) and v > 0) for v in e[key]), (e["name"], key, e[key])
        assert any(v is not None for v in e["lateral_resolution_um"]), e["name"]
        assert all(v > 0 for v in e["fov_um"])
        assert e["usable_depth_range_um"] >= 0 and e["resolvable_voxels"] >= 0
        best = e["best_lateral_resolution_um"]
        # the best within the usable depth range: one of the measured values, never below the overall minimum
        measured = [v for v in e["lateral_resolution_um"] if v is not None]
        assert best in measured and best >= min(measured)
        if e["kind"] == "lfm":
            assert e["seconds_per_frame"] > 0
            # LFM two-point resolution is not better than the wide-field Sparrow limit / 2 anywhere
            sparrow = 0.4736 * e["wavelength_um"] / e["na"]
            assert all(v is None or v > 0.5 * sparrow for v in e["lateral_resolution_um"])
    for p in res["published"]:
        assert set(p) >= {"system", "quantity", "published", "measured", "relative_difference"}


def test_widefield_at_focus_matches_theory(smallest_run):
    res = json.loads((smallest_run / "results.json").read_text())
    wf = [e for e in res["designs"] if e["kind"] == "widefield"]
    assert wf
    for e in wf:
        i = e["depths_um"].index(0.0)
        measured, th = e["lateral_resolution_um"][i], e["theory_lateral_resolution_um"][i]
        assert measured is not None
        assert measured == pytest.approx(th, rel=0.15), (e["name"], measured, th)
        # the best wide-field value is taken inside the depth of field, so it cannot beat focus by much
        assert e["best_lateral_resolution_um"] >= 0.85 * th, (e["name"], e["best_lateral_resolution_um"], th)


def test_existing_out_is_not_overwritten(smallest_run, capsys):
    before = (smallest_run / "results.json").read_bytes()
    rc = tradeoff.main(["--smallest", "--out", str(smallest_run), "--no-progress"])
    assert rc == 2
    assert "exists" in capsys.readouterr().err
    assert (smallest_run / "results.json").read_bytes() == before


def test_bad_arguments(tmp_path, capsys):
    assert tradeoff.main(["--smallest", "--threshold-um", "-1", "--out", str(tmp_path / "a")]) == 2
    assert "--threshold-um" in capsys.readouterr().err
    assert tradeoff.main(["--smallest", "--designs", "no-such-preset", "--out", str(tmp_path / "b")]) == 2
    assert "no-such-preset" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_designs_are_f_number_matched_on_one_camera():
    ds = designs.standard_designs(designs.SIZES["quick"])
    lfm = [d.microscope for d in ds if d.kind == "lfm"]
    assert {m.camera.pixel_um for m in lfm} == {10.0}
    assert len({m.camera.shape for m in lfm}) == 1
    assert {m.pixels_per_lenslet for m in lfm} == {7, 11, 15}
    for m in lfm:
        assert m.mla.focal_um / m.mla.pitch_um == pytest.approx(m.matched_f_number)
    assert len({d.label for d in ds}) == 2
    wf = [d.microscope for d in ds if d.kind == "widefield"]
    assert len(wf) == 2
    for w in wf:  # same sensor area as the LFMs, finer pixel
        assert w.camera.shape[0] * w.camera.pixel_um == pytest.approx(lfm[0].camera.shape[0] * 10.0)


def test_default_out_is_a_new_timestamped_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = tradeoff._new_out_dir(None)
    second = tradeoff._new_out_dir(None)  # same second: a suffix, never the same folder
    assert first != second
    for p in (first, second):
        assert p.parent == tmp_path / "results" or p.parent.resolve() == (tmp_path / "results").resolve()
        assert p.name.startswith("tradeoff-") and p.is_dir()
