"""The band at the native focal plane: the lenslet-boundary model behind it, the stratified
placement of the repeats, and the worst-repeat judgement of ``benchmarks.focusband``."""

from dataclasses import replace

import numpy as np
import pytest

from benchmarks import designs as D
from benchmarks import protocol as P
from benchmarks import twopoint
from benchmarks.focusband import focus_band
from optics import theory
from optics.lfpsf import compute_psf
from reconstruction import metrics
from reconstruction.deconvolution import richardson_lucy
from reconstruction.scanned import make_operator


@pytest.fixture(scope="module")
def lfm40(tmp_path_factory):
    """The tradeoff's 40x/0.95 N = 15 LFM on a 5-lenslet crop, 5 voxels per lenslet, planes every 1.5 um."""
    size = replace(D.SIZES["quick"], crop_lenslets=5, max_voxels_per_lenslet=5)
    design = next(d for d in D.standard_designs(size) if d.name == "lfm-40x-0.95-N15")
    m = D.reconstruction_microscope(design, size).replace(
        volume={"z_min_um": -3.0, "z_max_um": 3.0, "z_step_um": 1.5, "voxels_per_lenslet": 5})
    psf = compute_psf(m, progress=False, cache=False)
    return m, make_operator(psf)


def _resolved(m, op, xa: float, xb: float, z: float = 0.3) -> bool:
    """Two beads at (xa, y, z), (xb, y, z), noise-free exact patterns of the finer simulation model,
    30 RL iterations, the benchmark's profile and two-point test."""
    prot = P.Protocol(photons_per_bead=1e5)
    y = 0.31 * m.voxel_um
    pats = P.bead_patterns(P.simulation_microscope(m, prot), [(xa, y, z), (xb, y, z)], prot)
    vol = richardson_lucy(((pats[0] + pats[1]) * 1e5).astype(np.float32), op, iterations=30, progress=False)
    iz = int(np.argmin(np.abs(m.z_um - z)))
    plane = vol[max(0, iz - 1):iz + 2].sum(axis=0)
    xc, yc = twopoint.voxel_centres(m)
    step = xc[1] - xc[0]
    row = twopoint._row(plane, (y - yc[0]) / step)
    return bool(metrics.sparrow_resolved(row, (xa - xc[0]) / step, (xb - xc[0]) / step, min_dip=twopoint.MIN_DIP))


def test_native_plane_pair_is_resolved_only_across_a_lenslet_boundary(lfm40):
    """At the native focal plane (z = 0.3 um, inside the band of 1.97 um) a pair half a pitch apart
    (d/M = 3.75 um; separation 1.875 um, about seven times the in-focus Sparrow distance
    0.47 lambda0/NA = 0.26 um) is not resolved when both beads sit behind the
    central lenslet, and is resolved when the same pair straddles the boundary at +-d/2: the model
    of ``theory.in_band_resolution_um`` (a pair s < d/M apart is resolved with probability s M/d)."""
    m, op = lfm40
    d = m.lenslet_pitch_object_um
    assert d == pytest.approx(3.75)
    assert abs(0.3) < theory.artifact_band_um(m.objective.na, m.objective.immersion_index, m.mla.pitch_um,
                                              m.objective.magnification)
    assert not _resolved(m, op, -0.27 * d, 0.23 * d)          # both behind the lenslet at 0
    assert _resolved(m, op, 0.23 * d, 0.73 * d)               # across the boundary at +d/2
    assert _resolved(m, op, -0.77 * d, -0.27 * d)             # across the boundary at -d/2


def test_in_band_resolution_is_one_sample_per_lenslet_or_scan_step():
    size = D.SIZES["quick"]
    lfm = next(d for d in D.standard_designs(size) if d.name == "lfm-40x-0.95-N15").microscope
    assert theory.in_band_resolution_um(lfm) == pytest.approx(150.0 / 40.0)
    slfm = D.scanned_lfm(lfm, 3)
    assert theory.in_band_resolution_um(slfm) == pytest.approx(150.0 / 40.0 / 3)
    # the theory curve falls back to it inside the band
    assert float(theory.lateral_resolution_m(lfm, 0.1)) == pytest.approx(150.0 / 40.0)
    wf = next(d for d in D.standard_designs(size) if d.microscope.kind == "widefield").microscope
    with pytest.raises(ValueError, match="no artifact band"):
        theory.in_band_resolution_um(wf)


