"""The scanning LFM in the trade-off benchmark: designs, photons per volume, voxels, one tiny run end to end."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from benchmarks import designs as D
from benchmarks import protocol as P
from benchmarks import report, timing, tradeoff


def _by_name(size):
    return {d.name: d for d in D.standard_designs(size)}


@pytest.mark.parametrize("size_name, scans", [("full", (3, 5)), ("quick", (3,))])
def test_slfm_designs_in_the_sweep(size_name, scans):
    """sLFM K x K (ring) designs on the optics and camera of the N = 15 20x/0.5W LFM; full: the LFM's
    depths; quick: the families' 4 depths; both signs of z."""
    size = D.SIZES[size_name]
    ds = _by_name(size)
    slfm = [d for d in ds.values() if d.kind == "slfm"]
    assert sorted(d.microscope.scan.steps for d in slfm) == list(scans)
    lfm = ds["lfm-20x-0.5w-N15"]
    for d in slfm:
        m, k = d.microscope, d.microscope.scan.steps
        assert d.name == f"slfm-20x-0.5w-N15-{k}x{k}"
        assert m.scan.order == "ring" and m.scan_steps == k and d.label == lfm.label
        a, b = m.to_dict(), lfm.microscope.to_dict()
        for key in ("objective", "mla", "camera"):
            assert a[key] == b[key], key
        assert m.wavelength_um == lfm.microscope.wavelength_um
        assert d.z_step_um == lfm.z_step_um and d.z_max_um == lfm.z_max_um
        z = np.array(d.depths_um)
        assert (z < 0).any() and (z > 0).any() and 0.0 in d.depths_um
        if size_name == "full":
            assert d.depths_um == lfm.depths_um
        else:
            assert d.depths_um == (-24.0, 0.0, 24.0)  # quick: 3 depths, both sides of focus
    assert not [d for d in D.standard_designs(D.SIZES["smallest"]) if d.kind == "slfm"]
    # without the N = 15 LFM in the sweep there is no sLFM beside it
    assert not [d for d in D.standard_designs(size, nnums=(7,)) if d.kind == "slfm"]


