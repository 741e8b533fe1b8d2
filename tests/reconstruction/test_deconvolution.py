"""Richardson-Lucy invariants (PHYSICS.md section 6, check 14), filter, callback, checkpoints, batching."""

from __future__ import annotations

import numpy as np
import pytest
from recon_helpers import microscope, synthetic_psf

from reconstruction import backend
from reconstruction.deconvolution import CheckpointError, richardson_lucy
from reconstruction.operator import LightFieldOperator


def _setup(rng, dtype=np.float64, n=5, s=3, lenslets=(4, 5), radii=(2, 0, 1), device="cpu"):
    m = microscope(n, s, lenslets, z=[-2.0, 0.0, 2.0], kind="widefield" if n == 1 else "lfm")
    psf = synthetic_psf(m, list(radii), rng, np.float64)
    return psf, LightFieldOperator(psf, device, dtype)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-12), (np.float32, 1e-6)])
def test_flux_is_conserved_every_iteration(dtype, tol, rng64):
    _, op = _setup(rng64, dtype)
    y = (rng64.random(op.image_shape) * 100).astype(dtype)
    sums = []
    richardson_lucy(y, op, 5, progress=False,
                    callback=lambda k, x: sums.append(float(op.forward(x).sum(dtype=np.float64))))
    assert len(sums) == 5
    target = float(y.sum(dtype=np.float64))
    for v in sums:
        assert abs(v - target) <= tol * target


@pytest.mark.parametrize("n,s", [(5, 3), (1, 1)])
def test_nonnegative_and_fixed_point(n, s, rng64):
    _, op = _setup(rng64, np.float64, n=n, s=s, lenslets=(4, 5) if n > 1 else (9, 8))
    x_true = rng64.random(op.volume_shape) + 0.1
    y = op.forward(x_true)
    x = richardson_lucy(y, op, 3, x0=x_true, progress=False)
    np.testing.assert_allclose(x, x_true, rtol=1e-10)
    x = richardson_lucy(y, op, 10, progress=False)
    assert (x >= 0).all()
    # RL decreases the Poisson negative log-likelihood (KL divergence) monotonically
    kls = []

    def kl(k, xk):
        hx = op.forward(xk)
        kls.append(float(np.sum(y * np.log(y / hx) - y + hx)))

    richardson_lucy(y, op, 6, progress=False, callback=kl)
    assert all(b <= a + 1e-9 for a, b in zip(kls, kls[1:]))


def test_float32_in_float32_out_and_zero_guard(rng64):
    _, op = _setup(rng64, np.float32)
    y = (rng64.random(op.image_shape) * 10).astype(np.float32)
    y[:3] = 0
    x = richardson_lucy(y, op, 3, progress=False)
    assert x.dtype == np.float32 and x.shape == op.volume_shape
    assert np.isfinite(x).all() and (x >= 0).all()
    z = richardson_lucy(np.zeros(op.image_shape, np.float32), op, 2, progress=False)
    assert np.isfinite(z).all() and not z.any()


def test_time_series_is_batched(rng64):
    _, op = _setup(rng64, np.float64)
    ys = rng64.random((3, *op.image_shape)) * 5
    xs = richardson_lucy(ys, op, 4, progress=False)
    assert xs.shape == (3, *op.volume_shape)
    for i in range(3):
        np.testing.assert_allclose(xs[i], richardson_lucy(ys[i], op, 4, progress=False), rtol=1e-10)


def test_bad_inputs_are_clear_errors(rng64):
    _, op = _setup(rng64, np.float32)
    y = np.ones(op.image_shape, np.float32)
    with pytest.raises(ValueError, match="image has shape"):
        richardson_lucy(np.ones((7, 7)), op, 1)
    bad = y.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        richardson_lucy(bad, op, 1)
    with pytest.raises(ValueError, match="negative"):
        richardson_lucy(-y, op, 1)
    with pytest.raises(ValueError, match="iterations"):
        richardson_lucy(y, op, -1)
    with pytest.raises(ValueError, match="filter"):
        richardson_lucy(y, op, 1, filter="gauss")


