"""Digital adaptive optics of the scanning LFM (``reconstruction.dao``).

Independent references: Gaussians moved by known amounts (shift estimate and warp), Zernike shift
fields synthesised from their gradients (fit), the model's own defocus parallax (the views' pupil
coordinates and the sign of eps = (lambda0 / NA) grad W), views moved by a known field (the digital
Shack-Hartmann loop, FAMILIES.md section 3.8), and a spherical aberration put into the wave-optics
forward model (the whole method).
"""

import json

import numpy as np
import pytest

from optics import compute_psf, presets
from optics.camera import apply_camera
from optics.scan import realign, unrealign
from optics.simulation import point_photon_image
from reconstruction import reconstruct
from reconstruction.api import validate_image
from reconstruction.dao import (
    DigitalAO,
    _zernike_gradient,
    fit_zernike,
    remove_tilt_defocus,
    shift_images,
    shift_of,
    view_pupil_coordinates,
    write_aberration,
    zernike_shift_basis,
)
from reconstruction.phasespace import PhaseSpaceViews, phase_space_rl


def small(s=9, shape=105, z=(-12, 12, 4), **kw):
    return presets.get("lfm-20x-0.5w", kind="slfm", camera={"shape": [shape, shape]}, scan={"steps": 3},
                       volume={"z_min_um": z[0], "z_max_um": z[1], "z_step_um": z[2], "voxels_per_lenslet": s}, **kw)


def gaussian(shape, centre, sigma=2.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return np.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / (2 * sigma**2))


def test_shift_estimate_and_warp_of_known_shifts():
    a = gaussian((64, 64), (30.0, 30.0))
    b = gaussian((64, 64), (32.3, 29.4))
    dy, dx = shift_of(a, b, 5)
    assert dy == pytest.approx(2.3, abs=0.05) and dx == pytest.approx(-0.6, abs=0.05)
    np.testing.assert_allclose(shift_images(b, -2.3, 0.6), a, rtol=0, atol=1e-6)
    stack = np.stack([a, 2 * a])
    np.testing.assert_allclose(shift_images(stack, 2.3, -0.6)[1], 2 * b, rtol=0, atol=1e-6)


def test_tilt_and_defocus_fields_are_removed_and_others_kept():
    m = small()
    rho = view_pupil_coordinates(m)
    w = (np.hypot(rho[..., 0], rho[..., 1]) <= 1).astype(float)
    tilt_defocus = np.array([0.3, -0.2]) + 1.7 * rho
    np.testing.assert_allclose(remove_tilt_defocus(tilt_defocus, rho, w), 0, atol=1e-12)
    astig = _zernike_gradient(6, rho)  # orthogonal to both: unchanged
    np.testing.assert_allclose(remove_tilt_defocus(astig, rho, w)[w > 0], astig[w > 0], atol=1e-9)


def test_zernike_fit_recovers_synthetic_coefficients():
    m = small()
    rho = view_pupil_coordinates(m)
    w = (np.hypot(rho[..., 0], rho[..., 1]) <= 1).astype(float)
    truth = {5: 0.12, 6: -0.08, 7: 0.05, 8: 0.1, 11: -0.07}
    field = sum(c * (m.wavelength_um / m.objective.na) * _zernike_gradient(j, rho) for j, c in truth.items())
    field = field + np.array([0.4, -1.1]) + 0.8 * rho  # tilt and defocus, not estimable
    coef, rms = fit_zernike(m, remove_tilt_defocus(field, rho, w), rho, w)
    for j, c in coef.items():
        assert c == pytest.approx(truth.get(j, 0.0), abs=1e-6), j
    assert rms < 1e-6


