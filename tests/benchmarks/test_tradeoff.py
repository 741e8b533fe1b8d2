"""The trade-off benchmark at its smallest size: structure and sanity of results.json, no overwrite."""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np
import pytest

from benchmarks import designs, protocol, tradeoff, twopoint
from optics import phantoms


@pytest.fixture(scope="module")
def smallest_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tradeoff") / "run"
    cache = tmp_path_factory.getbasetemp() / "lfmsim-cache"
    old = os.environ.get("LFMSIM_CACHE_DIR")
    os.environ["LFMSIM_CACHE_DIR"] = str(cache)
    try:
        # two designs side by side in worker processes (the default on a multi-core CPU)
        rc = tradeoff.main(["--smallest", "--out", str(out), "--device", "cpu", "--no-progress", "--jobs", "2"])
    finally:
        if old is None:
            os.environ.pop("LFMSIM_CACHE_DIR", None)
        else:
            os.environ["LFMSIM_CACHE_DIR"] = old
    assert rc == 0
    return out


def test_outputs_exist(smallest_run):
    for name in ("results.json", "results.md", "resolution_vs_depth.png", "tradeoff.png", "convergence.png"):
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
                    "seconds_per_volume", "lateral_resolution_range_um", "usable_depth_range_per_side_um",
                    "seconds_per_volume_full_camera", "theory_usable_depth_range_um",
                    "camera_fps", "frames_per_volume", "volumes_per_second"):
            assert key in e, (e["name"], key)
        n = len(e["depths_um"])
        assert n >= 2
        for key in ("lateral_resolution_um", "lateral_fwhm_um", "axial_resolution_um", "theory_lateral_resolution_um"):
            assert len(e[key]) == n
            assert all(v is None or (math.isfinite(v) and v > 0) for v in e[key]), (e["name"], key, e[key])
        assert any(v is not None for v in e["lateral_resolution_um"]), e["name"]
        assert all(v > 0 for v in e["fov_um"])
        assert e["frames_per_volume"] == 1 and e["volumes_per_second"] == e["camera_fps"] == 100.0
        assert e["usable_depth_range_um"] >= 0 and e["resolvable_voxels"] >= 0
        best = e["best_lateral_resolution_um"]
        # the best within the usable depth range: one of the measured values, never below the overall minimum
        measured = [v for v in e["lateral_resolution_um"] if v is not None]
        assert best in measured and best >= min(measured)
        below, above = e["usable_depth_range_per_side_um"]
        assert below >= 0 and above >= 0 and below + above == pytest.approx(e["usable_depth_range_um"])
        for v, r in zip(e["lateral_resolution_um"], e["lateral_resolution_range_um"]):
            if v is not None:
                assert r[0] <= v and (r[1] is None or v <= r[1])  # None: a repeat resolved none
        if e["kind"] == "lfm":
            assert e["seconds_per_volume"] > 0 and e["seconds_per_volume_full_camera"] > e["seconds_per_volume"]
            t = e["timing"]
            assert t["operator_build_s"] >= 0 and t["seconds_per_iteration_crop"] > 0
            assert t["full_camera"]["method"] and t["full_camera"]["camera_shape"] == e["camera_shape"]
            # LFM two-point resolution is not better than the wide-field Sparrow limit / 2 anywhere
            sparrow = 0.4736 * e["wavelength_um"] / e["na"]
            assert all(v is None or v > 0.5 * sparrow for v in e["lateral_resolution_um"])
    for p in res["published"]:
        assert set(p) >= {"system", "quantity", "published", "measured", "relative_difference"}


