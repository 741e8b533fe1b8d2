"""Forward simulation of camera frames (optics.simulation): photometry, noise statistics, validation."""

import numpy as np
import pytest

import optics.simulation as optics_simulate
from optics import phantoms, presets
from optics.camera import expected_adu
from optics.forward import forward_project
from optics.psfdata import LightFieldPSF
from optics.simulation import photon_image, simulate


@pytest.fixture(scope="module")
def psf(m):
    """Synthetic positive kernels (each sums to 0.9) of the psfdata contract."""
    rng = np.random.default_rng(0)
    kernels = []
    for _ in m.z_um:
        k = rng.random((3, 3, 45, 45))
        k *= 0.9 / k.sum(axis=(2, 3), keepdims=True)
        kernels.append(k.astype(np.float32))
    return LightFieldPSF(m, m.z_um, kernels, np.zeros((3, 3, 3)))


@pytest.fixture
def no_compute(monkeypatch):
    """Fail if the PSF would be computed or loaded."""
    import optics.simulation

    def boom(*a, **k):
        raise AssertionError("the PSF was requested")

    monkeypatch.setattr(optics.simulation, "_get_psf", boom)


def test_photon_image_is_scaled_forward_projection(m, psf):
    vol, _ = phantoms.random_beads(m, 4, seed=0)
    ph = photon_image(m, vol, photons_per_voxel=500.0, psf=psf, progress=False)
    ref = 500.0 * forward_project(psf, vol, dtype=np.float64)
    np.testing.assert_allclose(ph, np.maximum(ref, 0), rtol=1e-5, atol=1e-6 * ref.max())
    assert ph.min() >= 0 and ph.shape == m.image_shape
    # a bead in the middle keeps all its light on the sensor: 0.9 of photons_per_voxel
    one = phantoms.beads(m, [(0.0, 0.0, 0.0)])
    assert photon_image(m, one, photons_per_voxel=1000.0, psf=psf).sum() == pytest.approx(900.0, rel=1e-5)


def test_noise_free_frame_is_the_rounded_expectation(m, psf):
    vol, _ = phantoms.random_beads(m, 4, seed=1)
    frame = simulate(m, vol, photons_per_voxel=2000, noise=False, psf=psf, progress=False)
    assert frame.dtype == np.uint16 and frame.shape == m.image_shape
    ph = photon_image(m, vol, photons_per_voxel=2000, psf=psf)
    np.testing.assert_array_equal(frame, np.rint(expected_adu(ph, m.camera)).astype(np.uint16))
    assert frame.min() == m.camera.offset_adu  # dark pixels read the offset


def test_noisy_frames_have_the_model_mean(m, psf):
    vol, _ = phantoms.random_beads(m, 6, seed=2)
    frames = np.stack(
        [simulate(m, vol, photons_per_voxel=3000, seed=s, psf=psf, progress=False) for s in range(200)]
    ).astype(np.float64)
    ph = photon_image(m, vol, photons_per_voxel=3000, psf=psf)
    cam = m.camera
    mean = expected_adu(ph, cam)
    var = cam.gain_adu_per_e**2 * (cam.quantum_efficiency * ph + cam.read_noise_e**2) + 1 / 12
    # per-pixel sample means: standardised errors ~ N(0, 1); check the bulk and the extremes
    zscore = (frames.mean(axis=0) - mean) / np.sqrt(var / len(frames))
    assert abs(zscore.mean()) < 5 / np.sqrt(zscore.size)
    assert np.abs(zscore).max() < 5.5
    # the whole-frame variance follows the model too
    assert frames.var(axis=0, ddof=1).mean() == pytest.approx(var.mean(), rel=0.03)


def test_seed_reproducibility(m, psf):
    vol, _ = phantoms.neurons(m, 2, seed=0)
    a = simulate(m, vol, seed=5, psf=psf, progress=False)
    b = simulate(m, vol, seed=5, psf=psf, progress=False)
    c = simulate(m, vol, seed=6, psf=psf, progress=False)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_wrong_shape_fails_before_any_psf_work(m, no_compute):
    with pytest.raises(ValueError, match=r"volume has shape \(3, 15, 14\).*\(3, 15, 15\)"):
        simulate(m, np.zeros((3, 15, 14)))
    with pytest.raises(ValueError, match=r"volume has shape \(3, 45, 45\)"):
        simulate(m, phantoms.random_beads(m, 2, seed=0, upsample=3)[0])


@pytest.mark.parametrize(
    "value,match", [(-1.0, "negative"), (np.nan, "non-finite"), (np.inf, "non-finite")]
)
def test_bad_values_fail_before_any_psf_work(m, no_compute, value, match):
    vol = np.zeros(m.volume_shape, np.float32)
    vol[1, 2, 3] = value
    with pytest.raises(ValueError, match=match):
        simulate(m, vol)


def test_bad_arguments(m, psf, no_compute):
    vol = np.zeros(m.volume_shape, np.float32)
    with pytest.raises(ValueError, match="photons_per_voxel = -3"):
        simulate(m, vol, photons_per_voxel=-3)
    with pytest.raises(TypeError, match="volume = list"):
        simulate(m, [[0.0]])
    with pytest.raises(TypeError, match="seed"):
        simulate(m, vol, seed="x", psf=psf)


