"""Aberrations of the objective's pupil ([aberrations] zernike_waves, optics.pupil), every kind.

Checked against independent numbers: Noll's table of (n, m) and unit rms; the on-axis peak of an
aberrated wide-field PSF against the pupil integral |int P e^{2 pi i W} sin dtheta|^2 (and Marechal's
exp(-(2 pi sigma)^2)); a Zernike tilt on the Fourier LFM is a lateral shift 2 c lambda0 / NA of the
source; a Zernike defocus is, paraxially, a source at z = -4 sqrt(3) c lambda0 / NA^2.
"""

import math

import numpy as np
import pytest

from optics import compute_psf, presets
from optics.config import ConfigError, Microscope, load_config, save_config
from optics.lfpsf import sensor_pattern
from optics.pupil import noll_to_nm, zernike


def test_noll_table_and_unit_rms():
    """Noll 1976, table 1: j -> (n, m), even j cosine, odd j sine; each term has unit rms on the disc."""
    expect = {1: (0, 0), 2: (1, 1), 3: (1, -1), 4: (2, 0), 5: (2, -2), 6: (2, 2), 7: (3, -1), 8: (3, 1),
              9: (3, -3), 10: (3, 3), 11: (4, 0), 12: (4, 2), 13: (4, -2), 14: (4, 4), 15: (4, -4), 22: (6, 0)}
    for j, nm in expect.items():
        assert noll_to_nm(j) == nm
    rho = np.sqrt((np.arange(4000) + 0.5) / 4000)  # equal-area rings
    phi = (np.arange(64) + 0.5) * 2 * np.pi / 64
    for j in (2, 4, 5, 7, 11, 12, 22):
        z = zernike(j, rho[:, None], phi[None, :])
        assert float(np.sqrt(np.mean(z**2))) == pytest.approx(1.0, abs=1e-3)
    assert zernike(4, 1.0) == pytest.approx(math.sqrt(3)) and zernike(11, 0.0) == pytest.approx(math.sqrt(5))
    with pytest.raises(ValueError, match="Noll index"):
        noll_to_nm(0)


def test_zero_aberration_is_todays_kernels_exactly(m):
    a = compute_psf(m, cache=False, progress=False)
    b = compute_psf(m.replace(aberrations={"zernike_waves": {"11": 0.0}}), cache=False, progress=False)
    assert m.replace(aberrations={"zernike_waves": {"11": 0.0}}).hash == m.hash
    for ka, kb in zip(a.kernels, b.kernels):
        assert np.array_equal(ka, kb)


def test_config_keys_and_refusals(tmp_path, small_flfm):
    m = presets.get("lfm-20x-0.5w", aberrations={"zernike_waves": {"11": 0.05, "22": -0.02}})
    assert m.aberrations.coefficients == {11: 0.05, 22: -0.02}
    out = save_config(m, tmp_path / "a.toml")
    assert "zernike_waves = {11 = 0.05, 22 = -0.02}" in out.read_text()
    assert load_config(out) == m
    assert presets.get("lfm-20x-0.5w", aberrations={"zernike_waves": {"5": 0.1}}).aberrations.coefficients == {5: 0.1}
    with pytest.raises(ConfigError, match=r"aberrations\.zernike_waves.*Noll index"):
        presets.get("lfm-20x-0.5w", aberrations={"zernike_waves": {"x": 0.1}})
    with pytest.raises(ConfigError, match=r"unknown key 'aberrations\.zernike'"):
        Microscope.from_dict(presets.get("lfm-20x-0.5w").to_dict() | {"aberrations": {"zernike": {}}})
    assert small_flfm.replace(aberrations={"zernike_waves": {"5": 0.1}}).aberrations.coefficients == {5: 0.1}


def _widefield(na=0.5, n=1.33, mag=20, pixel=1.0):
    return Microscope.from_dict({
        "microscope": {"kind": "widefield", "wavelength_um": 0.52},
        "objective": {"magnification": mag, "na": na, "immersion_index": n},
        "camera": {"pixel_um": pixel, "shape": [61, 61]},
        "volume": {"z_min_um": 0, "z_max_um": 0, "z_step_um": 1}})


