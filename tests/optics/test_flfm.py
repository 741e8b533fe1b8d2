"""Fourier LFM (kind "flfm", FLFM / XLFM): the pupil relayed onto a finite lenslet array.

Checked against independent physics (PHYSICS.md sections 1, 4, 5; FAMILIES.md section 1): the power
of the pupil field in closed form; the fraction one lenslet passes in closed form; Parseval through
the array and the propagation; a moved source moves every elemental image by M_T dx; each elemental
image's disparity is linear in z with the slope M_T tan(theta_k) of the ray picture, toward the axis
for z > 0; a lenslet focused elsewhere (XLFM) is sharpest where the paraxial lens law puts its
slab; the oLaF-derived design figures of the 10x/0.4 system of yangyanb/FLFM-Processing-Pipeline.
"""

import math

import numpy as np
import pytest

from optics import presets, theory
from optics.config import ConfigError, Microscope
from optics.flfm import pupil_field, pupil_power
from optics.lenslets import array_transmittance, lenslet_centres
from optics.lfpsf import compute_psf, field_oversampling, sensor_pattern


def _flfm(mla=None, camera=None, simulation=None, volume=None, objective=None):
    """20x/0.5W, f2 = 20 mm: the 1 mm pupil spans three 333-um lenslets of f = 4 mm (M_T = 4)."""
    d = {"microscope": {"kind": "flfm", "wavelength_um": 0.52},
         "objective": {"magnification": 20, "na": 0.5, "immersion_index": 1.33, "tube_lens_focal_um": 200000},
         "mla": {"pitch_um": 333.0, "focal_um": 4000.0, "fourier_lens_focal_um": 20000.0, "lenslets": [3, 3]},
         "camera": {"pixel_um": 6.5, "shape": [201, 201]},
         "volume": {"z_min_um": -20, "z_max_um": 20, "z_step_um": 10}}
    for key, val in (("mla", mla), ("camera", camera), ("simulation", simulation), ("volume", volume),
                     ("objective", objective)):
        if val:
            d.setdefault(key, {}).update(val)
    return Microscope.from_dict(d)


def _centroid(img, cy, cx, half):
    sl = img[cy - half: cy + half + 1, cx - half: cx + half + 1]
    yy, xx = np.mgrid[-half: half + 1, -half: half + 1]
    return float((sl * yy).sum() / sl.sum()), float((sl * xx).sum() / sl.sum())


def _found(rec, m, bead_xy):
    """(depth, dy, dx in voxels) of the brightest voxel of ``rec`` within ~5 voxels of a bead at
    (x, y) µm (the axis at voxel 100 of a 201-voxel grid)."""
    p = m.pixel_object_um
    iy, ix = 100 + bead_xy[1] / p, 100 + bead_xy[0] / p
    y0, x0 = int(iy) - 4, int(ix) - 4
    win = rec[:, y0: y0 + 10, x0: x0 + 10]
    kz, ky, kx = np.unravel_index(np.argmax(win), win.shape)
    return float(m.z_um[kz]), y0 + ky - iy, x0 + kx - ix


# ----------------------------------------------------------------------------- configuration
def test_geometry_follows_the_relay():
    m = _flfm()
    assert m.shift_invariant and m.pixels_per_lenslet == 1 and m.voxels_per_lenslet == 1
    assert m.fourier_focal_um == pytest.approx(10000.0 * 20000.0 / 200000.0)  # f_obj f2 / f1
    assert m.lateral_magnification == pytest.approx(20 * 4000 / 20000)  # M f_ml / f2
    assert m.voxel_um == pytest.approx(6.5 / 4) and m.pixel_object_um == pytest.approx(6.5 / 4)
    assert m.volume_shape == (5, 201, 201) and m.image_shape == (201, 201)
    assert m.mla.aperture == "circle"  # the kind's default
    assert "M_T = 4" in m.describe() and "3 lenslets across" in m.describe()
    assert theory.flfm_total_magnification(20, 4000, 20000) == pytest.approx(m.lateral_magnification)


