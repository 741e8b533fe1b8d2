"""The scanning LFM's operators and their joint Richardson-Lucy reconstruction (``reconstruction.scanned``).

Independent references: the shifted-frames operator H S_i (K^2 LFM projections) for the phase-space
operator; the optics' frame-by-frame simulation for both; the unscanned LFM for the resolution gain.
"""

import numpy as np
import pytest

from optics import compute_psf, presets
from optics.camera import apply_camera
from optics.scan import realign
from optics.simulation import photon_image, point_photon_image
from reconstruction import backend, reconstruct
from reconstruction.api import validate_image
from reconstruction.operator import LightFieldOperator
from reconstruction.scanned import ScannedOperator, ShiftedScanOperator, make_operator


def small(kind="slfm", s=3, shape=75, z=(-10, 10, 10), **kw):
    return presets.get("lfm-20x-0.5w", kind=kind, camera={"shape": [shape, shape]},
                       volume={"z_min_um": z[0], "z_max_um": z[1], "z_step_um": z[2], "voxels_per_lenslet": s}, **kw)


@pytest.fixture(scope="module")
def ms():
    return small(scan={"steps": 3, "order": "ring"})


@pytest.fixture(scope="module")
def psf(ms):
    return compute_psf(ms, cache=False, progress=False)


@pytest.mark.parametrize("which", ["phase-space", "shifted"])
def test_scanned_operators_are_exactly_adjoint(psf, device, xp, which):
    op = (ScannedOperator(psf, device, np.float64) if which == "phase-space" else
          ShiftedScanOperator(LightFieldOperator(psf, device, np.float64)))
    assert op.image_shape == (9, 75, 75)
    rng = np.random.default_rng(3)
    x = xp.asarray(rng.random(op.volume_shape))
    y = xp.asarray(rng.random(op.image_shape))
    lhs, rhs = float(xp.vdot(op.forward(x), y)), float(xp.vdot(x, op.adjoint(y)))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("steps, s, order", [(3, 3, "ring"), (3, 9, "raster"), (5, 5, "ring")])
def test_phase_space_operator_is_the_shifted_frames(device, xp, to_np, steps, s, order):
    """The phase-space operator (one projection on the virtual grid) equals the K^2 shifted LFM
    projections to round-off for a volume that no scan step moves off the grid (the reference drops
    what a shift moves out; the phase-space operator images it)."""
    m = small(s=s, shape=105, scan={"steps": steps, "order": order})
    p = compute_psf(m, cache=False, progress=False)
    fast, ref = ScannedOperator(p, device, np.float64), ShiftedScanOperator(LightFieldOperator(p, device, np.float64))
    rng = np.random.default_rng(steps * s)
    x = np.zeros(m.volume_shape)
    x[:, s:-s, s:-s] = rng.random((m.volume_shape[0], m.volume_shape[1] - 2 * s, m.volume_shape[2] - 2 * s))
    a, b = to_np(fast.forward(xp.asarray(x))), to_np(ref.forward(xp.asarray(x)))
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * b.max())
    y = np.zeros(fast.image_shape)
    n = m.pixels_per_lenslet
    y[:, 2 * n: -2 * n, 2 * n: -2 * n] = rng.random((steps**2, 105 - 4 * n, 105 - 4 * n))
    inner = (slice(None), slice(s, -s), slice(s, -s))
    np.testing.assert_allclose(to_np(fast.adjoint(xp.asarray(y)))[inner], to_np(ref.adjoint(xp.asarray(y)))[inner],
                               rtol=0, atol=1e-12 * float(y.sum()))
    # the virtual grid: K L lenslets of N views, s / K phases, K^2 fewer channels than K^2 projections
    assert fast.base.lenslets == (steps * 7, steps * 7) and fast.base.s == s // steps


def test_make_operator_follows_the_kind(ms, psf):
    assert isinstance(make_operator(psf, "cpu"), ScannedOperator)
    assert isinstance(make_operator(compute_psf(small("lfm"), progress=False), "cpu"), LightFieldOperator)