def test_protocol_recorded_and_both_signs_measured(smallest_run):
    res = json.loads((smallest_run / "results.json").read_text())
    p = res["protocol"]
    assert p["photons_per_bead"] == 1e4 and p["background_photons_per_pixel"] == 0.0
    assert p["repeats"] >= 3 and p["mirrored_z"] is False and p["simulation_model"] and p["placement"].startswith("stratified")
    assert res["convergence"] and {c["variable"] for c in res["convergence"]} == {"iterations", "photons"}
    for e in res["designs"]:
        assert e["depths_mirrored"] is False
        z = np.array(e["depths_um"])
        assert (z < 0).any() and (z > 0).any()
        rows = {r["z_um"]: r for r in e["per_depth"]}
        zp = max(z)
        pos_p, pos_n = rows[zp]["bead_positions_um"], rows[-zp]["bead_positions_um"]
        assert len(pos_p) == p["repeats"]
        # -z is imaged at its own depths, not a copy of +z
        assert all(b["z_um"] < 0 for b in pos_n) and all(b["z_um"] > 0 for b in pos_p)
        assert [-b["z_um"] for b in pos_n] != pytest.approx([b["z_um"] for b in pos_p])


def test_beads_are_off_the_reconstruction_grid(smallest_run):
    res = json.loads((smallest_run / "results.json").read_text())
    size = designs.SIZES["smallest"]
    by = {d.name: d for d in designs.standard_designs(size)}
    for e in res["designs"]:
        m = designs.reconstruction_microscope(by[e["name"]], size)
        xc, yc = phantoms.voxel_centres_um(m, "x"), phantoms.voxel_centres_um(m, "y")
        for r in e["per_depth"]:
            for b in r["bead_positions_um"]:
                for x in [b["x_left_um"]] + b["x_right_um"]:
                    assert protocol.off_grid(x, xc), (e["name"], x)
                assert protocol.off_grid(b["y_um"], yc)
                if e["kind"] == "lfm":
                    assert protocol.off_grid(b["z_um"], m.z_um)
                assert b["z_um"] != r["z_um"]


def test_same_detected_photons_per_bead_across_designs_and_depths():
    """Each bead's expected photo-electrons on an unbounded sensor equal --photons for every design and depth."""
    size = designs.SIZES["smallest"]
    prot = protocol.Protocol(photons_per_bead=5e3)
    totals = []
    for d in designs.standard_designs(size):
        m = designs.reconstruction_microscope(d, size)
        if d.kind == "lfm":
            big = m.replace(camera={"shape": [15 * m.pixels_per_lenslet] * 2})
            zs = (-20.0, 0.0, 20.0)
        else:
            big = m.replace(camera={"shape": [301, 301]})
            zs = (-1.0, 0.0, 1.0)
        for z in zs:
            pat = protocol.bead_patterns(protocol.simulation_microscope(big, prot), [(0.37, -0.21, z + 0.3)], prot)
            ph = protocol.mean_photons(big.camera, pat, prot)
            totals.append(float(ph.sum()) * big.camera.quantum_efficiency)
    # all but the Debye tail outside the window (and the lenslet array's edge) is detected
    assert min(totals) > 0.96 * 5e3 and max(totals) <= 5e3 * 1.001, totals


def test_repeats_are_seeded_and_reproducible():
    size = designs.SIZES["smallest"]
    d = [x for x in designs.standard_designs(size) if x.kind == "lfm"][0]
    m = designs.reconstruction_microscope(d, size)
    from optics.lfpsf import compute_psf
    from reconstruction.operator import LightFieldOperator

    op = LightFieldOperator(compute_psf(m, progress=False), device="cpu")
    xc, yc = twopoint.voxel_centres(m)
    prot = protocol.Protocol()

    def point(seed):
        ctx = twopoint.Context(m, protocol.simulation_microscope(m, prot), op, xc, yc, m.z_um, 10.0, prot, seed, 1, 4)
        r = twopoint.measure_point(ctx, 2, 20.0, np.array([3.5, 5.0, 7.5]))
        return r["bead_positions_um"], r["resolved_fraction"], r.pop("_frame")

    a, b, c = point(7), point(7), point(8)
    assert a[0] == b[0] and a[1] == b[1] and np.array_equal(a[2], b[2])
    assert a[0] != c[0]
    assert len({p["x_left_um"] for p in a[0]}) == prot.repeats  # repeats are independent draws


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
    assert tradeoff.main(["--smallest", "--photons", "-5", "--out", str(tmp_path / "c")]) == 2
    assert "--photons" in capsys.readouterr().err
    assert tradeoff.main(["--smallest", "--repeats", "2", "--out", str(tmp_path / "d")]) == 2
    assert "--repeats" in capsys.readouterr().err
    assert tradeoff.main(["--smallest", "--background", "-1", "--out", str(tmp_path / "e")]) == 2
    assert "--background" in capsys.readouterr().err
    assert tradeoff.main(["--smallest", "--camera-fps", "0", "--out", str(tmp_path / "f")]) == 2
    assert "--camera-fps" in capsys.readouterr().err
    assert not any((tmp_path / k).exists() for k in "abcdef")