@pytest.mark.parametrize("change,match", [
    ({"mla": {"fourier_lens_focal_um": 0.0}}, r"mla\.fourier_lens_focal_um.*f2 > 0"),
    ({"volume": {"voxels_per_lenslet": 3}}, r"volume\.voxels_per_lenslet.*shift-invariant"),
    ({"simulation": {"vectorial": True}}, r"simulation\.vectorial.*scalar pupil"),
    ({"mla": {"centres_um": [[0, 0], [400, 0]]}}, r"mla\.centres_um.*not both"),
    ({"mla": {"focal_um": [4000.0, 5000.0]}}, r"mla\.focal_um.*one value, or one per lenslet"),
    ({"mla": {"grid": "hex", "aperture": "square"}}, r"mla\.aperture.*hexagonal"),
    ({"mla": {"lenslets": [3, 0]}}, r"mla\.lenslets.*rows, cols"),
    ({"mla": {"centres_um": [[0, 0, 1]], "lenslets": [0, 0]}}, r"mla\.centres_um.*\[x, y\]"),
])
def test_bad_flfm_configs_are_refused(change, match):
    with pytest.raises(ConfigError, match=match):
        _flfm(**change)


def test_xlfm_with_two_focal_lengths_needs_the_sensor_distance():
    cen = {"centres_um": [[0, 0], [333, 0]], "lenslets": [0, 0]}
    with pytest.raises(ConfigError, match=r"mla\.sensor_distance_um.*several focal lengths"):
        _flfm(mla=cen | {"focal_um": [4000.0, 4400.0]})
    m = _flfm(mla=cen | {"focal_um": [4000.0, 4400.0], "sensor_distance_um": 4000.0})
    assert m.mla_to_sensor_um == 4000.0 and m.lateral_magnification == pytest.approx(4.0)


def test_flfm_keys_are_refused_for_the_lfm_with_the_reason():
    d = presets.get("lfm-20x-0.5w").to_dict()
    d["mla"]["lenslets"] = [3, 3]
    with pytest.raises(ConfigError, match=r"mla\.lenslets.*'lfm'.*'flfm'"):
        Microscope.from_dict(d)
    d["mla"]["lenslets"] = [0, 0]
    d["mla"]["grid"] = "hex"
    with pytest.raises(ConfigError, match=r"mla\.grid.*square lenslet grid.*whole pixels"):
        Microscope.from_dict(d)


def test_config_round_trip(tmp_path):
    from optics.config import load_config, save_config

    m = _flfm(mla={"centres_um": [[0, 0], [333, 0], [-166.5, 288.4]], "lenslets": [0, 0],
                   "focal_um": [4000.0, 4400.0, 4400.0], "sensor_distance_um": 4000.0})
    for ext in ("toml", "json"):
        out = save_config(m, tmp_path / f"c.{ext}")
        assert load_config(out) == m and load_config(out).hash == m.hash


# ----------------------------------------------------------------------------- lenslet arrays
def test_hex_grid_has_six_equidistant_neighbours():
    m = _flfm(mla={"grid": "hex", "lenslets": [0, 0]})
    c = lenslet_centres(m)
    d = np.hypot(*(c[:, None, :] - c[None, :, :]).transpose(2, 0, 1))
    axis = int(np.argmin(np.hypot(c[:, 0], c[:, 1])))
    near = np.sort(d[axis])[1:7]
    np.testing.assert_allclose(near, 333.0, rtol=1e-12)
    assert np.sort(d[axis])[7] > 333.0 * 1.7  # the next ring is sqrt(3) d away


def test_centres_rebuild_the_regular_array_exactly():
    """An irregular array given the regular array's centres and all focal lengths equal is the
    regular array: the same transmittance and the same elemental images (FAMILIES.md 1.5)."""
    m = _flfm()
    c = lenslet_centres(m)
    m2 = _flfm(mla={"centres_um": c.tolist(), "lenslets": [0, 0], "focal_um": [4000.0] * len(c)})
    np.testing.assert_array_equal(lenslet_centres(m2), c)
    np.testing.assert_array_equal(array_transmittance(m, 300, 3.25)[0], array_transmittance(m2, 300, 3.25)[0])
    np.testing.assert_array_equal(sensor_pattern(m, (0, 0, 10)), sensor_pattern(m2, (0, 0, 10)))