def test_view_pupil_coordinates_follow_the_models_defocus_parallax():
    """A source moved by dz moves view rho by -dz NA rho / n (from eps = (lambda0/NA) grad W and a
    Zernike defocus = a source at -4 sqrt(3) c lambda0 n / NA^2): measured on the middle row of views
    of the wave-optics model, as the slope of the shift against rho_x."""
    m = small()
    rho = view_pupil_coordinates(m)
    z0, dz = 6.0, 2.0
    va = realign(point_photon_image(m, [[0.3, 0.2, z0]]), 3, 15)
    vb = realign(point_photon_image(m, [[0.3, 0.2, z0 + dz]]), 3, 15)
    step_um = m.lenslet_pitch_object_um / 3
    cols = range(2, 13)  # the views well inside the pupil
    shift = np.array([shift_of(va[7, v], vb[7, v], 6)[1] for v in cols]) * step_um
    slope = np.polyfit(rho[7, list(cols), 1], shift, 1)[0]
    assert slope == pytest.approx(-dz * 0.5 / 1.33, rel=0.3)  # measured -0.87 against -0.75


def _near(m, vol, pts):
    """Light within one voxel (and one plane) of the true bead positions, as a fraction of all."""
    c, v, (z0, dz) = m.volume_shape[1] // 2, m.voxel_um, (m.volume.z_min_um, m.volume.z_step_um)
    acc = 0.0
    for x, y, z in pts:
        ix, iy, iz = c + round(x / v), c + round(y / v), round((z - z0) / dz)
        acc += vol[max(iz - 1, 0): iz + 2, iy - 1: iy + 2, ix - 1: ix + 2].sum()
    return acc / vol.sum()


@pytest.fixture(scope="module")
def beads():
    m = small()
    rng = np.random.default_rng(1)
    pts = np.c_[rng.uniform(-18, 18, 12), rng.uniform(-18, 18, 12), rng.uniform(-10, 10, 12)]
    return m, pts, compute_psf(m, progress=False)


def test_digital_shack_hartmann_recovers_view_shifts(beads):
    """Ideal data whose views are moved by the tilt/defocus-free shift field of a known astigmatism +
    coma: DAO finds the field and the coefficients (within 0.02 waves; measured 0.087 and -0.072 for
    0.1 and -0.08 in one round of 4 passes) and undoes the blur (measured 0.80 -> 0.89)."""
    m, pts, psf = beads
    truth = {6: 0.1, 8: -0.08}
    views = PhaseSpaceViews(psf, "cpu")
    rho = view_pupil_coordinates(m)
    field_um = sum(c * b for c, b in zip(truth.values(), zernike_shift_basis(m, rho, views.weights, truth)))
    step = m.lenslet_pitch_object_um / 3
    ideal = point_photon_image(m, pts, photons_per_point=2e5 / 9)
    v = realign(ideal, 3, 15, m.scan.order)
    for u in range(15):
        for w in range(15):
            v[u, w] = shift_images(v[u, w], *(field_um[u, w] / step))
    frames, _ = validate_image(m, apply_camera(np.maximum(unrealign(v, 3, m.scan.order), 0), m.camera, rng=0))
    plain = phase_space_rl(frames, views, 4, progress=False)
    hook = DigitalAO(views)
    fixed = phase_space_rl(frames, views, 4, progress=False, correction=hook)
    coef = hook.result().zernike_waves
    for j, c in coef.items():
        assert c == pytest.approx(truth.get(j, 0.0), abs=0.02), (j, coef)
    assert _near(m, fixed, pts) > _near(m, plain, pts) + 0.05