def test_psf_must_match_the_microscope(m, psf):
    other = presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]}, volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 5})
    with pytest.raises(TypeError, match="psf = ndarray"):
        optics_simulate._get_psf(m, np.zeros(3), False)
    with pytest.raises(ValueError, match="psf belongs to another microscope"):
        optics_simulate._get_psf(other, psf, False)


def test_upsampled_phantom_on_the_fine_microscope(m, psf):
    # same photon budget on the fine grid: amounts add under binning
    fm = phantoms.fine_microscope(m, 5)
    rng = np.random.default_rng(3)
    kernels = [rng.random((15, 15, 45, 45)).astype(np.float32) for _ in fm.z_um]
    kernels = [k * np.float32(0.9) / k.sum(axis=(2, 3), keepdims=True) for k in kernels]
    fpsf = LightFieldPSF(fm, fm.z_um, kernels, np.zeros((3, 15, 15)))
    vol = phantoms.beads(m, [(0.5, -1.0, 0.0)], upsample=5)
    assert photon_image(fm, vol, photons_per_voxel=100.0, psf=fpsf).sum() == pytest.approx(90.0, rel=1e-5)


def test_real_psf_bead_matches_its_sensor_pattern(m):
    # end to end with the wave-optics kernels: a bead on a voxel centre gives photons x the sensor
    # pattern of that point: position, orientation and scale of the kernels.  The tolerance (1% of
    # the peak) leaves room for the different computation windows of compute_psf and
    # sensor_pattern, which change the tails at the window edge by up to ~0.8% of the peak.
    lfpsf = pytest.importorskip("optics.lfpsf")
    for point in [(0.0, 0.0, 10.0), (2.5, -5.0, -10.0), (-7.5, 10.0, 0.0)]:
        vol = phantoms.beads(m, [point])
        ph = photon_image(m, vol, photons_per_voxel=1e4, progress=False)
        ref = 1e4 * lfpsf.sensor_pattern(m, point)
        np.testing.assert_allclose(ph, ref, rtol=0, atol=1e-2 * ref.max())
        assert ph.sum() == pytest.approx(ref.sum(), rel=1e-2)
        yy, xx = np.indices(ph.shape)
        for w in (yy, xx):  # same centroid: no flip or shift of the kernels
            assert (w * ph).sum() / ph.sum() == pytest.approx((w * ref).sum() / ref.sum(), abs=0.05)


def test_plotting_returns_figures(m, psf):
    from matplotlib.figure import Figure

    from optics import plotting

    vol, _ = phantoms.random_beads(m, 3, seed=0)
    frame = simulate(m, vol, psf=psf, seed=0, progress=False)
    figs = [
        plotting.show_psf(psf),
        plotting.show_psf(psf, depths=[0.0], log=True),
        plotting.show_psf(plotting.axial_kernels(psf), z_um=m.z_um),
        plotting.show_lightfield(frame, m.pixels_per_lenslet, zoom=(0, 30, 0, 30)),
        plotting.compare_volumes(vol, vol * 0.5, voxel_um=(10.0, 2.5)),
    ]
    for fig in figs:
        assert isinstance(fig, Figure)
        fig.canvas.draw()  # renders without a display (Agg)
    assert plotting.axial_kernels(psf).shape == (3, 45, 45)
    with pytest.raises(ValueError, match="same shape"):
        plotting.compare_volumes(vol, vol[:2])
    with pytest.raises(ValueError, match="image has shape"):
        plotting.show_lightfield(vol, 15)


def test_optics_simulate_is_the_function_after_the_module_is_imported(m, psf):
    # optics exports the function ``simulate``; importing its module must not shadow it
    import optics
    import optics.simulation  # noqa: F401

    vol = phantoms.beads(m, [(0.0, 0.0, 0.0)])
    a = optics.simulate(m, vol, psf=psf, seed=0, progress=False)
    np.testing.assert_array_equal(a, simulate(m, vol, psf=psf, seed=0, progress=False))


def test_fast_path_equals_reference_and_points_match_the_kernels():
    """photon_image's default (lenslet-grid) path equals the reference projector; a point on a voxel
    centre imaged by its exact pattern (point_photon_image) matches the kernel-based image to the
    kernel crop tolerance (0.5%) plus float32 round-off."""
    from optics import phantoms, presets
    from optics.lfpsf import compute_psf
    from optics.simulation import photon_image, point_photon_image

    m = presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]},
                    volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})
    psf = compute_psf(m, progress=False, cache=False)
    vol, _ = phantoms.random_beads(m, 6, seed=2)
    fast = photon_image(m, vol, photons_per_voxel=100.0, psf=psf, progress=False)
    ref = photon_image(m, vol, photons_per_voxel=100.0, psf=psf, progress=False, method="reference")
    assert np.max(np.abs(fast - ref)) <= 1e-5 * ref.max()
    xc, yc = phantoms.voxel_centres_um(m, "x"), phantoms.voxel_centres_um(m, "y")
    pt = (float(xc[7]), float(yc[6]), 10.0)
    one = phantoms.beads(m, [pt])
    grid = photon_image(m, one, photons_per_voxel=100.0, psf=psf, progress=False)
    exact = point_photon_image(m, [pt], photons_per_point=100.0)
    assert np.abs(exact - grid).sum() <= 0.01 * grid.sum()
    with pytest.raises(ValueError, match="method"):
        photon_image(m, vol, psf=psf, method="fast")
    with pytest.raises(ValueError, match="points_um"):
        point_photon_image(m, [(0.0, 0.0)])