def test_every_option_has_help():
    for a in tradeoff._parser()._actions:
        assert a.help, a.option_strings


def test_designs_are_f_number_matched_on_one_camera():
    ds = designs.standard_designs(designs.SIZES["quick"])
    lfm = [d.microscope for d in ds if d.kind == "lfm"]
    assert {m.camera.pixel_um for m in lfm} == {10.0}
    assert len({m.camera.shape for m in lfm}) == 1
    assert {m.pixels_per_lenslet for m in lfm} == set(designs.SIZES["quick"].nnums)
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


def test_worker_processes_do_not_change_results(smallest_run, tmp_path, monkeypatch):
    """A design measured in this process equals the one measured in a worker (``--jobs 2``): positions
    and decisions come from the design's own seeded streams (widths to float32 round-off); only times differ."""
    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path / "cache"))
    res = json.loads((smallest_run / "results.json").read_text())
    assert res["jobs"] == 2
    size = designs.SIZES["smallest"]
    ds = designs.standard_designs(size)
    i = next(k for k, d in enumerate(ds) if d.kind == "lfm" and d.microscope.pixels_per_lenslet == 7)
    here = json.loads(json.dumps(tradeoff.measure(ds[i], size, device="cpu", design_index=i), default=float))
    there = res["designs"][i]
    assert there["name"] == here["name"]
    for key in ("depths_um", "lateral_resolution_um", "lateral_resolution_range_um", "usable_depth_range_um"):
        assert there[key] == here[key], key
    # widths interpolate reconstructed values: equal up to the float32 round-off of another thread split
    for key in ("lateral_fwhm_um", "axial_resolution_um"):
        np.testing.assert_allclose(np.array(there[key], dtype=float), np.array(here[key], dtype=float),
                                   rtol=1e-4, err_msg=key)
    for a, b in zip(there["per_depth"], here["per_depth"]):
        assert a["bead_positions_um"] == b["bead_positions_um"]
        assert a["resolved_fraction"] == b["resolved_fraction"]
    # timed afterwards in the parent, with every core: present and positive
    assert there["seconds_per_volume"] > 0 and there["timing"]["seconds_per_iteration_crop"] > 0
    assert there["timing"]["full_camera"]["seconds_per_volume"] > 0
    assert "_timing_frame" not in there and "timing_frame" not in there


def test_a_sweep_left_unresolved_is_extended_upwards():
    """When a repeat does not resolve the largest tested separation its resolution is unknown (the
    sweep's guess was too low, e.g. just outside an LFM's artifact band where theory drops sharply):
    the sweep is extended above it (same left beads, new off-grid partners) up to the ceiling, so the
    wide-field resolution at focus (~0.57 um at 20x/0.5W) is measured from a sweep of 0.2-0.4 um."""
    from optics import theory

    m, xc, ctx = _smallest_widefield()
    px = m.voxel_um
    start = np.array([2, 3, 4]) * px  # all below the two-point distance
    r0 = twopoint.measure_point(ctx, 0, 0.0, start)
    assert r0["extended_rounds"] == 0 and r0["lateral_resolution_um"] is None
    r = twopoint.measure_point(ctx, 0, 0.0, start, quantum=0.5, ceiling_um=1.5)
    assert r["extended_rounds"] >= 1
    seps = np.array(r["separations_um"])
    assert seps.max() > start.max() and seps.max() <= 1.5 + 1e-9 and np.all(np.diff(seps) > 0)
    assert all(v is not None for v in r["lateral_resolution_per_repeat_um"])
    assert abs(r["lateral_resolution_um"] / float(theory.lateral_resolution_m(m, 0.0, twopoint.MIN_DIP)) - 1) < 0.25
    for p in r["bead_positions_um"]:  # every partner, old and new, off the pixel grid
        assert len(p["x_right_um"]) == len(seps)
        assert all(protocol.off_grid(x, xc) for x in p["x_right_um"])


