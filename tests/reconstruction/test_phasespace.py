"""Phase-space (view-by-view, ordered-subset) RL of the scanning LFM (``reconstruction.phasespace``).

Independent references: the joint phase-space operator (all views at once, ``ScannedOperator``) for
the per-view operators, the flux identity of one RL update (PHYSICS.md check 14), and beads at
focus that only a scan resolves.
"""

import numpy as np
import pytest

from optics import compute_psf, presets
from optics.camera import apply_camera
from optics.scan import realign
from optics.simulation import point_photon_image
from reconstruction import reconstruct
from reconstruction.phasespace import PhaseSpaceViews, phase_space_rl, view_order
from reconstruction.scanned import ScannedOperator


def small(kind="slfm", s=3, shape=75, z=(-10, 10, 10), **kw):
    return presets.get("lfm-20x-0.5w", kind=kind, camera={"shape": [shape, shape]},
                       volume={"z_min_um": z[0], "z_max_um": z[1], "z_step_um": z[2], "voxels_per_lenslet": s}, **kw)


@pytest.fixture(scope="module")
def ms():
    return small(s=9, scan={"steps": 3, "order": "ring"})


@pytest.fixture(scope="module")
def psf(ms):
    return compute_psf(ms, cache=False, progress=False)


def test_view_order_goes_from_the_outer_ring_inward():
    order = view_order(5)
    assert len(order) == 25 and len(set(order)) == 25
    assert order[-1] == (2, 2)
    radii = [np.hypot(u - 2, v - 2) for u, v in order]
    assert radii == sorted(radii, reverse=True)


def test_the_views_together_are_the_joint_operator(psf, device, xp, to_np):
    """Each view's operator (N = 1 on the virtual grid) is its slice of the joint projection."""
    views = PhaseSpaceViews(psf, device, np.float64, min_energy=0.0)
    joint = ScannedOperator(psf, device, np.float64)
    rng = np.random.default_rng(1)
    x = xp.asarray(rng.random(joint.volume_shape))
    full = to_np(realign(to_np(joint.forward(x)), 3, 15, "ring"))  # (N, N, KL, KL)
    assert len(views.order) == 225
    for uv in [(0, 0), (7, 7), (3, 11), (14, 2)]:
        np.testing.assert_allclose(to_np(views.ops[uv].forward(x)), full[uv], rtol=0, atol=1e-12 * full.max())
        y = xp.asarray(rng.random(views.view_shape))
        lhs, rhs = float(xp.vdot(views.ops[uv].forward(x), y)), float(xp.vdot(x, views.ops[uv].adjoint(y)))
        assert lhs == pytest.approx(rhs, rel=1e-12)


def test_weights_follow_the_views_light(psf):
    views = PhaseSpaceViews(psf, "cpu", weight_max=0.5, min_energy=0.2)
    assert views.weights.max() == pytest.approx(0.5)
    np.testing.assert_allclose(views.weights[views.energy >= 0.2], 0.5 * views.energy[views.energy >= 0.2])
    assert not views.weights[views.energy < 0.2].any()
    assert all(views.weights[uv] > 0 for uv in views.order)
    with pytest.raises(ValueError, match="weight_max = 1.5 is invalid"):
        PhaseSpaceViews(psf, "cpu", weight_max=1.5)


def test_a_full_weight_view_update_conserves_that_views_flux(psf):
    """x_new = x ⊙ H_vᵀ(y_v / H_v x) / H_vᵀ1 gives sum(H_v x_new) = sum(y_v) where H_vᵀ1 > 0 (check 14)."""
    views = PhaseSpaceViews(psf, "cpu", np.float64, weight_max=1.0)
    uv = tuple(int(i) for i in np.unravel_index(np.argmax(views.energy), views.energy.shape))
    views.order = [uv]  # one update, with w = 1
    rng = np.random.default_rng(2)
    frames = rng.random((9, 75, 75)) + 0.1
    x = phase_space_rl(frames, views, 1, progress=False)
    yv = realign(frames, 3, 15, "ring")[uv]
    assert float(views.ops[uv].forward(x).sum()) == pytest.approx(float(yv.sum()), rel=1e-6)