@pytest.mark.parametrize("j,c", [(11, 0.05), (11, -0.08), (22, 0.04), (4, 0.03)])
def test_strehl_of_a_small_aberration(j, c):
    """In-focus peak ratio of the aberrated wide-field PSF (pixels of 0.05 um in the sample) against
    the pupil integral of the on-axis field, |int P e^{2 pi i c Z_j(rho)} sin dtheta|^2 normalised
    (rho = sin theta / sin alpha, P = sqrt(cos), 20000-point midpoint rule): to 2e-3; Marechal's
    exp(-(2 pi c)^2) to 1.5% (it ignores the apodization's weighting of the pupil)."""
    m = _widefield()
    a = sensor_pattern(m, (0.0, 0.0, 0.0))
    b = sensor_pattern(m.replace(aberrations={"zernike_waves": {str(j): c}}), (0.0, 0.0, 0.0))
    alpha = math.asin(0.5 / 1.33)
    t = (np.arange(20000) + 0.5) * alpha / 20000
    w = np.sqrt(np.cos(t)) * np.sin(t)
    phase = 2 * np.pi * c * zernike(j, np.sin(t) / math.sin(alpha))
    strehl = abs(np.sum(w * np.exp(1j * phase))) ** 2 / np.sum(w) ** 2
    assert b.max() / a.max() == pytest.approx(strehl, abs=2e-3)
    assert b.max() / a.max() == pytest.approx(math.exp(-(2 * math.pi * c) ** 2), rel=0.015)


def test_zernike_tilt_is_a_lateral_shift_of_the_source(small_flfm):
    """Fourier LFM: Z2 = 2 rho cos(phi) with c waves adds 4 pi c u_x / (NA F) to the pupil phase, the
    phase of a source at x = 2 c lambda0 / NA (k0 u x / F); Z3 does the same along y (pins phi from
    +x toward +y)."""
    m = small_flfm
    c = 0.4
    shift = 2 * c * 0.52 / 0.5
    for j, point in ((2, (shift, 0.0, 10.0)), (3, (0.0, shift, 10.0))):
        ab = m.replace(aberrations={"zernike_waves": {str(j): c}})
        a = sensor_pattern(ab, (0.0, 0.0, 10.0), precision="double")
        b = sensor_pattern(m, point, precision="double")
        # equal but for the window (the shifted source's grows by M_T x) and the phase in the band-limited
        # rim samples beyond the pupil, where the Zernike's rho is held at 1
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5 * float(b.max()))


def test_zernike_defocus_is_a_source_out_of_focus(small_flfm):
    """Paraxially k n z cos(theta) = const - (pi NA^2 z / lambda0) rho^2, and 2 pi c Z4 = const +
    4 sqrt(3) pi c rho^2: the aberrated in-focus PSF is the unaberrated one at z = -4 sqrt(3) c lambda0 / NA^2
    (NA 0.1 in air: 2% L2 from the higher orders)."""
    m = _widefield(na=0.1, n=1.0, mag=10, pixel=10.0)
    c = 0.15
    z = -4 * math.sqrt(3) * c * 0.52 / 0.1**2
    a = sensor_pattern(m.replace(aberrations={"zernike_waves": {"4": c}}), (0.0, 0.0, 0.0))
    b = sensor_pattern(m, (0.0, 0.0, z))
    wrong = sensor_pattern(m, (0.0, 0.0, -z))
    assert np.linalg.norm(a - b) / np.linalg.norm(b) < 0.02
    assert np.linalg.norm(a - wrong) / np.linalg.norm(b) < 0.02  # |U|^2 is even in z without aberration
    lf = small_flfm  # in a light field the sign shows: the elemental images move toward the axis for z > 0
    la = sensor_pattern(lf.replace(aberrations={"zernike_waves": {"4": 0.1}}), (0.0, 0.0, 0.0))
    zl = -4 * math.sqrt(3) * 0.1 * 0.52 / 0.5**2
    near = sensor_pattern(lf, (0.0, 0.0, zl))
    far = sensor_pattern(lf, (0.0, 0.0, -zl))
    assert np.linalg.norm(la - near) < 0.5 * np.linalg.norm(la - far)


def test_lfm_kernels_with_spherical_aberration_are_their_patterns(m):
    """With a pupil phase U(r, -z) != conj U(r, z): each signed depth gets its own table, and the
    kernels still equal ``sensor_pattern`` at the voxel centres; +z and -z now differ more."""
    ab = m.replace(aberrations={"zernike_waves": {"11": 0.2}})
    psf = compute_psf(ab, cache=False, progress=False)
    n, s = ab.pixels_per_lenslet, ab.voxels_per_lenslet
    cs = (s - 1) / 2
    from optics.support import window_lenslets

    for iz, z in enumerate(psf.z_um):
        k = psf.kernels[iz]
        r = int(psf.radius_lenslets[iz])
        for a, b in ((0, 0), (s - 1, 1)):
            img = sensor_pattern(ab, ((b - cs) * ab.voxel_um, (a - cs) * ab.voxel_um, z),
                                 window_lenslets=window_lenslets(ab, z))
            cc = img.shape[0] // n // 2
            direct = img[(cc - r) * n:(cc + r + 1) * n, (cc - r) * n:(cc + r + 1) * n]
            assert np.max(np.abs(k[a, b] - direct)) < 1e-5 * direct.max(), (z, a, b)
    plain = compute_psf(m, cache=False, progress=False)
    assert not np.allclose(psf.kernels[0], plain.kernels[0], atol=1e-4 * float(plain.kernels[0].max()))