def test_jobs_argument_is_checked():
    assert tradeoff.resolve_jobs("auto", "gpu", 5) == 1
    assert tradeoff.resolve_jobs(8, "cpu", 3) == 3
    with pytest.raises(ValueError, match="--jobs"):
        tradeoff.resolve_jobs(0, "cpu", 3)


def _smallest_widefield():
    """The smallest size's wide-field design: its microscope, x voxel centres and a two-point context."""
    size = designs.SIZES["smallest"]
    d = [x for x in designs.standard_designs(size) if x.kind == "widefield"][0]
    m = designs.reconstruction_microscope(d, size)
    xc, yc = twopoint.voxel_centres(m)
    prot = protocol.Protocol()
    return m, xc, twopoint.Context(m, protocol.simulation_microscope(m, prot), None, xc, yc, None, 0.5, prot, 3, 0, 0)


def test_a_sweep_resolved_everywhere_is_refined_downwards():
    """When the smallest tested separation is resolved, the result would only be an upper bound at the
    sweep's start: the sweep is refined below it (same left beads, new off-grid partners), so the
    wide-field resolution at focus is measured (~0.5 um at 20x/0.5W) from a sweep that began at 1.5 um."""
    m, xc, ctx = _smallest_widefield()
    px = m.voxel_um
    start = np.array([15, 20, 30]) * px  # all well above the Sparrow distance
    r = twopoint.measure_point(ctx, 0, 0.0, start, floor_um=1.2 * px, quantum=0.5)
    assert r["refined_rounds"] >= 1
    seps = np.array(r["separations_um"])
    assert seps.min() < start.min() and np.all(np.diff(seps) > 0)
    assert r["lateral_resolution_um"] < start.min()
    from optics import theory

    # the closed-form two-point distance with the same 10% dip (0.567 um here); measured 0.55 um
    # after two rounds (1.5 -> 0.8 -> 0.45 um sweeps), with 0.05 um (half-pixel) steps
    assert abs(r["lateral_resolution_um"] / float(theory.lateral_resolution_m(m, 0.0, twopoint.MIN_DIP)) - 1) < 0.25
    for p in r["bead_positions_um"]:  # every partner, old and new, off the pixel grid
        assert len(p["x_right_um"]) == len(seps)
        assert all(protocol.off_grid(x, xc) for x in p["x_right_um"])
    # without a floor the sweep is kept as it is (the upper bound at its start)
    r0 = twopoint.measure_point(ctx, 0, 0.0, start)
    assert r0["refined_rounds"] == 0 and r0["upper_bound"] and r0["lateral_resolution_um"] == start.min()


def test_the_low_resolution_band_at_focus_is_measured_near_focus():
    """An LFM 1.0 resolves no finer than its lenslet pitch at the native focal plane (Broxton et al.
    2013): measured at the full run's sampling (7 voxels per lenslet, 0.25 um) on a depth grid of a
    quarter band half-width (beads within 0.1 band of 0, b/2, b, 2b; b = 0.92 um), the 40x/0.95
    N = 7 design's median two-point resolution at focus is the pitch d / M = 1.75 um and finer
    outside the band (measured 1.75 at focus, 1.25 at b/2, 1.125 at b, 1.25 at 2b; ~10 s), so
    ``benchmarks.focusband`` calls the band shown.  (At the quick size's 3 voxels per lenslet the
    off-focus rows read 1.46 um, 2.5 voxels: sampling-limited, and the band is not separable.)"""
    from benchmarks.focusband import focus_band

    quick, full = designs.SIZES["quick"], designs.SIZES["full"]
    size = dataclasses.replace(quick, voxel_target=full.voxel_target, max_voxels_per_lenslet=full.max_voxels_per_lenslet)
    ds = designs.standard_designs(quick)
    i = next(k for k, d in enumerate(ds) if d.name == "lfm-40x-0.95-N7")
    m = designs.reconstruction_microscope(ds[i], size)
    assert m.volume.voxels_per_lenslet == 7
    band = tradeoff.artifact_band(m)
    rows = tradeoff.near_focus(ds[i], size, band / 4, (0.0, 0.5 * band, band, 2 * band), design_index=i,
                               z_max_um=2.5 * band)
    pitch = m.lenslet_pitch_object_um
    assert max(abs(z) for z in rows[0]["bead_z_um"]) <= 0.1 * band + 1e-9
    fb = focus_band(rows, band, pitch)
    assert fb["median_in_band_um"] >= 0.95 * pitch, fb
    assert [c["z_um"] for c in fb["compared"]] == pytest.approx([band, 2 * band])
    assert all(c["median_um"] < 0.8 * pitch for c in fb["compared"]), fb
    assert fb["shown"] is True