def test_band_limited_apertures_hold_their_area():
    """|A|^2 summed over the grid is the apertures' area less the power the band limit removes: for
    the step convolved with the grid's sinc, int (A^2 - H) dt = int (A - H)^2 + 2 int_0^inf (A - 1)
    = 1/pi^2 - 2/pi^2 = -1/pi^2 samples per unit edge length (Parseval on the removed band, and
    int_0^inf (pi/2 - Si) = 1).  |T| overshoots 1 only by the band limit's Gibbs ripple (<= 10%)."""
    m = _flfm()
    dx = 3.25
    t, open_ = array_transmittance(m, 400, dx)
    area = 9 * math.pi * (333.0 / 2) ** 2
    perimeter = 9 * math.pi * 333.0
    assert float(open_.sum()) * dx * dx == pytest.approx(area - perimeter * dx / math.pi**2, rel=6e-4)
    assert float(np.abs(t).max()) < 1.1


# ----------------------------------------------------------------------------- energy
@pytest.mark.parametrize("apodization,closed", [
    ("sqrtcos", lambda a: 1 - math.cos(a)),
    ("uniform", lambda a: -math.log(math.cos(a))),
])
def test_pupil_power_closed_form(apodization, closed):
    """int |E|^2 d^2u = 2 pi (n F)^2 int P^2 tan(theta) dtheta: (1 - cos alpha) for sqrt(cos),
    -ln cos(alpha) for a uniform P; the sampled field on a fine grid agrees to 1e-3."""
    m = _flfm(simulation={"apodization": apodization})
    n, f = 1.33, m.fourier_focal_um
    alpha = math.asin(0.5 / 1.33)
    assert pupil_power(m) == pytest.approx(2 * math.pi * (n * f) ** 2 * closed(alpha), rel=1e-12)
    dx = 2.0
    c = (np.arange(600) - 299.5) * dx
    e = pupil_field(m, c, (0.0, 0.0, 15.0), np.complex128)
    assert float(np.sum(np.abs(e) ** 2)) * dx * dx == pytest.approx(pupil_power(m), rel=1e-3)


def test_one_lenslet_passes_its_share_and_the_sensor_gets_all_of_it():
    """One lenslet of diameter d on the axis passes (1 - cos theta_d) / (1 - cos alpha) of the
    power (n sin theta_d = d / (2 F)); all of it reaches the window (Parseval), <= 0.5% outside."""
    m = _flfm(mla={"lenslets": [1, 1]})
    img = sensor_pattern(m, (0.0, 0.0, 0.0), precision="double")
    n, f = 1.33, m.fourier_focal_um
    theta_d = math.asin(333.0 / 2 / (n * f))
    share = (1 - math.cos(theta_d)) / (1 - math.cos(math.asin(0.5 / 1.33)))
    assert img.sum() == pytest.approx(share, rel=5e-3)
    psf = compute_psf(m, cache=False, progress=False)
    k = psf.kernels[2][0, 0]
    assert float(k.sum() + psf.discarded[2, 0, 0]) == pytest.approx(img.sum(), rel=2e-3)
    assert float(psf.discarded.max()) <= 5e-3