def test_stratified_placement_puts_each_repeat_in_its_part_of_the_pitch():
    xc = np.arange(-20, 21) * 0.75
    seps = np.array([1.0, 2.0, 3.0])
    d = 3.75
    for n in (3, 5):
        phases = []
        for k in range(n):
            pos = P.draw_pair(P.repeat_rng(0, 1, 2, k), xc, xc, 0.0, 1.5, seps, d, stratum=(k, n))
            c = pos["x_left_um"] + 0.5 * np.median(seps)
            u = c / d + 0.5
            assert k / n <= u < (k + 1) / n
            phases.append(u)
        assert np.all(np.diff(phases) > 0)
    # reproducible, and independent of the other repeats
    a = P.draw_pair(P.repeat_rng(0, 1, 2, 1), xc, xc, 0.0, 1.5, seps, d, stratum=(1, 3))
    b = P.draw_pair(P.repeat_rng(0, 1, 2, 1), xc, xc, 0.0, 1.5, seps, d, stratum=(1, 3))
    assert a == b
    for bad in ((3, 3), (-1, 3), (0, 0)):
        with pytest.raises(ValueError, match="stratum"):
            P.draw_pair(P.repeat_rng(0), xc, xc, 0.0, 1.5, seps, d, stratum=bad)


def _row(z, per, theory_um):
    finite = sorted(v for v in per if v is not None)
    med = float(np.median(per)) if len(finite) == len(per) else (finite[len(per) // 2] if len(finite) > len(per) // 2
                                                                  else None)
    return {"z_um": z, "lateral_resolution_per_repeat_um": per, "lateral_resolution_um": med,
            "theory_lateral_resolution_um": theory_um}


def test_focus_band_compares_the_median_with_depths_where_theory_is_clearly_finer():
    rows = [_row(-12.0, [3.0, 3.1, 3.2], 3.04),   # theory above 2/3 of 3.75 = 2.5: not compared
            _row(-3.0, [2.4, 2.5, 2.4], 0.76),
            _row(0.0, [1.5, 3.0, 4.7], 3.75),     # median 3.0, worst 4.7
            _row(3.0, [2.4, 2.4, 2.6], 0.76)]
    fb = focus_band(rows, 1.97, 3.75)
    assert fb["shown"] is True
    assert fb["median_in_band_um"] == pytest.approx(3.0) and fb["worst_in_band_um"] == pytest.approx(4.7)
    assert fb["median_in_band_over_theory"] == pytest.approx(3.0 / 3.75)
    assert [c["z_um"] for c in fb["compared"]] == [-3.0, 3.0]
    assert fb["compared_below_um"] == pytest.approx(2.5)
    # a compared depth whose median is as coarse as the band's hides it (one coarse repeat does not)
    rows[3] = _row(3.0, [2.4, 3.3, 3.6], 0.76)
    assert focus_band(rows, 1.97, 3.75)["shown"] is False
    rows[3] = _row(3.0, [2.4, 2.4, 3.6], 0.76)
    assert focus_band(rows, 1.97, 3.75)["shown"] is True
    # most repeats unresolved: coarser than anything, inside (shows the band) or outside (hides it)
    rows[2] = _row(0.0, [1.5, None, None], 3.75)
    fb = focus_band(rows, 1.97, 3.75)
    assert fb["shown"] is True and fb["median_in_band_um"] is None and fb["worst_in_band_um"] is None
    rows[1] = _row(-3.0, [2.4, None, None], 0.76)
    assert focus_band(rows, 1.97, 3.75)["shown"] is False
    # nothing inside the band, or nothing to compare with: no verdict
    assert focus_band([r for r in rows if r["z_um"] != 0.0], 1.97, 3.75)["shown"] is None
    assert focus_band([rows[0], rows[2]], 1.97, 3.75)["shown"] is None
    for args, name in (((0.0, 3.75), "band_um"), ((1.97, -1.0), "in_band_um")):
        with pytest.raises(ValueError, match=name):
            focus_band(rows, *args)