def test_a_worker_error_reaches_the_caller(tmp_path, monkeypatch):
    """With --jobs 2 a design that cannot be measured raises its own error in the parent."""
    import dataclasses

    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path / "cache"))
    size = designs.SIZES["smallest"]
    ds = designs.standard_designs(size)[:2]
    bad = dataclasses.replace(ds[1], depths_um=(float("nan"),))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="finite depths"):
        tradeoff.run(size, [ds[0], bad], out, device="cpu", progress=False, plots=False, jobs=2)


def test_full_run_measures_each_lfm_near_focus(tmp_path, monkeypatch):
    """The full size adds a near-focus study to each LFM 1.0 (a grid of a quarter band half-width,
    beads within 0.1 band of 0, 0.5, 1 and 2 band half-widths); it is rendered in results.md."""
    import dataclasses

    from benchmarks import report

    assert designs.SIZES["full"].near_focus and not designs.SIZES["quick"].near_focus
    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path / "cache"))
    size = dataclasses.replace(designs.SIZES["smallest"], near_focus=True)
    ds = designs.standard_designs(size)
    i = next(k for k, d in enumerate(ds) if d.kind == "lfm" and d.microscope.pixels_per_lenslet == 7)
    e = tradeoff.measure(ds[i], size, device="cpu", design_index=i, full_camera_timing="extrapolate")
    nf = e["near_focus"]
    band = e["artifact_band_um"]
    assert nf["z_step_um"] == pytest.approx(band / 4)
    assert [r["z_um"] for r in nf["rows"]] == pytest.approx([0.0, 0.5 * band, band, 2 * band])
    for r in nf["rows"]:
        assert all(abs(z - r["z_um"]) <= 0.1 * band + 1e-9 for z in r["bead_z_um"])
        assert len(r["lateral_resolution_per_repeat_um"]) == 3
    res = {"size": "smallest", "device": "cpu", "device_name": "cpu", "started": "-", "wall_seconds": 1.0,
           "settings": {"description": "-"}, "threshold_um": 4.0, "designs": [e], "convergence": [],
           "protocol": {"photons_per_bead": 1e4, "background_photons_per_pixel": 0.0, "repeats": 3},
           "published": [], "notes": []}
    assert e["focus_band"]["in_band_theory_um"] == pytest.approx(ds[i].microscope.lenslet_pitch_object_um)
    assert nf["focus_band"]["artifact_band_um"] == pytest.approx(band)
    md = report.render_markdown(res)
    assert "## Near focus" in md and "## Band at the native focal plane" in md