def test_phase_space_rl_resolves_beads_at_focus_in_few_passes():
    """The beads of test_scanned's joint test (4 µm apart at focus, off-grid, noisy): two passes over
    the views separate them (measured dip 0.011 after 2 passes; the joint RL reached 0.10 in 30 iterations)."""
    sep = 4.0
    pts = [[-sep / 2 + 0.31, 0.17, 0.0], [sep / 2 + 0.31, 0.17, 0.0]]
    m = small(s=9, shape=105, z=(-6, 6, 6), scan={"steps": 3})
    frames = apply_camera(point_photon_image(m, pts, photons_per_point=2e4 / 9), m.camera, rng=0)
    rec = reconstruct(m, frames, iterations=2, method="phase-space", progress=False)
    c = rec.shape[1] // 2
    iy = c + round(0.17 / m.voxel_um)
    prof = rec[1, iy - 1: iy + 2].sum(axis=0)
    ia, ib = (c + round(p[0] / m.voxel_um) for p in pts)
    dip = prof[ia: ib + 1].min() / min(prof[ia - 1: ia + 2].max(), prof[ib - 1: ib + 2].max())
    assert dip < 0.4, dip


@pytest.mark.parametrize("kwargs, needle", [
    ({"method": "phase-space"}, "method = 'phase-space' is invalid for microscope.kind = 'lfm'"),
    ({"dao": True}, "dao = True is invalid for microscope.kind = 'lfm'"),
    ({"method": "fast"}, "method = 'fast' is invalid"),
])
def test_phase_space_options_are_refused_where_they_do_not_apply(kwargs, needle):
    m = small("lfm")
    with pytest.raises(ValueError, match=needle.replace("(", r"\(")):
        reconstruct(m, np.ones(m.image_shape), **kwargs)


def test_phase_space_refuses_joint_only_options(ms):
    y = np.ones((9, *ms.image_shape))
    with pytest.raises(ValueError, match="dao = True needs method = 'phase-space'"):
        reconstruct(ms, y, dao=True, method="joint")


def test_phase_space_rl_resumes_from_its_checkpoint(psf, tmp_path):
    """Two passes written to a checkpoint, then three resumed from it = three passes in one run."""
    views = PhaseSpaceViews(psf, "cpu", np.float64)
    rng = np.random.default_rng(3)
    frames = rng.random((9, 75, 75)) + 0.1
    ck = tmp_path / "ps.npz"
    phase_space_rl(frames, views, 2, progress=False, checkpoint=ck)
    assert ck.exists()
    resumed = phase_space_rl(frames, views, 3, progress=False, checkpoint=ck)
    np.testing.assert_allclose(resumed, phase_space_rl(frames, views, 3, progress=False), rtol=1e-12)
    from reconstruction.deconvolution import CheckpointError

    with pytest.raises(CheckpointError, match="belongs to another image"):
        phase_space_rl(frames * 2, views, 3, progress=False, checkpoint=ck)


@pytest.mark.gpu
def test_phase_space_rl_on_the_gpu_matches_the_cpu(psf):
    from reconstruction import backend

    if not backend.gpu_available():
        pytest.skip("needs a CUDA GPU with cupy")
    rng = np.random.default_rng(4)
    frames = (rng.random((9, 75, 75)) + 0.1).astype(np.float32)
    cpu = phase_space_rl(frames, PhaseSpaceViews(psf, "cpu"), 2, progress=False)
    gpu = phase_space_rl(frames, PhaseSpaceViews(psf, "gpu"), 2, progress=False)
    np.testing.assert_allclose(gpu, cpu, rtol=1e-3, atol=1e-5 * cpu.max())