# ----------------------------------------------------------------------------- shift invariance, disparity
@pytest.mark.parametrize("method,tol", [("fresnel", 2e-4), ("asm", 5e-3)])
def test_a_moved_source_moves_every_elemental_image_by_mt_dx(method, tol):
    """x -> x + dx moves the whole pattern by M_T dx: exactly in the paraxial chain (the lenslet and
    b = f form a Fourier transform: the shift theorem), to the angular spectrum's non-paraxial terms
    otherwise.  The axes are image-oriented: +x on the object is +x on the sensor."""
    m = _flfm(simulation={"propagation": method})
    p = m.pixel_object_um
    a = sensor_pattern(m, (0.0, 0.0, 10.0), precision="double")
    b = sensor_pattern(m, (3 * p, -2 * p, 10.0), precision="double")
    moved = np.roll(a, (-2, 3), axis=(0, 1))
    assert np.linalg.norm(b - moved) / np.linalg.norm(a) < tol
    cy, cx = 100, 100 + round(333 / 6.5)  # the +x lenslet's elemental image
    (y0, x0), (y1, x1) = _centroid(a, cy, cx, 20), _centroid(b, cy - 2, cx + 3, 20)
    assert abs(y1 - y0) < 0.02 and abs(x1 - x0) < 0.02


def test_disparity_is_linear_in_z_with_the_ray_slope():
    """The elemental image of a lenslet at c_k moves by -M_T z tan(theta_k) c_k/|c_k| with
    n sin(theta_k) = |c_k| / F (FAMILIES.md 1.1); the axial lenslet's does not move.  The four side
    lenslets lie wholly inside the pupil (|c| + d/2 = 500 um = NA F)."""
    m = _flfm()
    p = m.camera.pixel_um
    zs = np.array([-20.0, -10.0, 0.0, 10.0, 20.0])
    shifts = {c: [] for c in ((333.0, 0.0), (0.0, 333.0), (-333.0, 0.0), (0.0, 0.0))}
    for z in zs:
        img = sensor_pattern(m, (0.0, 0.0, z), precision="double")
        for cx, cy in shifts:
            jy, jx = 100 + round(cy / p), 100 + round(cx / p)
            dy, dx = _centroid(img, jy, jx, 24)
            shifts[(cx, cy)].append((dx + jx - 100 - cx / p, dy + jy - 100 - cy / p))
    for c, vals in shifts.items():
        v = np.array(vals) * p  # µm, (x, y)
        expect = theory.flfm_disparity_um(zs, c, m.fourier_focal_um, 1.33, m.lateral_magnification)
        if c == (0.0, 0.0):
            assert np.abs(v).max() < 0.01 * p
            continue
        axis = 0 if c[1] == 0 else 1
        slope = np.polyfit(zs, v[:, axis], 1)[0]
        fit = np.polyval(np.polyfit(zs, v[:, axis], 1), zs)
        assert slope == pytest.approx(expect[-1, axis] / zs[-1], rel=0.02)
        assert np.abs(v[:, axis] - fit).max() < 0.02 * p  # linear in z
        assert np.abs(v[:, 1 - axis]).max() < 0.01 * p


def test_positive_z_moves_elemental_images_toward_the_axis():
    """Sign convention: a source farther from the objective (z > 0) is seen by the view at c_k at
    z tan(theta_k) on the far side of the axis; its elemental image moves toward the array's centre."""
    m = _flfm()
    p = m.camera.pixel_um
    jx = 100 + round(333 / p)
    _, x_plus = _centroid(sensor_pattern(m, (0, 0, 15.0)), 100, jx, 24)
    _, x_minus = _centroid(sensor_pattern(m, (0, 0, -15.0)), 100, jx, 24)
    assert x_plus < -1.0 and x_minus > 1.0


def test_xlfm_lenslet_focused_elsewhere_is_sharpest_at_its_slab():
    """A lenslet of f_B != b images the slab z_B = n F^2 (1/b - 1/f_B) (paraxial lens law,
    FAMILIES.md 1.4): its elemental image's peak is highest there, while the b = f lenslet's is
    highest at z = 0."""
    fb = 4000.0 / 0.97
    m = _flfm(mla={"centres_um": [[0, 0], [333, 0]], "lenslets": [0, 0], "focal_um": [4000.0, fb],
                   "sensor_distance_um": 4000.0}, volume={"z_min_um": -20, "z_max_um": 20, "z_step_um": 2})
    f = m.fourier_focal_um
    z_b = 1.33 * f * f * (1 / 4000.0 - 1 / fb)
    zs = np.arange(-16.0, 16.1, 2.0)
    p = m.camera.pixel_um
    peaks = []
    for z in zs:
        img = sensor_pattern(m, (0, 0, z))
        jx = 100 + round(333 / p)
        peaks.append((img[90:111, 90:111].max(), img[80:121, jx - 20: jx + 21].max()))
    peaks = np.array(peaks)
    assert zs[np.argmax(peaks[:, 0])] == 0.0
    assert abs(zs[np.argmax(peaks[:, 1])] - z_b) <= 2.0 and abs(z_b) > 6