def test_scanned_operator_batches_frames_and_matches_the_simulation(ms, psf):
    op = ScannedOperator(psf, "cpu", np.float64)
    rng = np.random.default_rng(4)
    xt = rng.random((2, *op.volume_shape))
    yt = op.forward(xt)
    assert yt.shape == (2, 9, 75, 75)
    np.testing.assert_allclose(yt[1], op.forward(xt[1]), rtol=1e-12)
    np.testing.assert_allclose(op.adjoint(yt)[0], op.adjoint(yt[0]), rtol=1e-12)
    # the optics' simulation (each frame the LFM projection of the shifted volume on a wider grid, so
    # nothing is lost at the edges) is the same model, edges included
    np.testing.assert_allclose(op.forward(xt[0]), photon_image(ms, xt[0], photons_per_voxel=1.0, psf=psf, progress=False),
                               rtol=1e-5, atol=1e-7 * yt.max())  # the simulation sums in float32


def test_scanned_operators_refuse_other_kinds():
    p = compute_psf(small("lfm"), progress=False)
    with pytest.raises(ValueError, match="needs kind 'slfm'"):
        ScannedOperator(p, "cpu")
    with pytest.raises(ValueError, match="needs kind 'slfm'"):
        ShiftedScanOperator(LightFieldOperator(p, "cpu"))


def test_validate_image_takes_scan_stacks(ms):
    y, is_stack = validate_image(ms, np.ones((9, 75, 75)))
    assert y.shape == (9, 75, 75) and not is_stack
    y, is_stack = validate_image(ms, np.ones((2, 9, 75, 75)))
    assert is_stack
    with pytest.raises(ValueError, match=r"expected \(9, Y, X\) scan frames"):
        validate_image(ms, np.ones((75, 75)))
    with pytest.raises(ValueError, match=r"expected \(9, Y, X\) scan frames"):
        validate_image(ms, np.ones((8, 75, 75)))


def test_joint_rl_conserves_flux_and_keeps_a_forward_projection(ms, psf):
    """With Aᵀ1 > 0 every RL iterate satisfies sum(A x) = sum(y) (PHYSICS.md check 14)."""
    op = ScannedOperator(psf, "cpu", np.float64)
    rng = np.random.default_rng(5)
    y = op.forward(rng.random(op.volume_shape))
    seen = []
    reconstruct(ms, y.astype(np.float32), iterations=3, psf=psf, progress=False, raw=False,
                callback=lambda k, x: seen.append(float(op.forward(x.astype(np.float64)).sum())))
    np.testing.assert_allclose(seen, float(y.sum()), rtol=2e-5)


def test_a_full_scan_makes_each_view_shift_invariant():
    """K = N (every pixel step): moving the source by one voxel moves every realigned view by one
    sample, exactly (FAMILIES.md section 3.8), away from the edges of the grid."""
    m = presets.get("lfm-20x-0.5w", kind="slfm", mla={"pitch_um": 50, "focal_um": 1000},
                    camera={"pixel_um": 10, "shape": [35, 35]}, scan={"steps": 5},
                    volume={"z_min_um": 4, "z_max_um": 4, "z_step_um": 1, "voxels_per_lenslet": 5})
    op = ScannedOperator(compute_psf(m, cache=False, progress=False), "cpu", np.float64)
    c = m.volume_shape[1] // 2
    views = []
    for dx in (0, 1):
        vol = np.zeros(m.volume_shape)
        vol[0, c, c + dx] = 1.0
        views.append(realign(op.forward(vol), 5, 5))
    a, b = views
    assert a.shape == (5, 5, 35, 35)
    np.testing.assert_allclose(b[..., 5:-5, 6:-5], a[..., 5:-5, 5:-6], rtol=0, atol=1e-12 * a.max())
    assert np.abs(b - a).max() > 0.1 * a.max()  # it did move