def test_checkpoint_resumes_where_it_stopped(tmp_path, rng64):
    _, op = _setup(rng64, np.float64)
    y = rng64.random(op.image_shape) * 5
    ref = richardson_lucy(y, op, 6, progress=False)
    ck = tmp_path / "rl.npz"
    seen = []

    class Stop(Exception):
        pass

    def interrupt(k, x):
        seen.append(k)
        if k == 4:
            raise Stop

    with pytest.raises(Stop):
        richardson_lucy(y, op, 6, progress=False, checkpoint=ck, checkpoint_every=2, callback=interrupt)
    with np.load(ck) as d:
        assert int(d["iteration"]) == 2
    resumed = []
    out = richardson_lucy(y, op, 6, progress=False, checkpoint=ck, checkpoint_every=2,
                          callback=lambda k, x: resumed.append(k))
    assert resumed == [3, 4, 5, 6]
    np.testing.assert_allclose(out, ref, rtol=1e-12)
    with np.load(ck) as d:
        assert int(d["iteration"]) == 6
    with pytest.raises(CheckpointError, match="another image"):
        richardson_lucy(y * 2, op, 6, progress=False, checkpoint=ck)


def test_lanczos_filter_runs_in_rl(rng64):
    psf, op = _setup(rng64, np.float32, n=15, s=5, lenslets=(3, 3), radii=(1, 1, 1))
    y = (rng64.random(op.image_shape) * 5).astype(np.float32)
    x = richardson_lucy(y, op, 2, filter="lanczos", progress=False)
    assert x.dtype == np.float32 and (x >= 0).all() and np.isfinite(x).all()


@pytest.mark.gpu
def test_rl_numpy_cupy_agree(rng64):
    psf, op_c = _setup(rng64, np.float32)
    op_g = LightFieldOperator(psf, "gpu", np.float32)
    y = (rng64.random(op_c.image_shape) * 10).astype(np.float32)
    xc = richardson_lucy(y, op_c, 4, progress=False)
    xg = richardson_lucy(backend.to_device(y, "gpu"), op_g, 4, progress=False)
    assert backend.is_gpu_array(xg)
    np.testing.assert_allclose(backend.to_host(xg), xc, rtol=1e-3, atol=1e-4 * xc.max())
    np.testing.assert_allclose(richardson_lucy(y, op_g, 4, progress=False), xc, rtol=1e-3, atol=1e-4 * xc.max())


def test_accepts_its_own_forward_projection(small_op32, roundoff_projection):
    """op.forward(x) of x >= 0 has FFT round-off negatives (~ -1e-7 of the peak): clipped, not refused."""
    y = roundoff_projection
    before = y.copy()
    x = richardson_lucy(y, small_op32, 3, progress=False)
    assert x.shape == small_op32.volume_shape and np.isfinite(x).all() and (x >= 0).all()
    np.testing.assert_array_equal(y, before)  # the caller's array is not modified
    # zero pixels of y: Hᵀ leaves round-off negatives in the update, clipped so x is a valid x0 again
    assert richardson_lucy(y, small_op32, 1, x0=x, progress=False).min() >= 0
    # the clipped image is what RL works on: flux is conserved against it
    sums = []
    richardson_lucy(y, small_op32, 2, progress=False,
                    callback=lambda k, xk: sums.append(float(small_op32.forward(xk).sum(dtype=np.float64))))
    target = float(np.maximum(y, 0).sum(dtype=np.float64))
    assert all(abs(v - target) <= 1e-5 * target for v in sums)


def test_negative_data_refused_with_count_and_min(small_op32):
    op = small_op32
    y = np.ones(op.image_shape, np.float32)
    y[0, 0] = -1e-6  # round-off sized: alone it would be clipped
    y[1, 2], y[3, 4], y[5, 6] = -0.5, -0.02, -0.003
    with pytest.raises(ValueError, match=r"3 pixel\(s\) below the round-off bound") as err:
        richardson_lucy(y, op, 1, progress=False)
    msg = str(err.value)
    assert "min -0.5" in msg and "4 negative in all" in msg and "-1e-05 x max|image|" in msg
    # a stack: the bound is relative to each frame's peak, so a dim frame is not excused by a bright one
    ys = np.stack([1000 * np.ones(op.image_shape, np.float32), np.ones(op.image_shape, np.float32)])
    ys[1, 2, 2] = -1e-3
    with pytest.raises(ValueError, match=r"1 pixel\(s\) below.*min -0.001"):
        richardson_lucy(ys, op, 1, progress=False)
    ys[1, 2, 2] = -1e-6
    assert richardson_lucy(ys, op, 1, progress=False).shape == (2, *op.volume_shape)