# ----------------------------------------------------------------------------- numerics
def test_default_sampling_is_converged():
    """2 field samples per pixel (the kind's default) keep the elemental images within 0.3% (L2)
    of an 8-sample computation (band-limited apertures and pupil edge)."""
    m = _flfm(camera={"shape": [161, 161]})
    assert field_oversampling(m) == 2
    a = sensor_pattern(m, (0.7, -0.4, 17.0))
    b = sensor_pattern(_flfm(camera={"shape": [161, 161]}, simulation={"oversampling": 8}), (0.7, -0.4, 17.0))
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 3e-3


def test_kernels_are_the_on_axis_patterns():
    m = _flfm()
    psf = compute_psf(m, cache=False, progress=False)
    assert psf.meta["oversampling"] == 2 and len(psf.kernels) == 5
    for iz, z in enumerate(m.z_um):
        k = psf.kernels[iz][0, 0].astype(np.float64)
        img = sensor_pattern(m, (0.0, 0.0, float(z)))
        h = k.shape[0] // 2
        np.testing.assert_allclose(img[100 - h: 100 + h + 1, 100 - h: 100 + h + 1], k, rtol=0, atol=2e-6 * k.max())


# ----------------------------------------------------------------------------- theory
def test_olaf_design_figures_of_the_yangyanb_system():
    """FAMILIES.md 1.5: through oLaF's FLFM_performance (its convention): Sr 1.582, N 9.6 (Nr 9),
    M_T 1.661, object pixel 3.91, R_xy 7.83 (= 2 p / M_T), R_z 21.8, DOF 782, FOV 865 um."""
    out = theory.flfm_olaf_performance(wavelength_um=0.516, na=0.4, magnification=10, fourier_focal_um=180000,
                                       tube_lens_focal_um=180000, pitch_um=1500, mla_focal_um=29900, pixel_um=6.5,
                                       lenslet_image_pixels=221, field_number_um=26500)
    assert out["sr"] == pytest.approx(1.582, abs=1e-3) and out["nr"] == 9 and out["n"] == pytest.approx(9.6)
    assert out["total_magnification"] == pytest.approx(1.661, abs=1e-3)
    assert out["object_pixel_um"] == pytest.approx(3.91, abs=5e-3)
    assert out["lateral_um"] == pytest.approx(7.83, abs=5e-3)
    assert out["lateral_um"] == pytest.approx(2 * 6.5 / out["total_magnification"], rel=1e-12)
    assert out["axial_um"] == pytest.approx(21.8, abs=0.05)
    assert out["dof_um"] == pytest.approx(782, abs=0.5) and out["fov_um"] == pytest.approx(865, abs=0.5)
    m = presets.get("flfm-10x-0.4-yangyanb")
    assert m.lateral_magnification == pytest.approx(out["total_magnification"], rel=1e-12)
    assert m.pixel_object_um == pytest.approx(out["object_pixel_um"], rel=1e-12)