def test_slfm_resolves_beads_at_focus_that_the_lfm_cannot():
    """Two beads 4 µm apart at the native focal plane of a 20x/0.5W LFM (lenslet 7.5 µm in the
    sample): the standard LFM cannot separate them (its samples at focus are the lenslets), the 3 x 3
    scan (steps of 2.5 µm) can.  Same optics, same photons per volume (each scan frame gets 1/9),
    off-grid beads simulated by their exact patterns (no inverse crime), shot and read noise."""
    sep, dip = 4.0, {}
    pts = [[-sep / 2 + 0.31, 0.17, 0.0], [sep / 2 + 0.31, 0.17, 0.0]]
    for kind, ppp in (("slfm", 2e4 / 9), ("lfm", 2e4)):
        m = small(kind, s=9, shape=105, z=(-6, 6, 6))
        frames = apply_camera(point_photon_image(m, pts, photons_per_point=ppp), m.camera, rng=0)
        rec = reconstruct(m, frames, iterations=30, progress=False)
        c = rec.shape[1] // 2
        iy = c + round(0.17 / m.voxel_um)
        prof = rec[1, iy - 1: iy + 2].sum(axis=0)
        ia, ib = (c + round(p[0] / m.voxel_um) for p in pts)
        peaks = min(prof[ia - 1: ia + 2].max(), prof[ib - 1: ib + 2].max())
        dip[kind] = prof[ia: ib + 1].min() / peaks
    # measured (seed 0): sLFM 0.10, LFM 0.87
    assert dip["slfm"] < 0.4 and dip["lfm"] > 0.7, dip


@pytest.mark.gpu
def test_scanned_rl_on_the_gpu_matches_the_cpu(ms, psf):
    if not backend.gpu_available():
        pytest.skip("needs a CUDA GPU with cupy")
    rng = np.random.default_rng(6)
    y = np.abs(rng.random((9, 75, 75))).astype(np.float32)
    cpu = reconstruct(ms, y, iterations=3, psf=psf, device="cpu", progress=False, raw=False)
    gpu = reconstruct(ms, y, iterations=3, psf=psf, device="gpu", progress=False, raw=False)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-6 * cpu.max())


def _moving_series(m, v_um, frames, x0=-4.0, y=0.37, z=4.1, photons=2e4):
    """Camera frame i of a rolling scan (scan position i mod K^2) of a bead moving by v_um per frame in x."""
    from optics.lfpsf import sensor_pattern
    from optics.scan import scan_shifts_um

    sh = scan_shifts_um(m)
    out = np.empty((frames, *m.image_shape), dtype=np.float32)
    for i in range(frames):
        dy, dx = sh[i % len(sh)]
        out[i] = photons * sensor_pattern(m, (x0 + v_um * i + dx, y + dy, z))
    return out


def test_rolling_windows_place_each_frame_at_its_scan_position():
    from reconstruction.scanned import rolling_windows

    frames = np.arange(20, dtype=np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)
    stacks, w = rolling_windows(frames, 3, base=0.5)
    assert stacks.shape == (20, 9, 2, 2) and w.shape == (20, 9, 1, 1)
    # t = 10: frames 6..14, frame i at position i mod 9, weight 0.5^|i - 10|
    np.testing.assert_array_equal(stacks[10, :, 0, 0], [9, 10, 11, 12, 13, 14, 6, 7, 8])
    np.testing.assert_allclose(w[10, :, 0, 0], [0.5 ** abs(i - 10) for i in (9, 10, 11, 12, 13, 14, 6, 7, 8)])
    np.testing.assert_array_equal(np.sort(stacks[0, :, 0, 0]), np.arange(9))  # the start: frames 0..8
    with pytest.raises(ValueError, match="T >= K\\^2 = 9"):
        rolling_windows(frames[:8], 3)


