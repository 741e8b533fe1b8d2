"""Defocused LFM (LFM 2.0, kind "lfm-defocused"): the MLA a behind the native image plane (NIP).

FAMILIES.md section 2: U_MLA = P_a{U_NIP}, then the lenslets, then P_b to the sensor.  Checked here
against independent physics: a = 0 is the standard LFM exactly; the field that reaches the MLA
focuses where the paraxial lens law puts the conjugate plane, z* = -n a / M^2; and the whole chain
equals one whose MLA field is the Debye integral with the image-side propagation phase
exp(i k0 a cos theta') written into its integrand (sin theta' = n sin theta / M), i.e. without any
FFT propagation by a.
"""

import math
import warnings

import numpy as np
import pytest
from scipy import special

from optics import debye, presets
from optics.config import ConfigError, Microscope
from optics.lfpsf import _grid, _Propagator, compute_psf, field_oversampling, sensor_pattern
from optics.support import window_lenslets


def _defocused(a=0.0, b=0.0, lenslets=7, **volume):
    m = presets.get("lfm-20x-0.5w", camera={"shape": [lenslets * 15] * 2},
                    volume={"z_min_um": -10, "z_max_um": 10, "z_step_um": 10, "voxels_per_lenslet": 3} | volume)
    d = m.to_dict()
    d["microscope"]["kind"] = "lfm-defocused"
    d["mla"].update({"offset_um": a, "sensor_distance_um": b})
    return m, Microscope.from_dict(d)


def test_zero_offset_is_the_standard_lfm_exactly():
    m, m0 = _defocused(0.0)
    assert m0.mla_to_sensor_um == m.mla.focal_um and m0.mla_offset_um == 0.0
    for k, k0 in zip(compute_psf(m, cache=False, progress=False).kernels,
                     compute_psf(m0, cache=False, progress=False).kernels):
        assert np.array_equal(k, k0)


def test_keys_are_validated_and_refused_for_other_kinds():
    with pytest.raises(ConfigError, match="mla.sensor_distance_um"):
        presets.get("lfm-20x-0.5w", mla={"sensor_distance_um": 2900.0})
    with pytest.raises(ConfigError, match="mla.offset_um.*lfm-defocused"):
        presets.get("lfm-20x-0.5w", mla={"offset_um": 500.0})
    with pytest.raises(ConfigError, match="mla.sensor_distance_um"):
        _defocused(100.0, -5.0)
    _, m = _defocused(500.0, 2900.0)
    assert m.mla_to_sensor_um == 2900.0 and "sensor 2900 um behind the MLA" in m.describe()
    assert "z = -n a / M^2 = -1.66" in m.describe()  # paraxial -n a / M^2 = -1.33 * 500 / 400


def _mla_field_analytic(m, z, a, r_img):
    """Debye field at the MLA plane a behind the NIP: the image-side propagation as a phase in the
    integrand, J0(k r sin theta) with object radius r = r_img / M (no FFT)."""
    lam, na, n, mag = m.wavelength_um, m.objective.na, m.objective.immersion_index, m.objective.magnification
    alpha = math.asin(na / n)
    x, w = debye.gauss_legendre(2048)
    theta, w = 0.5 * alpha * (x + 1), 0.5 * alpha * w
    k = 2 * math.pi * n / lam
    (wt,) = debye.integrand_weights(theta, w, k, z, m.simulation.apodization, False)
    sin_img = n * np.sin(theta) / mag
    wt = wt * np.exp(1j * (2 * math.pi / lam) * a * np.sqrt(1 - sin_img**2))
    flat = r_img.reshape(-1) / mag
    out = np.empty(flat.shape, dtype=np.complex128)
    for i in range(0, flat.size, 4000):
        out[i:i + 4000] = special.j0(k * np.outer(flat[i:i + 4000], np.sin(theta))) @ wt
    return out.reshape(r_img.shape)