def test_our_flfm_convention_in_closed_form():
    """Our convention (module docstring of optics.theory), by hand for the 20x/0.5W preset:
    N = 2 NA f2 / (M d) = 5, one view's Sparrow 0.4736 lambda0 N / NA = 2.463 um (> 2 p / M_T = 3.25?
    no: 3.25 um wins), axial R / tan(theta_e) with n sin(theta_e) = 0.4."""
    m = presets.get("flfm-20x-0.5w")
    s = theory.theory_summary(m)
    assert s["lenslets_across_pupil"] == pytest.approx(5.0)
    assert s["flfm_lateral_um"] == pytest.approx(max(0.4736 * 0.52 * 5 / 0.5, 2 * 6.5 / 4), rel=1e-3)
    sin_e = 0.4 / 1.33
    assert s["flfm_axial_um"] == pytest.approx(3.25 * math.sqrt(1 - sin_e**2) / sin_e, rel=1e-9)
    assert s["flfm_depth_of_field_um"] == pytest.approx(0.52 * 1.33 / 0.1**2 + 1.33 * 6.5 / (4 * 0.1), rel=1e-12)
    assert s["flfm_fov_um"] == pytest.approx(500.0) and s["fov_um"] == [500.0, 500.0]


def test_lfm2_conjugate_shift_has_the_immersion_index():
    assert theory.lfm2_conjugate_shift_um(1500, 1.33, 20) == pytest.approx(-1.33 * 1500 / 400)
    assert theory.lfm2_conjugate_shift_um(-1000, 1.0, 20) == pytest.approx(2.5)  # FAMILIES.md 2.1, n = 1