def test_a_moving_bead_is_smeared_only_as_far_as_the_window_weighting_allows():
    """A bead moving 0.5 µm per camera frame through a rolling 3 x 3 scan (2 scan cycles).  The volume
    at the middle frame t puts the bead where it was at t (within a quarter of the motion per frame)
    and its width along the motion grows by about the weighted spread of the window's frames,
    sigma_w = v sqrt(sum w dt^2 / sum w), w = base^|dt| (the published base 0.9: 2.4 frames; 0.3:
    1.1 frames), combined in quadrature with the static bead's width (1.28 µm): measured 2.80 µm =
    0.89x (0.9) and 2.00 µm = 1.12x (0.3) that prediction; bound 1.6x.  A smaller base smears less."""
    from reconstruction.metrics import fwhm

    m = small(s=9, shape=105, z=(-8, 8, 4), scan={"steps": 3})
    c = m.volume_shape[1] // 2

    def width_at(vol, y=0.37, z=4.1):
        iz, iy = round((z + 8) / 4), c + round(y / m.voxel_um)
        prof = vol[iz - 1: iz + 2, iy - 1: iy + 2].sum(axis=(0, 1))
        xs = (np.arange(prof.size) - c) * m.voxel_um
        return float((prof * xs).sum() / prof.sum()), fwhm(prof, m.voxel_um)

    t, v = 9, 0.5
    static = reconstruct(m, _moving_series(m, 0.0, 18), iterations=20, rolling=0.9, progress=False)
    w0 = width_at(static[t])[1]
    moving = _moving_series(m, v, 18)
    widths = {}
    for base in (0.9, 0.3):
        vol = reconstruct(m, moving, iterations=20, rolling=base, progress=False)
        centre, width = width_at(vol[t])
        assert centre == pytest.approx(-4.0 + v * t, abs=v / 2), (base, centre)
        dt = np.arange(-4, 5)
        wts = base ** np.abs(dt)
        sigma = v * np.sqrt((wts * dt**2).sum() / wts.sum())
        allowed = np.hypot(w0, 2.355 * sigma)
        assert width <= 1.6 * allowed, (base, width, allowed)
        widths[base] = width
    assert widths[0.3] < widths[0.9]


def test_rolling_is_refused_where_it_does_not_apply(ms):
    with pytest.raises(ValueError, match="rolling = 0.9 is invalid here"):
        reconstruct(ms, np.ones((9, *ms.image_shape)), rolling=0.9, method="phase-space")
    with pytest.raises(ValueError, match="rolling = 1.5 is invalid"):
        reconstruct(ms, np.ones((9, *ms.image_shape)), rolling=1.5)
    with pytest.raises(ValueError, match="a rolling scan needs at least K\\^2 = 9"):
        reconstruct(ms, np.ones((5, *ms.image_shape)), rolling=0.9)


def test_weighted_rl_conserves_the_weighted_flux(ms, psf):
    """x ⊙ Hᵀ(w ⊙ y ⊘ H x) ⊘ Hᵀw gives sum(w ⊙ H x_new) = sum(w ⊙ y) (the weighted form of check 14)."""
    from reconstruction.deconvolution import richardson_lucy

    op = ScannedOperator(psf, "cpu", np.float64)
    rng = np.random.default_rng(9)
    y = np.stack([op.forward(rng.random(op.volume_shape)) for _ in range(2)])
    w = rng.uniform(0.2, 1.0, size=(2, 9, 1, 1))
    seen = []
    richardson_lucy(y, op, 2, weights=w, progress=False,
                    callback=lambda k, x: seen.append((w * op.forward(x)).sum(axis=(1, 2, 3))))
    for s in seen:
        np.testing.assert_allclose(s, (w * y).sum(axis=(1, 2, 3)), rtol=1e-9)
    with pytest.raises(ValueError, match="not broadcastable"):
        richardson_lucy(y, op, 1, weights=np.ones((3, 1, 1, 1)), progress=False)