def test_widefield_crop_holds_the_sweep_at_every_depth():
    """The wide-field crop grows with the design's depths so the two-point sweep (separations up to
    0.4 of the field) reaches 1.6x theory's resolution at the deepest one: 355 px (17.7 um) for the
    40x/0.95 at +-2 um (theory 4.43 um), where the fixed 64 px capped it at 1.25 um; the size's
    crop when that is larger (the smallest size's 48 px at +-1 um of the 20x)."""
    from optics import theory

    for name in ("quick", "full", "smallest"):
        size = designs.SIZES[name]
        for d in designs.standard_designs(size):
            if d.kind != "widefield":
                continue
            m = designs.reconstruction_microscope(d, size)
            side = m.image_shape[1]
            coarsest = max(float(theory.lateral_resolution_m(d.microscope, z, twopoint.MIN_DIP)) for z in d.depths_um)
            assert side >= size.widefield_crop_px
            assert 0.4 * (side - 1) * m.voxel_um >= 1.6 * coarsest - m.voxel_um
            if d.name == "widefield-40x-0.95" and name == "quick":
                assert side == 355
            if name == "smallest":
                assert side == 48


def test_widefield_partner_patterns_are_the_exact_patterns_at_their_positions():
    """The wide-field partners are shifted crops of two patterns computed on a wider camera (same rows):
    each equals the pattern computed directly at the partner's position on the crop, to round-off."""
    m, xc, ctx = _smallest_widefield()
    pos = {"x_left_um": -0.33 - 0.0123, "y_um": 0.17 + 0.0071, "z_um": 0.7}
    seps = np.array([0.35, 0.5, 1.05, 2.2])
    got = twopoint._patterns(ctx, pos, seps)
    pts = [(pos["x_left_um"] + s, pos["y_um"], pos["z_um"]) for s in np.concatenate([[0.0], seps])]
    want = protocol.bead_patterns(ctx.m_sim, pts, ctx.protocol)
    for g, w in zip(got, want):
        assert g.shape == w.shape == m.image_shape
        np.testing.assert_allclose(g, w, rtol=0, atol=1e-12 * w.max())


def test_a_stopped_run_is_resumed_where_it_stopped(smallest_run, tmp_path, tmp_path_factory, monkeypatch, capsys):
    """Each design's entry is saved as it is measured (``benchmarks.resume``); ``resume=True`` measures
    only the designs not saved, refuses a folder started with other settings, and gives the results
    of an uninterrupted run (the same seeded streams)."""
    from benchmarks.resume import ResumeError

    monkeypatch.setenv("LFMSIM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lfmsim-cache"))
    size = designs.SIZES["smallest"]
    pick = designs.standard_designs(size)[:2]
    out = tmp_path / "run"
    out.mkdir()
    real = tradeoff.measure
    calls = []

    def stopped_on_the_second(d, *a, **k):
        calls.append(d.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(d, *a, **k)

    monkeypatch.setattr(tradeoff, "measure", stopped_on_the_second)
    with pytest.raises(KeyboardInterrupt):
        tradeoff.run(size, pick, out, device="cpu", progress=False, plots=False)
    assert not (out / "results.json").exists()
    assert sorted(p.name for p in (out / "designs").iterdir()) == [f"00-{pick[0].name}.json"]
    with pytest.raises(ResumeError, match="seed"):
        tradeoff.run(size, pick, out, device="cpu", progress=False, plots=False, seed=5, resume=True)
    with pytest.raises(FileExistsError, match="not empty"):  # a new run never writes into it
        tradeoff.run(size, pick, out, device="cpu", progress=False, plots=False)
    assert tradeoff.main(["--smallest", "--resume", str(out), "--seed", "5", "--no-progress"]) == 2
    assert "seed" in capsys.readouterr().err
    calls.clear()
    monkeypatch.setattr(tradeoff, "measure", lambda d, *a, **k: (calls.append(d.name), real(d, *a, **k))[1])
    res = tradeoff.run(size, pick, out, device="cpu", progress=False, plots=False, resume=True)
    assert calls == [pick[1].name]
    assert res["resumed_designs"] == [pick[0].name]
    assert (out / "results.json").exists()
    with pytest.raises(ResumeError, match="complete"):
        tradeoff.run(size, pick, out, device="cpu", progress=False, plots=False, resume=True)
    ref = json.loads((smallest_run / "results.json").read_text())["designs"][:2]
    for got, want in zip(res["designs"], ref):
        assert got["name"] == want["name"]
        for key in ("depths_um", "lateral_resolution_um", "usable_depth_range_um"):
            assert got[key] == want[key], (got["name"], key)