def test_mla_field_focuses_at_the_conjugate_plane():
    # the field a = 1 mm behind the NIP is sharpest for the source whose defocus phase
    # k n z cos(theta) best cancels the propagation phase k0 a cos(theta'): the least-squares focus
    # over the pupil (amplitude weights sqrt(cos) sin), -3.204 um, computed here by a plain integral;
    # the paraxial lens law -n a / M^2 = -3.325 um is 4% off at NA 0.5 in water
    m, _ = _defocused()
    a, n, mag = 1000.0, 1.33, 20.0
    th = np.linspace(0, math.asin(0.5 / n), 20001)
    wts = np.sqrt(np.cos(th)) * np.sin(th)
    c, cp = np.cos(th), np.sqrt(1 - (n * np.sin(th) / mag) ** 2)
    dev = [v - np.sum(wts * v) / np.sum(wts) for v in (c, cp)]
    z_ls = -a * np.sum(wts * dev[1] * dev[0]) / (n * np.sum(wts * dev[0] ** 2))
    zs = np.linspace(-6.0, 0.0, 241)
    peak = [abs(_mla_field_analytic(m, z, a, np.array([0.0]))[0]) for z in zs]
    z_best = zs[int(np.argmax(peak))]
    assert z_best == pytest.approx(z_ls, abs=0.03)  # grid step 0.025 um
    assert z_best == pytest.approx(-n * a / mag**2, rel=0.05)


@pytest.mark.parametrize("a,z", [(1000.0, 0.0), (-600.0, 6.0), (2500.0, -4.0)])
def test_chain_equals_the_integrand_phase_model(a, z):
    # sensor pattern of kind "lfm-defocused" (FFT propagation by a on the padded window) against
    # the same lenslets and sensor propagation fed with the analytic MLA field of
    # _mla_field_analytic: the a-step is the only difference between the two
    _, md = _defocused(a)
    got = sensor_pattern(md, (0.0, 0.0, z), precision="double")
    w = window_lenslets(md, z)
    q = field_oversampling(md)
    lfm = presets.get("lfm-20x-0.5w", camera={"shape": list(md.image_shape)})
    prop = _Propagator(lfm, q, np.complex128)
    n = w * 15 * q
    c = _grid(n, prop.dx)
    field = _mla_field_analytic(md, z, a, np.hypot(c[:, None], c[None, :]))
    pix = prop.intensity(field[None].astype(np.complex128))[0][0]
    ref = np.zeros(md.image_shape)
    side = pix.shape[0]
    cy = (md.n_lenslets[0] // 2) * 15 + 7
    lo = cy - side // 2
    y0, y1 = max(lo, 0), min(lo + side, ref.shape[0])
    ref[y0:y1, y0:y1] = pix[y0 - lo:y1 - lo, y0 - lo:y1 - lo]
    err = np.linalg.norm(got - ref) / np.linalg.norm(ref)
    assert err < 5e-3, err
    assert got.sum() == pytest.approx(ref.sum(), rel=5e-3)


def test_defocused_kernels_feed_the_operator():
    # the kernels stay periodic with the lenslet pitch: the operator takes them as they are
    from reconstruction.operator import LightFieldOperator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, md = _defocused(800.0, lenslets=5)
    psf = compute_psf(md, cache=False, progress=False)
    op = LightFieldOperator(psf, "cpu", np.float64)
    rng = np.random.default_rng(0)
    x, y = rng.random(op.volume_shape), rng.random(op.image_shape)
    lhs, rhs = float(np.vdot(op.forward(x), y)), float(np.vdot(x, op.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-10 * abs(lhs)
    assert op.symmetry_available == "d4"  # the optics stay mirror- and transpose-symmetric


def test_bead_is_recovered_where_it_is():
    # simulate a bead off focus through the defocused LFM and reconstruct it (RL through
    # reconstruction.reconstruct, no filter): the brightest voxel is the bead's
    import reconstruction
    from optics import phantoms
    from optics.simulation import simulate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, md = _defocused(1200.0, lenslets=7, z_min_um=-12, z_max_um=12, z_step_um=6)
    psf = compute_psf(md, cache=False, progress=False)
    bead = (5.0, -2.5, 6.0)  # (x, y, z) um: a voxel centre (voxel 2.5 um)
    truth = phantoms.beads(md, [bead])
    frame = simulate(md, truth, psf=psf, seed=0, progress=False)
    vol = np.asarray(reconstruction.reconstruct(md, frame, psf=psf, iterations=15, progress=False))
    iz, iy, ix = np.unravel_index(np.argmax(vol), vol.shape)
    tz, ty, tx = np.unravel_index(np.argmax(truth), truth.shape)
    assert (iz, iy, ix) == (tz, ty, tx)