# ----------------------------------------------------------------------------- reconstruction
def test_operator_is_an_exact_transpose_and_beads_are_recovered():
    """The shift-invariant operator of the kernels is exactly adjoint (dot-product test); beads at
    off-grid (x, y, z), imaged from their own positions by a finer model (3 samples per pixel,
    their own windows) with Poisson noise, are found at the nearest depth and within a voxel."""
    from reconstruction import reconstruct
    from reconstruction.operator import LightFieldOperator

    m = _flfm()
    psf = compute_psf(m, cache=False, progress=False)
    op = LightFieldOperator(psf, device="cpu", dtype=np.float64)
    rng = np.random.default_rng(1)
    x, y = rng.random(op.volume_shape), rng.random(op.image_shape)
    lhs, rhs = float(np.vdot(op.forward(x), y)), float(np.vdot(x, op.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    fine = m.replace(simulation={"oversampling": 3})
    truth = [(-30.3, 20.7, -13.0), (25.1, -18.4, 6.0), (5.2, 31.9, 17.5), (-12.6, -27.7, -4.4)]
    img = sum(sensor_pattern(fine, b) for b in truth)
    frame = rng.poisson(img * 2e4).astype(np.float32)
    rec = reconstruct(m, frame, iterations=30, device="cpu", progress=False, psf=psf)
    z = m.z_um
    for bx, by, bz in truth:
        zf, dy, dx = _found(rec, m, (bx, by))
        assert zf == z[np.argmin(np.abs(z - bz))], f"bead at z = {bz} found at {zf}"
        assert abs(dy) <= 1.0 and abs(dx) <= 1.0


# ----------------------------------------------------------------------------- field stop
def test_field_stop_passes_the_share_of_the_image_it_covers():
    """A circular stop of diameter D at the native image plane (radius D / (2 M) in the sample)
    passes, of each source, the power of its native-image-plane field inside it: computed
    independently from the Debye integral there (``optics.debye.radial_field`` on a Cartesian grid).
    Sources 4 um inside the rim and well inside: to 2e-3; defocused on the rim (blur radius 49 and
    97 um image side): to 6e-3 (the band-limited stop's edge is lambda0 f2 / L wide, L the grid).
    On the sensor (one lenslet larger than the pupil, so the array blocks nothing) an inside source
    keeps that share, one well outside gets nothing, and a rim source less than its share: the
    stop diffracts light beyond the lenslet."""
    from optics import debye
    from optics.flfm import apply_field_stop

    stop = 1000.0  # image side: 25 um radius in the sample
    one = {"lenslets": [1, 1], "pitch_um": 1100.0}
    m0 = _flfm(camera={"shape": [241, 241]}, mla=one)
    m = _flfm(camera={"shape": [241, 241]}, mla=one | {"field_stop_um": stop})
    assert "field stop of 1000 um" in m.describe()
    h = 0.04
    c = np.arange(-30.0, 30.0 + h / 2, h)
    disc = np.hypot(c[:, None], c[None, :]) <= 25.0
    rr = np.arange(0.0, 100.0, 0.01)
    total = debye.total_power(math.asin(0.5 / 1.33), 2 * math.pi * 1.33 / 0.52)
    dx, n = 1.625, 1480
    coord = (np.arange(n) - (n - 1) / 2) * dx
    for point, tol in (((5.0, -3.0, 0.0), 2e-3), ((21.0, 0.0, 0.0), 2e-3), ((25.0, 0.0, 6.0), 6e-3),
                       ((25.0, 0.0, 12.0), 6e-3)):
        x, y, z = point
        prof = np.abs(debye.radial_field(rr, z, wavelength_um=0.52, na=0.5, n=1.33)) ** 2
        inten = np.interp(np.hypot(c[:, None] - y, c[None, :] - x), rr, prof)
        expect = float((inten * disc).sum()) * h * h / total
        e = pupil_field(m, coord, point, np.complex128)
        share = float(np.sum(np.abs(apply_field_stop(m, e.copy(), dx)) ** 2) / np.sum(np.abs(e) ** 2))
        assert share == pytest.approx(expect, abs=tol), (point, share, expect)
        on_sensor = sensor_pattern(m, point).sum() / sensor_pattern(m0, point).sum()
        if point[0] < 25:
            assert on_sensor == pytest.approx(share, abs=3e-3)
        else:
            assert 0.7 * share < on_sensor < share
    assert sensor_pattern(m, (40.0, 0.0, 0.0)).sum() < 2e-3 * sensor_pattern(m0, (40.0, 0.0, 0.0)).sum()


def test_field_stop_volume_stays_empty_outside():
    from reconstruction import reconstruct

    m = _flfm(mla={"field_stop_um": 1000.0})
    frame = np.random.default_rng(0).poisson(2e4 * sensor_pattern(m, (3.1, 2.2, 4.0))).astype(np.float32)
    rec = reconstruct(m, frame, iterations=3, device="cpu", progress=False)
    from optics import phantoms

    x, y = phantoms.voxel_centres_um(m, "x"), phantoms.voxel_centres_um(m, "y")
    outside = np.hypot(y[:, None], x[None, :]) > 25.0
    assert float(rec[:, outside].max()) == 0.0 and float(rec[:, ~outside].max()) > 0
    assert theory.theory_summary(m)["flfm_fov_um"] == pytest.approx(50.0)


def test_xlfm_two_focus_array_recovers_beads_in_both_slabs():
    """An XLFM-like array (axis lenslet f = b, the four side ones focused on z_B = n F^2 (1/b - 1/f_B)
    = +12 um) reconstructs off-grid beads near both slabs at the nearest depth and within a voxel."""
    from reconstruction import reconstruct

    fb = 1 / (1 / 4000.0 - 12.0 / (1.33 * 1000.0**2))
    cen = [[0, 0], [333, 0], [-333, 0], [0, 333], [0, -333]]
    m = _flfm(mla={"centres_um": cen, "lenslets": [0, 0], "focal_um": [4000.0] + [fb] * 4,
                   "sensor_distance_um": 4000.0}, volume={"z_min_um": -8, "z_max_um": 20, "z_step_um": 4})
    psf = compute_psf(m, cache=False, progress=False)
    fine = m.replace(simulation={"oversampling": 3})
    truth = [(-14.3, 9.7, 0.9), (11.2, -6.6, 12.6), (4.1, 15.3, 7.3)]
    rng = np.random.default_rng(2)
    frame = rng.poisson(3e4 * sum(sensor_pattern(fine, b) for b in truth)).astype(np.float32)
    rec = reconstruct(m, frame, iterations=30, device="cpu", progress=False, psf=psf)
    for bx, by, bz in truth:
        zf, dy, dx = _found(rec, m, (bx, by))
        assert abs(zf - bz) <= 4.0, f"bead at z = {bz} found at {zf}"
        assert abs(dy) <= 1.0 and abs(dx) <= 1.0