def test_slfm_voxels_per_lenslet_rule():
    """An odd multiple of K: the smallest meeting the voxel target, within min(K N, the scanning LFMs'
    cap: slfm_max_voxels_per_lenslet, else max_voxels_per_lenslet); K when K exceeds that cap; the
    config accepts every result."""
    full, quick, smallest = D.SIZES["full"], D.SIZES["quick"], D.SIZES["smallest"]
    lfm = D._matched_lfm(D.presets.get("lfm-20x-0.5w"), 15, 10.0, 20480.0)
    got = {}
    for size in (full, quick, smallest):
        for k in (3, 5):
            m = D.scanned_lfm(lfm, k)
            s = D.voxels_per_lenslet(m, size)
            got[size.name, k] = s
            assert s % k == 0 and (s // k) % 2 == 1
            d = D.Design(m.name, m, "20x/0.5W", (0.0,), 10.0, 5.0)
            assert D.reconstruction_microscope(d, size).voxels_per_lenslet == s  # a valid config
    # d/M = 7.5 um; full: target 0.52 um -> 15, the scans' cap 15: 15 for both (one grid); quick: 1.25 um
    # -> 7 -> 9 (3x3), 15 capped at 9 -> 5 (5x5); smallest: cap 3 -> 3, and K = 5 above the cap -> 5
    assert got == {("full", 3): 15, ("full", 5): 15, ("quick", 3): 9, ("quick", 5): 5,
                   ("smallest", 3): 3, ("smallest", 5): 5}
    # without the scans' own cap the full size's 11 applies: 9 (3x3), 5 (5x5)
    capped = dataclasses.replace(full, slfm_max_voxels_per_lenslet=None)
    assert [D.voxels_per_lenslet(D.scanned_lfm(lfm, k), capped) for k in (3, 5)] == [9, 5]
    # the config's s <= K N: a 3-pixel lenslet with a fine target and a generous cap stops at 9
    small = D._matched_lfm(D.presets.get("lfm-20x-0.5w"), 3, 10.0, 300.0)
    fine = dataclasses.replace(quick, voxel_target=0.05, max_voxels_per_lenslet=99)
    assert D.voxels_per_lenslet(D.scanned_lfm(small, 3), fine) == 9
    with pytest.raises(ValueError, match="steps"):
        D.scanned_lfm(small, 5)
    with pytest.raises(ValueError, match="steps"):
        D.scanned_lfm(lfm, 4)


def test_photons_split_over_the_scan_frames():
    """A bead's mean photons summed over the K^2 frames equal the LFM's for the same bead (the same
    budget per volume), to 1% (the window edge); the background is 1/K^2 per frame."""
    size = D.SIZES["smallest"]
    lfm = D._matched_lfm(D.presets.get("lfm-20x-0.5w"), 15, 10.0, 20480.0)
    prot = P.Protocol(photons_per_bead=4.5e3, background_photons_per_pixel=9.0)
    zero_bg = dataclasses.replace(prot, background_photons_per_pixel=0.0)
    for k in (3, 5):
        sl = D.Design("s", D.scanned_lfm(lfm, k), "20x/0.5W", (0.0,), 20.0, 10.0)
        m = D.reconstruction_microscope(sl, size)
        m = m.replace(camera={"shape": [7 * 15, 7 * 15]})
        sim = P.simulation_microscope(m, prot)
        sim_lfm = sim.replace(kind="lfm", scan=None, volume={"voxels_per_lenslet": 1})
        for z in (-14.3, 3.7):
            pt = [(0.37, -0.21, z)]
            pat = P.bead_patterns(sim, pt, prot)
            assert pat[0].shape == (k * k, *m.image_shape)
            ph = P.mean_photons(m.camera, pat, zero_bg, frames_per_volume=k * k)
            ref = P.mean_photons(m.camera, P.bead_patterns(sim_lfm, pt, prot), zero_bg)
            assert float(ph.sum()) == pytest.approx(float(ref.sum()), rel=0.01)
            assert float(ph.sum()) * m.camera.quantum_efficiency > 0.95 * 4.5e3
            # every frame holds about 1/K^2 of the bead's photons
            per = ph.sum(axis=(1, 2)) / ref.sum()
            assert np.all(np.abs(per - 1 / k**2) < 0.1 / k**2), per
            bg = P.mean_photons(m.camera, pat, prot, frames_per_volume=k * k) - ph
            assert np.allclose(bg * m.camera.quantum_efficiency, 9.0 / k**2)
        rng = np.random.default_rng(0)
        fr = P.noisy_frames(m.camera, [pat, pat], prot, rng, frames_per_volume=k * k)
        assert fr.shape == (2, k * k, *m.image_shape)
    with pytest.raises(ValueError, match="frames_per_volume"):
        P.mean_photons(m.camera, pat, prot, frames_per_volume=4)
    with pytest.raises(ValueError, match="frames_per_volume"):
        P.mean_photons(m.camera, pat, prot, frames_per_volume=0)


def test_volume_rate_and_band():
    lfm = D._matched_lfm(D.presets.get("lfm-20x-0.5w"), 15, 10.0, 20480.0)
    sl = D.scanned_lfm(lfm, 3)
    assert tradeoff.volume_rate(sl, 100)["volumes_per_second"] == pytest.approx(100 / 9)
    assert tradeoff.volume_rate(lfm, 100)["volumes_per_second"] == 100.0
    assert tradeoff.volume_rate(lfm, 100)["frames_per_volume"] == 1
    with pytest.raises(ValueError, match="--camera-fps"):
        tradeoff.volume_rate(lfm, 0)
    # the band of the scan step d / K: a third of the LFM's
    assert tradeoff.artifact_band(sl) == pytest.approx(tradeoff.artifact_band(lfm) / 3)


@pytest.fixture(scope="module")
def tiny_slfm_run(tmp_path_factory, monkeypatch_module):
    """One sLFM 3x3 design of the smallest size at two depths, measured end to end (tradeoff.run)."""
    monkeypatch_module.setenv("LFMSIM_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "lfmsim-cache"))
    size = dataclasses.replace(D.SIZES["smallest"], slfm_scans=(3,), slfm_depth_fractions=(0.0, 1.0),
                               separations=(0.8, 1.3, 2.2), name="smallest")
    ds = [d for d in D.standard_designs(size) if d.kind == "slfm"]
    assert len(ds) == 1
    out = tmp_path_factory.mktemp("slfm") / "run"
    out.mkdir()
    res = tradeoff.run(size, ds, out, device="cpu", progress=False, camera_fps=90.0)
    return res, out, size


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


def test_tiny_slfm_measures_end_to_end(tiny_slfm_run):
    res, out, size = tiny_slfm_run
    e = json.loads((out / "results.json").read_text())["designs"][0]
    assert e["kind"] == "slfm" and e["scan_steps"] == 3 and e["scan_order"] == "ring"
    assert e["frames_per_volume"] == 9 and e["camera_fps"] == 90.0
    assert e["volumes_per_second"] == pytest.approx(90.0 / 9)
    assert e["depths_um"] == [0.0, 20.0]
    assert any(v is not None and math.isfinite(v) for v in e["lateral_resolution_um"])
    assert e["seconds_per_volume"] > 0 and e["seconds_per_volume_full_camera"] > e["seconds_per_volume"]
    full = e["timing"]["full_camera"]
    assert "phase-space grid" in full["method"] and full["flop_ratio"] > 1
    assert e["artifact_band_um"] == pytest.approx(1.33 * 150 / 3 / (2 * 20 * 0.5))
    for r in e["per_depth"]:  # a bead's mean share of the 5-lenslet crop per frame
        assert all(0.5 < f <= 1.0 + 1e-9 for f in r["bead_fraction_on_crop"])
    for name in ("results.md", "tradeoff.png", "resolution_vs_depth.png"):
        assert (out / name).stat().st_size > 0
    md = (out / "results.md").read_text()
    assert "s / volume (crop)" in md and "volumes / s at 90 fps" in md and "| 10 |" in md
    assert "Scanning LFM" in md
    assert "10" in report.summary(res).splitlines()[2]


def test_slfm_full_camera_extrapolation_uses_the_virtual_grid():
    """The extrapolated full-camera time scales by the FLOP ratio of the phase-space grids (K L virtual
    lenslets, s / K phases), the same with or without the crop's operator at hand."""
    from optics.lfpsf import compute_psf
    from reconstruction.cost import projection_cost
    from reconstruction.scanned import make_operator

    size = D.SIZES["smallest"]
    lfm = D._matched_lfm(D.presets.get("lfm-20x-0.5w"), 15, 10.0, 20480.0)
    d = D.Design("s", D.scanned_lfm(lfm, 3), "20x/0.5W", (0.0,), 10.0, 10.0)
    m = D.reconstruction_microscope(d, size)
    psf = compute_psf(m, progress=False)
    op = make_operator(psf, device="cpu")
    m_full = d.microscope.replace(volume={"z_min_um": m.volume.z_min_um, "z_max_um": m.volume.z_max_um,
                                          "z_step_um": m.volume.z_step_um, "voxels_per_lenslet": m.voxels_per_lenslet})
    a = timing.full_camera_seconds(psf, m_full, 0.1, 8, "cpu", "extrapolate", op=op)
    b = timing.full_camera_seconds(psf, m_full, 0.1, 8, "cpu", "extrapolate")
    assert a["flop_ratio"] == pytest.approx(b["flop_ratio"])
    ly, lx = m_full.n_lenslets
    c_full = projection_cost(len(psf.z_um), 1, 15, (3 * ly, 3 * lx), op.base.radii)
    c_crop = projection_cost(len(psf.z_um), 1, 15, op.base.lenslets, op.base.radii)
    assert a["flop_ratio"] == pytest.approx(c_full.fourier_flops / c_crop.fourier_flops)
    assert a["seconds_per_volume"] == pytest.approx(0.1 * a["flop_ratio"] * 8)
    # measure mode builds the full-camera ScannedOperator (here a 7-lenslet camera) and times a volume
    small = m_full.replace(camera={"shape": [7 * 15, 7 * 15]})
    c = timing.full_camera_seconds(psf, small, 0.1, 8, "cpu", "measure")
    assert c["method"] == "measured on the full camera", c
    assert c["operator_build_s"] > 0 and c["seconds_per_volume"] == pytest.approx(8 * c["seconds_per_iteration"])