def test_dao_corrects_a_spherical_aberration_of_the_forward_model(beads, tmp_path):
    """0.15 waves rms of spherical aberration (Noll 11) in the wave-optics model of the data (off-grid
    beads at -10..10 µm, shot and read noise); reconstructed with the ideal kernels.  Measured: 0.139
    waves after 3 rounds, light within one voxel of the beads 0.74 without DAO -> 0.95 (0.98 from
    unaberrated data)."""
    m, pts, psf = beads
    ab = m.replace(aberrations={"zernike_waves": {"11": 0.15}})
    frames = apply_camera(point_photon_image(ab, pts, photons_per_point=2e5 / 9), m.camera, rng=0)
    plain = reconstruct(m, frames, iterations=4, psf=psf, method="phase-space", progress=False)
    vol, est = reconstruct(m, frames, iterations=4, psf=psf, dao=True, progress=False)
    assert 0.12 < est.zernike_waves[11] < 0.18, est.zernike_waves
    assert max(abs(c) for j, c in est.zernike_waves.items() if j != 11) < 0.03
    assert _near(m, vol, pts) > _near(m, plain, pts) + 0.15
    out = write_aberration(tmp_path / "vol.aberration.json", est)
    data = json.loads(out.read_text())
    assert set(data["zernike_waves"]) == {str(j) for j in range(5, 22)}
    assert data["zernike_waves"]["11"] == pytest.approx(est.zernike_waves[11], abs=1e-6)
    # pasteable: the radially symmetric part goes straight back into a config
    radial = {k: v for k, v in data["zernike_waves"].items() if k in ("11", "22")}
    assert m.replace(aberrations={"zernike_waves": radial}).aberrations.coefficients[11] == pytest.approx(
        est.zernike_waves[11], abs=1e-6)


def test_multi_site_dao_finds_an_aberration_that_varies_across_the_field():
    """Beads left of the axis seen through +0.12 waves of astigmatism (Noll 6), right of it through
    -0.12 (synthetic view shifts on the ideal model, as above): one field averages them away (measured
    -0.03), 2 x 2 sub-fields find each side's sign (measured +0.10/+0.08 left, -0.08/-0.07 right) and
    reconstruct the beads better (light near them 0.858 -> 0.881)."""
    m = small(shape=225)
    rng = np.random.default_rng(4)
    pts = np.c_[rng.uniform(-50, 50, 16), rng.uniform(-50, 50, 16), rng.uniform(-10, 10, 16)]
    views = PhaseSpaceViews(compute_psf(m, progress=False), "cpu")
    rho = view_pupil_coordinates(m)
    basis = zernike_shift_basis(m, rho, views.weights, (6,))[0] / (m.lenslet_pitch_object_um / 3)
    total = 0
    for side, c in ((-1, 0.12), (1, -0.12)):
        v = realign(point_photon_image(m, pts[np.sign(pts[:, 0]) == side], photons_per_point=2e5 / 9), 3, 15,
                    m.scan.order)
        for u in range(15):
            for w in range(15):
                v[u, w] = shift_images(v[u, w], *(c * basis[u, w]))
        total = total + v
    frames, _ = validate_image(m, apply_camera(np.maximum(unrealign(total, 3, m.scan.order), 0), m.camera, rng=0))
    one, two = DigitalAO(views), DigitalAO(views, subfields=2)
    vol1 = phase_space_rl(frames, views, 4, progress=False, correction=one)
    vol2 = phase_space_rl(frames, views, 4, progress=False, correction=two)
    assert abs(one.result().zernike_waves[6]) < 0.05
    sub = two.result().subfields
    assert len(sub) == 4
    for b in sub:
        left = b["cols_um"][1] <= 0
        assert (b["zernike_waves"][6] > 0.05) if left else (b["zernike_waves"][6] < -0.05), b
    assert _near(m, vol2, pts) > _near(m, vol1, pts)
    with pytest.raises(ValueError, match="subfields = 3 is invalid"):
        DigitalAO(PhaseSpaceViews(compute_psf(small(), progress=False), "cpu"), subfields=3)


