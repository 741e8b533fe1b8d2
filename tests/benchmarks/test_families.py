"""The other LFM families in the trade-off sweep: the designs, and the Fourier LFM's reduced copy."""

import math

import numpy as np
import pytest

from benchmarks import designs as D
from optics.config import Microscope
from optics.lfpsf import sensor_pattern


def _flfm(propagation="fresnel"):
    return Microscope.from_dict({
        "microscope": {"kind": "flfm", "wavelength_um": 0.52},
        "objective": {"magnification": 20, "na": 0.5, "immersion_index": 1.33, "tube_lens_focal_um": 200000},
        "mla": {"pitch_um": 338.0, "focal_um": 5070.0, "fourier_lens_focal_um": 24000.0, "lenslets": [3, 3]},
        "camera": {"pixel_um": 6.5, "shape": [241, 241]},
        "volume": {"z_min_um": -20, "z_max_um": 20, "z_step_um": 10},
        "simulation": {"propagation": propagation}})


def test_reduced_copy_keeps_magnification_views_and_elemental_images():
    """Dividing d, f_ml, f2 (and b, centres) by k keeps M_T, N and each view's f-number; in the
    paraxial chain each elemental image is the Fourier transform of the same pupil patch, so the
    spots of the full design and of its copy agree (here to 2%, L2, at z = 15 um, on and off axis)."""
    m = _flfm()
    d_px = 2 * 0.5 * m.fourier_focal_um / 6.5
    small, k = D.flfm_surrogate(m, pupil_px=d_px / 2)
    assert k == pytest.approx(2.0)
    assert small.lateral_magnification == pytest.approx(m.lateral_magnification, rel=1e-12)
    n_full = 2 * 0.5 * m.fourier_focal_um / m.mla.pitch_um
    assert 2 * 0.5 * small.fourier_focal_um / small.mla.pitch_um == pytest.approx(n_full, rel=1e-12)
    assert small.mla.focal_um / small.mla.pitch_um == pytest.approx(m.mla.focal_um / m.mla.pitch_um)
    small = small.replace(camera={"shape": [151, 151]})
    a = sensor_pattern(m, (0.0, 0.0, 15.0), precision="double")
    b = sensor_pattern(small, (0.0, 0.0, 15.0), precision="double")
    for c in (0, 52):  # the axial lenslet and the +x one (338 um = 52 px; 26 px in the copy)
        pa = a[120 - 10: 120 + 11, 120 + c - 10: 120 + c + 11]
        pb = b[75 - 10: 75 + 11, 75 + c // 2 - 10: 75 + c // 2 + 11]
        err = np.linalg.norm(pa / pa.sum() - pb / pb.sum()) / np.linalg.norm(pa / pa.sum())
        assert err < 0.02, (c, err)
    # the same share of the pupil passes, less the band limit's 1/pi^2 samples per edge length
    # (optics.lenslets.edge_amplitude): 4 dx / (pi^2 d) of a lenslet's power, twice that in the copy
    loss = 4 * 3.25 / (math.pi**2 * 338.0)
    assert b.sum() / a.sum() == pytest.approx(1 - loss, abs=1e-3)


def test_family_designs_are_in_the_default_sweep():
    ds = D.standard_designs(D.SIZES["quick"])
    kinds = {d.kind for d in ds}
    assert {"widefield", "lfm", "lfm-defocused", "flfm"} <= kinds
    names = [d.name for d in ds]
    assert "flfm-20x-0.5w" in names and "xlfm-20x-0.5w" in names and "lfm2-20x-0.5w" in names
    lfm2 = next(d for d in ds if d.kind == "lfm-defocused")
    assert lfm2.microscope.camera.pixel_um == 10.0 and lfm2.microscope.camera.shape == (2048, 2048)
    flfm = next(d for d in ds if d.name == "flfm-20x-0.5w")
    lfm = next(d for d in ds if d.kind == "lfm" and d.label == flfm.label)
    assert flfm.z_step_um == lfm.z_step_um and flfm.z_max_um == lfm.z_max_um
    assert set(flfm.depths_um) <= set(lfm.depths_um) and min(flfm.depths_um) < 0 < max(flfm.depths_um)
    full = {d.name: d for d in D.standard_designs(D.SIZES["full"])}
    assert full["flfm-20x-0.5w"].depths_um == full["lfm-20x-0.5w-N15"].depths_um
    m_rec = D.reconstruction_microscope(flfm, D.SIZES["quick"])
    assert m_rec.kind == "flfm" and "reduced" in m_rec.name
    assert 2 * 0.5 * m_rec.fourier_focal_um / m_rec.camera.pixel_um == pytest.approx(D.SIZES["quick"].flfm_pupil_px)
    assert m_rec.lateral_magnification == pytest.approx(flfm.microscope.lateral_magnification)
    assert not D.SIZES["smallest"].families
    assert math.isclose(m_rec.z_um[-1], -m_rec.z_um[0])