@pytest.mark.parametrize("vectorial", [False, True], ids=["scalar", "vectorial"])
def test_2d_pupil_integral_equals_the_radial_debye_integral(monkeypatch, vectorial):
    """optics.debye2d (the pupil integral on a Cartesian grid of direction sines, used for non-radial
    terms) against the radial Debye integral for a radially symmetric aberration (Noll 11): the LFM
    kernels agree to 0.3% (L2; measured 0.11% scalar, 0.10% vectorial, the Richards-Wolf table of
    I0, I1, I2; the scalar model's kernels are 0.4-1.2% from the vectorial ones, so the tolerance
    separates the two models)."""
    import optics.lfpsf as lfpsf

    m = presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]}, aberrations={"zernike_waves": {"11": 0.1}},
                    simulation={"vectorial": vectorial},
                    volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})
    radial = compute_psf(m, cache=False, progress=False)
    monkeypatch.setattr(lfpsf, "_non_radial", lambda mm: True)
    pupil = compute_psf(m, cache=False, progress=False)
    for a, b in zip(radial.kernels, pupil.kernels):
        assert a.shape == b.shape
        assert np.linalg.norm(a - b) / np.linalg.norm(a) < 3e-3


def test_zernike_tilt_on_the_lfm_is_a_lateral_shift_of_the_source():
    """The LFM (2-D pupil integral): Z2 / Z3 with c waves = the unaberrated source at +2 c lambda0 / NA
    in x / y, the Fourier LFM's convention (test above; measured 0.16% L2)."""
    m = presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]},
                    volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})
    c = 0.4
    shift = 2 * c * 0.52 / 0.5
    for j, point in ((2, (shift, 0.0, 10.0)), (3, (0.0, shift, 10.0))):
        a = sensor_pattern(m.replace(aberrations={"zernike_waves": {str(j): c}}), (0.0, 0.0, 10.0))
        b = sensor_pattern(m, point)
        assert np.linalg.norm(a - b) / np.linalg.norm(b) < 5e-3
        wrong = sensor_pattern(m, (-point[0], -point[1], 10.0))
        assert np.linalg.norm(a - wrong) / np.linalg.norm(wrong) > 0.1


def test_astigmatism_breaks_the_kernels_mirror_symmetry_as_its_axes_say():
    """Noll 6 (cos 2 phi, axes along x and y) keeps the mirrors of x and of y but not the transpose;
    Noll 5 (sin 2 phi, axes at 45 degrees) keeps the transpose but not the mirrors: checked on the
    on-axis source's pattern at z = 10 um (the pattern of a centred source has the pupil's symmetry)."""
    m = presets.get("lfm-20x-0.5w", camera={"shape": [75, 75]},
                    volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3})

    def rel(a, b):
        return np.linalg.norm(a - b) / np.linalg.norm(a)

    p6 = sensor_pattern(m.replace(aberrations={"zernike_waves": {"6": 0.15}}), (0.0, 0.0, 10.0))
    p5 = sensor_pattern(m.replace(aberrations={"zernike_waves": {"5": 0.15}}), (0.0, 0.0, 10.0))
    assert rel(p6, p6[::-1]) < 1e-3 and rel(p6, p6[:, ::-1]) < 1e-3 and rel(p6, p6.T) > 0.05
    assert rel(p5, p5.T) < 1e-3 and rel(p5, p5[::-1]) > 0.05


def test_widefield_takes_non_radial_terms_through_the_2d_pupil_integral(monkeypatch):
    """Wide-field: with Noll 11 the 2-D pupil integral at every pixel node equals the radial profile
    path (0.5% L2; measured 0.38%); a Z2 tilt of c waves is the source at +2 c lambda0 / NA (the other
    kinds' sign)."""
    import optics.lfpsf as lfpsf

    m = _widefield(na=0.5, n=1.33, mag=20, pixel=2.0).replace(camera={"shape": [65, 65]})
    ab = m.replace(aberrations={"zernike_waves": {"11": 0.1}})
    a = sensor_pattern(ab, (0.13, 0.07, 1.0))
    monkeypatch.setattr(lfpsf, "_non_radial", lambda mm: True)
    b = sensor_pattern(ab, (0.13, 0.07, 1.0))
    monkeypatch.undo()
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 5e-3
    c = 0.3
    tilt = sensor_pattern(m.replace(aberrations={"zernike_waves": {"2": c}}), (0.0, 0.0, 1.0))
    moved = sensor_pattern(m, (2 * c * m.wavelength_um / 0.5, 0.0, 1.0))
    assert np.linalg.norm(tilt - moved) / np.linalg.norm(moved) < 5e-3