@pytest.mark.slow  # 43 s; the default run covers it: test_digital_shack_hartmann_recovers_view_shifts (the same
# terms, synthetic view shifts) and test_dao_corrects_a_spherical_aberration_of_the_forward_model (the physical model)
def test_dao_recovers_astigmatism_and_coma_of_the_forward_model(beads):
    """0.1 waves of astigmatism (Noll 6) and -0.08 of coma (Noll 8) in the wave-optics model of the
    data (the 2-D pupil integral, optics.debye2d), reconstructed with the ideal kernels: after 3 rounds
    measured 0.100 and -0.085, light near the beads 0.94 -> 0.967 (0.977 from unaberrated data)."""
    m, pts, psf = beads
    ab = m.replace(aberrations={"zernike_waves": {"6": 0.1, "8": -0.08}})
    frames = apply_camera(point_photon_image(ab, pts, photons_per_point=2e5 / 9), m.camera, rng=0)
    plain = reconstruct(m, frames, iterations=4, psf=psf, method="phase-space", progress=False)
    vol, est = reconstruct(m, frames, iterations=4, psf=psf, dao=True, progress=False)
    assert est.zernike_waves[6] == pytest.approx(0.1, abs=0.02)
    assert est.zernike_waves[8] == pytest.approx(-0.08, abs=0.02)
    assert max(abs(c) for j, c in est.zernike_waves.items() if j not in (6, 8)) < 0.02
    assert _near(m, vol, pts) > _near(m, plain, pts) + 0.01


def test_shift_estimate_and_warp_on_the_device(xp, to_np):
    """The same numbers with the operator's array module (numpy, or cupy on a GPU)."""
    a = gaussian((64, 64), (30.0, 30.0))
    b = gaussian((64, 64), (32.3, 29.4))
    dy, dx = shift_of(xp.asarray(a), xp.asarray(b), 5, xp)
    assert (dy, dx) == pytest.approx(shift_of(a, b, 5), abs=1e-6)
    np.testing.assert_allclose(to_np(shift_images(xp.asarray(b), -2.3, 0.6, xp)), shift_images(b, -2.3, 0.6),
                               rtol=0, atol=1e-9)


def test_dao_resumes_from_its_round_checkpoint(beads, tmp_path, monkeypatch):
    """A DAO run killed in its second round (while that round's kernels are computed) and started again
    with the same checkpoint resumes at that round and ends with the same volume and estimate as an
    uninterrupted run; another run's checkpoint is refused."""
    import optics
    from reconstruction.dao import run_dao

    m, pts, psf = beads
    ab = m.replace(aberrations={"zernike_waves": {"11": 0.15}})
    frames, _ = validate_image(m, apply_camera(point_photon_image(ab, pts, photons_per_point=2e5 / 9), m.camera, rng=0))
    whole_vol, whole = run_dao(frames, psf, "cpu", 1, rounds=2, progress=False, min_change=0.0)
    ck = tmp_path / "dao.npz"
    real = optics.compute_psf

    def killed(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(optics, "compute_psf", killed)  # round 2 builds its kernels first: killed there
    with pytest.raises(KeyboardInterrupt):
        run_dao(frames, psf, "cpu", 1, rounds=2, progress=False, min_change=0.0, checkpoint=ck)
    assert ck.exists()
    monkeypatch.setattr(optics, "compute_psf", real)
    vol, est = run_dao(frames, psf, "cpu", 1, rounds=2, progress=False, min_change=0.0, checkpoint=ck)
    np.testing.assert_array_equal(vol, whole_vol)
    assert est.zernike_waves == whole.zernike_waves
    assert [h["round"] for h in est.history] == [1, 2]
    with pytest.raises(ValueError, match="another DAO run"):
        run_dao(frames, psf, "cpu", 3, rounds=2, progress=False, min_change=0.0, checkpoint=ck)


def test_a_checkpoint_with_warp_only_terms_from_an_older_version_is_refused(tmp_path):
    """Older lfmsim kept non-radial terms of vectorial kernels in the view warp only (its kernels could
    not take them) and checkpointed them as "warped": such a checkpoint cannot be resumed faithfully."""
    from reconstruction.dao import _load_dao_checkpoint

    path = tmp_path / "old.npz"
    state = {"fingerprint": "f", "next_round": 1, "modelled": {"11": 0.1}, "warped": [{"6": 0.05}], "history": []}
    np.savez(path, dao_state=np.array(json.dumps(state)))
    with pytest.raises(ValueError, match="view warp only.*delete it"):
        _load_dao_checkpoint(path, "f")
    state["warped"] = [{}]
    np.savez(path, dao_state=np.array(json.dumps(state)))
    assert _load_dao_checkpoint(path, "f") == (1, {11: 0.1}, [])
